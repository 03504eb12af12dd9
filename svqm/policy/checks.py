"""Cross-checks pydantic cannot express: references resolve, states are reachable, ranks are unique."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from svqm.policy.models import Policy, Workflow


def _duplicates(ids: Iterable[str]) -> list[str]:
    return sorted(i for i, n in Counter(ids).items() if n > 1)


def _unique(problems: list[str], where: str, ids: Iterable[str], what: str) -> None:
    for dup in _duplicates(ids):
        problems.append(f"{where}: {what} '{dup}' is declared more than once")


def _check_rubric(where: str, rubric: dict[int, str], top: int, problems: list[str]) -> None:
    """A rubric says what every score from 0 to the question's max_score means, and no more."""
    missing = [str(n) for n in range(top + 1) if not rubric.get(n, "").strip()]
    extra = [str(n) for n in sorted(rubric) if not 0 <= n <= top]
    if missing:
        problems.append(f"{where}: say what each score means; missing {', '.join(missing)}")
    if extra:
        problems.append(f"{where}: scores {', '.join(extra)} are outside 0 to {top}")


def _check_catalogue(policy: Policy, problems: list[str]) -> None:
    _unique(problems, "themes", (t.id for t in policy.themes), "theme")
    _unique(problems, "standards", (s.id for s in policy.standards), "standard")
    for i, std in enumerate(policy.standards):
        _unique(problems, f"standards[{i}].questions", (q.id for q in std.questions), "question")
        for j, q in enumerate(std.questions):
            if q.met_at is not None and q.met_at > q.max_score:
                problems.append(
                    f"standards[{i}].questions[{j}].met_at: {q.met_at} is above max_score "
                    f"{q.max_score}"
                )
            if q.rubric:
                _check_rubric(
                    f"standards[{i}].questions[{j}].rubric", q.rubric, q.max_score, problems
                )
    for scale, rubric in policy.settings.rubric.items():
        _check_rubric(f"settings.rubric.{scale}", rubric, scale, problems)
    _unique(
        problems,
        "evidence_requirements",
        (r.id for r in policy.evidence_requirements),
        "requirement",
    )
    for i, r in enumerate(policy.evidence_requirements):
        if r.met_by is not None and r.per != "application":
            problems.append(
                f"evidence_requirements[{i}].met_by: '{r.met_by}' meets one item for the whole "
                f"application, but '{r.id}' asks for one per {r.per}"
            )
        if r.per_member and r.per != "application":
            problems.append(
                f"evidence_requirements[{i}].per_member: one upload per member is asked of an "
                f"item of the whole application, but '{r.id}' asks for one per {r.per}"
            )
        if r.per_member and r.met_by is not None:
            problems.append(
                f"evidence_requirements[{i}].per_member: each member uploads its own, so "
                f"'{r.id}' cannot also be met by the applicant's {r.met_by}"
            )


def _check_levels(policy: Policy, problems: list[str]) -> None:
    _unique(problems, "levels", (lv.id for lv in policy.levels), "level")
    for rank in _duplicates(str(lv.rank) for lv in policy.levels):
        problems.append(
            f"levels: rank {rank} is used by more than one level; ranks order the ladder"
        )
    standards = {s.id for s in policy.standards}
    requirements = {r.id for r in policy.evidence_requirements}
    ranks = {lv.id: lv.rank for lv in policy.levels}
    mandatory_themes = [t for t in policy.themes if t.mandatory]
    for i, lv in enumerate(policy.levels):
        for j, sid in enumerate(lv.standards):
            if sid not in standards:
                problems.append(
                    f"levels[{i}].standards[{j}]: unknown standard '{sid}' "
                    f"(declared: {', '.join(sorted(standards)) or 'none'})"
                )
        for j, rid in enumerate(lv.evidence):
            if rid not in requirements:
                problems.append(f"levels[{i}].evidence[{j}]: unknown evidence requirement '{rid}'")
        if lv.requires is not None:
            if lv.requires.level not in ranks:
                problems.append(f"levels[{i}].requires.level: unknown level '{lv.requires.level}'")
            elif ranks[lv.requires.level] >= lv.rank:
                problems.append(
                    f"levels[{i}].requires.level: '{lv.requires.level}' must rank below '{lv.id}'"
                )
        _check_pass_mark(policy, i, problems)
        rule = lv.pledge_rule
        if rule is not None:
            eligible = mandatory_themes if rule.themes == "mandatory" else policy.themes
            if rule.min_distinct_themes > len(eligible):
                problems.append(
                    f"levels[{i}].pledge_rule.min_distinct_themes: {rule.min_distinct_themes} "
                    f"themes asked for but only {len(eligible)} eligible themes declared"
                )
            if rule.themes == "mandatory" and not mandatory_themes:
                problems.append(
                    f"levels[{i}].pledge_rule.themes: 'mandatory' but no theme is marked mandatory"
                )
            if rule.min_carried and not lv.carry_pledges:
                problems.append(
                    f"levels[{i}].pledge_rule.min_carried: {rule.min_carried} carried pledges "
                    "asked for but the level does not carry_pledges"
                )
            if rule.min_carried and lv.requires is None:
                problems.append(
                    f"levels[{i}].pledge_rule.min_carried: nothing to carry from: a first "
                    "application at this level holds no award, so give the level `requires`"
                )
        if lv.assessors > 1 and not lv.standards:
            problems.append(
                f"levels[{i}].assessors: {lv.assessors} assessors score the standards, but the "
                "level assesses none"
            )
        if lv.carry_pledges and not policy.themes:
            problems.append(
                f"levels[{i}].carry_pledges: the scheme declares no themes to pledge under"
            )


def _check_routes(policy: Policy, problems: list[str]) -> None:
    """Steps marked for self-service levels (or for the others) need such levels to exist."""
    flags = {lv.self_service for lv in policy.levels}
    for i, t in enumerate(policy.workflows.application.transitions):
        if t.self_service is not None and t.self_service not in flags:
            which = "self-service" if t.self_service else "assessed (not self-service)"
            problems.append(
                f"workflows.application.transitions[{i}].self_service: no level is {which}"
            )
    for i, t in enumerate(policy.workflows.award.transitions):
        if t.self_service is not None:
            problems.append(
                f"workflows.award.transitions[{i}].self_service: only application steps "
                "can be for self-service levels"
            )
    for s in policy.workflows.award.states:
        if s.reapply:
            problems.append(
                f"workflows.award.states: '{s.name}' has reapply; only application states can"
            )


def check_equivalents(policies: Mapping[str, Policy]) -> list[str]:
    """Every prerequisite's equivalent names a loaded scheme and one of its levels."""
    problems: list[str] = []
    for pid, policy in sorted(policies.items()):
        for i, lv in enumerate(policy.levels):
            for j, eq in enumerate(lv.requires.equivalents if lv.requires else []):
                at = f"{pid}: levels[{i}].requires.equivalents[{j}]"
                other = policies.get(eq.scheme)
                if other is None:
                    problems.append(f"{at}.scheme: no scheme '{eq.scheme}' in the policies")
                elif eq.level not in {x.id for x in other.levels}:
                    problems.append(f"{at}.level: '{eq.level}' is not a level of '{eq.scheme}'")
    return problems


def check_issuers(policies: Mapping[str, Policy]) -> list[str]:
    """Schemes naming one issuer (one key ring) describe it alike: one name, website and logo."""
    problems: list[str] = []
    first: dict[str, tuple[str, Policy]] = {}
    for pid, policy in sorted(policies.items()):
        issuer = policy.issuer
        if issuer is None:
            continue
        if issuer.id not in first:
            first[issuer.id] = (pid, policy)
            continue
        other_id, other = first[issuer.id]
        assert other.issuer is not None
        for name in ("name", "url", "logo", "description"):
            if getattr(issuer, name) != getattr(other.issuer, name):
                problems.append(
                    f"{pid}: issuer.{name}: issuer '{issuer.id}' is described otherwise by "
                    f"'{other_id}'; schemes sharing an issuer describe it alike"
                )
    return problems


def _check_charter(policy: Policy, problems: list[str]) -> None:
    """A charter's signing step issues the signature to the applicant; its withdrawal step lets
    the signatory leave from every state in force."""
    charter = policy.charter
    if charter is None:
        return
    app_flow, award_flow = policy.workflows.application, policy.workflows.award
    signs = [t for t in app_flow.transitions if t.trigger == charter.sign]
    if not signs:
        problems.append(f"charter.sign: the application workflow has no trigger '{charter.sign}'")
    for t in signs:
        if "applicant" not in t.roles or "issue_award" not in t.effects:
            problems.append(
                f"charter.sign: '{charter.sign}' must be the applicant's and issue the award "
                "(the signature): list the 'applicant' role and the 'issue_award' effect"
            )
    if signs and app_flow.initial not in app_flow.leaves(charter.sign):
        problems.append(
            f"charter.sign: '{charter.sign}' must leave the initial state '{app_flow.initial}'"
        )
    withdraws = [t for t in award_flow.transitions if t.trigger == charter.withdraw]
    if not withdraws:
        problems.append(f"charter.withdraw: the award workflow has no trigger '{charter.withdraw}'")
        return
    if any("applicant" not in t.roles for t in withdraws):
        problems.append(
            f"charter.withdraw: '{charter.withdraw}' must list the 'applicant' role: a "
            "signatory withdraws its own signature"
        )
    in_force = {s.name for s in award_flow.states if s.in_force}
    missing = sorted(in_force - award_flow.leaves(charter.withdraw))
    if missing:
        problems.append(
            f"charter.withdraw: '{charter.withdraw}' cannot leave {', '.join(missing)}; a "
            "signatory may withdraw from every state in force"
        )
    kept = sorted(award_flow.enters(charter.withdraw) & in_force)
    if kept:
        problems.append(
            f"charter.withdraw: '{charter.withdraw}' enters {', '.join(kept)}, which is in force"
        )


def _check_pass_mark(policy: Policy, i: int, problems: list[str]) -> None:
    """One pass mark per level and per scheme, and a points mark the standards can reach."""
    lv = policy.levels[i]
    if lv.pass_mark_percent is not None and lv.pass_mark_points is not None:
        problems.append(f"levels[{i}]: give pass_mark_percent or pass_mark_points, not both")
    unit, mark = policy.pass_mark(lv)
    known = {s.id: s for s in policy.standards}
    if unit != "points" or not lv.standards or any(s not in known for s in lv.standards):
        return
    available = sum(q.weight for sid in lv.standards for q in known[sid].questions)
    if mark > available:
        problems.append(
            f"levels[{i}]: a pass mark of {mark:g} points is more than the {available:g} "
            "points its standards offer (each question is worth its weight)"
        )


def _reachable(workflow: Workflow) -> set[str]:
    seen = {workflow.initial}
    frontier = [workflow.initial]
    while frontier:
        state = frontier.pop()
        for t in workflow.transitions:
            if state in t.source and t.dest not in seen:
                seen.add(t.dest)
                frontier.append(t.dest)
    return seen


def _check_workflow(
    kind: str,
    workflow: Workflow,
    problems: list[str],
    known_guards: Mapping[str, str | None] | None,
    known_effects: Iterable[str] | None,
    deadline_kinds: set[str],
) -> None:
    where = f"workflows.{kind}"
    names = [s.name for s in workflow.states]
    _unique(problems, f"{where}.states", names, "state")
    declared = set(names)
    if workflow.initial not in declared:
        problems.append(f"{where}.initial: '{workflow.initial}' is not a declared state")
    pairs: Counter[tuple[str, str]] = Counter()
    for i, t in enumerate(workflow.transitions):
        at = f"{where}.transitions[{i}]"
        for j, src in enumerate(t.source):
            pairs[(t.trigger, src)] += 1
            if src not in declared:
                problems.append(f"{at}.source[{j}]: '{src}' is not a declared state")
        if t.dest not in declared:
            problems.append(f"{at}.dest: '{t.dest}' is not a declared state")
        for j, ref in enumerate(t.guards):
            _check_guard(f"{at}.guards[{j}]", ref, known_guards, deadline_kinds, problems)
        for j, effect in enumerate(t.effects):
            if known_effects is not None and effect not in set(known_effects):
                problems.append(
                    f"{at}.effects[{j}]: unknown effect '{effect}' "
                    f"(known: {', '.join(sorted(known_effects))})"
                )
        if len(set(t.roles)) != len(t.roles):
            problems.append(f"{at}.roles: a role is listed twice")
        if t.quorum > 1 and not set(t.roles) <= {"panel", "admin"}:
            problems.append(
                f"{at}.quorum: only a step decided by panel members or admins can need "
                f"{t.quorum} of them to agree (roles: {', '.join(t.roles)})"
            )
    for (trigger, src), n in sorted(pairs.items()):
        if n > 1:
            problems.append(
                f"{where}.transitions: trigger '{trigger}' is declared {n} times from "
                f"state '{src}'; each (trigger, source) pair must be unique"
            )
    if workflow.initial in declared:
        for state in sorted(declared - _reachable(workflow)):
            problems.append(
                f"{where}.states: '{state}' cannot be reached from '{workflow.initial}'"
            )
    for s in workflow.states:
        leaves = any(s.name in t.source for t in workflow.transitions)
        if s.terminal and leaves:
            problems.append(f"{where}.states: '{s.name}' is terminal but a transition leaves it")
        if s.credential_status and (kind != "award" or s.in_force):
            problems.append(
                f"{where}.states: '{s.name}' has credential_status; only an award state "
                "that is not in_force can suspend or revoke the credential"
            )
        if s.credential_status == "revoked" and not s.terminal:
            problems.append(
                f"{where}.states: '{s.name}' revokes the credential for good, so it must be "
                "terminal (use 'suspended' for a state that can be left)"
            )


def _check_guard(
    at: str,
    ref: str,
    known_guards: Mapping[str, str | None] | None,
    deadline_kinds: set[str],
    problems: list[str],
) -> None:
    name, _, arg = ref.partition(":")
    if known_guards is None:
        return
    if name not in known_guards:
        problems.append(f"{at}: unknown guard '{name}' (known: {', '.join(sorted(known_guards))})")
        return
    wants = known_guards[name]
    if wants is None and arg:
        problems.append(f"{at}: guard '{name}' takes no argument")
    elif wants == "deadline" and arg not in deadline_kinds:
        problems.append(
            f"{at}: guard '{name}' needs a deadline kind of this workflow's subject "
            f"after ':' (declared: {', '.join(sorted(deadline_kinds)) or 'none'})"
        )


def _check_hand_back(policy: Policy, problems: list[str]) -> None:
    """A scheme whose assessors review evidence says which trigger hands an application back.

    The assessor sends back every collected "more information" with it, so it must be the
    assessor's, lead to a state in which the applicant can answer (editable), and leave every
    state in which evidence is reviewed while the applicant cannot change it (else the requests
    would reach nobody).
    """
    flow = policy.workflows.application
    where = "workflows.application.hand_back"
    reviewed = [s.name for s in flow.states if s.reviewable]
    trigger = flow.hand_back
    if trigger is None:
        if reviewed:
            problems.append(
                f"{where}: assessors review evidence in {', '.join(reviewed)}; name the trigger "
                "that hands the application back when they ask for more information"
            )
        return
    matches = [t for t in flow.transitions if t.trigger == trigger]
    if not matches:
        problems.append(f"{where}: no trigger '{trigger}' in the application workflow")
        return
    editable = {s.name for s in flow.states if s.editable}
    for t in matches:
        if "assessor" not in t.roles:
            problems.append(
                f"{where}: '{trigger}' from {', '.join(t.source)} is not the assessor's"
            )
        if t.dest not in editable:
            problems.append(
                f"{where}: '{trigger}' enters '{t.dest}', where the applicant cannot change "
                "anything (mark it editable, or hand back to an editable state)"
            )
    waiting = [s.name for s in flow.states if s.reviewable and not s.editable]
    for state in waiting:
        if flow.transition(trigger, state) is None:
            problems.append(
                f"{where}: '{trigger}' cannot leave '{state}', where evidence is reviewed, so "
                "asking for more information there would reach nobody"
            )


def _check_supersede(policy: Policy, problems: list[str]) -> None:
    """An application that issues awards names the trigger that supersedes the older award."""
    issues = any("issue_award" in t.effects for t in policy.workflows.application.transitions)
    award = policy.workflows.award
    where = "workflows.award.supersede"
    if award.supersede is None:
        if issues:
            problems.append(
                f"{where}: the 'issue_award' effect supersedes an organisation's older award; "
                "name the trigger it fires (open to 'system') on the older award"
            )
        return
    matches = [t for t in award.transitions if t.trigger == award.supersede]
    if not matches:
        problems.append(f"{where}: no trigger '{award.supersede}' in the award workflow")
        return
    for t in matches:
        if "system" not in t.roles:
            problems.append(
                f"{where}: '{award.supersede}' from {', '.join(t.source)} must list the "
                "'system' role"
            )
    in_force = {s.name for s in award.states if s.in_force}
    for state in sorted(in_force - award.leaves(award.supersede)):
        problems.append(
            f"{where}: '{award.supersede}' cannot leave '{state}', an in-force state, so a "
            "newer award could not supersede it"
        )


def _check_notify(policy: Policy, problems: list[str]) -> None:
    """Who a step tells must exist for its subject: awards have no assigned assessor."""
    award = policy.workflows.award
    for i, t in enumerate(award.transitions):
        if "assessor" in t.notify:
            problems.append(
                f"workflows.award.transitions[{i}].notify: an award has no assigned assessor "
                f"to tell of '{t.trigger}' (applicant, panel or admin)"
            )
        if t.notice and not t.notify:
            problems.append(
                f"workflows.award.transitions[{i}].notice: '{t.trigger}' tells nobody (no notify)"
            )
    for i, t in enumerate(policy.workflows.application.transitions):
        if t.notice and not t.notify:
            problems.append(
                f"workflows.application.transitions[{i}].notice: '{t.trigger}' tells nobody "
                "(no notify)"
            )
    if award.notify_on_assign:
        problems.append("workflows.award.notify_on_assign: only applications have assessors")


def _check_kind_settings(policy: Policy, problems: list[str]) -> None:
    """Settings that belong to one workflow, and one look per step."""
    if policy.workflows.award.hand_back is not None:
        problems.append("workflows.award.hand_back: only the application workflow hands back")
    if policy.workflows.application.supersede is not None:
        problems.append("workflows.application.supersede: only awards are superseded")
    for s in policy.workflows.award.states:
        if s.private:
            problems.append(f"workflows.award.states: '{s.name}' is private; only applications are")
    for kind in policy.workflows.kinds():
        for i, t in enumerate(policy.workflows.of(kind).transitions):
            if t.primary and t.warning:
                problems.append(
                    f"workflows.{kind}.transitions[{i}]: a step is primary or a warning, not both"
                )


def _check_repeat_and_filing(policy: Policy, i: int, problems: list[str]) -> None:
    """Repeat options need a repeat; filings and expiry exist for awards; late filing is consistent."""
    d = policy.deadlines[i]
    at = f"deadlines[{i}]"
    if not d.repeat_months:
        for name in ("repeat_from", "repeat_to_end_of"):
            if name in d.model_fields_set:
                problems.append(f"{at}.{name}: only a repeating deadline (repeat_months) has it")
    if d.repeat_from == "met" and not d.filed_by:
        problems.append(f"{at}.repeat_from: 'met' needs filed_by; only a filing meets a deadline")
    if d.subject != "award":
        for name in ("until_expiry", "filed_by", "on_late_filing"):
            if getattr(d, name):
                problems.append(f"{at}.{name}: exists only for award deadlines")
        return
    if len(set(d.filed_by)) != len(d.filed_by):
        problems.append(f"{at}.filed_by: a role is listed twice")
    if d.on_late_filing is None:
        return
    if not d.filed_by:
        problems.append(f"{at}.on_late_filing: needs filed_by; only a filing can be late")
        return
    workflow = policy.workflows.award
    matches = [t for t in workflow.transitions if t.trigger == d.on_late_filing]
    if not matches:
        problems.append(
            f"{at}.on_late_filing: no trigger '{d.on_late_filing}' in the award workflow"
        )
    for t in matches:
        missing = [r for r in d.filed_by if r not in t.roles]
        if missing:
            problems.append(
                f"{at}.on_late_filing: trigger '{t.trigger}' from {', '.join(t.source)} does not "
                f"list the filer role {', '.join(repr(r) for r in missing)}"
            )
    for state in d.while_in:
        if workflow.transition(d.on_late_filing, state) is not None:
            problems.append(
                f"{at}.on_late_filing: trigger '{d.on_late_filing}' can fire from '{state}', "
                "where the deadline runs; a filing there must be on time or late, not both"
            )


def _check_deadlines(policy: Policy, problems: list[str]) -> None:
    _unique(problems, "deadlines", (d.kind for d in policy.deadlines), "deadline kind")
    for i, d in enumerate(policy.deadlines):
        at = f"deadlines[{i}]"
        if d.subject not in policy.workflows.kinds():
            problems.append(f"{at}.subject: 'report' needs a report workflow (workflows.report)")
            continue
        workflow = policy.workflows.of(d.subject)
        declared = {s.name for s in workflow.states}
        for j, state in enumerate(d.while_in):
            if state not in declared:
                problems.append(
                    f"{at}.while_in[{j}]: '{state}' is not a state of the {d.subject} workflow"
                )
        if d.anchor in ("issued", "expires") and d.subject != "award":
            problems.append(f"{at}.anchor: '{d.anchor}' exists only for awards")
        if d.anchor == "audit_start" and d.subject != "application":
            problems.append(f"{at}.anchor: 'audit_start' exists only for applications")
        if d.anchor == "audit_start" and policy.audit is None:
            problems.append(f"{at}.anchor: 'audit_start' needs the policy's `audit` booking")
        known_levels = {lv.id for lv in policy.levels}
        for j, level in enumerate(d.levels):
            if level not in known_levels:
                problems.append(f"{at}.levels[{j}]: unknown level '{level}'")
        units = [u for u in ("days", "months", "working_days") if getattr(d.offset, u)]
        if len(units) > 1:
            problems.append(
                f"{at}.offset: use one unit (days, months or working_days), "
                f"not {' and '.join(units)}"
            )
        _check_repeat_and_filing(policy, i, problems)
        if d.on_due is None:
            continue
        matches = [t for t in workflow.transitions if t.trigger == d.on_due]
        if not matches:
            problems.append(f"{at}.on_due: no trigger '{d.on_due}' in the {d.subject} workflow")
            continue
        for state in d.while_in:
            if state not in declared:
                continue
            t = workflow.transition(d.on_due, state)
            if t is None:
                problems.append(f"{at}.on_due: trigger '{d.on_due}' cannot fire from '{state}'")
            elif "system" not in t.roles:
                problems.append(
                    f"{at}.on_due: trigger '{d.on_due}' from '{state}' does not list "
                    "the 'system' role"
                )


def _check_audit(policy: Policy, problems: list[str]) -> None:
    """Audit booking and consultation name levels, states and standards that exist."""
    levels = {lv.id for lv in policy.levels}
    states = {s.name for s in policy.workflows.application.states}
    standards = {s.id for s in policy.standards}
    audit, consultation = policy.audit, policy.consultation
    if audit is not None:
        for j, level in enumerate(audit.levels):
            if level not in levels:
                problems.append(f"audit.levels[{j}]: unknown level '{level}'")
        for j, state in enumerate(audit.states):
            if state not in states:
                problems.append(
                    f"audit.states[{j}]: '{state}' is not a state of the application workflow"
                )
    if consultation is None:
        return
    if audit is None:
        problems.append("consultation: it opens after the audit start, so give the policy `audit`")
    for j, level in enumerate(consultation.levels):
        if level not in levels:
            problems.append(f"consultation.levels[{j}]: unknown level '{level}'")
        elif audit is not None and level not in audit.levels:
            problems.append(
                f"consultation.levels[{j}]: '{level}' books no audit (audit.levels), so the "
                "consultation would never open"
            )
    for j, sid in enumerate(consultation.standards):
        if sid not in standards:
            problems.append(f"consultation.standards[{j}]: unknown standard '{sid}'")
    _unique(problems, "consultation.questions", (q.id for q in consultation.questions), "question")


def _check_eligibility(policy: Policy, problems: list[str]) -> None:
    """Eligibility choices are unique, and a policy that asks the questions checks the answers
    (the guard `eligibility_met` on a step out of the application's first state)."""
    flow = policy.workflows.application
    uses = [
        t.trigger
        for t in flow.transitions
        if any(g.partition(":")[0] == "eligibility_met" for g in t.guards)
    ]
    el = policy.eligibility
    if el is None:
        if uses:
            problems.append(
                f"workflows.application: '{uses[0]}' checks eligibility_met, but the policy "
                "asks no `eligibility` questions"
            )
        return
    _unique(problems, "eligibility.sectors", (c.id for c in el.sectors), "sector")
    _unique(problems, "eligibility.turnover_bands", (c.id for c in el.turnover_bands), "band")
    industries = [c.id for c in (*el.screen.refused, *el.screen.case_by_case)]
    _unique(problems, "eligibility.screen", industries, "industry")
    first = [t for t in flow.transitions if flow.initial in t.source and t.dest != flow.initial]
    if not any(t.trigger in uses for t in first):
        problems.append(
            "eligibility: add the guard eligibility_met to a step out of "
            f"'{flow.initial}' (submit), or the answers are never checked"
        )


def _check_fees(policy: Policy, problems: list[str]) -> None:
    """The price table names the policy's levels and turnover bands; the fee effects and the
    payment guard need it."""
    used = [
        (kind, t.trigger, name)
        for kind in policy.workflows.kinds()
        for t in policy.workflows.of(kind).transitions
        for name in (*t.effects, *(g.partition(":")[0] for g in t.guards))
        if name in ("issue_invoice", "credit_invoices", "invoice_paid")
    ]
    fees = policy.fees
    if fees is None:
        for kind, trigger, name in used[:1]:
            problems.append(
                f"workflows.{kind}: '{trigger}' uses {name}, but the policy has no `fees`"
            )
        return
    levels = {lv.id for lv in policy.levels}
    bands = {c.id for c in policy.eligibility.turnover_bands} if policy.eligibility else set()
    for level in fees.extra:
        if level not in levels:
            problems.append(f"fees.extra.{level}: unknown level '{level}'")
    for level, entry in fees.prices.items():
        if level not in levels:
            problems.append(f"fees.prices.{level}: unknown level '{level}'")
        if isinstance(entry, dict):
            if policy.eligibility is None:
                problems.append(
                    f"fees.prices.{level}: a price by turnover band needs `eligibility` "
                    "(its turnover_bands)"
                )
                continue
            for band in entry:
                if band not in bands:
                    problems.append(f"fees.prices.{level}.{band}: unknown turnover band '{band}'")


def cross_check(
    policy: Policy,
    *,
    known_guards: Mapping[str, str | None] | None = None,
    known_effects: Iterable[str] | None = None,
) -> list[str]:
    """Every problem that field validation cannot see, as `field: reason` lines.

    `known_guards` maps each guard name to the kind of argument it takes (None or "deadline").
    """
    problems: list[str] = []
    settings = policy.settings
    if settings.pass_mark_points is not None and "pass_mark_percent" in settings.model_fields_set:
        problems.append("settings: give pass_mark_percent or pass_mark_points, not both")
    _check_catalogue(policy, problems)
    _check_levels(policy, problems)
    for kind in policy.workflows.kinds():
        kinds = {d.kind for d in policy.deadlines if d.subject == kind}
        _check_workflow(
            kind, policy.workflows.of(kind), problems, known_guards, known_effects, kinds
        )
    _check_deadlines(policy, problems)
    _check_kind_settings(policy, problems)
    _check_hand_back(policy, problems)
    _check_supersede(policy, problems)
    _check_routes(policy, problems)
    _check_notify(policy, problems)
    _check_audit(policy, problems)
    _check_eligibility(policy, problems)
    _check_fees(policy, problems)
    _check_charter(policy, problems)
    _check_report_workflow(policy, problems)
    return problems


def _check_report_workflow(policy: Policy, problems: list[str]) -> None:
    """The review of a report: a state that accepts, one that waits for the reviewer, a way
    back for the holder, and fields that belong to it alone."""
    flows = policy.workflows
    for kind in ("application", "award"):
        flow = flows.of(kind)
        if flow.resubmit is not None:
            problems.append(f"workflows.{kind}.resubmit: only the report workflow has it")
        if flow.notify_on_file:
            problems.append(f"workflows.{kind}.notify_on_file: only the report workflow has it")
        for s in flow.states:
            if s.published:
                problems.append(
                    f"workflows.{kind}.states: '{s.name}' is published; only report states are"
                )
    report = flows.report
    if report is None:
        return
    where = "workflows.report"
    if not any(s.published for s in report.states):
        problems.append(f"{where}.states: no state is published (where accepted figures count)")
    initial = next((s for s in report.states if s.name == report.initial), None)
    if initial is not None and not initial.reviewable:
        problems.append(
            f"{where}.initial: '{report.initial}' must be reviewable (a filed report "
            "waits for its reviewer)"
        )
    for name in ("hand_back", "supersede"):
        if getattr(report, name) is not None:
            problems.append(f"{where}.{name}: not a field of the report workflow")
    if report.notify_on_assign:
        problems.append(f"{where}.notify_on_assign: reports are not assigned")
    for s in report.states:
        if s.in_force or s.private or s.reapply or s.credential_status:
            problems.append(
                f"{where}.states: '{s.name}' may say only editable, reviewable, published, "
                "terminal, label and tag"
            )
    sent_back = {s.name for s in report.states if s.editable}
    if sent_back and report.resubmit is None:
        problems.append(f"{where}.resubmit: name the trigger that files a sent-back report again")
    if report.resubmit is not None:
        matches = [t for t in report.transitions if t.trigger == report.resubmit]
        if not matches:
            problems.append(f"{where}.resubmit: no trigger '{report.resubmit}' in the workflow")
        for t in matches:
            if not set(t.source) <= sent_back:
                problems.append(
                    f"{where}.resubmit: '{t.trigger}' must leave only editable states "
                    f"(it leaves {', '.join(t.source)})"
                )
            if "applicant" not in t.roles:
                problems.append(
                    f"{where}.resubmit: '{t.trigger}' must list the 'applicant' role (the holder "
                    "files again)"
                )
    reviewing = {s.name for s in report.states if s.reviewable}
    for i, t in enumerate(report.transitions):
        if set(t.source) & reviewing and "applicant" in t.roles:
            problems.append(
                f"{where}.transitions[{i}].roles: '{t.trigger}' leaves a state awaiting review; "
                "the holder may not review its own report"
            )

"""Compiles a scheme's workflows into shared `transitions` machines and binds rows through an adapter."""

from __future__ import annotations

from transitions import Machine

from svqm.policy import TransitionDef, Workflow


class SubjectFlow:
    """The adapter a shared machine moves: it reads the row's stored state and records the new one.

    A SQLModel row cannot be a `transitions` model (pydantic refuses the attributes the machine adds),
    and a machine per row costs ~25x more, so one machine per scheme moves these small adapters.
    """

    __slots__ = ("moved_to", "stored")

    def __init__(self, stored: str) -> None:
        self.stored = stored
        self.moved_to: str | None = None

    @property
    def state(self) -> str:
        return self.moved_to or self.stored

    @state.setter
    def state(self, value: str) -> None:
        self.moved_to = value


class CompiledWorkflow:
    """One subject kind's workflow as a shared machine, with the trigger lists precomputed."""

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.machine = Machine(
            model=None,
            states=[s.name for s in workflow.states],
            transitions=[
                {"trigger": t.trigger, "source": list(t.source), "dest": t.dest}
                for t in workflow.transitions
            ],
            initial=workflow.initial,
            auto_transitions=False,
            send_event=True,
        )
        self._triggers = {s.name: tuple(self.machine.get_triggers(s.name)) for s in workflow.states}
        # Lookups done for every row listed or fired, precomputed once per scheme.
        self._by_pair = {(t.trigger, src): t for t in workflow.transitions for src in t.source}
        self._roles: dict[str, set[str]] = {}
        for t in workflow.transitions:
            self._roles.setdefault(t.trigger, set()).update(t.roles)
        self._offered = {
            (state, role): tuple(
                trig for trig in triggers if role in self._by_pair[(trig, state)].roles
            )
            for state, triggers in self._triggers.items()
            for role in ("applicant", "assessor", "panel", "admin", "system")
        }

    def triggers_from(self, state: str) -> tuple[str, ...]:
        """Triggers that leave `state`, in policy order."""
        return self._triggers.get(state, ())

    def transition(self, trigger: str, state: str) -> TransitionDef | None:
        """The transition `trigger` takes from `state`, if it leaves it."""
        return self._by_pair.get((trigger, state))

    def roles_for(self, trigger: str) -> set[str]:
        """Every role that may fire `trigger` from some state (empty: no such trigger)."""
        return self._roles.get(trigger, set())

    def offered(self, state: str, role: str) -> tuple[str, ...]:
        """Triggers leaving `state` that `role` may fire (before guards and who-checks)."""
        return self._offered.get((state, role), ())

    def move(self, flow: SubjectFlow, trigger: str) -> str:
        """Fire `trigger` on the adapter and return the state it reached."""
        self.machine.events[trigger].trigger(flow)
        return flow.state

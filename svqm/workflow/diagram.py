"""Workflow diagrams drawn by `transitions`' GraphMachine: Mermaid text, or SVG through Graphviz."""

from __future__ import annotations

from typing import Any, Literal

from transitions.extensions import GraphMachine

from svqm.policy import Workflow


class _Drawing:
    """A bare model for GraphMachine; the runtime machines never see it."""


class _TopDown(GraphMachine):
    """Drawn top to bottom: a workflow's long chain of states fits a page's width."""

    machine_attributes = {**GraphMachine.machine_attributes, "rankdir": "TB"}


_ROLE_WORDS = {
    "applicant": "applicant",
    "assessor": "assessor",
    "panel": "panel",
    "admin": "admin",
    "system": "automatic",
}


def _graph_machine(
    workflow: Workflow,
    engine: Literal["mermaid", "graphviz"],
    title: str,
    *,
    words: bool = False,
) -> Any:
    """`words`: states and steps named by their policy labels and who takes each (for people);
    otherwise the ids, roles and guards (for policy authors)."""
    model = _Drawing()
    if words:
        # The drawing's own names are the policy's words (GraphMachine labels a node and an edge
        # by its name): the bare model never runs them.
        named = {s.name: s.title for s in workflow.states}
        states: list[Any] = list(named.values())
        moves = [
            {
                "trigger": t.title,
                "source": [named[x] for x in t.source],
                "dest": named[t.dest],
                "conditions": [" or ".join(_ROLE_WORDS.get(r, r) for r in t.roles)],
            }
            for t in workflow.transitions
        ]
        initial = named[workflow.initial]
    else:
        states = [s.name for s in workflow.states]
        moves = [
            {
                "trigger": t.trigger,
                "source": list(t.source),
                "dest": t.dest,
                # Shown on the edge as [roles; guards], so the picture says who may do what.
                "conditions": [
                    f"{'/'.join(t.roles)}" + (f": {', '.join(t.guards)}" if t.guards else "")
                ],
            }
            for t in workflow.transitions
        ]
        initial = workflow.initial
    (_TopDown if words else GraphMachine)(
        model=model,
        states=states,
        transitions=moves,
        initial=initial,
        auto_transitions=False,
        graph_engine=engine,
        show_conditions=True,
        title=title,
    )
    # transitions adds get_graph() to the model at run time (GraphMachine); it has no stubs.
    return model.get_graph()  # type: ignore[attr-defined]


def mermaid(workflow: Workflow, title: str) -> str:
    """The workflow as a Mermaid state diagram."""
    return str(_graph_machine(workflow, "mermaid", title).draw(None))


def svg(workflow: Workflow, title: str, *, words: bool = False) -> str:
    """The workflow as an SVG picture (needs Graphviz's `dot`); `words` for people to read: top
    to bottom, in the policy's words."""
    graph = _graph_machine(workflow, "graphviz", title, words=words)
    return bytes(graph.pipe(format="svg")).decode()

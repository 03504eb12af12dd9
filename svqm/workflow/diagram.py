"""Workflow diagrams drawn by `transitions`' GraphMachine: Mermaid text, or SVG through Graphviz."""

from __future__ import annotations

from typing import Any, Literal

from transitions.extensions import GraphMachine

from svqm.policy import Workflow


class _Drawing:
    """A bare model for GraphMachine; the runtime machines never see it."""


def _graph_machine(workflow: Workflow, engine: Literal["mermaid", "graphviz"], title: str) -> Any:
    model = _Drawing()
    GraphMachine(
        model=model,
        states=[s.name for s in workflow.states],
        transitions=[
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
        ],
        initial=workflow.initial,
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


def svg(workflow: Workflow, title: str) -> str:
    """The workflow as an SVG picture (needs Graphviz's `dot`)."""
    graph = _graph_machine(workflow, "graphviz", title)
    return bytes(graph.pipe(format="svg")).decode()

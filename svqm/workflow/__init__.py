"""The workflow: schemes compiled into state machines, and the one service that changes a state."""

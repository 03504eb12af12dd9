"""Reminders and email: the deadline sweep, the outbox, delivery and the scheduler that wakes them."""

# Event emails: the workflow publishes each event; this writes its outbox rows (see events.py).
from svqm.notify import events as _events  # noqa: F401

"""Reminders and email: the deadline sweep, the outbox, delivery and the scheduler that wakes them."""

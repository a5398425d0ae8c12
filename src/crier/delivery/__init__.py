"""Deliveries: one per target of a post, each with its attempts and their error codes."""

MAX_ATTEMPTS = 3
"""Attempts in all for one send of a delivery (a retry of a failed post allows as many again)."""

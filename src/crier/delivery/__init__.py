"""Deliveries: one per target of a post, each with its attempts and their error codes."""

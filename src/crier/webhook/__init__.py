"""Webhooks: the event outbox, endpoints, and signed delivery with retries."""

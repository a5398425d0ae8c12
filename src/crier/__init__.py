"""Crier: self-hostable, multi-tenant social-media scheduling with a public REST API."""

__version__ = "0.1.0"

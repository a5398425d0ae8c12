"""Shared infrastructure. Nothing in here imports a domain package."""

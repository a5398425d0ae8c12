"""Mastodon: any instance of it, each with its own app, limits and accounts."""

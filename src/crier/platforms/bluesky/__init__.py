"""Bluesky (the AT Protocol): adapter, content rules, rich text and emulator."""

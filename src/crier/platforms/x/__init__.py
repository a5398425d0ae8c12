"""X (API v2): adapter, content rules and emulator."""

"""LinkedIn (Posts API, as a member): adapter, content rules and emulator."""

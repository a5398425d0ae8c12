"""Social platforms: their content rules, and (later) one adapter per platform."""

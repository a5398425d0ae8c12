"""Posts and their targets."""

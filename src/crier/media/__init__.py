"""Media assets: uploads, their derived crops, and the rules that keep them while in use."""

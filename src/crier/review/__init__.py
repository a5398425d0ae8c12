"""Reviews of business locations: the inbox, its sync from the networks, and replies."""

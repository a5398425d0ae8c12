"""The scheduler: claiming due posts, firing them on time, delivering them exactly once."""

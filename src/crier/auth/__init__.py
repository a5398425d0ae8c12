"""Authentication (API keys) and authorization (roles and permissions)."""

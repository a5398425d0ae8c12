"""Workspaces: the tenants, their plan and timezone."""

"""Workspace members and their roles."""

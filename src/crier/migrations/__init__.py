"""Alembic migrations. DDL lives here and nowhere else."""

"""Running the Alembic migrations, as the schema owner, from code or the CLI."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL


def alembic_config(owner_url: URL) -> Config:
    """An Alembic configuration for Crier's migrations against `owner_url`."""
    config = Config()
    config.set_main_option("script_location", "crier:migrations")
    config.attributes["url"] = owner_url
    return config


def upgrade(owner_url: URL, revision: str = "head") -> None:
    """Migrate the schema up to `revision`."""
    command.upgrade(alembic_config(owner_url), revision)


def downgrade(owner_url: URL, revision: str) -> None:
    """Migrate the schema down to `revision` (`base` removes everything)."""
    command.downgrade(alembic_config(owner_url), revision)


def is_current(owner_url: URL) -> bool:
    """Whether the database's schema is at the newest migration."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, pool

    script = ScriptDirectory.from_config(alembic_config(owner_url))
    engine = create_engine(owner_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    return set(heads) == set(script.get_heads())

"""DDL for the tenant wall, used by every migration that creates a table.

A tenant table gets ENABLE and FORCE ROW LEVEL SECURITY (so even its owner is filtered), one
policy that admits only rows of the current workspace for reads and writes alike, and the
privileges the application role needs. `tests/migrations/test_tenancy.py` reads the catalog
and fails if any table with a `workspace_id` column is missing any of it.
"""

from __future__ import annotations

from alembic import op

from crier.kit.db.engine import APP_ROLE

CURRENT_WORKSPACE = "crier_current_workspace()"


def create_app_role() -> None:
    """The application's role: tenant rows only, through Row Level Security."""
    create_role(APP_ROLE)


def create_role(role: str) -> None:
    """Create `role` if this cluster lacks it (never superuser, never BYPASSRLS), and let the
    owner take it, so that a process logging in as the owner can act as the role.

    Roles belong to the cluster, not the database, so downgrades leave them in place.
    """
    op.execute(f"""
        DO $$
        DECLARE
            pg16 boolean := current_setting('server_version_num')::int >= 160000;
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
            END IF;
            -- PostgreSQL 16 gives a role's creator ADMIN on it but not the right to SET it.
            IF NOT pg_has_role(current_user, '{role}', CASE WHEN pg16 THEN 'SET' ELSE 'MEMBER' END)
            THEN
                BEGIN
                    EXECUTE format('GRANT {role} TO %I', current_user)
                        || CASE WHEN pg16 THEN ' WITH SET TRUE' ELSE '' END;
                EXCEPTION WHEN insufficient_privilege THEN
                    RAISE NOTICE 'processes must log in as a member of {role}';
                END;
            END IF;
        END
        $$;
    """)  # noqa: S608 - constants only
    op.execute(f"GRANT CONNECT ON DATABASE {_current_database()} TO {role}")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")


def _current_database() -> str:
    bind = op.get_bind()
    name = bind.exec_driver_sql("SELECT quote_ident(current_database())").scalar_one()
    return str(name)


def create_current_workspace_function() -> None:
    """`crier_current_workspace()`: the workspace of this transaction, or NULL outside one."""
    op.execute("""
        CREATE FUNCTION crier_current_workspace() RETURNS uuid
        LANGUAGE sql STABLE PARALLEL SAFE
        AS $$ SELECT NULLIF(current_setting('app.workspace_id', true), '')::uuid $$
    """)


def drop_current_workspace_function() -> None:
    op.execute("DROP FUNCTION crier_current_workspace()")


def protect(
    table: str, *, key: str = "workspace_id", privileges: str = "SELECT, INSERT, UPDATE, DELETE"
) -> None:
    """Put `table` behind the tenant wall and grant the application `privileges` on it."""
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING ({key} = {CURRENT_WORKSPACE}) WITH CHECK ({key} = {CURRENT_WORKSPACE})"
    )
    op.execute(f"GRANT {privileges} ON {table} TO {APP_ROLE}")

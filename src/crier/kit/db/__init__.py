"""The database: embedded or external PostgreSQL, the application engine, tenancy."""

from crier.kit.db.engine import (
    APP_ROLE,
    Database,
    DatabaseUrls,
    after_commit,
    after_rollback,
    raise_on_violation,
)
from crier.kit.db.tenancy import (
    enter_workspace,
    present_user_email,
    present_workspace_slug,
    set_local,
)

__all__ = [
    "APP_ROLE",
    "Database",
    "DatabaseUrls",
    "after_commit",
    "after_rollback",
    "enter_workspace",
    "present_user_email",
    "present_workspace_slug",
    "raise_on_violation",
    "set_local",
]

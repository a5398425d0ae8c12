"""Each workspace's snapshot generation: a count that moves whenever any of its snapshots
is written, changed or removed (by statement-level triggers on `analytics_snapshots`), so
that an answer read from the snapshots may be kept until they change.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crier.migrations.tenancy import protect

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENTS = {"inserted": ("INSERT", "NEW"), "updated": ("UPDATE", "NEW"), "deleted": ("DELETE", "OLD")}


def upgrade() -> None:
    op.create_table(
        "analytics_generations",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        *(
            sa.Column(
                name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
            )
            for name in ("created_at", "updated_at")
        ),
        sa.Column("generation", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_analytics_generations_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_analytics_generations")),
        sa.UniqueConstraint("workspace_id", name=op.f("uq_analytics_generations_workspace_id")),
    )
    protect("analytics_generations")
    # The workspaces of the rows a statement changed (but one being deleted, whose
    # generation goes with it) move on by one, once per statement.
    op.execute("""
        CREATE FUNCTION crier_snapshots_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO analytics_generations AS g (workspace_id, id, generation)
            SELECT c.workspace_id, gen_random_uuid(), 1
            FROM (SELECT DISTINCT workspace_id FROM changed) AS c
            WHERE EXISTS (SELECT FROM workspaces w WHERE w.id = c.workspace_id)
            ON CONFLICT (workspace_id)
            DO UPDATE SET generation = g.generation + 1, updated_at = now();
            RETURN NULL;
        END
        $$
    """)
    for name, (event, kind) in EVENTS.items():
        op.execute(
            f"CREATE TRIGGER snapshots_{name} AFTER {event} ON analytics_snapshots "
            f"REFERENCING {kind} TABLE AS changed FOR EACH STATEMENT "
            "EXECUTE FUNCTION crier_snapshots_changed()"
        )


def downgrade() -> None:
    for name in EVENTS:
        op.execute(f"DROP TRIGGER snapshots_{name} ON analytics_snapshots")
    op.execute("DROP FUNCTION crier_snapshots_changed()")
    op.drop_table("analytics_generations")

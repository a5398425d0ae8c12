"""Webhooks: endpoints, the event outbox, deliveries and attempts; the dispatcher's narrow view.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from crier.kit.db.engine import SCHEDULER_ROLE
from crier.migrations import tenancy

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant_table(name: str, *columns: sa.Column[object], **constraints: object) -> None:
    """A tenant table: `(workspace_id, id)` key, timestamps, behind the tenant wall."""
    op.create_table(
        name,
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        *columns,
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f(f"fk_{name}_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f(f"pk_{name}")),
        *constraints.values(),  # type: ignore[arg-type]
    )
    tenancy.protect(name)


def upgrade() -> None:
    # Time-ordered ids for rows made in SQL (one delivery per endpoint of an event).
    op.execute("""
        CREATE FUNCTION crier_uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
            SELECT encode(
                set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING substring(
                    int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                    FROM 3) FROM 1 FOR 6), 52, 1), 53, 1),
                'hex')::uuid
        $$
    """)
    op.add_column(
        "posts", sa.Column("event_sequence", sa.BigInteger(), server_default="0", nullable=False)
    )
    _tenant_table(
        "webhook_endpoints",
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("event_types", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("previous_secret", sa.LargeBinary(), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
    )
    _tenant_table(
        "webhook_events",
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    )
    op.create_index(
        "ix_webhook_events_subject", "webhook_events", ["workspace_id", "subject_id", "sequence"]
    )
    _tenant_table(
        "webhook_deliveries",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=True),
        event=sa.ForeignKeyConstraint(
            ["workspace_id", "event_id"],
            ["webhook_events.workspace_id", "webhook_events.id"],
            name=op.f("fk_webhook_deliveries_workspace_id_event_id_webhook_events"),
            ondelete="CASCADE",
        ),
        endpoint=sa.ForeignKeyConstraint(
            ["workspace_id", "endpoint_id"],
            ["webhook_endpoints.workspace_id", "webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_workspace_id_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        status=sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed')",
            name=op.f("ck_webhook_deliveries_status_known"),
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["workspace_id", "endpoint_id", "next_attempt_at"],
        postgresql_where="status = 'pending'",
    )
    op.create_index(
        "ix_webhook_deliveries_order",
        "webhook_deliveries",
        ["workspace_id", "endpoint_id", "subject_id", "sequence"],
        postgresql_where="status = 'pending'",
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint",
        "webhook_deliveries",
        ["workspace_id", "endpoint_id", "id"],
    )
    _tenant_table(
        "webhook_attempts",
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        delivery=sa.ForeignKeyConstraint(
            ["workspace_id", "delivery_id"],
            ["webhook_deliveries.workspace_id", "webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_workspace_id_delivery_id_webhook_deliveries"),
            ondelete="CASCADE",
        ),
        number=sa.UniqueConstraint(
            "workspace_id",
            "delivery_id",
            "number",
            name=op.f("uq_webhook_attempts_workspace_id_delivery_id_number"),
        ),
    )
    _dispatcher_view()


def _dispatcher_view() -> None:
    """The dispatcher claims due deliveries across workspaces as the scheduler role, seeing
    only which pending deliveries are due, for which enabled endpoint, in which order;
    the payload, the URL and the secret are read as crier_app inside the workspace."""
    op.execute(
        f"GRANT SELECT (workspace_id, id, endpoint_id, subject_id, sequence, status, "
        f"next_attempt_at, lease_owner, lease_expires_at) ON webhook_deliveries "
        f"TO {SCHEDULER_ROLE}"
    )
    op.execute(
        f"GRANT UPDATE (lease_owner, lease_expires_at) ON webhook_deliveries TO {SCHEDULER_ROLE}"
    )
    op.execute(f"""
        CREATE POLICY dispatcher_claims ON webhook_deliveries TO {SCHEDULER_ROLE}
        USING (status = 'pending') WITH CHECK (status = 'pending')
    """)
    op.execute(f"GRANT SELECT (workspace_id, id, enabled) ON webhook_endpoints TO {SCHEDULER_ROLE}")
    op.execute(f"""
        CREATE POLICY dispatcher_endpoints ON webhook_endpoints FOR SELECT TO {SCHEDULER_ROLE}
        USING (enabled)
    """)


def downgrade() -> None:
    op.execute("DROP POLICY dispatcher_endpoints ON webhook_endpoints")
    op.execute("DROP POLICY dispatcher_claims ON webhook_deliveries")
    for table in ("webhook_attempts", "webhook_deliveries", "webhook_events", "webhook_endpoints"):
        op.execute(f"REVOKE ALL ON {table} FROM {SCHEDULER_ROLE}")
        op.drop_table(table)
    op.drop_column("posts", "event_sequence")
    op.execute("DROP FUNCTION crier_uuid7()")

"""The declarative base and the shape every tenant table shares."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import DateTime, ForeignKey, MetaData, func
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from crier.kit.ids import new_id

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # Server-side defaults (timestamps, versions) come back with INSERT ... RETURNING,
    # instead of a second query.
    __mapper_args__ = {"eager_defaults": True}


def _now() -> datetime:
    return datetime.now(UTC)


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    # Set in Python on update, not with SQL `now()`: a value the ORM knows needs no
    # `RETURNING`, so updates of many rows go out together (executemany) instead of one
    # statement and round trip per row.
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=_now, nullable=False
    )


class TenantModel(Base, Timestamps):
    """A table whose rows belong to one workspace: primary key `(workspace_id, id)`.

    Row Level Security on `workspace_id` is added by the migration that creates the table
    (see `crier.migrations.tenancy`); a test fails if any such table lacks it.
    """

    __abstract__ = True

    @declared_attr
    def workspace_id(cls) -> Mapped[UUID]:
        return mapped_column(
            ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True, sort_order=-20
        )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id, sort_order=-10)

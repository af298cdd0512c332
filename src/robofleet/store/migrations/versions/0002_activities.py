"""activities

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import robofleet.store.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "activities",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("action", sa.String(length=128), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("requester_id", sa.Integer(), nullable=True),
        sa.Column("requester_via", sa.String(length=16), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("source_ip", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("batch_index", sa.Integer(), nullable=True),
        sa.Column("created_at", robofleet.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", robofleet.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", robofleet.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["requester_id"], ["users.id"], name=op.f("fk_activities_requester_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
        sa.UniqueConstraint("requested_by", "idempotency_key", name=op.f("uq_activities_requested_by")),
    )
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_activities_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_activities_requested_by"), ["requested_by"], unique=False)
        batch_op.create_index("ix_activities_state_id", ["state", "id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_index("ix_activities_state_id")
        batch_op.drop_index(batch_op.f("ix_activities_requested_by"))
        batch_op.drop_index(batch_op.f("ix_activities_action"))

    op.drop_table("activities")

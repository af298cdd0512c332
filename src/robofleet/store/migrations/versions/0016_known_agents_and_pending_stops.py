"""agents: every agent that ever connected (who, its machine, when it was last connected and left); runs: a stop or
kill asked while the run's agent was away, carried out when it is back

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# Frozen: the column types as they were, no live code imported (UTC datetimes are timestamptz / SQLite DATETIME).
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=128), nullable=True),
        sa.Column("info", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", UTC, nullable=False),
        sa.Column("connected_at", UTC, nullable=False),
        sa.Column("last_seen_at", UTC, nullable=False),
        sa.Column("disconnected_at", UTC, nullable=True),
        sa.Column("disconnect_reason", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_agents")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_action", sa.String(length=16), nullable=True))
        batch_op.create_index("ix_runs_pending_action", ["pending_action"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_pending_action")
        batch_op.drop_column("pending_action")
    op.drop_table("agents")

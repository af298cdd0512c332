"""runs: an index on when each run was created (with its robot and state), for the dashboard's and the metrics'
figures over a time window (today, 24 hours, 7 days) without reading every run

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_created_at_robot_state", ["created_at", "robot", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_created_at_robot_state")

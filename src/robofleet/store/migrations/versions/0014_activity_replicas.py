"""activities: the replica (serve process) that owns each one, so recovery takes over only those of replicas gone

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


# No index of its own: recovery reads the few rows still queued or running, which ix_activities_state_id finds, and
# a second index would cost every insert and every state change.
def upgrade() -> None:
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replica", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_column("replica")

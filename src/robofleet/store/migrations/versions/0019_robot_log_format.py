"""robots: log_format, how the lines a robot writes carry their level (auto, plain, or a regular expression)

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("robots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("log_format", sa.String(length=300), nullable=False, server_default="auto"))


def downgrade() -> None:
    with op.batch_alter_table("robots", schema=None) as batch_op:
        batch_op.drop_column("log_format")

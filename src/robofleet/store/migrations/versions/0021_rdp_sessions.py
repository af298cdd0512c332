"""sessions: rdp, a remote desktop shown in an agent's display: its server, user, password (kept for the agent, never
shown), security, certificate rule and logoff steps; `connect`, the intent an operator last asked (connected or not);
`connection`, its client's counts as its agent reported them

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("host", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("port", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("username", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("password", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("domain", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("security", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("certificate", sa.String(length=96), nullable=True))
        batch_op.add_column(sa.Column("logoff", sa.JSON(), nullable=True))
        # Every session so far is to be kept as it is: connected (the other kinds ignore it).
        batch_op.add_column(sa.Column("connect", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("connection", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        for column in (
            "connection",
            "connect",
            "logoff",
            "certificate",
            "security",
            "domain",
            "password",
            "username",
            "port",
            "host",
        ):
            batch_op.drop_column(column)

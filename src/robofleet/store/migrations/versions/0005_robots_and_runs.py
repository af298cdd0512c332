"""robots and runs

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import robofleet.store.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "robots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("argv", sa.JSON(), nullable=False),
        sa.Column("cwd", sa.String(length=1024), nullable=True),
        sa.Column("env", sa.JSON(), nullable=False),
        sa.Column("session", sa.String(length=64), nullable=True),
        sa.Column("safe_stop_timeout", sa.Float(), nullable=False),
        sa.Column("max_runtime", sa.Float(), nullable=True),
        sa.Column("restart", sa.JSON(), nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("from_config", sa.Boolean(), nullable=False),
        sa.Column("manual_stop", sa.Boolean(), nullable=False),
        sa.Column("created_at", robofleet.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", robofleet.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_robots")),
        sa.UniqueConstraint("name", name=op.f("uq_robots_name")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("robot_id", sa.Integer(), nullable=True),
        sa.Column("robot", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("shim_pid", sa.Integer(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("stop_requested_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", robofleet.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", robofleet.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", robofleet.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("transitions", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["robot_id"], ["robots.id"], name=op.f("fk_runs_robot_id_robots"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_robot_id_id", ["robot", "id"], unique=False)
        batch_op.create_index("ix_runs_state", ["state"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_state")
        batch_op.drop_index("ix_runs_robot_id_id")

    op.drop_table("runs")
    op.drop_table("robots")

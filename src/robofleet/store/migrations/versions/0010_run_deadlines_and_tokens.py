"""runs: stored stop and max-runtime deadlines, a kill asked, its own token, leftovers ended; robots: keep_leftovers,
a restart planned; api_tokens: the run a token acts for

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Frozen here: a migration means the same thing for ever, whatever the live models become.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BIND_RUN_TOKENS = """
UPDATE api_tokens
SET run_id = (SELECT runs.id FROM runs WHERE 'run ' || runs.id = api_tokens.name),
    robot = (SELECT runs.robot FROM runs WHERE 'run ' || runs.id = api_tokens.name)
WHERE user_id IN (SELECT id FROM users WHERE username = 'robot-runs') AND revoked_at IS NULL
"""
REVOKE_ENDED_RUN_TOKENS = """
UPDATE api_tokens SET revoked_at = CURRENT_TIMESTAMP
WHERE user_id IN (SELECT id FROM users WHERE username = 'robot-runs') AND revoked_at IS NULL
    AND run_id IN (SELECT id FROM runs WHERE state IN ('succeeded', 'failed', 'stopped', 'killed', 'lost'))
"""
KEEP_RUN_TOKEN_IDS = """
UPDATE runs
SET token_id = (SELECT api_tokens.id FROM api_tokens WHERE api_tokens.run_id = runs.id
    AND api_tokens.revoked_at IS NULL)
WHERE runs.state IN ('queued', 'starting', 'running', 'paused', 'stopping')
"""


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stop_deadline", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("runtime_deadline", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("token_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("leftovers", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("kill_requested_by", sa.String(length=128), nullable=True))
        batch_op.create_index("ix_runs_stop_deadline", ["stop_deadline"], unique=False)
        batch_op.create_index("ix_runs_runtime_deadline", ["runtime_deadline"], unique=False)
    with op.batch_alter_table("robots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("keep_leftovers", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("restart_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_robots_restart_at", ["restart_at"], unique=False)
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_id", BIG_ID, nullable=True))
        batch_op.add_column(sa.Column("robot", sa.String(length=64), nullable=True))
    # Runs live across the upgrade keep their token: it was named "run <id>"; now its columns say so.
    op.execute(BIND_RUN_TOKENS)
    op.execute(REVOKE_ENDED_RUN_TOKENS)  # ended while serve was down, before their end revoked them
    op.execute(KEEP_RUN_TOKEN_IDS)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("robot")
        batch_op.drop_column("run_id")
    with op.batch_alter_table("robots", schema=None) as batch_op:
        batch_op.drop_index("ix_robots_restart_at")
        batch_op.drop_column("restart_at")
        batch_op.drop_column("keep_leftovers")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_runtime_deadline")
        batch_op.drop_index("ix_runs_stop_deadline")
        batch_op.drop_column("kill_requested_by")
        batch_op.drop_column("leftovers")
        batch_op.drop_column("token_id")
        batch_op.drop_column("runtime_deadline")
        batch_op.drop_column("stop_deadline")

"""queues, their items (with the claim's partial index) and the items' history

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# Frozen: the column types as they were, no live code imported (UTC datetimes are timestamptz / SQLite DATETIME).
UTC = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WAITING = sa.text("state IN ('new', 'retry')")
FINISHED = sa.text("finished_at IS NOT NULL")
UNIQUE = sa.text("unique_ref IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "queues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("retry_backoff_seconds", sa.Float(), nullable=False),
        sa.Column("lease_seconds", sa.Float(), nullable=False),
        sa.Column("unique_references", sa.Boolean(), nullable=False),
        sa.Column("sla_minutes", sa.Integer(), nullable=True),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("from_config", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queues")),
        sa.UniqueConstraint("name", name=op.f("uq_queues_name")),
    )
    op.create_table(
        "queue_items",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=256), nullable=True),
        sa.Column("unique_ref", sa.String(length=256), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("priority_rank", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("deadline", UTC, nullable=True),
        sa.Column("order_deadline", UTC, nullable=False),
        sa.Column("postpone_until", UTC, nullable=True),
        sa.Column("ready_at", UTC, nullable=False),
        sa.Column("lease_id", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", UTC, nullable=True),
        sa.Column("leased_by", sa.String(length=160), nullable=True),
        sa.Column("leased_run", sa.BigInteger(), nullable=True),
        sa.Column("started_at", UTC, nullable=True),
        sa.Column("output", sa.JSON(), nullable=True),
        sa.Column("error_kind", sa.String(length=16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("added_by", sa.String(length=160), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("finished_at", UTC, nullable=True),
        sa.Column("handled_seconds", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queues.id"], name=op.f("fk_queue_items_queue_id_queues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_items")),
    )
    with op.batch_alter_table("queue_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_queue_items_claim",
            ["queue_id", "priority_rank", "order_deadline", "id"],
            unique=False,
            sqlite_where=WAITING,
            postgresql_where=WAITING,
        )
        batch_op.create_index("ix_queue_items_queue_state", ["queue_id", "state", "id"], unique=False)
        batch_op.create_index(
            "ix_queue_items_finished",
            ["queue_id", "finished_at"],
            unique=False,
            sqlite_where=FINISHED,
            postgresql_where=FINISHED,
        )
        batch_op.create_index(
            "uq_queue_items_reference",
            ["queue_id", "unique_ref"],
            unique=True,
            sqlite_where=UNIQUE,
            postgresql_where=UNIQUE,
        )
    op.create_table(
        "queue_item_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("item_id", BIG_ID, nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=160), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("leased_by", sa.String(length=160), nullable=True),
        sa.Column("started_at", UTC, nullable=True),
        sa.Column("error_kind", sa.String(length=16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["queue_items.id"],
            name=op.f("fk_queue_item_events_item_id_queue_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_item_events")),
    )
    with op.batch_alter_table("queue_item_events", schema=None) as batch_op:
        batch_op.create_index("ix_queue_item_events_item", ["item_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("queue_item_events", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_item_events_item")
    op.drop_table("queue_item_events")
    with op.batch_alter_table("queue_items", schema=None) as batch_op:
        batch_op.drop_index("uq_queue_items_reference")
        batch_op.drop_index("ix_queue_items_finished")
        batch_op.drop_index("ix_queue_items_queue_state")
        batch_op.drop_index("ix_queue_items_claim")
    op.drop_table("queue_items")
    op.drop_table("queues")

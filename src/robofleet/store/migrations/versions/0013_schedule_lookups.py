"""schedules: trigger kind, target robot and event robot as columns (found in SQL, not by reading every row)

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Frozen copies of what the rows held when this was written: no live code imported.
_SCHEDULES = sa.table(
    "schedules",
    sa.column("id", sa.Integer()),
    sa.column("trigger", sa.JSON()),
    sa.column("target_action", sa.String()),
    sa.column("target_args", sa.JSON()),
    sa.column("trigger_kind", sa.String()),
    sa.column("target_robot", sa.String()),
    sa.column("event_robot", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trigger_kind", sa.String(length=16), server_default="", nullable=False))
        batch_op.add_column(sa.Column("target_robot", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("event_robot", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_schedules_trigger_kind", ["trigger_kind"], unique=False)
        batch_op.create_index("ix_schedules_target_robot", ["target_robot"], unique=False)
        batch_op.create_index("ix_schedules_event_robot", ["event_robot"], unique=False)
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_SCHEDULES.c.id, _SCHEDULES.c.trigger, _SCHEDULES.c.target_action, _SCHEDULES.c.target_args)
    ).all()
    for schedule_id, trigger, action, args in rows:
        trigger, args = trigger or {}, args or {}
        name = args.get("name")
        event = trigger.get("robot") if trigger.get("kind") == "run_event" else None
        connection.execute(
            sa.update(_SCHEDULES)
            .where(_SCHEDULES.c.id == schedule_id)
            .values(
                trigger_kind=str(trigger.get("kind") or ""),
                target_robot=name if str(action).startswith("robots.") and isinstance(name, str) else None,
                event_robot=event if isinstance(event, str) else None,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.drop_index("ix_schedules_event_robot")
        batch_op.drop_index("ix_schedules_target_robot")
        batch_op.drop_index("ix_schedules_trigger_kind")
        batch_op.drop_column("event_robot")
        batch_op.drop_column("target_robot")
        batch_op.drop_column("trigger_kind")

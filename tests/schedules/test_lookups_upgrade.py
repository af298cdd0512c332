"""Migration 0013 reads each stored schedule's trigger kind, target robot and event robot into their columns, so
the engine and the chain check find schedules in SQL."""

from __future__ import annotations

import json

from alembic import command
from sqlalchemy import text

from robofleet.store import Store
from robofleet.store.migrate import alembic_config

NOW = "2026-12-01 10:00:00+00:00"
ROWS = {
    "nightly": ({"kind": "cron", "expression": "0 0 2 * * *"}, "robots.start", {"name": "mailer"}),
    "chain": ({"kind": "run_event", "robot": "mailer", "on": "succeeded"}, "robots.start", {"name": "archiver"}),
    "echo": ({"kind": "interval", "seconds": 5}, "system.echo", {"message": "name"}),
}


def test_schedules_stored_before_0013_get_their_lookup_columns(store: Store) -> None:
    config = alembic_config(store.engine)
    command.downgrade(config, "0012")
    with store.engine.begin() as connection:
        for name, (trigger, action, args) in ROWS.items():
            connection.execute(
                text(
                    "INSERT INTO schedules (name, target_action, target_args, trigger, timezone, calendars, enabled, "
                    "misfire_policy, misfire_grace_seconds, overlap, jitter_seconds, description, tags, paused, "
                    "owner, owner_via, owner_scopes, from_config, created_at, updated_at) VALUES (:name, :action, "
                    ":args, :trigger, 'UTC', '[]', true, 'skip', 60, 'skip', 0, '', '[]', false, 'admin', 'token', "
                    "'[]', false, :now, :now)"
                ),
                {"name": name, "action": action, "args": json.dumps(args), "trigger": json.dumps(trigger), "now": NOW},
            )
    command.upgrade(config, "head")
    with store.engine.connect() as connection:
        found = connection.execute(
            text("SELECT name, trigger_kind, target_robot, event_robot FROM schedules ORDER BY name")
        ).all()
    assert [tuple(row) for row in found] == [
        ("chain", "run_event", "archiver", "mailer"),
        ("echo", "interval", None, None),
        ("nightly", "cron", "mailer", None),
    ]

"""Migration 0010 binds the tokens of runs live across the upgrade to their runs (they go on sending their logs)
and revokes those of runs that ended meanwhile."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from robofleet.store import Store
from robofleet.store.migrate import alembic_config

NOW = "2026-12-01 10:00:00+00:00"


def test_a_run_token_made_before_0010_is_bound_to_its_run(store: Store) -> None:
    config = alembic_config(store.engine)
    command.downgrade(config, "0009")
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, username, disabled, from_config, failed_logins, created_at, updated_at) "
                "VALUES (900, 'robot-runs', false, false, 0, :now, :now)"
            ),
            {"now": NOW},
        )
        for run_id, state in ((41, "running"), (42, "succeeded")):
            connection.execute(
                text(
                    "INSERT INTO runs (id, robot, agent, state, manual, requested_by, created_at, transitions) "
                    "VALUES (:id, 'mailer', 'local', :state, true, 'admin', :now, '[]')"
                ),
                {"id": run_id, "state": state, "now": NOW},
            )
            connection.execute(
                text(
                    "INSERT INTO api_tokens (id, user_id, name, token_hash, scopes, created_at, created_by) "
                    "VALUES (:id, 900, :name, :hash, '[]', :now, 'robots')"
                ),
                {"id": f"tok{run_id}", "name": f"run {run_id}", "hash": f"{run_id:064d}", "now": NOW},
            )
    command.upgrade(config, "head")
    with store.engine.connect() as connection:
        tokens = connection.execute(
            text("SELECT id, run_id, robot, revoked_at IS NOT NULL FROM api_tokens ORDER BY id")
        ).all()
        runs = dict(connection.execute(text("SELECT id, token_id FROM runs ORDER BY id")).all())
    assert [tuple(token) for token in tokens] == [("tok41", 41, "mailer", False), ("tok42", 42, "mailer", True)]
    assert runs == {41: "tok41", 42: None}  # the live run's token is revoked at its end; the ended one's is now

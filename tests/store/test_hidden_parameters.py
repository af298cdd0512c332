"""A failed statement's error never carries its parameters: a robot's env secrets would otherwise reach the
traceback that serve logs, and through `logs.store_own` the log store that viewers read."""

from __future__ import annotations

import traceback

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from robofleet.store import Store

SECRET = "pg-leak-secret-42"


def test_a_failed_statement_names_no_parameter(store: Store) -> None:
    with store.connection() as connection:
        connection.execute(text("CREATE TEMPORARY TABLE leaky (name TEXT PRIMARY KEY, env TEXT)"))
        insert = text("INSERT INTO leaky (name, env) VALUES (:name, :env)")
        connection.execute(insert, {"name": "a", "env": f'{{"DB_PASSWORD": "{SECRET}"}}'})
        with pytest.raises(IntegrityError) as failed:
            connection.execute(insert, {"name": "a", "env": f'{{"DB_PASSWORD": "{SECRET}"}}'})
    logged = "".join(traceback.format_exception(failed.value))
    assert "INSERT INTO leaky" in logged  # the statement is still named, only its values are not
    assert SECRET not in logged

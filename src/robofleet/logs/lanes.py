"""The port between the log writer (`writer.LogWriter`: tickets, turns, failures, announcements) and a store's
way of writing a group of batches. Chosen once, when the writer is made: `lanes_postgres.PostgresLanes` or
`lanes_sqlite.SqliteLanes`."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Connection

from robofleet.logs.write_groups import Group, Job


class Lane(Protocol):
    """One writer thread's own connection and the store's steps for a group, which the writer calls in order:

    1. `group(jobs)`, before any turn, overlapping the other lane's database work; raises when what a job holds
       cannot be written (the writer then groups the jobs one by one to find it);
    2. `in_turn(group)`, in ticket order: gives the group's blocks their numbers (and so its rows their ids) from
       the same order of tickets, and may write and commit too;
    3. `beside(group)`, while the other lane works: what needs no turn;
    4. `commit()`, in ticket order again, after which the rows are durable and may be announced;
    on a failure of 2-4: `rollback()`, then, unless the store is unreachable, `one_by_one(group, error)`: each
    job again alone, under the numbers it was given, settling the futures of those that fail and returning
    those written. `discard()` forgets a connection found lost; `close()` ends the lane."""

    def group(self, jobs: list[Job]) -> Group: ...
    def in_turn(self, group: Group) -> None: ...
    def beside(self, group: Group) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def one_by_one(self, group: Group, error: BaseException) -> list[Job]: ...
    def discard(self) -> None: ...
    def close(self) -> None: ...


class Lanes(Protocol):
    """What a store's lanes share (PostgreSQL: the block numbers taken from the sequence; SQLite: the checkpoint
    thread). `open()` is called on each lane's thread; `close()` once every lane has stopped, or was given up on."""

    def open(self) -> Lane: ...
    def close(self, timeout: float) -> None: ...


def raw(connection: Connection) -> Any:
    """The driver's own connection: the hot path skips SQLAlchemy's per-value processing."""
    return connection.connection.driver_connection

"""The processor: the one owner of activity state. Sync activities run one at a time in arrival order;
async ones run concurrently up to `activities.max_concurrent`. Every transition is durable before it is
acted on or announced.

Each activity names the replica (`serve` process) that owns it. Recovery is a leader duty: the leader finds the
replicas gone (runtime/replicas.py: their lock free, and still free a few seconds later; on SQLite every replica but
this one, at once: that is the previous run, recovered at start) and, for each, fails what it left running and takes
over and runs what it left queued. A replica's own activities are never touched while it lives."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy import select

from robofleet.activities import store_ops
from robofleet.activities.models import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, Activity, ActivityState
from robofleet.activities.registry import Action, ActionContext, Registry
from robofleet.activities.schemas import ActivityIn, ActivityOut
from robofleet.activities.visibility import may_see
from robofleet.activities.writers import ActivityWriter, CommitterWriter, Finished, PostgresWriter, Started
from robofleet.auth.audit import record, record_alone
from robofleet.auth.models import User
from robofleet.auth.principal import Principal, principal_for_user, system_principal
from robofleet.errors import Conflict, Forbidden, Invalid, NotFound, RobofleetError, StoreUnavailable
from robofleet.events import EventHub
from robofleet.runtime.loops import Loop
from robofleet.runtime.replicas import departures_for, replica_lock_free
from robofleet.store.base import utcnow
from robofleet.store.batching import GroupCommitter

if TYPE_CHECKING:
    from robofleet.orchestrator import Orchestrator

log = logging.getLogger(__name__)
TOPIC = "activity"
STORE_RETRY_SECONDS = 1.0
# How often the leader looks for replicas gone (and at once when it becomes the leader). A replica killed is
# recovered at the first pass once its lock has been free for GONE_AFTER_SECONDS: within about 10 s.
RECOVERY_SECONDS = 3.0


@dataclass(eq=False)
class Job:
    action: Action
    params: BaseModel | None
    principal: Principal
    out: ActivityOut
    failure: dict[str, Any] | None = None  # set when the job can no longer run (e.g. after a restart)
    claimed: bool = False  # stored as running by its own insert: the worker was idle, so it runs next
    starting: bool = False  # the worker took it: its "running" is being written, it runs next (too late to cancel)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def id(self) -> int:
        return self.out.id


@dataclass(eq=False)
class Unit:
    """What runs as one: a single activity, or an ordered batch that stops at its first failure."""

    jobs: list[Job]
    batch: bool


@dataclass(frozen=True)
class Prepared:
    """An activity checked to run as its principal and not stored yet: a caller stores it in a transaction of its
    own (`Processor.insert_prepared`, so that it is written with the caller's own rows or not at all) and hands
    it over once that committed (`Processor.adopt`)."""

    principal: Principal
    action: Action
    params: BaseModel
    new: store_ops.NewActivity


@dataclass
class Recovered:
    """What a replica gone left: how many of its activities were running (now failed), its queued ones as units."""

    interrupted: int
    units: list[Unit]


class Processor:
    def __init__(self, app: Orchestrator, registry: Registry, hub: EventHub) -> None:
        self.app = app
        self.registry = registry
        self.hub = hub
        self.settings = app.settings.activities
        self.replica = app.replica
        self.leader = app.leader
        self.departures = departures_for(app.store)
        self.committer = GroupCommitter(app.store, name="activities-commit")
        self.writer: ActivityWriter = (
            PostgresWriter(app.settings.store, self.replica)
            if app.store.dialect == "postgresql"
            else CommitterWriter(self.committer, self.replica)
        )
        self._recovery = Loop(
            "activities recovery", RECOVERY_SECONDS, self._recover_gone, gate=self.leader.leads, wait_first=True
        )
        # The outcome of the sync activity that just ran, held back to share one write with the next one's start.
        self._pending: tuple[Job, Finished] | None = None
        self._sync_queue: asyncio.Queue[Unit] = asyncio.Queue()
        self._async_slots = asyncio.Semaphore(self.settings.max_concurrent)
        self._jobs: dict[int, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sync_busy = False
        self._claimed = False
        self._sync_inserting = 0  # sync submissions whose insert is in flight: they will be queued first
        self.running_async = 0
        self.peak_async = 0

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover what replicas gone left, first when this replica leads already (on SQLite it always does: what the
        previous run left is queued before anything new), then start working and recovering as a leader duty."""
        if await self.leader.leads():
            await self._recover_gone()
        self._spawn(self._sync_worker())
        if self.app.store.dialect == "postgresql":  # on SQLite no other replica can come or go while this one runs
            self._recovery.start()
            await self.leader.start(self._recovery.wake)

    async def stop(self) -> None:
        await self._recovery.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(self._flush_pending(retry=False), STORE_RETRY_SECONDS * 5)
        except (StoreUnavailable, TimeoutError):
            log.warning("the outcome of the last sync activity could not be stored; the next start marks it failed")
        await self.writer.close()
        await asyncio.to_thread(self.committer.close)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- submitting ------------------------------------------------------------------------------------

    async def submit(self, principal: Principal, items: list[ActivityIn], *, batch: bool) -> list[ActivityOut]:
        """Validate every item first (nothing is queued if one is bad), store them durably, queue them."""
        if not items:
            raise Invalid("no activities given: send one activity object or a non-empty list")
        if len(items) > self.settings.max_batch:
            raise Invalid(
                f"{len(items)} activities in one request; the limit is activities.max_batch = "
                f"{self.settings.max_batch}",
                details={"max_batch": self.settings.max_batch},
            )
        if batch and len({item.mode for item in items}) > 1:
            raise Invalid("a batch runs as one unit: give every activity of it the same mode")
        parsed: list[tuple[Action, BaseModel]] = []
        for index, item in enumerate(items):
            try:
                action = self.registry.authorize(principal, item.action)
                parsed.append((action, action.parse(item.args)))
            except RobofleetError as exc:
                if len(items) > 1:
                    exc.message = f"activities[{index}]: {exc.message}"
                    exc.details = (
                        {"index": index, **(exc.details or {})}
                        if isinstance(exc.details or {}, dict)
                        else {"index": index, "details": exc.details}
                    )
                raise
        new = [
            store_ops.NewActivity(item.action, action.storable_args(params), item.mode, item.idempotency_key)
            for item, (action, params) in zip(items, parsed, strict=True)
        ]
        now = utcnow()
        # A lone sync activity for an idle worker is stored as running by its insert: one commit, not two.
        claim = len(items) == 1 and items[0].mode == "sync" and self._sync_idle()
        self._claimed = self._claimed or claim
        has_sync = any(item.mode == "sync" for item in items)
        self._sync_inserting += has_sync
        try:
            outs, created = await self.writer.insert(principal, new, batch=batch, now=now, start_first=claim)
        except BaseException:
            self._claimed = self._claimed and not claim
            raise
        finally:
            self._sync_inserting -= has_sync
        if not created:
            self._claimed = self._claimed and not claim
            return outs
        jobs = [Job(action, params, principal, out) for (action, params), out in zip(parsed, outs, strict=True)]
        jobs[0].claimed = claim
        units = [Unit(jobs, True)] if batch else [Unit([job], False) for job in jobs]
        for unit in units:
            self._enqueue(unit)
        return outs

    def prepare(self, principal: Principal, item: ActivityIn) -> Prepared:
        """Check one activity as `submit` does (the action's permission, its args) without storing it."""
        action = self.registry.authorize(principal, item.action)
        params = action.parse(item.args)
        return Prepared(
            principal,
            action,
            params,
            store_ops.NewActivity(item.action, action.storable_args(params), item.mode, item.idempotency_key),
        )

    def insert_prepared(self, session: Any, prepared: list[Prepared], now: datetime) -> list[ActivityOut]:
        """Store prepared activities, owned by this replica, in the caller's transaction `session`."""
        entries = [(item.principal, item.new) for item in prepared]
        return store_ops.insert_each(session, entries, now=now, replica=self.replica)

    def adopt(self, stored: list[tuple[Prepared, ActivityOut]]) -> None:
        """Queue activities a caller stored with `insert_prepared`, once its transaction committed; each runs alone
        (not as a batch). After a crash before this, recovery queues them as any activity left queued."""
        for item, out in stored:
            self._enqueue(Unit([Job(item.action, item.params, item.principal, out)], False))

    def _enqueue(self, unit: Unit) -> None:
        for job in unit.jobs:
            self._jobs[job.id] = job
            self._publish(job)
        if unit.jobs[0].out.mode == "sync":
            self._sync_queue.put_nowait(unit)
        else:
            self._spawn(self._run_async(unit))

    # ---- running ---------------------------------------------------------------------------------------

    async def _sync_worker(self) -> None:
        while True:
            unit = await self._sync_queue.get()
            self._sync_busy = True
            self._claimed = False
            try:
                await self._run_unit(unit)
                if self._sync_queue.empty():  # nothing to share the write with: store the outcome now
                    await self._flush_pending()
            finally:
                self._sync_busy = False

    async def _write_transitions(self, started: Started | None, *, retry: bool = True) -> None:
        """The held outcome (if any) and `started`, durable together; the outcome's waiters are told after."""
        pending = self._pending
        while True:
            try:
                await self.writer.apply(pending[1] if pending else None, started)
                break
            except StoreUnavailable:
                # Nothing may run before "running" is durable, or a crash could run it twice; wait for the store.
                if not retry:
                    raise
                log.warning("the store is unavailable; the sync worker waits for it")
                await asyncio.sleep(STORE_RETRY_SECONDS)
        self._pending = None
        if pending is not None:
            self._settled(pending[0], pending[1])

    async def _flush_pending(self, *, retry: bool = True) -> None:
        if self._pending is not None:
            await self._write_transitions(None, retry=retry)

    def _sync_idle(self) -> bool:
        return not (self._claimed or self._sync_busy or self._sync_inserting) and self._sync_queue.empty()

    async def _run_async(self, unit: Unit) -> None:
        async with self._async_slots:
            self.running_async += 1
            self.peak_async = max(self.peak_async, self.running_async)
            try:
                await self._run_unit(unit)
            finally:
                self.running_async -= 1

    async def _run_unit(self, unit: Unit) -> None:
        for position, job in enumerate(unit.jobs):
            if job.out.state != QUEUED and not job.claimed:
                continue
            succeeded = await self._run_job(job)
            if not succeeded and unit.batch:
                rest = [later for later in unit.jobs[position + 1 :] if later.out.state == QUEUED]
                await self._flush_pending()  # the failure is stored before the rest is cancelled for it
                if rest:
                    error = {
                        "code": "batch_stopped",
                        "message": f"activity {job.id} of this batch failed, so the rest did not run",
                    }
                    await self._cancel(rest, error)
                return

    async def _run_job(self, job: Job) -> bool:
        job.starting = True  # before the first await: a cancel from now on is refused, it would come too late
        started = job.out.started_at or utcnow()
        sync = job.out.mode == "sync"
        if sync:
            if not job.claimed:
                await self._write_transitions(Started(job.id, started))
        else:
            while True:
                try:
                    # A statement, not a callable: the starts of a burst of async activities share one executemany.
                    await asyncio.wrap_future(
                        self.committer.submit_statement(*store_ops.running_statement(job.id, started))
                    )
                    break
                except StoreUnavailable:
                    await asyncio.sleep(STORE_RETRY_SECONDS)  # as for sync: never run before "running" is durable
        job.out.state, job.out.started_at = RUNNING, started
        self._publish(job)
        state, result, error = await self._execute(job)
        if sync:
            self._pending = (job, Finished(job.id, state, result, error, utcnow()))
        else:
            self._finish(job, state, result, error, utcnow())
        return state == SUCCEEDED

    async def _execute(self, job: Job) -> tuple[str, Any, dict[str, Any] | None]:
        if job.failure is not None or job.params is None:
            return FAILED, None, job.failure or {"code": "not_runnable", "message": "the activity cannot run"}
        context = ActionContext(job.principal, self.app, job.id)
        try:
            if job.action.is_async:
                result = await job.action.func(context, job.params)
            else:
                result = await asyncio.to_thread(job.action.func, context, job.params)
            return SUCCEEDED, to_jsonable_python(result), None
        except asyncio.CancelledError:
            raise
        except RobofleetError as exc:
            return FAILED, None, {"code": exc.code, "message": exc.message, "details": exc.details}
        except Exception as exc:
            log.exception("activity %s (%s) raised", job.id, job.action.name)
            return FAILED, None, {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}

    def _finish(self, job: Job, state: str, result: Any, error: dict[str, Any] | None, at: Any) -> None:
        """Queue the outcome without waiting: the next activity's start shares its commit. Waiters and
        watchers hear of it only once it is durable."""
        loop = asyncio.get_running_loop()
        future = self.committer.submit_statement(*store_ops.finished_statement(job.id, state, result, error, at))

        def durable(done: Any) -> None:
            if done.exception() is None:
                self._settled(job, Finished(job.id, state, result, error, at))
            else:
                log.warning("could not store the outcome of activity %s (%s); retrying", job.id, done.exception())
                loop.call_later(STORE_RETRY_SECONDS, self._finish, job, state, result, error, at)

        future.add_done_callback(lambda done: loop.call_soon_threadsafe(durable, done))

    def _settled(self, job: Job, finished: Finished) -> None:
        job.out.state, job.out.result, job.out.error = ActivityState(finished.state), finished.result, finished.error
        job.out.finished_at = finished.at
        if job.out.started_at:
            job.out.duration_ms = round((finished.at - job.out.started_at).total_seconds() * 1000, 3)
        self._settle(job)

    def _settle(self, job: Job) -> None:
        self._publish(job)
        job.done.set()
        self._jobs.pop(job.id, None)

    def _publish(self, job: Job) -> None:
        if self.hub.has_subscribers(TOPIC):
            self.hub.publish(TOPIC, job.out.model_dump(mode="json"))

    # ---- cancelling, waiting, reading -------------------------------------------------------------------

    async def cancel(self, principal: Principal, activity_id: int) -> ActivityOut:
        job = self._jobs.get(activity_id)
        if job is not None and job.starting and job.out.state in (QUEUED, RUNNING):
            raise Conflict(
                f"activity {activity_id} is running; only queued activities can be cancelled",
                details={"state": RUNNING},
            )
        if job is None or job.out.state != QUEUED:
            current = await self.get(activity_id)
            if current.state == RUNNING:
                raise Conflict(
                    f"activity {activity_id} is running; only queued activities can be cancelled",
                    details={"state": current.state},
                )
            raise Conflict(f"activity {activity_id} has already {current.state}", details={"state": current.state})
        if not may_see(principal, self.registry, job.out.action, job.out.args, job.out.requested_by):
            refusal = Forbidden(
                f"{principal.username} may cancel only its own activities and those of actions it may run itself",
                details={"action": job.out.action},
            )
            details = {"error": refusal.message}
            await asyncio.to_thread(
                record_alone, self.app.store, principal, "activity.cancel", str(activity_id), "denied", details
            )
            raise refusal
        error = {"code": "cancelled", "message": f"cancelled by {principal.actor}"}
        await self._cancel([job], error, principal)
        return job.out

    async def _cancel(self, jobs: list[Job], error: dict[str, Any], principal: Principal | None = None) -> None:
        for job in jobs:
            job.out.state = CANCELLED  # at once, so the worker skips them even before the commit lands
        now = utcnow()
        ids = [job.id for job in jobs]

        def write(session: Any) -> int:
            count = store_ops.mark_cancelled(session, ids, error, now)
            if principal is not None:
                record(session, principal, "activity.cancel", ",".join(map(str, ids)), "ok")
            return count

        await self.committer.run(write)
        for job in jobs:
            job.out.error, job.out.finished_at = error, now
            self._settle(job)

    async def wait(self, ids: Iterable[int], seconds: float) -> list[ActivityOut]:
        """The activities of `ids` once all have finished, or as they are after `seconds`."""
        ids = list(ids)
        jobs = {i: self._jobs[i] for i in ids if i in self._jobs}
        if jobs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(job.done.wait() for job in jobs.values())), seconds)
        return [jobs[i].out.model_copy() if i in jobs else await self.get(i) for i in ids]

    async def get(self, activity_id: int) -> ActivityOut:
        job = self._jobs.get(activity_id)
        if job is not None:
            return job.out.model_copy()

        def read(session: Any) -> ActivityOut | None:
            row = session.get(Activity, activity_id)
            return store_ops.activity_out(row) if row else None

        found: ActivityOut | None = await asyncio.to_thread(self._read, read)
        if found is None:
            raise NotFound(f"no activity {activity_id}", details={"id": activity_id})
        return found

    def _read(self, work: Any) -> Any:
        with self.app.store.transaction() as session:
            return work(session)

    @property
    def queued_sync(self) -> int:
        return self._sync_queue.qsize()

    # ---- recovery ----------------------------------------------------------------------------------------

    async def _recover_gone(self) -> None:
        """The leader's duty: each other replica that owns queued or running activities and is gone (rows that name
        none at once) has its running ones failed and its queued ones taken over and queued here."""
        owners = await self.committer.run(functools.partial(store_ops.replicas_left_behind, replica=self.replica))
        self.departures.forget_all_but(owners)
        for owner in owners:
            recovered = await self.committer.run(functools.partial(self._take_over, owner=owner))
            if recovered is None:
                continue  # it lives, or its lock has not been free for long enough yet
            gone = f"replica {owner}" if owner else "a replica before replicas were recorded"
            if recovered.interrupted:
                log.warning("%d activities were running on %s, gone; marked failed", recovered.interrupted, gone)
            if recovered.units:
                count = sum(len(unit.jobs) for unit in recovered.units)
                log.info("took over %d activities left queued by %s, gone", count, gone)
            for unit in recovered.units:
                self._enqueue(unit)

    def _take_over(self, session: Any, owner: str | None) -> Recovered | None:
        """In one transaction, when `owner` is gone (None: no owner, so gone): fail its running activities, make its
        queued ones this replica's and rebuild them. None when it may live. The committer may run this twice (its
        batch failed): it changes nothing but the store and the sightings of `owner`, which a second run repeats."""
        if owner is not None:
            free = replica_lock_free(session, owner)
            if not self.departures.seen(owner, free=free, now=time.monotonic()):
                return None
        interrupted = store_ops.fail_interrupted(session, owner, utcnow())
        return Recovered(interrupted, self._units(session, store_ops.take_over_queued(session, owner, self.replica)))

    def _units(self, session: Any, rows: list[Activity]) -> list[Unit]:
        """The rows (in id order) as the units they run in: a batch's rows together, in order."""
        units: list[Unit] = []
        batches: dict[int, Unit] = {}
        users: dict[int, User | None] = {}
        for row in rows:
            job = self._rebuild(session, row, users)
            if row.batch_id is None:
                units.append(Unit([job], False))
            elif row.batch_id in batches:
                batches[row.batch_id].jobs.append(job)
            else:
                batches[row.batch_id] = Unit([job], True)
                units.append(batches[row.batch_id])
        return units

    def _rebuild(self, session: Any, row: Activity, users: dict[int, User | None]) -> Job:
        out = store_ops.activity_out(row)
        failure: dict[str, Any] | None = None
        principal = system_principal(row.requested_by)
        if row.requester_id is not None:
            if row.requester_id not in users:
                users[row.requester_id] = session.scalar(select(User).where(User.id == row.requester_id))
            user = users[row.requester_id]
            if user is None or user.disabled:
                failure = {"code": "requester_gone", "message": "the user who asked is disabled or deleted"}
            else:
                principal = principal_for_user(user, scopes=row.scopes, source_ip=row.source_ip, via=row.requester_via)
        elif row.requester_via not in ("cli", "system"):
            failure = {"code": "requester_gone", "message": "the user who asked no longer exists"}
        params: BaseModel | None = None
        if row.action not in self.registry:
            action = self.registry.get("system.echo")  # a placeholder: the job fails before calling it
            failure = failure or {"code": "unknown_action", "message": f"no action named {row.action!r} any more"}
        else:
            action = self.registry.get(row.action)
            if action.has_secrets:
                failure = failure or {
                    "code": "secrets_lost",
                    "message": "secret arguments are never stored, so this activity cannot run after a restart",
                }
            else:
                try:
                    params = action.parse(row.args)
                    if not principal.can(action.permission):
                        failure = failure or {
                            "code": "forbidden",
                            "message": f"{principal.username} no longer holds {action.permission}",
                        }
                except Invalid as exc:
                    failure = failure or {"code": "invalid", "message": exc.message}
        return Job(action, params, principal, out, failure)

"""Failed runs' evidence: what the agent kept of a run that failed, was killed or stopped (its process tree as it
was, its last output lines, and for a robot with a session a screenshot and the last seconds as an animated WebP),
fetched into the store and served with the run.

The runs' ends come from the event hub as the robots service publishes them, on the replica its agent reported the
end to, which is the one connected to that agent. The bundle is fetched (`run.evidence`), stored, then dropped on
the agent (`run.evidence_drop`); a bundle the agent has not finished writing yet is asked for again a few times.
The ends seen by no replica (reported while serve was down, or before a fetch could finish) are caught up once per
agent and process: at the first sync of an agent connected here, the bundles of its runs that ended so in the last
CATCH_UP_HOURS and have none are asked for (at most CATCH_UP_RUNS, once each: the agent keeps a bundle 24 h).
The leader deletes bundles older than `sessions.evidence_retention_days`.

Reading it takes robots:read on the run's robot; its output lines are what logs:read shows elsewhere and its images
what sessions:read shows, so each part takes that permission too, on the run's robot: without it the output is
left out (None) and the images are neither linked nor served (403 naming the permission)."""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from robofleet.agents.hub import CommandFailed
from robofleet.auth.audit import record
from robofleet.auth.principal import Principal, system_principal
from robofleet.errors import Forbidden, NotFound, RobofleetError
from robofleet.robots.service import TOPIC as RUNS_TOPIC
from robofleet.runtime import Loop, Tasks
from robofleet.sessions import store_ops
from robofleet.sessions.models import RunEvidence
from robofleet.sessions.schemas import EvidenceOut, OutputLine, ProcessFacts
from robofleet.store.base import utcnow

if TYPE_CHECKING:
    from robofleet.sessions.service import SessionsService

log = logging.getLogger(__name__)
ENDS_WITH_EVIDENCE = ("failed", "killed", "stopped")
FETCH_TRIES = 5
FETCH_PAUSE_SECONDS = 1.0
FETCH_SECONDS = 30.0
RETENTION_SECONDS = 3600.0
MAX_OUTPUT_LINES = 100
MAX_PROCESSES = 500
# A failed run's images are worth a look for a while, not a store that grows without end: a bundle keeps at most
# this many bytes of them (the recording goes first, then the screenshot), and only a robot's newest bundles keep
# any (the older ones keep their facts).
CATCH_UP_HOURS = 24
CATCH_UP_RUNS = 100
MAX_IMAGE_BYTES = 8 * 2**20
IMAGES_KEPT_PER_ROBOT = 20


class Evidence:
    def __init__(self, sessions: SessionsService) -> None:
        self.sessions = sessions
        self.store = sessions.store
        self.hub = sessions.hub
        self.robots = sessions.robots
        self.events = sessions.events
        self.retention_days = sessions.settings.evidence_retention_days
        self.tasks = Tasks()
        self.caught_up: set[str] = set()  # the agents whose missed ends this process has asked for
        self.retention = Loop(
            "evidence-retention", RETENTION_SECONDS, self._retention_pass, gate=sessions.app.leader.leads
        )

    async def start(self) -> None:
        self.tasks.spawn(self.follow_runs(), name="evidence: run ends")
        await self.sessions.app.leader.start(self.retention.wake)
        self.retention.start()

    async def stop(self) -> None:
        await self.retention.stop()
        await self.tasks.stop()

    # ---- collecting ----------------------------------------------------------------------------------------------

    async def follow_runs(self) -> None:
        with self.events.subscribe(RUNS_TOPIC) as queue:
            while True:
                topic, payload = await queue.get()
                if not topic:
                    return  # the hub closed: serve is stopping
                if payload.get("state") in ENDS_WITH_EVIDENCE and payload.get("agent") in self.hub.agents:
                    self.tasks.spawn(
                        self.collect(int(payload["id"]), str(payload["robot"]), str(payload["agent"])),
                        name=f"evidence of run {payload['id']}",
                    )

    def catch_up_once(self, agent: str) -> None:
        """At the first sync of `agent` in this process: fetch the evidence of the ends no replica collected."""
        if agent in self.caught_up:
            return
        self.caught_up.add(agent)
        self.tasks.spawn(self.catch_up(agent), name=f"evidence of agent {agent}'s missed ends")

    async def catch_up(self, agent: str) -> int:
        """Fetch the bundles of `agent`'s runs that ended failed, killed or stopped in the last CATCH_UP_HOURS and
        have none (the newest CATCH_UP_RUNS); how many were stored."""
        since = utcnow() - timedelta(hours=CATCH_UP_HOURS)

        def missing() -> list[tuple[int, str]]:
            with self.store.transaction() as db:
                return store_ops.runs_without_evidence(db, agent, ENDS_WITH_EVIDENCE, since, CATCH_UP_RUNS)

        stored = 0
        for run_id, robot in await asyncio.to_thread(missing):
            if agent not in self.hub.agents:
                break
            stored += await self.collect(run_id, robot, agent, tries=1)
        if stored:
            log.info("agent %s: the evidence of %d run(s) that ended unseen stored", agent, stored)
        return stored

    async def collect(self, run_id: int, robot: str, agent: str, *, tries: int = FETCH_TRIES) -> bool:
        """Fetch, store and drop the agent's bundle of the run; False when the agent has none (asked `tries` times:
        a bundle just being written comes a moment later)."""
        bundle: dict[str, Any] | None = None
        for attempt in range(tries):
            try:
                bundle = await self.hub.command(agent, "run.evidence", {"run_id": str(run_id)}, within=FETCH_SECONDS)
                break
            except CommandFailed as exc:
                code = exc.details.get("code") if isinstance(exc.details, dict) else None
                if code != "not_found":
                    log.warning(
                        "run %s: its evidence could not be fetched from agent %s: %s", run_id, agent, exc.message
                    )
                    return False
                if attempt + 1 < tries:
                    await asyncio.sleep(FETCH_PAUSE_SECONDS)
            except RobofleetError as exc:
                log.warning("run %s: its evidence could not be fetched from agent %s: %s", run_id, agent, exc.message)
                return False
        if not isinstance(bundle, dict):
            return False
        await asyncio.to_thread(self.keep, run_id, robot, agent, bundle)
        try:
            await self.hub.command(agent, "run.evidence_drop", {"run_id": str(run_id)}, within=FETCH_SECONDS)
        except RobofleetError as exc:  # the agent drops it itself after a day
            log.info("run %s: agent %s kept its evidence: %s", run_id, agent, exc.message)
        log.info("run %s: evidence stored", run_id, extra={"run_id": str(run_id)})
        return True

    def keep(self, run_id: int, robot: str, agent: str, bundle: dict[str, Any]) -> None:
        """Store the bundle (once: a second copy of a run's evidence is ignored)."""
        shot = bundle.get("screenshot") if isinstance(bundle.get("screenshot"), dict) else None
        recording = bundle.get("recording") if isinstance(bundle.get("recording"), dict) else None
        facts: dict[str, Any] = {
            "exit": bundle.get("exit") if isinstance(bundle.get("exit"), dict) else {},
            "processes": list(bundle.get("processes") or [])[:MAX_PROCESSES],
            "output": list(bundle.get("output") or [])[-MAX_OUTPUT_LINES:],
        }
        screenshot = base64.b64decode(shot["data"]) if shot and shot.get("data") else None
        recorded = base64.b64decode(recording["data"]) if recording and recording.get("data") else None
        notes: list[str] = []
        cap = f"over the cap of {MAX_IMAGE_BYTES // 2**20} MiB a bundle keeps"
        if recorded is not None and len(recorded) + len(screenshot or b"") > MAX_IMAGE_BYTES:
            notes.append(f"the recording ({len(recorded):,} bytes) was dropped: {cap}")
            recorded, recording = None, None
        if screenshot is not None and len(screenshot) > MAX_IMAGE_BYTES:
            notes.append(f"the screenshot ({len(screenshot):,} bytes) was dropped: {cap}")
            screenshot, shot = None, None
        if notes:
            facts["notes"] = notes
        row = RunEvidence(
            run_id=run_id,
            robot=robot,
            agent=agent,
            captured_at=_time(bundle.get("captured_at")),
            stored_at=utcnow(),
            facts=facts,
            screenshot_type=shot.get("content_type") if shot else None,
            screenshot=screenshot,
            recording_type=recording.get("content_type") if recording else None,
            recording=recorded,
            recording_frames=recording.get("frames") if recording else None,
        )
        try:
            with self.store.transaction() as db:
                if store_ops.has_evidence(db, run_id):
                    return
                db.add(row)
                db.flush()
                store_ops.drop_old_images(db, robot, IMAGES_KEPT_PER_ROBOT)
        except IntegrityError:  # stored by another pass meanwhile
            return

    # ---- reading -------------------------------------------------------------------------------------------------

    def get(self, principal: Principal, run_id: int, base_url: str = "/api/v1") -> EvidenceOut:
        """The run's evidence without its images (their URLs instead). NotFound for no such run, a run outside the
        caller's robots:read, or a run without evidence."""
        run = self.robots.get_run(principal, run_id)
        with self.store.transaction() as db:
            row = store_ops.evidence(db, run_id)
            if row is None:
                raise NotFound(f"run {run_id} has no evidence", details={"run": run_id}, code="no_evidence")
            facts = row.facts or {}
            logs = self.may(principal, "logs:read", run.robot)
            screens = self.may(principal, "sessions:read", run.robot)
            return EvidenceOut(
                run_id=row.run_id,
                robot=row.robot,
                agent=row.agent,
                captured_at=row.captured_at,
                stored_at=row.stored_at,
                exit=facts.get("exit") or {},
                processes=[ProcessFacts.model_validate(item) for item in facts.get("processes") or []],
                output=[OutputLine.model_validate(item) for item in facts.get("output") or []] if logs else None,
                screenshot_url=f"{base_url}/runs/{run_id}/evidence/screenshot" if row.screenshot and screens else None,
                recording_url=f"{base_url}/runs/{run_id}/evidence/recording" if row.recording and screens else None,
                recording_frames=row.recording_frames if row.recording else None,
                notes=list(facts.get("notes") or []),
            )

    def image(self, principal: Principal, run_id: int, which: str) -> tuple[str, bytes]:
        """(content type, bytes) of the run's evidence screenshot or recording; NotFound when it has none,
        Forbidden without sessions:read on the run's robot."""
        run = self.robots.get_run(principal, run_id)
        if not self.may(principal, "sessions:read", run.robot):
            raise Forbidden(
                f"{principal.username} lacks the permission 'sessions:read' on robot {run.robot!r}",
                details={"permission": "sessions:read"},
            )
        with self.store.transaction() as db:
            row = store_ops.evidence(db, run_id)
            data = None if row is None else row.screenshot if which == "screenshot" else row.recording
            kind = None if row is None else row.screenshot_type if which == "screenshot" else row.recording_type
            if row is None or data is None:
                raise NotFound(f"run {run_id} has no evidence {which}", details={"run": run_id}, code="no_evidence")
            return kind or "application/octet-stream", data

    def may(self, principal: Principal, permission: str, robot: str) -> bool:
        """Whether `principal` holds `permission` on `robot` (by the grants' name globs and tags, as logs are
        narrowed: also for a robot deleted since, by its name)."""
        if not principal.can(permission):
            return False
        scope = self.robots.robot_scope(principal, permission)
        return scope is None or robot in scope.names or any(fnmatchcase(robot, glob) for glob in scope.globs)

    # ---- retention (the leader's) --------------------------------------------------------------------------------

    async def _retention_pass(self) -> None:
        await asyncio.to_thread(self.apply_retention)

    def apply_retention(self, now: datetime | None = None) -> int:
        """Delete evidence stored, and sessions' history recorded, more than `sessions.evidence_retention_days` ago;
        how many bundles went."""
        cutoff = (now or utcnow()) - timedelta(days=self.retention_days)
        with self.store.transaction() as db:
            deleted = store_ops.purge_evidence(db.connection(), cutoff)
            events = store_ops.purge_events(db.connection(), cutoff)
            if deleted or events:
                record(
                    db,
                    system_principal("evidence-retention"),
                    "evidence.retention",
                    "runs",
                    "ok",
                    {"deleted": deleted, "session_events_deleted": events},
                )
        return deleted


def _time(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return utcnow()
    return parsed if parsed.tzinfo is not None else utcnow()

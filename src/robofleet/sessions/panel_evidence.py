"""A run's evidence as its page shows it (robots/templates/run_evidence.html, a section of RUN_SECTIONS): the
process tree as its agent last saw it, drawn as a tree (each process under its parent, in pid order), the last
lines of output, the screenshot and the recording (an animated WebP, which an <img> plays).

The agent sends the bundle a moment after a failed, killed or stopped run ended: until then the section says it
is waiting, and sessions.js asks for it again (`?part=evidence` of the run's page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from robofleet.auth.principal import Principal
from robofleet.errors import NotFound
from robofleet.orchestrator import Orchestrator
from robofleet.robots.schemas import RunOut
from robofleet.robots.states import RunState
from robofleet.sessions.schemas import EvidenceOut, ProcessFacts
from robofleet.sessions.service import SessionsService

# The ends that leave evidence (the agent keeps a bundle for a run that failed, was killed or stopped at its
# timeout); a stop asked by an operator may leave one too.
EVIDENT_ENDS = frozenset({RunState.FAILED, RunState.KILLED, RunState.STOPPED})
# How long after the end the page waits for a bundle that has not come: the agent sends it within seconds.
WAIT_AFTER_END = timedelta(minutes=2)


@dataclass(frozen=True)
class ProcessRow:
    """A process of the tree with its depth (0: the run's own process, or one whose parent was not seen)."""

    depth: int
    process: ProcessFacts

    @property
    def command(self) -> str:
        return " ".join(self.process.cmdline) or (self.process.name or "")

    @property
    def memory(self) -> str:
        rss = self.process.rss_bytes
        return "" if rss is None else f"{rss / 2**20:,.1f} MiB"


def process_tree(processes: list[ProcessFacts]) -> list[ProcessRow]:
    """The processes in tree order: each one followed by its children (by pid), depth first."""
    pids = {process.pid for process in processes}
    children: dict[int | None, list[ProcessFacts]] = {}
    for process in processes:
        parent = process.ppid if process.ppid in pids and process.ppid != process.pid else None
        children.setdefault(parent, []).append(process)
    rows: list[ProcessRow] = []
    seen: set[int] = set()

    def walk(parent: int | None, depth: int) -> None:
        for process in sorted(children.get(parent, []), key=lambda found: found.pid):
            if process.pid in seen:  # a cycle in the parent links of a snapshot: shown once
                continue
            seen.add(process.pid)
            rows.append(ProcessRow(depth, process))
            walk(process.pid, depth + 1)

    walk(None, 0)
    return rows


@dataclass(frozen=True)
class RunEvidence:
    """What the section shows: the bundle (None: none, yet or at all) and whether the page should ask again."""

    bundle: EvidenceOut | None
    waiting: bool
    processes: list[ProcessRow]


def evidence_of(ctx: Orchestrator, principal: Principal, run: RunOut, now: datetime | None = None) -> RunEvidence:
    """The run's evidence as the reader may see it (robots:read on its robot, which the run's page checked)."""
    service = ctx.service("sessions")
    if not isinstance(service, SessionsService):
        return RunEvidence(None, False, [])
    try:
        bundle = service.get_evidence(principal, run.id)
    except NotFound:
        bundle = None
    if bundle is not None:
        return RunEvidence(bundle, False, process_tree(bundle.processes))
    ended = run.ended_at
    now = now or datetime.now(UTC)
    waiting = run.state in EVIDENT_ENDS and ended is not None and now - ended < WAIT_AFTER_END
    return RunEvidence(None, waiting, [])

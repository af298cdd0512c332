"""Why a run ended as it did, and who or what acted on it: pure functions of the facts the agent reported (exit
code, signal, why the program could not start, the robot's last error on stderr) and the run's stored requests
(a kill or a stop, by whom). The robots service stores the answer in `runs.error` with the run's end."""

from __future__ import annotations

import signal
from enum import StrEnum
from typing import Any

from robofleet.agents.shim import REASON_CHARS, last_error
from robofleet.auth.principal import SCHEDULE_ACTOR
from robofleet.robots.states import RunState

TRACEBACK_HEAD = "Traceback (most recent call last):"
RESTART_ACTOR = "restart-policy"
CLI_ACTOR = "cli:"
AGENT_ACTOR = "agent:"
TOKEN_MARK = " (token "
# Names robofleet itself acts under (system_principal) when it starts, stops or kills a run.
SYSTEM_ACTORS = ("system", "config", "scheduler", "max_runtime", "robots", "agents-hub")
# Exit codes with a meaning of their own (the shells' and Python's conventions), besides 128 + a signal's number.
EXIT_MEANINGS = {
    0: "success",
    1: "a general error; in Python, an uncaught exception",
    2: "a usage error (bad arguments)",
    126: "the program could not be executed (permission denied or not executable)",
    127: "the program was not found",
}


class Origin(StrEnum):
    """Who or what started a run, as its `requested_by` says."""

    USER = "user"  # someone in the panel
    TOKEN = "token"  # through the API with a token
    SCHEDULE = "schedule"
    RESTART = "restart"  # the restart policy after a failure
    CLI = "cli"
    SYSTEM = "system"  # robofleet itself


def origin_of(actor: str) -> Origin:
    """The kind of `actor` (a run's requested_by, a transition's by); store_ops.origin_condition says the same in
    SQL."""
    if actor.startswith(SCHEDULE_ACTOR):
        return Origin.SCHEDULE
    if actor == RESTART_ACTOR:
        return Origin.RESTART
    if actor.startswith(CLI_ACTOR):
        return Origin.CLI
    if actor in SYSTEM_ACTORS:
        return Origin.SYSTEM
    if TOKEN_MARK in actor:
        return Origin.TOKEN
    return Origin.USER


def describe_actor(actor: str) -> str:
    """`actor` in words: "an operator (alice)", "schedule nightly", "the restart policy", "agent pc-01"..."""
    if actor.startswith(AGENT_ACTOR):  # an agent reporting on its run (its end, its return)
        return f"agent {actor.removeprefix(AGENT_ACTOR)}"
    origin = origin_of(actor)
    if origin is Origin.SCHEDULE:
        return f"schedule {actor.removeprefix(SCHEDULE_ACTOR).split(TOKEN_MARK)[0]}"
    if origin is Origin.RESTART:
        return "the restart policy"
    if origin is Origin.CLI:
        return f"the command line ({actor.removeprefix(CLI_ACTOR)})"
    if origin is Origin.SYSTEM:
        return "robofleet" if actor == "system" else f"robofleet ({actor})"
    if origin is Origin.TOKEN:
        user, _, token = actor.partition(TOKEN_MARK)
        return f"an API token of {user} ({token.rstrip(')')})"
    return f"an operator ({actor})"


def duration_text(seconds: float | None) -> str:
    """3.2 s, 4 min 05 s, 2 h 03 min; "-" before the run started."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def exit_meaning(code: int | None) -> str | None:
    """What an exit code says: 137 "killed by SIGKILL", 143 "ended by SIGTERM", 127 "the program was not found"…;
    None for no code, "an error of the robot's own" for another code."""
    if code is None:
        return None
    if code in EXIT_MEANINGS:
        return EXIT_MEANINGS[code]
    if 128 < code < 128 + 65:
        name = signal_name(code - 128)
        return f"ended by {name} (asked to stop)" if name in ("SIGTERM", "SIGINT") else f"killed by {name}"
    return "an error of the robot's own (its exit code)"


def logged_reason(message: str) -> str:
    """The reason a record a robot logged at ERROR or worse gives: the exception of a traceback in it, else its first
    line (at most REASON_CHARS characters, as the shim's)."""
    found = last_error(message)
    if found is not None and TRACEBACK_HEAD in message:
        return found
    line = next((line.strip() for line in message.splitlines() if line.strip()), "")
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 1] + "…"


def end_reason(
    state: str,
    outcome: dict[str, Any],
    *,
    kill_requested_by: str | None,
    known: str | None,
) -> str | None:
    """The reason stored with a run that ends in `state` after the agent reported `outcome` ({"exit_code",
    "signal", "spawn_error", "last_error"}): None for a success or a clean stop; for a stop the run had to be
    killed at, or a start that failed, the reason `known` already. A failed, killed or lost run always has one."""
    if state == RunState.SUCCEEDED:
        return None
    if state == RunState.STOPPED:
        return known  # set when the safe-stop timeout had to kill it
    if state == RunState.KILLED:
        return f"killed by {describe_actor(kill_requested_by)}" if kill_requested_by else known or "killed"
    if state == RunState.LOST:
        return known or "lost: its agent no longer knows it"
    spawn_error = outcome.get("spawn_error")
    if isinstance(spawn_error, str) and spawn_error:
        return spawn_error
    code, number, said = outcome.get("exit_code"), outcome.get("signal"), outcome.get("last_error")
    if isinstance(number, int) and number > 0:
        text = f"killed by {signal_name(number)} (not by robofleet)"  # robofleet's kills and stops end otherwise
    elif isinstance(code, int):
        text = f"exit {code}"
    else:
        return known or "ended without an exit code (its run shim was killed)"
    return f"{text}: {said}" if isinstance(said, str) and said else text

"""Run-event chains ("when robot A's run succeeds, start B") as a graph of robots, and the one rule that refuses a
chain that comes back to where it started. Pure: no store."""

from __future__ import annotations

from collections.abc import Iterable

# The actions whose fire starts a run of the robot named in their args: the edges of a chain.
STARTING_ACTIONS = frozenset({"robots.start", "robots.restart"})
Edge = tuple[str, str]  # (robot whose run ends, robot it starts)


def edge_of(trigger: dict[str, object], action: str, args: dict[str, object]) -> Edge | None:
    """The chain edge a schedule makes, or None when it is not a run_event schedule that starts a robot."""
    if trigger.get("kind") != "run_event" or action not in STARTING_ACTIONS:
        return None
    source, target = trigger.get("robot"), args.get("name")
    if not isinstance(source, str) or not isinstance(target, str):
        return None
    return source, target


def cycle_through(edges: Iterable[Edge], new: Edge) -> list[str] | None:
    """The robots of a cycle that `new` closes among `edges` (first robot repeated at the end, e.g. [A, B, A]),
    or None when adding it makes none."""
    source, target = new
    following: dict[str, list[str]] = {}
    for start, end in edges:
        following.setdefault(start, []).append(end)
    # A path from the new edge's target back to its source closes the cycle.
    paths: list[list[str]] = [[source, target]]
    seen = {target}
    while paths:
        path = paths.pop()
        if path[-1] == source:
            return path
        for after in following.get(path[-1], []):
            if after == source or after not in seen:
                seen.add(after)
                paths.append([*path, after])
    return None

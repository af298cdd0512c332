"""Where each setting comes from: a `ROBOFLEET_*` variable, the settings file (with its line), or the default; and the
effective settings as TOML with that source beside each value. `robofleet settings show` and the panel's Settings page
print the same text, and both say which file (if any) was read and how it was named, so they can be compared."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "ROBOFLEET_"


@dataclass(frozen=True)
class Origin:
    """What the settings were read from. `path`: the settings file, None when none was read; `named_by`: how it was
    chosen ("--config", "ROBOFLEET_CONFIG", "./robofleet.toml"), or why there is none; `text` and `data`: its content;
    `variables`: the names of the ROBOFLEET_* variables set (never their values: they hold secrets); `cwd`: the
    working directory, against which a relative file or data_dir is read."""

    path: Path | None
    named_by: str
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    variables: frozenset[str] = frozenset()
    cwd: Path = field(default_factory=Path.cwd)

    def describe(self) -> str:
        """One line: the file read (absolute) and how it was named, or that none was."""
        if self.path is None:
            return f"no settings file ({self.named_by}): defaults and ROBOFLEET_* variables only"
        return f"settings file {absolute(self.path, self.cwd)} (from {self.named_by})"

    def show_command(self) -> str:
        """The command that prints these settings from any folder."""
        if self.path is None:
            return f"cd {self.cwd} && robofleet settings show"
        return f"robofleet settings show --config {absolute(self.path, self.cwd)}"


def absolute(path: Path, cwd: Path) -> Path:
    return path if path.is_absolute() else cwd / path


def variable_for(loc: list[str], names: Iterable[str]) -> str | None:
    """The ROBOFLEET_* variable among `names` that sets the key at `loc` (itself, or a section holding it), if any."""
    upper = {name.upper() for name in names}
    for depth in range(len(loc), 0, -1):
        name = ENV_PREFIX + "__".join(loc[:depth]).upper()
        if name in upper:
            return name
    return None


def in_file(data: dict[str, Any], loc: list[str]) -> bool:
    """Whether the parsed file sets the key at `loc` (or a section holding it)."""
    node: Any = data
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def source_of(loc: list[str], origin: Origin | None) -> str:
    """ "environment variable ROBOFLEET_X__Y", "<file> line N" or "default" for the key at `loc` (variables win over
    the file, as the settings themselves do). Settings not read by the loader (built in code) are all defaults."""
    if origin is None:
        return "default"
    variable = variable_for(loc, origin.variables)
    if variable is not None:
        return f"environment variable {variable}"
    if origin.path is not None and in_file(origin.data, loc):
        line = find_line(origin.text, loc)
        where = absolute(origin.path, origin.cwd)
        return f"{where} line {line}" if line else str(where)
    return "default"


_TABLE = re.compile(r"^(\[\[?)([^\]]+)\]\]?\s*$")
_ASSIGNMENT = re.compile(r'^("[^"]*"|[A-Za-z0-9_\-]+) = ')


def annotated(toml_text: str, lists: set[str], origin: Origin | None) -> str:
    """`toml_text` (tomli_w's rendering of the masked tree) with `# <source>` after each value of a section, and
    after the first header of each list of tables (`lists`: robots, roles…, whose source is the whole list's).
    Comments only: the text stays TOML, parsed as before."""
    out: list[str] = [f"# {origin.describe() if origin else 'settings built in code: defaults'}"]
    out.append("# The source of each value follows it: an environment variable, the file and line, or the default.")
    table: list[str] = []
    in_list = False  # inside a list of tables: its source is the whole list's, said at its first header
    seen_lists: set[str] = set()
    for line in toml_text.splitlines():
        header = _TABLE.match(line)
        if header:
            table = [part.strip().strip('"') for part in header.group(2).split(".")]
            in_list = header.group(1) == "[[" and (table[0] in lists or len(table) > 1)
            name = ".".join(table if len(table) > 1 else table[:1])
            if in_list and name not in seen_lists:
                seen_lists.add(name)
                line = f"{line}  # {source_of(table, origin)}"
            out.append(line)
            continue
        assignment = _ASSIGNMENT.match(line)
        if assignment and table and table[0] not in lists and not in_list:
            key = assignment.group(1).strip('"')
            line = f"{line}  # {source_of([*table, key], origin)}"
        elif assignment and not table and line.split(" = ", 1)[0] in lists:
            line = f"{line}  # {source_of([line.split(' = ', 1)[0]], origin)}"  # an empty list: `robots = []`
        out.append(line)
    return "\n".join(out) + "\n"


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-]+)\s*\]\]?")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


# Lists of tables a section holds under another name (settings/loader.py moves a file's `[[sessions]]` there).
_MOVED_LISTS: dict[tuple[str, ...], list[str]] = {("sessions", "declared"): ["sessions"]}


def find_line(text: str, loc: list[str]) -> int | None:
    """Best-effort line number of a key such as ['server', 'port'] or ['roles', '1', 'name']."""
    moved = _MOVED_LISTS.get(tuple(loc))
    if moved is not None:
        return _find_line(text, moved) or _find_line(text, loc)  # `[[sessions]]`, or `[[sessions.declared]]`
    return _find_line(text, loc)


def _find_line(text: str, loc: list[str]) -> int | None:
    table: list[str] = []
    array_counts: dict[str, int] = {}
    best: int | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(raw)
        if header:
            name = header.group(2)
            if header.group(1) == "[[":
                if name.split(".") == loc:
                    return number  # a list of tables: its first entry
                array_counts[name] = array_counts.get(name, -1) + 1
                table = [*name.split("."), str(array_counts[name])]
            else:
                table = name.split(".")
            if table == loc[: len(table)] and len(table) == len(loc):
                best = number
            continue
        key = _KEY.match(raw)
        if not key:
            continue
        full = [*table, *key.group(1).split(".")]
        if full == loc[: len(full)] and (best is None or len(full) >= 1):
            if full == loc:
                return number
            best = best or number
    return best

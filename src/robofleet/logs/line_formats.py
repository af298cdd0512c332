"""How the lines a robot writes on stdout and stderr carry a level: a robot's `log_format`.

- `auto` (the default) knows the usual shapes of Python's `logging` and of loguru: `INFO:name:message`
  (basicConfig's), `2026-01-31 08:00:00,123 INFO name: message`, `… - name - ERROR - …`, `[ERROR] message`,
  `2026-01-31 08:00:00.123 | ERROR    | module:function:12 - message`, and the `warnings` module's
  `file.py:3: DeprecationWarning: …`.
- `plain` reads no level: every line is a record at INFO.
- any other text is a regular expression with a named group `level`, matched at the start of each line (its first
  HEAD_CHARS characters): a line it matches begins a record at that level, and a line it does not match continues
  the record before it (the multi-line messages of a format a robot declares).

A line that carries no level is INFO, whichever stream it came on (Python's logging writes everything to stderr).
"""

from __future__ import annotations

import re
import re._constants as sre  # type: ignore[import-not-found]  # a pattern's parsed form (typeshed: sre_*)
import re._parser as sre_parser  # type: ignore[import-not-found]
from dataclasses import dataclass
from typing import Any

from robofleet.logs.models import LEVELS

AUTO, PLAIN = "auto", "plain"
MAX_FORMAT_CHARS = 300
HEAD_CHARS = 200  # how much of a line a format looks at: a level is near the start, and a regex stays cheap
DEFAULT_LEVEL = LEVELS["INFO"]

# Level words as robots write them, to the store's levels (loguru's TRACE and SUCCESS to their neighbours).
LEVEL_WORDS = {
    **LEVELS,
    "WARN": LEVELS["WARNING"],
    "FATAL": LEVELS["CRITICAL"],
    "TRACE": LEVELS["DEBUG"],
    "SUCCESS": LEVELS["INFO"],
}
_LEVEL = r"(?P<level>DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL|TRACE|SUCCESS)"
_STAMP = r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:\s?(?:Z|UTC|[+-]\d\d:?\d\d))?"
_SEPARATOR = r"(?:\s*[|:\-]\s*|\s+)"
_AUTO = (
    # basicConfig's "INFO:root:message", and "%(levelname)s %(message)s" (in capitals, as logging writes them)
    re.compile(rf"{_LEVEL}(?::|\s)"),
    # "[ERROR] message", structlog's "[info     ] message"
    re.compile(rf"\[{_LEVEL}\s*\]", re.IGNORECASE),
    # a time first: "%(asctime)s %(levelname)s …", "%(asctime)s - %(name)s - %(levelname)s - …", "[time] [LEVEL]",
    # loguru's "time | LEVEL    | …"
    re.compile(rf"\[?{_STAMP}\]?{_SEPARATOR}(?:[\w.<>-]+{_SEPARATOR})?\[?{_LEVEL}\s*\]?(?=[\s:|\]-]|$)", re.IGNORECASE),
)
_PYTHON_WARNING = re.compile(r"\S+:\d+: \w*Warning: ")
_CANNOT_START = re.compile(r"robofleet: cannot start ")  # the run's shim, when the program cannot be started


class BadFormat(ValueError):
    pass


@dataclass(frozen=True)
class LineFormat:
    spec: str
    pattern: re.Pattern[str] | None = None  # a robot's own; None: auto or plain

    @property
    def plain(self) -> bool:
        return self.spec == PLAIN

    @property
    def declared(self) -> bool:
        """A robot's own format: a line it does not match continues the record before it."""
        return self.pattern is not None

    def level_of(self, line: str) -> int | None:
        """The level a line begins a record at, or None when the line carries none (it may continue a record)."""
        head = line[:HEAD_CHARS]
        if self.pattern is not None:
            found = self.pattern.match(head)
            return level_number(found.group("level")) if found else None
        if self.plain:
            return None
        for shape in _AUTO:
            found = shape.match(head)
            if found:
                return LEVEL_WORDS[found.group("level").upper()]
        if _PYTHON_WARNING.match(head):
            return LEVELS["WARNING"]
        if _CANNOT_START.match(head):
            return LEVELS["ERROR"]
        return None


AUTO_FORMAT = LineFormat(AUTO)
PLAIN_FORMAT = LineFormat(PLAIN)


def level_number(word: str | None) -> int:
    """A level as a robot wrote it: a name (any case, WARN, FATAL, …) or a number 0-50; INFO when neither."""
    if not word:
        return DEFAULT_LEVEL
    text = word.strip()
    if text.isascii() and text.isdigit():
        return min(int(text), 50)
    return LEVEL_WORDS.get(text.upper(), DEFAULT_LEVEL)


def checked_format(spec: str) -> str:
    """`spec` when it is a format a robot may have; BadFormat says why not."""
    if spec in (AUTO, PLAIN):
        return spec
    if len(spec) > MAX_FORMAT_CHARS:
        raise BadFormat(f"log_format is longer than {MAX_FORMAT_CHARS} characters")
    try:
        pattern = re.compile(spec)
    except re.error as exc:
        raise BadFormat(f"log_format is not a valid regular expression: {exc}") from None
    if _may_take_exponential_time(spec):
        raise BadFormat(
            "log_format repeats a group that holds a repetition or alternatives (like (a+)+ or (a|b)*), or has more "
            "than two .* or .+, which can take very long on some lines: repeat a character class instead, e.g. [\\w:]+"
        )
    if "level" not in pattern.groupindex:
        raise BadFormat(
            "log_format must be auto, plain, or a regular expression with a named group (?P<level>...), e.g. "
            r"^\S+ (?P<level>[A-Z]+) "
        )
    return spec


def _may_take_exponential_time(spec: str) -> bool:
    """Whether a repetition holds another repetition or alternatives: the shapes whose backtracking can grow
    exponentially with a line's length (`(a+)+$`, `(a|a)*$`). The regex runs in the orchestrator on every line."""
    try:
        parsed = sre_parser.parse(spec)
    except re.error:
        return False

    def nested(items: Any, repeated: bool) -> bool:
        for op, value in items:
            if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
                _low, high, sub = value
                repeats = high == sre.MAXREPEAT or high > 1
                if (repeats and repeated) or nested(sub, repeated or repeats):
                    return True
            elif op is sre.BRANCH:
                if repeated or any(nested(branch, repeated) for branch in value[1]):
                    return True
            elif op is sre.SUBPATTERN:
                if nested(value[-1], repeated):
                    return True
            elif op in (sre.ASSERT, sre.ASSERT_NOT) and nested(value[1], repeated):
                return True
        return False

    def wildcards(items: Any) -> int:  # repetitions of "any character": three of them make a slow polynomial
        count = 0
        for op, value in items:
            if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
                count += wildcards(value[2]) + (1 if list(value[2]) == [(sre.ANY, None)] else 0)
            elif op is sre.SUBPATTERN:
                count += wildcards(value[-1])
            elif op is sre.BRANCH:
                count += max((wildcards(branch) for branch in value[1]), default=0)
        return count

    return nested(parsed, False) or wildcards(parsed) > 2


def line_format(spec: str | None) -> LineFormat:
    """The format `spec` names (None: auto). A stored spec that no longer compiles reads as auto."""
    if not spec or spec == AUTO:
        return AUTO_FORMAT
    if spec == PLAIN:
        return PLAIN_FORMAT
    try:
        return LineFormat(spec, re.compile(checked_format(spec)))
    except BadFormat:
        return AUTO_FORMAT

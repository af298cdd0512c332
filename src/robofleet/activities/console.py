"""The Python console: code evaluated inside the orchestrator, for administrators who enabled it.

Off unless `console.python_enabled = true`; needs `console:execute`; every input is audited in full."""

from __future__ import annotations

import ast
import io
import traceback
from typing import TYPE_CHECKING, Any

from robofleet.auth.audit import audited
from robofleet.auth.principal import Principal
from robofleet.errors import NotFound

if TYPE_CHECKING:
    from robofleet.orchestrator import Orchestrator

MAX_OUTPUT = 64_000
_namespaces: dict[str, dict[str, Any]] = {}


def run_python(app: Orchestrator, principal: Principal, code: str) -> dict[str, Any]:
    """Run `code` in the caller's own namespace (kept between calls, like a REPL); returns printed output, the
    value of a final expression, and the traceback of an error."""
    if not app.settings.console.python_enabled:
        raise NotFound("the Python console is disabled (console.python_enabled = false)", code="console_disabled")
    principal.require("console:execute")
    namespace = _namespaces.setdefault(principal.username, {"app": app, "settings": app.settings, "store": app.store})
    output = io.StringIO()

    def console_print(*values: Any, sep: str = " ", end: str = "\n", **_: Any) -> None:
        output.write(sep.join(str(value) for value in values) + end)

    namespace["print"] = console_print
    result: str | None = None
    error: str | None = None
    with audited(app.store, principal, "console.python", "orchestrator", {"code": code[:10_000]}):
        try:
            tree = ast.parse(code, mode="exec")
            last = tree.body[-1] if tree.body else None
            if isinstance(last, ast.Expr):
                tree.body.pop()
                exec(compile(tree, "<console>", "exec"), namespace)  # noqa: S102 - this is the feature
                value = eval(compile(ast.Expression(last.value), "<console>", "eval"), namespace)  # noqa: S307
                result = None if value is None else repr(value)
            else:
                exec(compile(tree, "<console>", "exec"), namespace)  # noqa: S102
        except BaseException:
            # SystemExit and KeyboardInterrupt too: they would end the request, not the orchestrator, and skip the
            # console's own answer; the console shows them like any error.
            error = traceback.format_exc(limit=5)
    return {"output": output.getvalue()[:MAX_OUTPUT], "result": (result or "")[:MAX_OUTPUT] or None, "error": error}

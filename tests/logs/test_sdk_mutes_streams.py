"""In a run, the SDK's handler leaves the records it ships out of the stream handlers that write to the run's output
(stderr, stdout), whichever order the handlers are in; records it does not ship still go there; at close, what it
could not deliver is written there instead. (The orchestrator is away here: the records stay in its buffer.)"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from robofleet.sdk import RobofleetLogHandler

AWAY = "http://127.0.0.1:9"  # nothing listens: the records stay buffered


Written = Callable[[], str]


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]) -> Iterator[Written]:
    """What was written on stderr so far (the stream handlers made in the test write to the captured sys.stderr);
    the loggers left as they were."""
    seen: list[str] = []

    def written() -> str:
        seen.append(capsys.readouterr().err)
        return "".join(seen)

    root_handlers, root_level = list(logging.root.handlers), logging.root.level
    try:
        yield written
    finally:
        logging.root.handlers[:] = root_handlers
        logging.root.setLevel(root_level)
        logging.getLogger("invoices").handlers.clear()


def shipper() -> RobofleetLogHandler:
    """A handler as in a run, whose thread does not try to send before close (so `pending` counts every record)."""
    return RobofleetLogHandler(AWAY, "token", run_id="7", mute_streams=True, close_timeout=0.3, flush_interval=60)


@pytest.mark.parametrize("sdk_first", [False, True])
def test_a_shipped_record_is_not_on_stderr(stderr: Written, sdk_first: bool) -> None:
    stream = logging.StreamHandler()  # sys.stderr, as basicConfig's
    if sdk_first:
        handler = shipper()
        logging.root.addHandler(handler)
        logging.root.addHandler(stream)
    else:  # basicConfig, then the SDK's handler: the usual robot
        logging.root.addHandler(stream)
        handler = shipper()
        logging.root.addHandler(handler)
    logging.root.setLevel(logging.INFO)
    log = logging.getLogger("invoices")
    log.info("step 1 of 3")
    log.error("invoice 8 failed")
    logging.getLogger("invoices.portal").warning("slow")
    assert stderr() == "" and handler.pending == 3
    logging.root.removeHandler(handler)
    log.info("step 2 of 3")  # no longer shipped: written
    assert stderr() == "step 2 of 3\n" and handler.pending == 3
    handler.close()


def test_a_stream_handler_added_later_writes_the_first_record_only(stderr: Written) -> None:
    handler = shipper()
    logging.root.addHandler(logging.StreamHandler())  # before the SDK's handler in the order, and after it was made
    logging.root.addHandler(handler)
    logging.root.setLevel(logging.INFO)
    log = logging.getLogger("invoices")
    log.info("first")  # written before the filter was there: stored from the output, not shipped
    log.info("second")
    assert stderr() == "first\n" and handler.pending == 1
    handler.close()


def test_what_the_handler_does_not_ship_is_written_and_what_it_could_not_deliver_too(stderr: Written) -> None:
    stream = logging.StreamHandler()  # as basicConfig(format="%(levelname)s %(message)s") makes it
    stream.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.root.addHandler(stream)
    logging.root.setLevel(logging.INFO)
    handler = shipper()
    handler.setLevel(logging.WARNING)
    logging.getLogger("invoices").addHandler(handler)
    log = logging.getLogger("invoices")
    log.info("below the handler's level")
    logging.getLogger("elsewhere").warning("not on the handler's way")
    log.warning("shipped")
    assert stderr() == "INFO below the handler's level\nWARNING not on the handler's way\n"
    handler.close()
    written = stderr()
    assert "1 log record could not be delivered" in written and written.endswith("WARNING:invoices:shipped\n")
    log.warning("after close")
    assert stderr().endswith("WARNING after close\n")


def test_outside_a_run_nothing_is_muted(stderr: Written, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROBOFLEET_RUN_ID", raising=False)
    logging.root.addHandler(logging.StreamHandler())
    handler = RobofleetLogHandler(AWAY, "token", close_timeout=0.3, flush_interval=60)
    logging.root.addHandler(handler)
    logging.root.setLevel(logging.INFO)
    logging.getLogger("invoices").info("seen twice")
    assert stderr() == "seen twice\n" and handler.pending == 1 and not handler.mute_streams
    handler.close()

"""The agent's command executor: each command once per id, shell with limits, files inside allowed roots."""

from __future__ import annotations

import base64
import hashlib
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from robofleet.agents.worker import Worker
from tests.conftest import wait_until

COUNTER = [sys.executable, str(Path(__file__).resolve().parents[2] / "examples" / "robots" / "counter.py")]


def test_a_repeated_command_id_is_not_run_twice(tmp_path: Path) -> None:
    worker = Worker(tmp_path / "state")
    first = worker.execute(
        "c1", "process.start", {"run_id": "7", "argv": [*COUNTER, "--until", "2", "--every", "0.05"]}
    )
    assert first["ok"] and first["result"]["pid"] > 0
    again = worker.execute("c1", "process.start", {"run_id": "7", "argv": COUNTER})
    assert again == first and len(worker.processes.runs) == 1
    ended: list[dict[str, object]] = []

    def finished() -> bool:
        worker.new_output()  # a run is finished once its output has been read to the end, as an agent does
        ended.extend(worker.finished_runs())
        return bool(ended)

    wait_until(finished, 10)
    assert ended[0]["run_id"] == "7" and ended[0]["exit_code"] == 0
    worker.collect("7")
    assert worker.finished_runs() == []


def test_a_command_id_repeated_while_its_first_run_goes_waits_for_that_run_and_gets_its_result(
    tmp_path: Path,
) -> None:
    worker = Worker(tmp_path / "state")
    ran, gate = tmp_path / "ran.txt", tmp_path / "gate"
    # The command holds until the test opens its gate, so the repeat surely lands while it runs.
    script = {"command": f"echo once >> {ran}; while [ ! -e {gate} ]; do sleep 0.02; done; echo done"}
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(worker.execute, "slow", "shell.run", script)
        wait_until(ran.exists, 10)
        assert worker.running("slow")
        repeats = [pool.submit(worker.execute, "slow", "shell.run", script) for _ in range(2)]
        assert not any(repeat.done() for repeat in repeats)  # they wait for the first run, not run again
        gate.touch()
        outcomes = [first.result(10), *(repeat.result(10) for repeat in repeats)]
    assert outcomes[0]["ok"] and outcomes[0]["result"]["stdout"] == "done\n"
    assert outcomes[1:] == [outcomes[0], outcomes[0]]
    assert ran.read_text() == "once\n" and not worker.running("slow")
    assert worker.execute("slow", "shell.run", script) == outcomes[0]  # and from memory once it finished
    assert ran.read_text() == "once\n"


def test_commands_refuse_bad_input_with_a_reason(tmp_path: Path) -> None:
    worker = Worker(tmp_path / "state", allowed_roots=[tmp_path / "files"])
    assert worker.execute("a", "no.such", {})["error"]["code"] == "unknown_command"
    assert worker.execute("b", "process.start", {"argv": COUNTER})["error"]["code"] == "bad_args"
    assert worker.execute("c", "process.signal", {"run_id": "nope", "action": "kill"})["error"]["code"] == "not_found"
    outside = worker.execute("d", "file.get", {"path": "/etc/passwd"})
    assert outside["error"]["code"] == "forbidden_path"
    escape = worker.execute("e", "file.put", {"path": str(tmp_path / "files" / ".." / "x"), "data": ""})
    assert escape["error"]["code"] == "forbidden_path"
    assert worker.execute("f", "shell.run", {"command": "true", "timeout": 0})["error"]["code"] == "bad_args"


def test_shell_runs_with_a_timeout_and_capped_output(tmp_path: Path) -> None:
    worker = Worker(tmp_path / "state")
    done = worker.execute("s1", "shell.run", {"command": "echo hello; echo oops >&2; exit 3"})["result"]
    assert done["stdout"] == "hello\n" and done["stderr"] == "oops\n" and done["exit_code"] == 3
    slow = worker.execute("s2", "shell.run", {"command": "sleep 30", "timeout": 0.3})["result"]
    assert slow["timed_out"] and slow["seconds"] < 5
    big = worker.execute("s3", "shell.run", {"command": "yes | head -c 100000", "max_output": 1000})["result"]
    assert len(big["stdout"]) == 1000 and big["truncated"]


def test_files_move_in_chunks_with_sha256_and_a_size_limit(tmp_path: Path) -> None:
    root = tmp_path / "files"
    worker = Worker(tmp_path / "state", allowed_roots=[root], file_limit=10_000)
    content = bytes(range(256)) * 20
    digest = hashlib.sha256(content).hexdigest()
    target = str(root / "in" / "data.bin")
    first = worker.execute(
        "p1", "file.put", {"path": target, "offset": 0, "data": base64.b64encode(content[:3000]).decode()}
    )
    assert first["ok"] and not Path(target).exists()
    last = worker.execute(
        "p2",
        "file.put",
        {"path": target, "offset": 3000, "sha256": digest, "data": base64.b64encode(content[3000:]).decode()},
    )
    assert last["result"]["sha256"] == digest and Path(target).read_bytes() == content
    wrong = worker.execute(
        "p3", "file.put", {"path": target, "offset": 0, "sha256": "0" * 64, "data": base64.b64encode(b"x").decode()}
    )
    assert wrong["error"]["code"] == "checksum_mismatch" and Path(target).read_bytes() == content
    too_big = worker.execute(
        "p4", "file.put", {"path": target, "offset": 9_999, "data": base64.b64encode(b"xy").decode()}
    )
    assert too_big["error"]["code"] == "too_large"
    got = worker.execute("g1", "file.get", {"path": target, "length": 4096})["result"]
    rest = worker.execute("g2", "file.get", {"path": target, "offset": 4096})["result"]
    assert base64.b64decode(got["data"]) + base64.b64decode(rest["data"]) == content
    assert rest["eof"] and rest["sha256"] == digest


def test_system_info_and_process_list(tmp_path: Path) -> None:
    worker = Worker(tmp_path / "state")
    info = worker.execute("i", "system.info", {})["result"]
    assert info["cpu_count"] >= 1 and info["memory"]["total"] > 0 and "uptime_seconds" in info
    listing = worker.execute("l", "process.list", {})["result"]
    assert any(process["pid"] == 1 for process in listing["processes"])
    assert set(worker.hello()) >= {"host", "os_user", "os", "python", "capabilities", "runs"}

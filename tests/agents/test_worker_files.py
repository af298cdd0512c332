"""Uploads and downloads stay inside the agent's allowed roots, whatever is planted in them, and leave nothing
behind when they fail; the agent's own state is its user's alone; run ids name no path."""

from __future__ import annotations

import base64
import hashlib
import stat
import sys
from pathlib import Path
from typing import Any

from robofleet.agents.worker import Worker

CONTENT = b"invoice;amount\n42;17.50\n" * 100


def put(worker: Worker, command_id: str, path: Path, data: bytes, **extra: Any) -> dict[str, Any]:
    args = {"path": str(path), "offset": 0, "data": base64.b64encode(data).decode(), **extra}
    return worker.execute(command_id, "file.put", args)


def whole(worker: Worker, command_id: str, path: Path, data: bytes) -> dict[str, Any]:
    return put(worker, command_id, path, data, sha256=hashlib.sha256(data).hexdigest())


def parts(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*robofleet-part*"))


def test_a_link_planted_where_an_upload_goes_is_never_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "allowed", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    worker = Worker(tmp_path / "state", allowed_roots=[root])
    # Anyone who can write in the root plants links where the old agent wrote its chunks.
    (root / "report.txt.robofleet-part").symlink_to(outside / "probe")
    (root / ".report.txt.robofleet-part").symlink_to(outside / "probe2")

    assert whole(worker, "u1", root / "report.txt", CONTENT)["ok"]
    assert (root / "report.txt").read_bytes() == CONTENT
    assert list(outside.iterdir()) == []
    assert stat.S_IMODE((root / "report.txt").stat().st_mode) == 0o644

    # A download is not led out of the root by a link either, though the link's own name is inside it.
    (root / "secret-link").symlink_to(outside / "secret")
    (outside / "secret").write_text("outside the root")
    refused = worker.execute("g1", "file.get", {"path": str(root / "secret-link")})
    assert refused["error"]["code"] == "forbidden_path"


def test_the_root_itself_and_directories_are_no_targets_and_nothing_is_left_beside_them(tmp_path: Path) -> None:
    root = tmp_path / "allowed"
    (root / "sub").mkdir(parents=True)
    worker = Worker(tmp_path / "state", allowed_roots=[root])

    on_root = whole(worker, "u1", root, CONTENT)
    assert on_root["error"]["code"] == "forbidden_path" and "allowed root itself" in on_root["error"]["message"]
    on_folder = whole(worker, "u2", root / "sub", CONTENT)
    assert on_folder["error"]["code"] == "is_a_directory"
    assert parts(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["allowed", "state"]


def test_a_failed_upload_leaves_no_part_file(tmp_path: Path) -> None:
    root = tmp_path / "allowed"
    root.mkdir()
    worker = Worker(tmp_path / "state", allowed_roots=[root], file_limit=10_000)
    target = root / "data.bin"

    wrong = put(worker, "u1", target, CONTENT, sha256="0" * 64)
    assert wrong["error"]["code"] == "checksum_mismatch" and parts(root) == []

    assert put(worker, "u2", target, CONTENT[:1000])["ok"] and len(parts(root)) == 1
    too_big = worker.execute(
        "u3", "file.put", {"path": str(target), "offset": 9_999, "data": base64.b64encode(b"xy").decode()}
    )
    assert too_big["error"]["code"] == "too_large" and parts(root) == []
    # The upload that failed is over: its next chunk is refused, not written to a file made anew.
    late = worker.execute(
        "u4", "file.put", {"path": str(target), "offset": 1000, "data": base64.b64encode(CONTENT[1000:]).decode()}
    )
    assert late["error"]["code"] == "bad_args" and parts(root) == [] and not target.exists()


def test_the_agents_state_is_its_users_alone_and_run_ids_name_no_path(tmp_path: Path) -> None:
    worker = Worker(tmp_path / "state")
    escape = worker.execute("p1", "process.start", {"run_id": "../../escape", "argv": ["true"]})
    assert escape["error"]["code"] == "bad_args" and not (tmp_path / "escape").exists()
    assert not list(tmp_path.rglob("escape"))

    started = worker.execute("p2", "process.start", {"run_id": "12", "argv": [sys.executable, "-c", "print(1)"]})
    assert started["ok"], started
    run_dir = tmp_path / "state" / "runs" / "12"
    for folder in (tmp_path / "state", tmp_path / "state" / "runs", run_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for spool in ("stdout.log", "stderr.log"):
        assert stat.S_IMODE((run_dir / spool).stat().st_mode) == 0o600, spool

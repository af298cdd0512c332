"""The store's files kept from other local users: the data dir 0700, the SQLite database and its side files 0600.

They hold robot env secrets in clear, every log, the audit log and password hashes. Modes are set by chmod, not by
changing the process's umask, which robots started by serve would inherit."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# SQLite gives these the database file's mode when it creates them.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> None:
    """`path` and its missing parents created; `path` itself made 0700, also when an earlier start left it 0755."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _restrict(path, PRIVATE_DIR)


def private_database(path: Path) -> None:
    """The SQLite database at `path` created empty when missing (an empty file is a new database to SQLite), and
    it and its side files made 0600, so that the side files SQLite creates later are 0600 too."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_SIDE_FILES)):
        if file.exists():
            _restrict(file, PRIVATE_FILE)


def _restrict(path: Path, mode: int) -> None:
    if stat.S_IMODE(path.stat().st_mode) == mode:
        return
    try:
        path.chmod(mode)
    except PermissionError:  # another user's file, shared on purpose: said, not fatal
        log.warning("%s is readable by others and not ours to restrict (chmod %o)", path, mode)

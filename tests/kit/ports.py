"""Free TCP ports for the servers tests start, PostgreSQL clusters included."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port of 127.0.0.1 that nobody listens on at this moment, chosen by the kernel.

    Another process may take it before the caller binds it (another test's server when pytest-xdist runs tests in
    parallel, or an outgoing connection): `ServeProcess.start` notices and moves to a new port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

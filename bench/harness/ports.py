"""Free TCP ports on loopback for the servers a benchmark or a test starts."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port free on loopback right now (bind to port 0 and let the kernel choose).

    Nothing reserves it: the caller hands it to the process that binds it a moment later.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

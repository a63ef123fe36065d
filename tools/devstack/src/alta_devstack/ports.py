"""Free TCP ports for servers started by tests and scripts."""

import socket


def find_free_port(host: str = "127.0.0.1") -> int:
    # The port is released before the caller binds it, so another process could take it in
    # between; acceptable for local runs, where nothing else hands out ports this fast.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port

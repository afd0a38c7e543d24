"""Runs an ASGI app on 127.0.0.1 in a background thread: the platform sandboxes and the test
stand-ins all use this one runner."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

__all__ = ["serve_app"]


@contextmanager
def serve_app(app: ASGIApp, *, port: int = 0, host: str = "127.0.0.1", lifespan: str = "on",
              startup_timeout: float = 15.0, name: str = "local-server") -> Iterator[str]:
    """Yields the base URL. ``port=0`` picks a free port; a stopped server's port restarts it at the same URL."""
    # IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then; without it Nagle meets
    # delayed ACKs and every keep-alive request waits ~40 ms
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan,  # type: ignore[arg-type]
                                           timeout_graceful_shutdown=3, timeout_keep_alive=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"{name}-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{name} failed to start (see the log above)")
            time.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()

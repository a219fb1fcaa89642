"""Run an ASGI app with a real uvicorn server in a background thread (tests, demo, benchmarks)."""

from __future__ import annotations

import threading
import time

import uvicorn

from devenv.temporal_server import free_port


class UvicornThread:
    def __init__(self, app: object, port: int | None = None, *, log_level: str = "warning") -> None:
        self.port = port or free_port()
        # proxy_headers off, as deployed: the API reads X-Forwarded-For itself (api/ingress.py).
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level=log_level, lifespan="on", proxy_headers=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> UvicornThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""Running the sandbox: in background threads for tests (`Sandbox`), or in the foreground for
the `reconciler sandbox` command (`serve_forever`)."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType

from .app import SandboxApp
from .handler import SandboxHTTPServer
from .settings import SandboxConfig


class Sandbox:
    """A sandbox server on a background thread; use as a context manager or start()/stop()."""

    def __init__(self, config: SandboxConfig) -> None:
        """Raises ValueError if the seed data is not `{WSID: {version: {distinct_id: channel}}}`."""
        self.config = config
        self.app = SandboxApp(config)
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return self._server.server_port

    @property
    def url(self) -> str:
        """The API base URL, the sandbox's stand-in for https://api.fyno.io/v1."""
        return f"http://{self.config.host}:{self.port}/v1"

    @property
    def admin_url(self) -> str:
        """Where the test routes live: `{admin_url}/data`, `/log`, `/faults`."""
        return f"http://{self.config.host}:{self.port}/_sandbox"

    def start(self) -> Sandbox:
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        server = SandboxHTTPServer((self.config.host, self.config.port), self.app)
        self._server = server
        # a short poll so that stop() returns promptly
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"sandbox-{server.server_port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(config: SandboxConfig) -> None:
    """Serve in the foreground until SIGINT or SIGTERM, then stop cleanly and return.

    Prints one line, `Sandbox listening on <url>`, once the port is bound, so that a parent
    process can wait for it and read the port.
    """
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    handled = (signal.SIGINT, signal.SIGTERM)
    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, on_signal) for sig in handled} if in_main else {}
    try:
        with Sandbox(config) as sandbox:
            print(f"Sandbox listening on {sandbox.url}", flush=True)
            # a timed wait: signal handlers only run between the main thread's bytecodes
            while not stopping.wait(0.2):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.stdout.flush()

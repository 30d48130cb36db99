"""Process plumbing both services share: logging, uvloop, serving an app until a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web


def package_version() -> str:
    """Tollgate's installed version (both servers' OpenAPI documents show it)."""
    try:
        return version("tollgate")
    except PackageNotFoundError:
        return "0.0.0"


#: Tollgate's own loggers: ``TOLLGATE_LOG_LEVEL`` sets theirs, down to DEBUG.
OWN_LOGGERS = ("billing_worker", "gateway", "shared", "tollgate")


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr at ``level`` for Tollgate's own loggers, and at INFO at most for the
    libraries': their DEBUG output echoes what they carry (aiosqlite logs every statement
    with its parameters: webhook secrets, sealed or not; redis-py its commands), and no
    log level may print a secret."""
    wanted = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    logging.basicConfig(
        level=max(wanted, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(wanted)


def install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    access_log: bool = False,
    reuse_port: bool = False,
    on_ready: Callable[[], Awaitable[None]] | None = None,
    listen: bool = True,
    runner_class: type[web.AppRunner] = web.AppRunner,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down gracefully. Without ``listen``
    the app's background work (its cleanup contexts) runs with no port open."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = runner_class(
        app, access_log=logging.getLogger("aiohttp.access") if access_log else None
    )
    await runner.setup()
    try:
        if listen:
            site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
            await site.start()
            logging.getLogger(__name__).info("serving http://%s:%d", host, port)
        else:
            logging.getLogger(__name__).info("running, with no port open")
        if on_ready is not None:
            await on_ready()
        await stop.wait()
    finally:
        await runner.cleanup()


def terminate(
    processes: Sequence[subprocess.Popen[bytes]], timeout: float = 10.0, *, in_order: bool = False
) -> None:
    """SIGTERM every process still running (last started first), then kill stragglers.

    With ``in_order`` each is stopped before the next is asked to, so a service stops before
    the Redis it uses (which it would otherwise log as lost on its way out).
    """
    if in_order:
        for process in reversed(processes):
            terminate([process], timeout)
        return
    for process in reversed(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in reversed(processes):
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Supervisor:
    """Runs until SIGINT, SIGTERM or SIGHUP, or until a watched child process exits.

    The handlers are installed explicitly: a process started in the background by a
    non-interactive shell inherits SIGINT as ignored, and Python then never raises
    KeyboardInterrupt.
    """

    def __init__(self) -> None:
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._stop)  # the terminal closed: stop the children too

    def _stop(self, _signum: int, _frame: object) -> None:
        self.stopping = True

    def watch(
        self, processes: Sequence[subprocess.Popen[bytes]], poll: float = 0.5
    ) -> subprocess.Popen[bytes] | None:
        """Block until a signal (returns None) or a child's exit (returns that child)."""
        while not self.stopping:
            for process in processes:
                if process.poll() is not None:
                    return process
            time.sleep(poll)
        return None

"""``python -m gateway``: serve the gateway with the settings from the environment.

With ``TOLLGATE_GATEWAY_PROCESSES`` > 1 this process supervises that many gateway
processes sharing the port (``SO_REUSEPORT``: the kernel spreads connections); a signal
stops them all, and if one dies the others are stopped too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

from gateway.app import create_app
from gateway.settings import GatewaySettings
from shared.runtime import configure_logging, install_uvloop, serve, terminate


def _supervise(processes: int) -> int:
    env = {**os.environ, "TOLLGATE_GATEWAY_PROCESSES": "1"}
    children = [
        subprocess.Popen([sys.executable, "-m", "gateway"], env=env) for _ in range(processes)
    ]
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while not stopping:
        if any(child.poll() is not None for child in children):
            status = 1
            break
        time.sleep(0.2)
    terminate(children)
    return status


def main() -> None:
    configure_logging(os.environ.get("TOLLGATE_LOG_LEVEL", "INFO"))
    settings = GatewaySettings.from_env(os.environ)
    if settings.processes > 1:
        sys.exit(_supervise(settings.processes))
    install_uvloop()
    asyncio.run(
        serve(
            create_app(settings),
            settings.host,
            settings.port,
            access_log=settings.access_log,
            reuse_port=True,
        )
    )


if __name__ == "__main__":
    main()

"""``python -m gateway``: serve the gateway with the settings from the environment.

With ``TOLLGATE_GATEWAY_PROCESSES`` > 1 this process supervises that many gateway
processes sharing the port (``SO_REUSEPORT``: the kernel spreads connections); a signal
stops them all, and if one dies the others are stopped too.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from gateway.app import create_app
from gateway.server import GatewayRunner
from gateway.settings import GatewaySettings
from shared.runtime import Supervisor, configure_logging, install_uvloop, serve, terminate


def _supervise(processes: int) -> int:
    supervisor = Supervisor()
    env = {**os.environ, "TOLLGATE_GATEWAY_PROCESSES": "1"}
    children = [
        subprocess.Popen([sys.executable, "-m", "gateway"], env=env) for _ in range(processes)
    ]
    died = supervisor.watch(children, poll=0.2)
    terminate(children)
    return 0 if died is None else 1


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
            runner_class=GatewayRunner,
        )
    )


if __name__ == "__main__":
    main()

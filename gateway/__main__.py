"""``python -m gateway``: serve the gateway with the settings from the environment."""

from __future__ import annotations

import asyncio
import os

from gateway.app import create_app
from gateway.settings import GatewaySettings
from shared.runtime import configure_logging, install_uvloop, serve


def main() -> None:
    configure_logging(os.environ.get("TOLLGATE_LOG_LEVEL", "INFO"))
    settings = GatewaySettings.from_env(os.environ)
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

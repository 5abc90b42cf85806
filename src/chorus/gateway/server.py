"""Run the gateway on uvicorn: one process with the app built here, or ``workers``
processes that each build it from the same config file (``CHORUS_GATEWAY_CONFIG``)."""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Any

from starlette.applications import Starlette

from chorus.config.builder import Config
from chorus.config.schema import GatewayConfig
from chorus.gateway._uvicorn import GatewayHttpToolsProtocol
from chorus.gateway.app import create_app
from chorus.gateway.service import Gateway

__all__ = ["CONFIG_ENV", "app_from_env", "build_app", "run", "uvicorn_options"]

#: The config file a worker process builds its app from.
CONFIG_ENV = "CHORUS_GATEWAY_CONFIG"


def build_app(path: str | None) -> Starlette:
    cfg = Config.load(path)
    return create_app(Gateway.from_config(cfg))


def app_from_env() -> Starlette:
    """The uvicorn factory of a worker process."""
    return build_app(os.environ.get(CONFIG_ENV) or None)


def uvicorn_options(settings: GatewayConfig) -> dict[str, Any]:
    """uvicorn's settings for the gateway: httptools under chorus's protocol (read limits
    from ``settings``, one write per answer), uvloop where it is installed."""
    # A partial of a class at module level: picklable, so worker processes get it too.
    http = functools.partial(GatewayHttpToolsProtocol, head_timeout_s=settings.head_timeout_s,
                             body_timeout_s=settings.body_limit_s)
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return {"http": http, "loop": loop, "access_log": False, "log_level": "warning",
            "lifespan": "on", "server_header": False}


def run(app: Starlette | None, *, path: str | None, host: str, port: int,
        settings: GatewayConfig, workers: int = 1) -> None:
    """Serve until interrupted. With one worker ``app`` (already built) is served as is."""
    import uvicorn

    if workers <= 1 and app is not None:
        uvicorn.run(app, host=host, port=port, **uvicorn_options(settings))
        return
    if path is not None:
        os.environ[CONFIG_ENV] = os.path.abspath(path)
    uvicorn.run("chorus.gateway.server:app_from_env", factory=True, host=host, port=port,
                workers=workers, **uvicorn_options(settings))

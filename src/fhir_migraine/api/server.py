"""``fhir-migraine serve``: the Flask app under gunicorn, one app per worker process."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from fhir_migraine import logs
from fhir_migraine.config import Settings


class JsonLogger(Logger):  # type: ignore[misc]
    """gunicorn's own messages as JSON lines, through the project's formatter."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        logs.configure()


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Each worker builds its own app and database connection after the fork.
        from fhir_migraine.api import create_app

        logs.configure()
        return create_app(self.settings)


def serve(settings: Settings, *, host: str, port: int) -> int:
    logs.configure()
    options = {
        "bind": f"{host}:{port}",
        "workers": settings.workers,
        "accesslog": None,
        "logger_class": JsonLogger,  # request paths can name patients; the app logs without PHI
        "timeout": 60,
        "graceful_timeout": 20,
    }
    _Gunicorn(settings, options).run()
    return 0

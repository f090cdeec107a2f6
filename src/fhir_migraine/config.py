"""Settings of the service and CLI, read once from ``FHIR_MIGRAINE_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from fhir_migraine.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SEED = REPO_ROOT / "examples" / "protocols"


@dataclass(frozen=True)
class Settings:
    """Everything configurable; the defaults run the service locally with nothing to set up."""

    database: str = "var/fhir-migraine.sqlite3"
    seed_protocols: str | None = str(DEFAULT_SEED) if DEFAULT_SEED.is_dir() else None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        defaults = cls()
        try:
            port = int(env.get("FHIR_MIGRAINE_PORT", defaults.port))
            workers = int(env.get("FHIR_MIGRAINE_WORKERS", defaults.workers))
        except ValueError as exc:
            raise ConfigError(f"FHIR_MIGRAINE_PORT and FHIR_MIGRAINE_WORKERS must be integers: {exc}") from None
        seed = env.get("FHIR_MIGRAINE_SEED_PROTOCOLS", defaults.seed_protocols or "")
        return cls(
            database=env.get("FHIR_MIGRAINE_DB", defaults.database),
            seed_protocols=seed or None,
            host=env.get("FHIR_MIGRAINE_HOST", defaults.host),
            port=port,
            workers=workers,
        )

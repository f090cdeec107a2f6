"""Settings of the service and CLI, read once from ``FHIR_MIGRAINE_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from fhir_migraine.errors import ConfigError


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {text!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {text!r}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = env.get(name, "").strip().lower()
    if not text:
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {text!r}")


@dataclass(frozen=True)
class Settings:
    """Everything configurable; the defaults run the service locally with nothing to set up."""

    database: str = "var/fhir-migraine.sqlite3"
    # A folder of protocol files that seeds an empty library; None: the example protocols
    # shipped inside the package.
    seed_protocols: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    # The EHR: no URL means orders and diaries are mapped but not pushed.
    ehr_url: str | None = None
    ehr_timeout: float = 30.0
    ehr_verify: bool | str = True
    transaction_size: int = 100
    retry_base: float = 1.0
    retry_cap: float = 300.0
    lease: float = 120.0
    max_attempts: int = 0
    worker: bool = True
    worker_interval: float = 0.5
    # Callers of this service: a static bearer token and/or JWTs checked against a key.
    api_token: str | None = None
    api_jwt_key: str | None = None
    api_jwt_algorithms: tuple[str, ...] = ("RS256", "ES256")
    api_jwt_audience: str | None = None
    api_jwt_issuer: str | None = None
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        defaults = cls()
        seed = env.get("FHIR_MIGRAINE_SEED_PROTOCOLS", "").strip()
        if seed and not Path(seed).is_dir():
            raise ConfigError(f"FHIR_MIGRAINE_SEED_PROTOCOLS: no such folder {seed!r}")
        verify: bool | str = env.get("FHIR_MIGRAINE_EHR_CA_BUNDLE") or _flag(env, "FHIR_MIGRAINE_EHR_VERIFY_TLS", True)
        key = env.get("FHIR_MIGRAINE_API_JWT_KEY")
        if key and not key.lstrip().startswith("-----BEGIN"):
            path = Path(key)
            if not path.is_file():
                raise ConfigError(f"FHIR_MIGRAINE_API_JWT_KEY: no such PEM file {key!r}")
            key = path.read_text(encoding="utf-8")
        algorithms = tuple(a.strip() for a in env.get("FHIR_MIGRAINE_API_JWT_ALGORITHMS", "RS256,ES256").split(",") if a.strip())
        return cls(
            database=env.get("FHIR_MIGRAINE_DB", defaults.database),
            seed_protocols=seed or None,
            host=env.get("FHIR_MIGRAINE_HOST", defaults.host),
            port=int(_number(env, "FHIR_MIGRAINE_PORT", defaults.port)),
            workers=max(1, int(_number(env, "FHIR_MIGRAINE_WORKERS", defaults.workers))),
            ehr_url=env.get("FHIR_MIGRAINE_EHR_URL") or None,
            ehr_timeout=_number(env, "FHIR_MIGRAINE_EHR_TIMEOUT", defaults.ehr_timeout),
            ehr_verify=verify,
            transaction_size=max(1, int(_number(env, "FHIR_MIGRAINE_TRANSACTION_SIZE", defaults.transaction_size))),
            retry_base=_number(env, "FHIR_MIGRAINE_RETRY_BASE", defaults.retry_base),
            retry_cap=_number(env, "FHIR_MIGRAINE_RETRY_CAP", defaults.retry_cap),
            lease=_number(env, "FHIR_MIGRAINE_LEASE", defaults.lease),
            max_attempts=int(_number(env, "FHIR_MIGRAINE_MAX_ATTEMPTS", defaults.max_attempts)),
            worker=_flag(env, "FHIR_MIGRAINE_WORKER", defaults.worker),
            worker_interval=_number(env, "FHIR_MIGRAINE_WORKER_INTERVAL", defaults.worker_interval),
            api_token=env.get("FHIR_MIGRAINE_API_TOKEN") or None,
            api_jwt_key=key or None,
            api_jwt_algorithms=algorithms,
            api_jwt_audience=env.get("FHIR_MIGRAINE_API_JWT_AUDIENCE") or None,
            api_jwt_issuer=env.get("FHIR_MIGRAINE_API_JWT_ISSUER") or None,
            env=env,
        )

"""Settings of the service and CLI: one typed tree, read once from ``FHIR_MIGRAINE_*`` environment
variables by ``Settings.from_env``. Nothing else in the project reads the environment.

    Settings
      database, seed_protocols
      http     HttpSettings       host, port, workers, threads, read_timeout, hung_worker_timeout (gunicorn);
                                  max_body_bytes, max_diary_entries (what one request may carry),
                                  max_import_bytes (what one POST /imports upload may carry)
      ehr      EhrSettings        url, timeout, verify, transaction_size, allow_http,
                                  probe_interval, probe_timeout (the readiness probe),
                                  gateway_origin (also trusted with the credentials), max_count,
                                  write_strategy (auto: from the CapabilityStatement), capabilities_ttl
        auth   EhrAuthSettings    mode and the credentials that mode needs
      outbox   OutboxSettings     retry_base, retry_cap, lease, max_attempts, retry_after_cap,
                                  retention_days
      worker   WorkerSettings     enabled, interval
      pull     PullSettings       max_retries, max_wait (of a page the EHR is busy for), cursor_overlap,
                                  bulk, bulk_timeout, bulk_max_file_bytes (a group's pull)
      api      ApiAuthSettings    token, jwt_key, jwt_algorithms, jwt_audience, jwt_issuer,
                                  protocols_token, metrics_token (GET /metrics only)
      orders   OrderSettings      status, intent (of the MedicationRequests and RequestGroup an order
                                  becomes), weight_observation (also chart the weight as a vital sign)
      smart    SmartSettings      client_id, trusted issuers, public_url (the redirect URL's base),
                                  session_ttl, allow_http, frame_ancestors (the SMART app; see
                                  docs/smart-app.md)
      cds      CdsSettings        public_url, issuers (trusted EHRs and their JWKS), jku_allowed,
                                  algorithms, allowed_origins (CORS), fetch_timeout, allow_http
                                  (the CDS Hooks services; see docs/cds-hooks.md)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from fhir_migraine.errors import ConfigError
from fhir_migraine.mapping.order_settings import ORDER_INTENTS, ORDER_STATUSES, OrderSettings

PREFIX = "FHIR_MIGRAINE_"
#: How outbox items are written to the EHR (see ehr.capabilities): the Bundle kinds, or one request per resource.
WRITE_STRATEGIES = ("transaction", "batch", "per-resource")

ENV_AUTH = "FHIR_MIGRAINE_EHR_AUTH"
ENV_TOKEN = "FHIR_MIGRAINE_EHR_TOKEN"
ENV_TOKEN_URL = "FHIR_MIGRAINE_EHR_TOKEN_URL"
ENV_CLIENT_ID = "FHIR_MIGRAINE_EHR_CLIENT_ID"
ENV_CLIENT_SECRET = "FHIR_MIGRAINE_EHR_CLIENT_SECRET"
ENV_SCOPE = "FHIR_MIGRAINE_EHR_SCOPE"
ENV_PRIVATE_KEY = "FHIR_MIGRAINE_EHR_PRIVATE_KEY"
ENV_KEY_ID = "FHIR_MIGRAINE_EHR_KEY_ID"
ENV_JWT_ALG = "FHIR_MIGRAINE_EHR_JWT_ALG"
ENV_CLIENT_AUTH_METHOD = "FHIR_MIGRAINE_EHR_CLIENT_AUTH_METHOD"
ENV_CLOCK_SKEW = "FHIR_MIGRAINE_EHR_CLOCK_SKEW"

#: How a client with a secret authenticates to the token endpoint (the names of RFC 7591 §2,
#: ``token_endpoint_auth_method``): HTTP Basic, or the id and secret in the form body (RFC 6749 §2.3.1).
CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
#: The most clock skew a SMART assertion may allow for (its ``iat`` is set that far back, so the
#: assertion stays valid for at least two minutes on our clock).
MAX_CLOCK_SKEW = 120
DEFAULT_CLOCK_SKEW = 30

#: Which variables each value of FHIR_MIGRAINE_EHR_AUTH reads; setting any other is a contradiction.
AUTH_MODES: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "bearer": frozenset({ENV_TOKEN}),
    "client-credentials": frozenset({ENV_TOKEN_URL, ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_SCOPE, ENV_CLIENT_AUTH_METHOD}),
    "smart-backend": frozenset({ENV_TOKEN_URL, ENV_CLIENT_ID, ENV_SCOPE, ENV_PRIVATE_KEY, ENV_KEY_ID, ENV_JWT_ALG,
                                ENV_CLOCK_SKEW}),
}
AUTH_VARIABLES = frozenset().union(*AUTH_MODES.values())
#: Variables a mode may leave unset: the token URL is then discovered from the EHR's
#: ``.well-known/smart-configuration``; the others have defaults.
AUTH_OPTIONAL = frozenset({ENV_TOKEN_URL, ENV_SCOPE, ENV_JWT_ALG, ENV_CLIENT_AUTH_METHOD, ENV_CLOCK_SKEW})


@dataclass(frozen=True)
class HttpSettings:
    """Where ``serve`` listens, its gunicorn worker processes and threads, how long it waits for a
    client to send a request, and how much one request may carry."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    threads: int = 8  # request threads per worker process (a bounded pool)
    read_timeout: float = 10.0  # seconds a client may take to send its headers, and its body
    max_body_bytes: int = 4 * 1024 * 1024
    max_diary_entries: int = 1000  # per POST /diary; larger diaries go through POST /imports
    max_import_bytes: int = 256 * 1024 * 1024  # one NDJSON upload to POST /imports, streamed to disk
    hung_worker_timeout: float = 60.0  # seconds a process may miss its heartbeat before gunicorn restarts it


@dataclass(frozen=True)
class EhrAuthSettings:
    """How to authenticate to the EHR (see ``ehr.auth`` and docs/ehr-auth.md)."""

    mode: str = "none"  # none | bearer | client-credentials | smart-backend
    token: str | None = field(default=None, repr=False)
    token_url: str | None = None  # None: discovered from the EHR's .well-known/smart-configuration
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    scope: str | None = None
    private_key_pem: str | None = field(default=None, repr=False)  # the PEM text, read from its file
    key_id: str | None = None
    jwt_alg: str = "RS384"
    client_auth_method: str = "client_secret_basic"  # client-credentials: or client_secret_post
    clock_skew: int = DEFAULT_CLOCK_SKEW  # smart-backend: seconds the token endpoint's clock may differ from ours


@dataclass(frozen=True)
class EhrSettings:
    """The EHR: no URL means orders and diaries are mapped but not pushed."""

    url: str | None = None
    timeout: float = 30.0
    verify: bool | str = True  # TLS verification, or the path of a CA bundle
    transaction_size: int = 100
    auth: EhrAuthSettings = field(default_factory=EhrAuthSettings)
    allow_http: bool = False  # plain http to a host that is not loopback
    probe_interval: float = 15.0  # seconds between readiness probes of the EHR
    probe_timeout: float = 3.0
    # An origin (scheme://host[:port]) besides the URL's that the EHR's page links may lead to and
    # the credentials may be sent to: an API gateway in front of the EHR.
    gateway_origin: str | None = None
    max_count: int = 200  # the largest _count asked of the EHR (Oracle Health's documented maximum)
    # auto: the best the CapabilityStatement advertises (transaction, batch, per-resource); or one of those.
    write_strategy: str = "auto"
    capabilities_ttl: float = 300.0  # seconds the CapabilityStatement is kept before it is read again


@dataclass(frozen=True)
class OutboxSettings:
    """Retries of outbox items: backoff, its cap, the lease of one worker, when to give up (0: never),
    the longest ``Retry-After`` honoured, and how long sent Bundles are kept."""

    retry_base: float = 1.0
    retry_cap: float = 300.0
    lease: float = 120.0
    # 1.3 to 3.5 hours of failures at the default backoff (after attempts 1 to 9 it waits up to
    # 1 s ... 256 s, then 150 s to 300 s each time): an item that keeps failing holds back its
    # patient's later items, so it may not do so for ever.
    max_attempts: int = 50
    retry_after_cap: float = 3600.0
    retention_days: float = 30.0


@dataclass(frozen=True)
class WorkerSettings:
    """The outbox worker of each service process."""

    enabled: bool = True
    interval: float = 0.5


@dataclass(frozen=True)
class PullSettings:
    """Pulls from the EHR: how often one page the EHR is busy for (429, 503) or slow with is asked
    again, how many seconds one pull may wait in all, and how far back of the EHR's clock a cursor
    pull starts the next one (see docs/pull.md)."""

    max_retries: int = 5
    max_wait: float = 60.0
    cursor_overlap: float = 60.0
    #: A group's pull: FHIR Bulk Data where the EHR offers it (``auto``), or one pull per patient (``never``).
    bulk: str = "auto"
    #: Seconds a bulk export may take from kick-off to its manifest.
    bulk_timeout: float = 3600.0
    #: The largest file of a bulk export written to disk.
    bulk_max_file_bytes: int = 1024 ** 3


@dataclass(frozen=True)
class ApiAuthSettings:
    """Callers of this service: static bearer tokens and/or JWTs checked against a public key. The
    static ``token`` reads and writes orders and diaries; only ``protocols_token`` (or a JWT with
    the protocols scope) may change the protocol library, and only ``metrics_token`` (or a JWT with
    the metrics scope) may read ``GET /metrics``, which grants nothing else. A JWT key needs
    ``jwt_audience``."""

    token: str | None = field(default=None, repr=False)
    jwt_key: str | None = field(default=None, repr=False)  # PEM text
    jwt_algorithms: tuple[str, ...] = ("RS256", "ES256")
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    protocols_token: str | None = field(default=None, repr=False)
    metrics_token: str | None = field(default=None, repr=False)


#: The data scopes the SMART app asks for, read only (SMART App Launch 2.x, ``patient/<type>.rs``: read
#: and search), beside ``launch`` (EHR launch) or ``launch/patient`` (standalone launch).
SMART_SCOPES = ("patient/Patient.rs", "patient/Observation.rs", "patient/MedicationStatement.rs",
                "patient/MedicationRequest.rs", "patient/QuestionnaireResponse.rs", "patient/DocumentReference.rs")


@dataclass(frozen=True)
class SmartSettings:
    """The SMART on FHIR app (``api.smart_app``): its client id as the EHR registered it, the FHIR
    base URLs (``iss``) it may be launched from (the first is the standalone launch's), the public
    base URL of this service (the redirect URL is ``<public_url>/smart/callback``), and how many
    seconds a launch and a clinician's session last. No client id: the app is off."""

    client_id: str | None = None
    issuers: tuple[str, ...] = ()
    public_url: str | None = None
    session_ttl: float = 3600.0
    allow_http: bool = False  # plain http to an EHR that is not this machine
    # Origins whose pages may frame the app (CSP frame-ancestors); empty: the trusted issuers' origins.
    frame_ancestors: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.client_id and self.issuers and self.public_url)


@dataclass(frozen=True)
class CdsSettings:
    """The CDS Hooks services (``api.cds_routes``): the public base URL of this service (each
    service's JWT ``aud`` is ``<public_url>/cds-services/<id>``), the EHRs trusted to call them
    (``issuers``: each ``iss`` with the file or https URL of its JWKS, or None when its keys are
    only found through a ``jku`` header allowed for that issuer in ``jku_allowed``), the JWS algorithms accepted, the
    browser origins allowed by CORS (``*``: any, the CDS Hooks default), how many seconds a query
    to the EHR's ``fhirServer`` may take, and whether plain http to a ``fhirServer`` that is not
    this machine is allowed. No issuer: every call is refused (401)."""

    public_url: str | None = None
    issuers: tuple[tuple[str, str | None], ...] = ()
    jku_allowed: tuple[tuple[str, str], ...] = ()  # (iss, jku URL): each jku only for its issuer
    algorithms: tuple[str, ...] = ("RS384", "ES384")
    allowed_origins: tuple[str, ...] = ("*",)
    fetch_timeout: float = 5.0
    allow_http: bool = False

    def jwks_of(self, iss: str) -> str | None:
        """Where the JWKS of a trusted ``iss`` is (None: only through an allowed ``jku``)."""
        return dict(self.issuers).get(iss)

    def trusts(self, iss: str) -> bool:
        return any(known == iss for known, _ in self.issuers)


#: The JWS algorithms a CDS client may sign with: asymmetric only (CDS Hooks 2.0 names RS384 and
#: ES384 as the ones a service must support); never ``none`` nor a shared-secret HMAC.
CDS_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512")


@dataclass(frozen=True)
class Settings:
    """Everything configurable; the defaults run the service locally with nothing to set up."""

    database: str = "var/fhir-migraine.sqlite3"
    # A folder of protocol files that seeds an empty library; None: the example protocols
    # shipped inside the package.
    seed_protocols: str | None = None
    http: HttpSettings = field(default_factory=HttpSettings)
    ehr: EhrSettings = field(default_factory=EhrSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    api: ApiAuthSettings = field(default_factory=ApiAuthSettings)
    orders: OrderSettings = field(default_factory=OrderSettings)
    pull: PullSettings = field(default_factory=PullSettings)
    smart: SmartSettings = field(default_factory=SmartSettings)
    cds: CdsSettings = field(default_factory=CdsSettings)
    # Where NDJSON uploads wait for an importer; None: ``imports`` next to the SQLite database
    # (``var/imports`` with PostgreSQL). Instances sharing a PostgreSQL database share this folder.
    import_dir: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings the ``FHIR_MIGRAINE_*`` variables of ``env`` (the process environment when
        None) describe; a ConfigError naming the variable for any value that cannot be used."""
        read = _Reader({k: v for k, v in (os.environ if env is None else env).items() if k.startswith(PREFIX)})
        seed = read.text("FHIR_MIGRAINE_SEED_PROTOCOLS")
        if seed is not None and not Path(seed).is_dir():
            raise ConfigError(f"FHIR_MIGRAINE_SEED_PROTOCOLS: no such folder {seed!r}")
        http = HttpSettings(
            host=read.text("FHIR_MIGRAINE_HOST") or HttpSettings.host,
            port=read.integer("FHIR_MIGRAINE_PORT", HttpSettings.port, low=1, high=65535),
            workers=read.integer("FHIR_MIGRAINE_WORKERS", HttpSettings.workers, low=1),
            threads=read.integer("FHIR_MIGRAINE_THREADS", HttpSettings.threads, low=1),
            read_timeout=read.number("FHIR_MIGRAINE_READ_TIMEOUT", HttpSettings.read_timeout, positive=True),
            max_body_bytes=read.integer("FHIR_MIGRAINE_MAX_BODY_BYTES", HttpSettings.max_body_bytes, low=1024),
            max_diary_entries=read.integer("FHIR_MIGRAINE_MAX_DIARY_ENTRIES", HttpSettings.max_diary_entries, low=1),
            max_import_bytes=read.integer("FHIR_MIGRAINE_MAX_IMPORT_BYTES", HttpSettings.max_import_bytes, low=1024),
            hung_worker_timeout=read.number("FHIR_MIGRAINE_HUNG_WORKER_TIMEOUT", HttpSettings.hung_worker_timeout,
                                            positive=True),
        )
        ehr = EhrSettings(
            url=read.text("FHIR_MIGRAINE_EHR_URL"),
            timeout=read.number("FHIR_MIGRAINE_EHR_TIMEOUT", EhrSettings.timeout, positive=True),
            verify=read.text("FHIR_MIGRAINE_EHR_CA_BUNDLE") or read.flag("FHIR_MIGRAINE_EHR_VERIFY_TLS", True),
            transaction_size=read.integer("FHIR_MIGRAINE_TRANSACTION_SIZE", EhrSettings.transaction_size, low=1),
            auth=_ehr_auth(read),
            allow_http=read.flag("FHIR_MIGRAINE_EHR_ALLOW_HTTP", EhrSettings.allow_http),
            probe_interval=read.number("FHIR_MIGRAINE_EHR_PROBE_INTERVAL", EhrSettings.probe_interval, positive=True),
            probe_timeout=read.number("FHIR_MIGRAINE_EHR_PROBE_TIMEOUT", EhrSettings.probe_timeout, positive=True),
            gateway_origin=_origin(read.text("FHIR_MIGRAINE_EHR_GATEWAY_ORIGIN"), "FHIR_MIGRAINE_EHR_GATEWAY_ORIGIN"),
            max_count=read.integer("FHIR_MIGRAINE_EHR_MAX_COUNT", EhrSettings.max_count, low=1),
            write_strategy=read.choice("FHIR_MIGRAINE_EHR_WRITE_STRATEGY", EhrSettings.write_strategy,
                                       ("auto", *WRITE_STRATEGIES)),
            capabilities_ttl=read.number("FHIR_MIGRAINE_EHR_CAPABILITIES_TTL", EhrSettings.capabilities_ttl,
                                         positive=True),
        )
        pull = PullSettings(
            max_retries=read.integer("FHIR_MIGRAINE_PULL_MAX_RETRIES", PullSettings.max_retries, low=0),
            max_wait=read.number("FHIR_MIGRAINE_PULL_MAX_WAIT", PullSettings.max_wait),
            cursor_overlap=read.number("FHIR_MIGRAINE_PULL_CURSOR_OVERLAP", PullSettings.cursor_overlap),
            bulk=read.choice("FHIR_MIGRAINE_PULL_BULK", PullSettings.bulk, ("auto", "never")),
            bulk_timeout=read.number("FHIR_MIGRAINE_BULK_TIMEOUT", PullSettings.bulk_timeout, positive=True),
            bulk_max_file_bytes=read.integer("FHIR_MIGRAINE_BULK_MAX_FILE_BYTES", PullSettings.bulk_max_file_bytes, low=1),
        )
        outbox = OutboxSettings(
            retry_base=read.number("FHIR_MIGRAINE_RETRY_BASE", OutboxSettings.retry_base),
            retry_cap=read.number("FHIR_MIGRAINE_RETRY_CAP", OutboxSettings.retry_cap),
            lease=read.number("FHIR_MIGRAINE_LEASE", OutboxSettings.lease, positive=True),
            max_attempts=read.integer("FHIR_MIGRAINE_MAX_ATTEMPTS", OutboxSettings.max_attempts, low=0),
            retry_after_cap=read.number("FHIR_MIGRAINE_RETRY_AFTER_CAP", OutboxSettings.retry_after_cap, positive=True),
            retention_days=read.number("FHIR_MIGRAINE_RETENTION_DAYS", OutboxSettings.retention_days, positive=True),
        )
        worker = WorkerSettings(
            enabled=read.flag("FHIR_MIGRAINE_WORKER", WorkerSettings.enabled),
            interval=read.number("FHIR_MIGRAINE_WORKER_INTERVAL", WorkerSettings.interval, positive=True),
        )
        algorithms = tuple(a.strip() for a in (read.text("FHIR_MIGRAINE_API_JWT_ALGORITHMS") or "RS256,ES256").split(","))
        api = ApiAuthSettings(
            token=read.text("FHIR_MIGRAINE_API_TOKEN"),
            jwt_key=_pem(read.text("FHIR_MIGRAINE_API_JWT_KEY"), "FHIR_MIGRAINE_API_JWT_KEY"),
            jwt_algorithms=tuple(a for a in algorithms if a),
            jwt_audience=read.text("FHIR_MIGRAINE_API_JWT_AUDIENCE"),
            jwt_issuer=read.text("FHIR_MIGRAINE_API_JWT_ISSUER"),
            protocols_token=read.text("FHIR_MIGRAINE_API_PROTOCOLS_TOKEN"),
            metrics_token=read.text("FHIR_MIGRAINE_API_METRICS_TOKEN"),
        )
        return cls(_database(read.text("FHIR_MIGRAINE_DB") or cls.database), seed, http, ehr, outbox, worker, api,
                   _order_settings(read), pull, _smart_settings(read), _cds_settings(read),
                   import_dir=read.text("FHIR_MIGRAINE_IMPORT_DIR"))


def set_library_variable(name: str, value: str | None) -> None:
    """Set (or, with None, remove) a variable of the process environment that a library reads
    itself, not a setting of this project: prometheus-client's ``PROMETHEUS_MULTIPROC_DIR``, which
    ``serve`` names before gunicorn forks its workers (see ``metrics``)."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _database(value: str) -> str:
    """``FHIR_MIGRAINE_DB``: a SQLite file path or a ``postgresql://`` URL; any other URL scheme is
    refused rather than taken for a file name."""
    if "://" in value and not value.startswith(("postgresql://", "postgres://")):
        scheme = value.split("://", 1)[0]
        raise ConfigError(f"FHIR_MIGRAINE_DB: {scheme!r} databases are not supported; give a SQLite file path "
                          "or a postgresql:// URL")
    return value


class _Reader:
    """Typed reads of the variables; an empty or blank variable counts as unset."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def number(self, name: str, default: float, *, positive: bool = False) -> float:
        text = self.text(name)
        if text is None:
            return default
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {text!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{name} must be a finite number, got {text!r}")
        if value < 0 or (positive and value == 0):
            raise ConfigError(f"{name} must be {'above zero' if positive else 'zero or more'}, got {text!r}")
        return value

    def integer(self, name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
        text = self.text(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise ConfigError(f"{name} must be {bounds}, got {text!r}")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = (self.text(name) or default).lower()
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        text = (self.text(name) or "").lower()
        if not text:
            return default
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {text!r}")


def order_settings_from_env(env: Mapping[str, str] | None = None) -> OrderSettings:
    """Only the order variables of ``env`` (the process environment when None): ``map order``
    needs no other setting, so it reads no other."""
    source = os.environ if env is None else env
    return _order_settings(_Reader({k: v for k, v in source.items() if k.startswith(PREFIX)}))


def _order_settings(read: _Reader) -> OrderSettings:
    return OrderSettings(
        status=read.choice("FHIR_MIGRAINE_ORDER_STATUS", OrderSettings.status, ORDER_STATUSES),
        intent=read.choice("FHIR_MIGRAINE_ORDER_INTENT", OrderSettings.intent, ORDER_INTENTS),
        weight_observation=read.flag("FHIR_MIGRAINE_WEIGHT_OBSERVATION", OrderSettings.weight_observation),
    )


def _smart_settings(read: _Reader) -> SmartSettings:
    """The SMART app's settings; all three of client id, issuers and public URL, or none of them."""
    issuers = tuple(i.strip().rstrip("/") for i in (read.text("FHIR_MIGRAINE_SMART_ISSUERS") or "").split(",") if i.strip())
    for issuer in issuers:
        parts = urlsplit(issuer)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ConfigError(f"FHIR_MIGRAINE_SMART_ISSUERS: {issuer!r} is not a FHIR base URL (http(s), a host, a path)")
    public = _public_url(read)
    smart = SmartSettings(
        client_id=read.text("FHIR_MIGRAINE_SMART_CLIENT_ID"),
        issuers=issuers,
        public_url=public,
        session_ttl=read.number("FHIR_MIGRAINE_SMART_SESSION_TTL", SmartSettings.session_ttl, positive=True),
        allow_http=read.flag("FHIR_MIGRAINE_SMART_ALLOW_HTTP", SmartSettings.allow_http),
        frame_ancestors=tuple(str(_origin(o.strip(), "FHIR_MIGRAINE_SMART_FRAME_ANCESTORS"))
                              for o in (read.text("FHIR_MIGRAINE_SMART_FRAME_ANCESTORS") or "").split(",") if o.strip()),
    )
    if smart.client_id and not smart.enabled:
        raise ConfigError("FHIR_MIGRAINE_SMART_CLIENT_ID needs FHIR_MIGRAINE_SMART_ISSUERS (the EHR FHIR base URLs "
                          "trusted to launch the app) and FHIR_MIGRAINE_PUBLIC_URL (this service's base URL)")
    return smart


def _public_url(read: _Reader) -> str | None:
    public = read.text("FHIR_MIGRAINE_PUBLIC_URL")
    if public is None:
        return None
    parts = urlsplit(public)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"FHIR_MIGRAINE_PUBLIC_URL must be this service's public base URL, such as "
                          f"https://migraine.example.org, got {public!r}")
    return public.rstrip("/")


def _cds_settings(read: _Reader) -> CdsSettings:
    """The CDS Hooks settings. ``FHIR_MIGRAINE_CDS_ISSUERS`` lists the trusted EHRs, comma-separated,
    each ``<iss>`` alone (its keys only through an allowed ``jku``) or ``<iss> <jwks>`` (a JWKS file
    or https URL)."""
    issuers: list[tuple[str, str | None]] = []
    for item in (read.text("FHIR_MIGRAINE_CDS_ISSUERS") or "").split(","):
        words = item.split()
        if not words:
            continue
        if len(words) > 2:
            raise ConfigError(f"FHIR_MIGRAINE_CDS_ISSUERS: {item.strip()!r} must be an issuer, optionally followed by "
                              "a space and its JWKS (a file or an https URL)")
        jwks = words[1] if len(words) == 2 else None
        if jwks is not None and "://" not in jwks and not Path(jwks).is_file():
            raise ConfigError(f"FHIR_MIGRAINE_CDS_ISSUERS: the JWKS of {words[0]!r} is neither a URL nor a file: {jwks!r}")
        issuers.append((words[0], jwks))
    jku: list[tuple[str, str]] = []
    for item in (read.text("FHIR_MIGRAINE_CDS_JKU_ALLOWED") or "").split(","):
        words = item.split()
        if not words:
            continue
        if len(words) != 2:
            raise ConfigError(f"FHIR_MIGRAINE_CDS_JKU_ALLOWED: {item.strip()!r} must be an issuer, a space and a jku URL "
                              "its tokens may name")
        jku.append((words[0], words[1]))
    for url in tuple(u for _, u in jku) + tuple(j for _, j in issuers if j and "://" in j):
        if urlsplit(url).scheme != "https" and not read.flag("FHIR_MIGRAINE_CDS_ALLOW_HTTP", False):
            raise ConfigError(f"FHIR_MIGRAINE_CDS_JKU_ALLOWED and FHIR_MIGRAINE_CDS_ISSUERS: a JWKS URL must be https, "
                              f"got {url!r}")
    algorithms = tuple(a.strip().upper() for a in (read.text("FHIR_MIGRAINE_CDS_ALGORITHMS") or "RS384,ES384").split(",")
                       if a.strip())
    unsafe = [a for a in algorithms if a not in CDS_ALGORITHMS]
    if unsafe or not algorithms:
        raise ConfigError(f"FHIR_MIGRAINE_CDS_ALGORITHMS may name only {', '.join(CDS_ALGORITHMS)}; got "
                          f"{', '.join(unsafe) or 'none'}")
    origins = tuple(o.strip() for o in (read.text("FHIR_MIGRAINE_CDS_ALLOWED_ORIGINS") or "*").split(",") if o.strip())
    return CdsSettings(
        public_url=_public_url(read),
        issuers=tuple(issuers),
        jku_allowed=tuple(jku),
        algorithms=algorithms,
        allowed_origins=tuple(o if o == "*" else str(_origin(o, "FHIR_MIGRAINE_CDS_ALLOWED_ORIGINS")) for o in origins),
        fetch_timeout=read.number("FHIR_MIGRAINE_CDS_FETCH_TIMEOUT", CdsSettings.fetch_timeout, positive=True),
        allow_http=read.flag("FHIR_MIGRAINE_CDS_ALLOW_HTTP", CdsSettings.allow_http),
    )


def _pem(value: str | None, name: str) -> str | None:
    """The PEM text itself, or the text of the file ``value`` names."""
    if value is None or value.startswith("-----BEGIN"):
        return value
    try:
        with open(value, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read the PEM file {value!r} ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: {value!r} is not a PEM text file") from None


def _origin(value: str | None, name: str) -> str | None:
    """An origin as ``scheme://host[:port]``: http(s), a host, nothing after (no path, query or user)."""
    if value is None:
        return None
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.path not in ("", "/")
            or parts.query or parts.fragment or parts.username is not None or port == -1):
        raise ConfigError(f"{name} must be an origin such as https://fhir-gateway.example.org (scheme, host and "
                          f"optional port, nothing else), got {value!r}")
    return value.rstrip("/")


def _ehr_auth(read: _Reader) -> EhrAuthSettings:
    """The EHR credentials: the mode, the variables it needs (present), none it does not use."""
    mode = (read.text(ENV_AUTH) or "none").lower()
    if mode not in AUTH_MODES:
        raise ConfigError(f"{ENV_AUTH} must be one of {', '.join(AUTH_MODES)}; got {mode!r}")
    values = {name: value for name in AUTH_VARIABLES if (value := read.text(name)) is not None}
    unused = sorted(values.keys() - AUTH_MODES[mode])
    if unused:
        raise ConfigError(f"{unused[0]} is set, but {ENV_AUTH}={mode} does not use it: unset it or choose another {ENV_AUTH}")
    for name in sorted(AUTH_MODES[mode] - AUTH_OPTIONAL):
        if name not in values:
            raise ConfigError(f"{name} is required when {ENV_AUTH}={mode}")
    settings = EhrAuthSettings(
        mode=mode,
        token=values.get(ENV_TOKEN),
        token_url=values.get(ENV_TOKEN_URL),
        client_id=values.get(ENV_CLIENT_ID),
        client_secret=values.get(ENV_CLIENT_SECRET),
        scope=values.get(ENV_SCOPE),
        private_key_pem=_pem(values.get(ENV_PRIVATE_KEY), ENV_PRIVATE_KEY),
        key_id=values.get(ENV_KEY_ID),
        jwt_alg=values.get(ENV_JWT_ALG, "RS384").upper(),
        client_auth_method=read.choice(ENV_CLIENT_AUTH_METHOD, CLIENT_AUTH_METHODS[0], CLIENT_AUTH_METHODS),
        clock_skew=read.integer(ENV_CLOCK_SKEW, DEFAULT_CLOCK_SKEW, low=0, high=MAX_CLOCK_SKEW),
    )
    return settings

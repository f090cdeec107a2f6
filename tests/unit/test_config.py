"""Settings.from_env: every variable lands in its place in the tree, the defaults, and a bad value
is a ConfigError naming its variable."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fhir_migraine.config import (
    ApiAuthSettings,
    EhrAuthSettings,
    EhrSettings,
    HttpSettings,
    OrderSettings,
    OutboxSettings,
    PullSettings,
    Settings,
    WorkerSettings,
    order_settings_from_env,
)
from fhir_migraine.errors import ConfigError

SRC = Path(__file__).resolve().parents[2] / "src" / "fhir_migraine"
ENVIRONMENT_READ = re.compile(r"\bos\.environ\b|\bgetenv\b|\bimport environ\b|\bos\.environb\b")
PUBLIC_PEM = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"


def test_nothing_set_gives_the_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.database, settings.seed_protocols) == ("var/fhir-migraine.sqlite3", None)
    assert settings.http == HttpSettings("127.0.0.1", 8080, 2)
    assert settings.ehr == EhrSettings(url=None, timeout=30.0, verify=True, transaction_size=100, auth=EhrAuthSettings())
    assert settings.outbox == OutboxSettings(retry_base=1.0, retry_cap=300.0, lease=120.0, max_attempts=50)
    assert settings.worker == WorkerSettings(enabled=True, interval=0.5)
    assert settings.api == ApiAuthSettings(token=None, jwt_key=None, jwt_algorithms=("RS256", "ES256"))
    assert settings.orders == OrderSettings(status="draft", intent="order", weight_observation=False)
    assert settings.pull == PullSettings(max_retries=5, max_wait=60.0, cursor_overlap=60.0)
    assert (settings.ehr.gateway_origin, settings.ehr.max_count) == (None, 200)


def test_every_variable_lands_in_its_place(tmp_path: Path) -> None:
    key = tmp_path / "callers.pem"
    key.write_text(PUBLIC_PEM, encoding="ascii")
    settings = Settings.from_env({
        "FHIR_MIGRAINE_DB": "/data/fm.sqlite3",
        "FHIR_MIGRAINE_SEED_PROTOCOLS": str(tmp_path),
        "FHIR_MIGRAINE_HOST": "0.0.0.0",
        "FHIR_MIGRAINE_PORT": "9000",
        "FHIR_MIGRAINE_WORKERS": "4",
        "FHIR_MIGRAINE_THREADS": "16",
        "FHIR_MIGRAINE_READ_TIMEOUT": "5",
        "FHIR_MIGRAINE_MAX_BODY_BYTES": "65536",
        "FHIR_MIGRAINE_MAX_DIARY_ENTRIES": "50",
        "FHIR_MIGRAINE_MAX_IMPORT_BYTES": "1048576",
        "FHIR_MIGRAINE_HUNG_WORKER_TIMEOUT": "20",
        "FHIR_MIGRAINE_EHR_ALLOW_HTTP": "yes",
        "FHIR_MIGRAINE_EHR_PROBE_INTERVAL": "30",
        "FHIR_MIGRAINE_EHR_PROBE_TIMEOUT": "1.5",
        "FHIR_MIGRAINE_RETRY_AFTER_CAP": "600",
        "FHIR_MIGRAINE_RETENTION_DAYS": "7",
        "FHIR_MIGRAINE_API_PROTOCOLS_TOKEN": "author-token",
        "FHIR_MIGRAINE_EHR_URL": "https://ehr.example/fhir",
        "FHIR_MIGRAINE_EHR_TIMEOUT": "12.5",
        "FHIR_MIGRAINE_EHR_VERIFY_TLS": "false",
        "FHIR_MIGRAINE_TRANSACTION_SIZE": "25",
        "FHIR_MIGRAINE_RETRY_BASE": "0.5",
        "FHIR_MIGRAINE_RETRY_CAP": "60",
        "FHIR_MIGRAINE_LEASE": "30",
        "FHIR_MIGRAINE_MAX_ATTEMPTS": "7",
        "FHIR_MIGRAINE_WORKER": "off",
        "FHIR_MIGRAINE_WORKER_INTERVAL": "2",
        "FHIR_MIGRAINE_API_TOKEN": "caller-token",
        "FHIR_MIGRAINE_API_JWT_KEY": str(key),
        "FHIR_MIGRAINE_API_JWT_ALGORITHMS": "ES256, ,RS256",
        "FHIR_MIGRAINE_API_JWT_AUDIENCE": "fhir-migraine",
        "FHIR_MIGRAINE_API_JWT_ISSUER": "https://idp.example",
        "FHIR_MIGRAINE_EHR_AUTH": "bearer",
        "FHIR_MIGRAINE_EHR_TOKEN": "ehr-token",
        "FHIR_MIGRAINE_ORDER_STATUS": "Active",
        "FHIR_MIGRAINE_ORDER_INTENT": "original-order",
        "FHIR_MIGRAINE_WEIGHT_OBSERVATION": "true",
        "FHIR_MIGRAINE_EHR_GATEWAY_ORIGIN": "https://fhir-gateway.example:8443/",
        "FHIR_MIGRAINE_EHR_MAX_COUNT": "50",
        "FHIR_MIGRAINE_PULL_MAX_RETRIES": "0",
        "FHIR_MIGRAINE_PULL_MAX_WAIT": "15",
        "FHIR_MIGRAINE_PULL_CURSOR_OVERLAP": "0",
        "UNRELATED": "ignored",
    })
    assert (settings.database, settings.seed_protocols) == ("/data/fm.sqlite3", str(tmp_path))
    assert settings.http == HttpSettings("0.0.0.0", 9000, 4, 16, 5.0, 65536, 50, 1048576, 20.0)
    assert settings.ehr == EhrSettings("https://ehr.example/fhir", 12.5, False, 25, EhrAuthSettings(mode="bearer", token="ehr-token"),
                                       True, 30.0, 1.5, "https://fhir-gateway.example:8443", 50)
    assert settings.outbox == OutboxSettings(0.5, 60.0, 30.0, 7, 600.0, 7.0)
    assert settings.worker == WorkerSettings(False, 2.0)
    assert settings.api == ApiAuthSettings("caller-token", PUBLIC_PEM, ("ES256", "RS256"), "fhir-migraine", "https://idp.example",
                                           "author-token")
    assert settings.orders == OrderSettings("active", "original-order", True)
    assert settings.pull == PullSettings(0, 15.0, 0.0)


def test_an_import_may_carry_256_mib_unless_set_otherwise() -> None:
    assert Settings.from_env({}).http.max_import_bytes == 256 * 1024 * 1024
    assert Settings.from_env({"FHIR_MIGRAINE_MAX_IMPORT_BYTES": "1048576"}).http.max_import_bytes == 1048576


def test_the_hung_worker_timeout_is_read_in_seconds() -> None:
    assert Settings.from_env({}).http.hung_worker_timeout == 60.0
    assert Settings.from_env({"FHIR_MIGRAINE_HUNG_WORKER_TIMEOUT": "2.5"}).http.hung_worker_timeout == 2.5


def test_a_ca_bundle_replaces_the_verify_flag_and_pem_text_is_taken_as_is() -> None:
    settings = Settings.from_env({"FHIR_MIGRAINE_EHR_CA_BUNDLE": "/etc/ssl/private-ca.pem",
                                  "FHIR_MIGRAINE_API_JWT_KEY": PUBLIC_PEM})
    assert settings.ehr.verify == "/etc/ssl/private-ca.pem"
    assert settings.api.jwt_key == PUBLIC_PEM.strip()


def test_blank_values_count_as_unset() -> None:
    assert Settings.from_env({"FHIR_MIGRAINE_PORT": " ", "FHIR_MIGRAINE_EHR_URL": "", "FHIR_MIGRAINE_EHR_AUTH": ""}) == Settings()


def test_secrets_stay_out_of_the_settings_repr() -> None:
    settings = Settings.from_env({"FHIR_MIGRAINE_API_TOKEN": "caller-secret", "FHIR_MIGRAINE_EHR_AUTH": "bearer",
                                  "FHIR_MIGRAINE_EHR_TOKEN": "ehr-secret"})
    assert "caller-secret" not in repr(settings) and "ehr-secret" not in repr(settings)


BAD = [
    ("FHIR_MIGRAINE_PORT", "http"), ("FHIR_MIGRAINE_PORT", "0"), ("FHIR_MIGRAINE_PORT", "70000"),
    ("FHIR_MIGRAINE_WORKERS", "0"), ("FHIR_MIGRAINE_WORKERS", "2.5"),
    ("FHIR_MIGRAINE_EHR_TIMEOUT", "soon"), ("FHIR_MIGRAINE_EHR_TIMEOUT", "0"), ("FHIR_MIGRAINE_EHR_TIMEOUT", "nan"),
    ("FHIR_MIGRAINE_EHR_VERIFY_TLS", "maybe"), ("FHIR_MIGRAINE_TRANSACTION_SIZE", "0"),
    ("FHIR_MIGRAINE_RETRY_BASE", "-1"), ("FHIR_MIGRAINE_RETRY_CAP", "inf"), ("FHIR_MIGRAINE_LEASE", "0"),
    ("FHIR_MIGRAINE_MAX_ATTEMPTS", "-2"), ("FHIR_MIGRAINE_WORKER", "sometimes"), ("FHIR_MIGRAINE_WORKER_INTERVAL", "0"),
    ("FHIR_MIGRAINE_SEED_PROTOCOLS", "/nonexistent/protocols"), ("FHIR_MIGRAINE_API_JWT_KEY", "/nonexistent/key.pem"),
    ("FHIR_MIGRAINE_EHR_AUTH", "kerberos"),
    ("FHIR_MIGRAINE_MAX_IMPORT_BYTES", "100"), ("FHIR_MIGRAINE_MAX_IMPORT_BYTES", "1e9"),
    ("FHIR_MIGRAINE_HUNG_WORKER_TIMEOUT", "0"), ("FHIR_MIGRAINE_HUNG_WORKER_TIMEOUT", "never"),
    ("FHIR_MIGRAINE_ORDER_STATUS", "completed"), ("FHIR_MIGRAINE_ORDER_STATUS", "on-hold"),
    ("FHIR_MIGRAINE_ORDER_INTENT", "filler-order"), ("FHIR_MIGRAINE_ORDER_INTENT", "directive"),
    ("FHIR_MIGRAINE_WEIGHT_OBSERVATION", "sometimes"),
    ("FHIR_MIGRAINE_EHR_GATEWAY_ORIGIN", "fhir-gateway.example"), ("FHIR_MIGRAINE_EHR_GATEWAY_ORIGIN", "https://gw.example/fhir"),
    ("FHIR_MIGRAINE_EHR_GATEWAY_ORIGIN", "ftp://gw.example"), ("FHIR_MIGRAINE_EHR_GATEWAY_ORIGIN", "https://gw.example:x"),
    ("FHIR_MIGRAINE_EHR_GATEWAY_ORIGIN", "https://user@gw.example"), ("FHIR_MIGRAINE_EHR_MAX_COUNT", "0"),
    ("FHIR_MIGRAINE_PULL_MAX_RETRIES", "-1"), ("FHIR_MIGRAINE_PULL_MAX_WAIT", "-5"),
    ("FHIR_MIGRAINE_PULL_CURSOR_OVERLAP", "a minute"),
]


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n.removeprefix('FHIR_MIGRAINE_')}={v}" for n, v in BAD])
def test_a_bad_value_is_a_config_error_naming_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_map_order_reads_only_the_order_variables() -> None:
    """A bad variable of the service does not stop ``map order``; a bad order variable does."""
    env = {"FHIR_MIGRAINE_PORT": "http", "FHIR_MIGRAINE_ORDER_STATUS": "active"}
    assert order_settings_from_env(env) == OrderSettings(status="active")
    with pytest.raises(ConfigError, match="FHIR_MIGRAINE_ORDER_INTENT"):
        order_settings_from_env({"FHIR_MIGRAINE_ORDER_INTENT": "reflex-order"})


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def test_each_ehr_auth_mode_reads_its_variables(tmp_path: Path, rsa_pem: str) -> None:
    key = tmp_path / "ehr.pem"
    key.write_text(rsa_pem, encoding="ascii")
    cc = Settings.from_env({"FHIR_MIGRAINE_EHR_AUTH": "client-credentials", "FHIR_MIGRAINE_EHR_TOKEN_URL": "https://ehr.example/token",
                            "FHIR_MIGRAINE_EHR_CLIENT_ID": "me", "FHIR_MIGRAINE_EHR_CLIENT_SECRET": "pw"}).ehr.auth
    assert (cc.mode, cc.token_url, cc.client_id, cc.client_secret, cc.scope) == (
        "client-credentials", "https://ehr.example/token", "me", "pw", None)
    smart = Settings.from_env({"FHIR_MIGRAINE_EHR_AUTH": "SMART-backend", "FHIR_MIGRAINE_EHR_TOKEN_URL": "https://ehr.example/token",
                               "FHIR_MIGRAINE_EHR_CLIENT_ID": "me", "FHIR_MIGRAINE_EHR_PRIVATE_KEY": str(key),
                               "FHIR_MIGRAINE_EHR_KEY_ID": "k1", "FHIR_MIGRAINE_EHR_SCOPE": "system/Observation.rs"}).ehr.auth
    assert (smart.mode, smart.private_key_pem, smart.key_id, smart.jwt_alg, smart.scope) == (
        "smart-backend", rsa_pem, "k1", "RS384", "system/Observation.rs")


@pytest.mark.parametrize(
    ("mode", "required"),
    [
        ("bearer", ["FHIR_MIGRAINE_EHR_TOKEN"]),
        ("client-credentials", ["FHIR_MIGRAINE_EHR_CLIENT_ID", "FHIR_MIGRAINE_EHR_CLIENT_SECRET"]),
        ("smart-backend", ["FHIR_MIGRAINE_EHR_CLIENT_ID", "FHIR_MIGRAINE_EHR_KEY_ID", "FHIR_MIGRAINE_EHR_PRIVATE_KEY"]),
    ],
)
def test_an_ehr_auth_mode_names_the_first_variable_it_lacks(mode: str, required: list[str]) -> None:
    with pytest.raises(ConfigError, match=f"{required[0]} is required when FHIR_MIGRAINE_EHR_AUTH={mode}"):
        Settings.from_env({"FHIR_MIGRAINE_EHR_AUTH": mode})


def test_without_a_token_url_the_settings_leave_it_to_discovery() -> None:
    """FHIR_MIGRAINE_EHR_TOKEN_URL may be left out: the EHR's SMART configuration names it (ehr.token_endpoint)."""
    auth = Settings.from_env({"FHIR_MIGRAINE_EHR_AUTH": "client-credentials", "FHIR_MIGRAINE_EHR_CLIENT_ID": "me",
                              "FHIR_MIGRAINE_EHR_CLIENT_SECRET": "pw"}).ehr.auth
    assert (auth.token_url, auth.client_auth_method) == (None, "client_secret_basic")


def test_only_from_env_reads_the_environment() -> None:
    """Outside config.py nothing in the package reads os.environ (the tree is passed instead)."""
    readers = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if path.name != "config.py" and ENVIRONMENT_READ.search(text):
            readers.append(str(path.relative_to(SRC)))
    assert readers == []


def test_the_process_environment_is_read_when_no_mapping_is_given(tmp_path: Path) -> None:
    program = "from fhir_migraine.config import Settings; print(Settings.from_env().http.port)"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            env={"FHIR_MIGRAINE_PORT": "8123", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "8123"


def test_the_metrics_token_is_read_and_kept_out_of_the_repr() -> None:
    settings = Settings.from_env({"FHIR_MIGRAINE_API_TOKEN": "caller-token", "FHIR_MIGRAINE_API_METRICS_TOKEN": "scraper-token"})
    assert settings.api.metrics_token == "scraper-token"
    assert "scraper-token" not in repr(settings)
    assert Settings.from_env({}).api.metrics_token is None

"""The SMART on FHIR app's side of the EHR: the EHR's OAuth endpoints (its
``.well-known/smart-configuration``), the authorization code flow with PKCE (Authlib's OAuth2
client), and the launched patient's diary read with the clinician's access token.

SMART App Launch 2.x (https://hl7.org/fhir/smart-app-launch/app-launch.html): the app discovers
``authorization_endpoint`` and ``token_endpoint``, sends the user to the first with ``aud`` (the
FHIR base URL), ``launch`` (EHR launch), ``state`` and a PKCE ``code_challenge`` (S256 only), and
trades the code at the second with its ``code_verifier``; the token answer carries ``patient``.
The service's own backend credentials are never used here: every read carries the clinician's token.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from fhir_migraine import operations
from fhir_migraine.ehr.auth import BearerToken
from fhir_migraine.ehr.client import FhirClient
from fhir_migraine.ehr.interface import Page
from fhir_migraine.ehr.paging import Pager, PagingPolicy
from fhir_migraine.ehr.pull import patient_reference, pull
from fhir_migraine.ehr.token_endpoint import WELL_KNOWN, check_token_url, json_object
from fhir_migraine.errors import ConfigError, EhrAuthError, EhrError, EhrRejected, EhrUnavailable, InputError, LaunchRefused, Problem
from fhir_migraine.inputs.diary_files import Located

log = logging.getLogger(__name__)

#: What the app reads with the clinician's token: the searches of a pull it has scopes for
#: (``config.SMART_SCOPES``). RequestGroup is not among them: the month's view reads the
#: MedicationRequests themselves.
READ_TYPES = ("Observation", "MedicationStatement", "MedicationRequest", "QuestionnaireResponse", "DocumentReference")


@dataclass(frozen=True)
class Endpoints:
    """The EHR's OAuth endpoints, from its SMART configuration."""

    authorize: str
    token: str


def discover(iss: str, *, timeout: float = 10.0, verify: bool | str = True) -> Endpoints:
    """``authorization_endpoint`` and ``token_endpoint`` of ``iss``'s SMART configuration; an
    EhrUnavailable when the EHR cannot be reached, an EhrRejected when its answer cannot work
    (no such document, an endpoint missing, no S256 among its PKCE methods)."""
    url = iss.rstrip("/") + WELL_KNOWN
    try:
        response = requests.get(url, headers={"Accept": "application/json"}, timeout=timeout, verify=verify)
    except requests.RequestException as exc:
        raise EhrUnavailable(f"the EHR's SMART configuration could not be read ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise EhrRejected(f"the EHR publishes no SMART configuration ({WELL_KNOWN} answered {response.status_code})",
                          status=response.status_code)
    found = json_object(response)
    methods = found.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise EhrRejected("the EHR's SMART configuration does not offer PKCE with S256, which SMART App Launch 2.x requires")
    try:
        return Endpoints(check_token_url(found.get("authorization_endpoint", ""), "authorization_endpoint"),
                         check_token_url(found.get("token_endpoint", ""), "token_endpoint"))
    except ConfigError as exc:
        raise EhrRejected(f"the EHR's SMART configuration cannot be used: {exc.message}") from None


def new_state() -> str:
    """An unguessable OAuth ``state`` (it keys the launch on the server)."""
    return str(generate_token(43))


def new_verifier() -> str:
    """A PKCE ``code_verifier``: 64 characters of the unreserved set (RFC 7636 §4.1 allows 43 to 128)."""
    return str(generate_token(64))


def _session(client_id: str, redirect_uri: str, scope: str | None = None) -> OAuth2Session:
    return OAuth2Session(client_id, scope=scope, redirect_uri=redirect_uri, code_challenge_method="S256")


def authorization_url(endpoints: Endpoints, *, client_id: str, redirect_uri: str, scope: Sequence[str], iss: str,
                      state: str, verifier: str, launch: str | None = None) -> str:
    """Where to send the browser: the authorization endpoint with ``aud``, ``launch`` (EHR launch),
    ``state`` and the S256 challenge of ``verifier``."""
    extra = {"aud": iss} | ({"launch": launch} if launch is not None else {})
    url, _ = _session(client_id, redirect_uri, " ".join(scope)).create_authorization_url(
        endpoints.authorize, state=state, code_verifier=verifier, **extra)
    return str(url)


def exchange(endpoints: Endpoints, *, client_id: str, redirect_uri: str, code: str, verifier: str,
             timeout: float = 10.0) -> dict[str, Any]:
    """The token answer for ``code`` (with the PKCE ``verifier``); EhrAuthError when the token
    endpoint refuses, EhrUnavailable when it cannot be reached, LaunchRefused when the answer
    names no patient (the app shows one patient's diary, so it needs the launch context)."""
    client = _session(client_id, redirect_uri)
    try:
        token = dict(client.fetch_token(endpoints.token, code=code, code_verifier=verifier, timeout=timeout))
    except OAuthError as exc:
        raise EhrAuthError(f"the EHR's token endpoint refused the authorization code ({exc.error})") from None
    except requests.RequestException as exc:
        raise EhrUnavailable(f"the EHR's token endpoint could not be reached ({type(exc).__name__})") from None
    except ValueError:
        raise EhrAuthError("the EHR's token endpoint answered with something that is not a token") from None
    finally:
        client.close()
    if not isinstance(token.get("access_token"), str) or not token["access_token"]:
        raise EhrAuthError("the EHR's token endpoint answered without an access token")
    patient = token.get("patient")
    if not isinstance(patient, str) or not patient:
        raise LaunchRefused.of([Problem("$.patient", "the EHR's token carries no patient: launch the app from a patient's "
                                                     "chart, or choose a patient when the EHR asks")], "launch")
    try:
        patient_reference(patient)
    except InputError:
        raise LaunchRefused.of([Problem("$.patient", "the EHR's token names a patient that is not a FHIR id")], "launch") from None
    return token


class _NamedSearches(Pager):
    """A pager whose errors say which search failed (the app's error page names it)."""

    def pages(self, resource_type: str, params: dict[str, str]) -> Iterator[Page]:
        try:
            yield from super().pages(resource_type, params)
        except EhrError as exc:
            exc.message = f"the search of {resource_type}: {exc.message}"
            exc.args = (exc.message,)
            raise


@dataclass(frozen=True)
class Chart:
    """What the app shows, as the EHR holds it: the diary entries and the MedicationRequests of this
    project, and what the pull left out (resources breaking their profile, searches not offered)."""

    entries: list[Any]
    requests: list[dict[str, Any]]
    left_out: list[str]


def read_chart(iss: str, token: str, patient: str, *, timeout: float = 30.0, verify: bool | str = True,
               max_count: int = PagingPolicy.max_count, session: requests.Session | None = None) -> Chart:
    """The launched patient's diary and orders, read from ``iss`` with the clinician's ``token``
    (every page of each search; an EhrError naming the search the EHR refused)."""
    client = FhirClient(iss, auth=BearerToken(token), timeout=timeout, verify=verify, max_count=max_count, session=session)
    pager = _NamedSearches(client, PagingPolicy(max_retries=1, max_wait=5.0, max_count=max_count))
    bundle = pull(pager, patient_reference(patient), count=max_count, types=READ_TYPES)
    found = operations.unmap_pulled(bundle)
    entries = operations.load_diary(Located(e, f"$.diary[{i}]") for i, e in enumerate(found["diary"]))
    invalid = {item["resource"] for item in found["invalid"]}
    requests_found = [e["resource"] for e in bundle["entry"] if e["resource"].get("resourceType") == "MedicationRequest"
                      and f"MedicationRequest/{e['resource'].get('id')}" not in invalid]
    left_out = [f"{item['resource']} breaks its profile and is not shown" for item in found["invalid"]]
    left_out += [str(w) for w in found["warnings"]]
    return Chart(entries, requests_found, left_out)

"""A small SMART on FHIR authorization server for the tests of the SMART app, acting as an EHR's
front door on 127.0.0.1 (a port of the system's choosing), with a FHIR proxy to a real FHIR server.

- ``<base>/fhir/.well-known/smart-configuration``: its endpoints, PKCE S256 only;
- ``<base>/authorize``: checks ``client_id``, ``redirect_uri``, ``response_type``, ``aud``, the
  PKCE challenge (present, S256) and, for an EHR launch, a ``launch`` it issued (``new_launch``);
  a standalone launch needs ``launch/patient`` and gets ``standalone_patient``. It approves at
  once and redirects with a one-time code bound to the launch's patient;
- ``<base>/token``: checks the code, client, redirect URI and ``code_verifier`` against the
  challenge; answers ``access_token`` and ``patient`` (``omit_patient`` leaves it out);
- ``<base>/fhir/...``: GETs forwarded to ``fhir_target`` only with a token it issued, the
  target's URLs in the answer rewritten to its own; ``refuse`` names resource types whose searches
  it answers 403 (an EHR that refuses a search);
- ``<base>/ehr?app=URL``: a page that frames ``app`` (the iframe case: serve it from another origin).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@dataclass
class Grant:
    patient: str
    challenge: str
    redirect_uri: str


@dataclass
class SmartEhr:
    """The test EHR's front door; ``client_id`` and ``redirect_uri`` are the app's registration."""

    client_id: str
    redirect_uri: str
    fhir_target: str | None = None  # the real FHIR server behind the proxy
    standalone_patient: str | None = None
    omit_patient: bool = False
    refuse: set[str] = field(default_factory=set)
    launches: dict[str, str] = field(default_factory=dict)  # launch id -> patient
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> patient
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_forms: list[dict[str, str]] = field(default_factory=list)
    fhir_requests: list[str] = field(default_factory=list)
    base: str = ""

    @property
    def iss(self) -> str:
        return f"{self.base}/fhir"

    def new_launch(self, patient: str) -> str:
        """A launch id bound to ``patient``, as an EHR makes one when a clinician opens the app."""
        launch = secrets.token_urlsafe(12)
        self.launches[launch] = patient
        return launch

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        path = request.path
        if path == "/fhir/.well-known/smart-configuration":
            answer = self._configuration()
        elif path == "/authorize":
            answer = self._authorize(request)
        elif path == "/token" and request.method == "POST":
            answer = self._token(request)
        elif path.startswith("/fhir/") or path == "/fhir":
            answer = self._fhir(request)
        elif path == "/ehr":
            app = html.escape(request.args.get("app", ""), quote=True)
            answer = Response(f'<!DOCTYPE html><html lang="en"><head><title>EHR</title></head><body><h1>Test EHR chart</h1>'
                              f'<iframe id="app" title="Headache diary" src="{app}" width="1200" height="700"></iframe>'
                              f'</body></html>', mimetype="text/html")
        else:
            answer = Response("not found", status=404)
        return answer(environ, start_response)

    def _configuration(self) -> Response:
        body = {"authorization_endpoint": f"{self.base}/authorize", "token_endpoint": f"{self.base}/token",
                "code_challenge_methods_supported": ["S256"], "grant_types_supported": ["authorization_code"],
                "capabilities": ["launch-ehr", "launch-standalone", "client-public", "context-ehr-patient",
                                 "context-standalone-patient", "permission-v2"],
                "scopes_supported": ["launch", "launch/patient", "patient/*.rs"]}
        return Response(json.dumps(body), mimetype="application/json")

    def _authorize(self, request: Request) -> Response:
        args = dict(request.args)
        self.authorize_requests.append(args)
        problems = []
        if args.get("response_type") != "code":
            problems.append("response_type must be code")
        if args.get("client_id") != self.client_id:
            problems.append("unknown client_id")
        if args.get("redirect_uri") != self.redirect_uri:
            problems.append("redirect_uri is not the registered one")
        if args.get("aud") != self.iss:
            problems.append("aud must be the FHIR base URL")
        if not args.get("code_challenge") or args.get("code_challenge_method") != "S256":
            problems.append("PKCE with S256 is required")
        if not args.get("state"):
            problems.append("state is required")
        scopes = args.get("scope", "").split()
        if "launch" in args:
            patient = self.launches.get(args["launch"])
            if patient is None or "launch" not in scopes:
                problems.append("unknown launch, or no launch scope")
        else:
            patient = self.standalone_patient
            if patient is None or "launch/patient" not in scopes:
                problems.append("a standalone launch needs launch/patient and a patient to pick")
        if problems:
            return Response("; ".join(problems), status=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = Grant(str(patient), args["code_challenge"], args["redirect_uri"])
        return Response(status=302, headers={"Location": f"{args['redirect_uri']}?{urlencode({'code': code, 'state': args['state']})}"})

    def _token(self, request: Request) -> Response:
        form = dict(request.form)
        self.token_forms.append(form)
        grant = self.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if (grant is None or form.get("grant_type") != "authorization_code" or form.get("client_id") != self.client_id
                or form.get("redirect_uri") != grant.redirect_uri or expected != grant.challenge):
            return Response(json.dumps({"error": "invalid_grant"}), status=400, mimetype="application/json")
        token = secrets.token_urlsafe(24)
        self.tokens[token] = grant.patient
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                                "scope": "launch patient/Observation.rs"}
        if not self.omit_patient:
            body["patient"] = grant.patient.removeprefix("Patient/")
        return Response(json.dumps(body), mimetype="application/json", headers={"Cache-Control": "no-store"})

    def _fhir(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            return Response(json.dumps({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "login", "diagnostics": "a token of this EHR is required"}]}),
                status=401, mimetype="application/fhir+json")
        kind = request.path.removeprefix("/fhir/").split("/")[0]
        self.fhir_requests.append(kind)
        if kind in self.refuse:
            return Response(json.dumps({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "forbidden", "diagnostics": f"searching {kind} is not allowed"}]}),
                status=403, mimetype="application/fhir+json")
        if self.fhir_target is None:
            return Response(json.dumps({"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}),
                            mimetype="application/fhir+json")
        target = self.fhir_target.rstrip("/")
        answer = requests.get(target + request.path.removeprefix("/fhir"), params=list(request.args.items(multi=True)),
                              headers={"Accept": "application/fhir+json"}, timeout=60)
        body = answer.text.replace(target, self.iss)
        return Response(body, status=answer.status_code, mimetype="application/fhir+json")


class Running:
    """The server in a thread; ``stop()`` ends it."""

    def __init__(self, ehr: SmartEhr, host: str = "127.0.0.1") -> None:
        self.server = make_server(host, 0, ehr, threaded=True)
        ehr.base = f"http://localhost:{self.server.server_port}"
        self.ehr = ehr
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)

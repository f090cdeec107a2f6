"""The OpenAPI 3.1 description of the service, built from the input contracts' JSON Schemas."""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir_migraine import __version__
from fhir_migraine.ehr.outbox import STATES
from fhir_migraine.inputs.schema import schema

COMPONENTS = "#/components/schemas"


def _embed(name: str, title: str) -> dict[str, Any]:
    """A shipped schema re-rooted under components, its local ``$ref`` rewritten to match."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key in ("$schema", "$id"):
                    continue
                if key == "$ref" and isinstance(value, str) and value.startswith("#/"):
                    value = f"{COMPONENTS}/{title}/" + value[2:]
                out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema(name))  # type: ignore[no-any-return]


REPORT_MONTH = {"name": "month", "in": "query", "required": True, "schema": {"type": "string"},
                "description": "the month of the report, YYYY-MM (begun already)"}


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"{COMPONENTS}/{ref}"}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": {"$ref": f"{COMPONENTS}/Problem"}}}}


def _page(description: str) -> dict[str, Any]:
    """An answer of the SMART app's browser routes: an HTML page, errors included."""
    return {"description": description, "content": {"text/html": {}}}


SESSION = {"name": "session", "in": "path", "required": True, "schema": {"type": "string"},
           "description": "the opaque id of a clinician's session of the SMART app"}


QUEUED = {
    "description": "With an EHR configured: the Bundle is stored in the outbox and will be pushed; "
    "`Location` is `/outbox/{outbox_id}`.",
    "content": {"application/json": {"schema": {"$ref": f"{COMPONENTS}/Queued"}}},
}
WITHDRAWAL_QUEUED = {
    "description": "Queued in the outbox; `Location` is `/outbox/{outbox_id}`, which shows when the EHR holds the "
                   "new statuses (an item `dead` when the EHR holds no such order or entry, or advertises no update).",
    "content": {"application/json": {"schema": {"type": "object", "required": ["outbox_id", "state"],
                                                "properties": {"outbox_id": {"type": "string"},
                                                               "state": {"const": "pending"}}}}},
}
INVALID = _problem("The input breaks its contract; `errors` lists each field's JSON path and what is wrong.")
MALFORMED = _problem("The body is not valid JSON, or is empty.")
TOO_MANY_ENTRIES = _problem(
    "More diary entries than one request may carry (FHIR_MIGRAINE_MAX_DIARY_ENTRIES, 1000 by default); "
    "`detail` names the limit. Larger diaries go to `POST /imports` as NDJSON."
)
OUTCOME = {
    "description": "An OperationOutcome: one issue per problem (severity, code, diagnostics, FHIRPath expression).",
    "content": {"application/fhir+json": {"schema": {"$ref": f"{COMPONENTS}/Resource"}}},
}
FHIR_ERROR = {
    "description": "An OperationOutcome saying what is wrong with the request.",
    "content": {"application/fhir+json": {"schema": {"$ref": f"{COMPONENTS}/Resource"}}},
}
INVALID_PULLED = {
    "type": "array",
    "description": "Pulled resources that break FHIR R4 or their profile: reported with the OperationOutcome, not unmapped.",
    "items": {"type": "object", "properties": {"resource": {"type": "string"}, "outcome": {"$ref": f"{COMPONENTS}/Resource"}}},
}
PULL_WARNINGS = {
    "type": "array",
    "items": {"type": "string"},
    "description": "What the pull could not ask the EHR (e.g. a type it offers no search of by patient); "
                   "empty when everything was asked.",
}
INCOMPLETE = {
    "type": "array",
    "description": "Orders or diary entries that could not be read back: some of their resources were invalid, missing, "
                   "or lacked what reading them back needs; `problem` says which and why.",
    "items": {"type": "object", "properties": {"order_id": {"type": "string"}, "entry_id": {"type": "string"},
                                               "problem": {"type": "string"}}},
}
FHIR_RESOURCE = {"application/fhir+json": {"schema": {"$ref": f"{COMPONENTS}/Resource"}}}
PROFILE = {"name": "profile", "in": "query", "schema": {"type": "string"}, "description": "Validate against this profile (canonical URL)."}
EHR_FAILED = _problem("The EHR could not be reached (503) or refused (502); `detail` carries its OperationOutcome text. "
                      "A 503 carries `Retry-After` when the EHR asked for a wait.")
PATIENT = {"name": "patient", "in": "path", "required": True, "schema": {"type": "string"},
           "description": "Patient/123 or 123"}
SINCE = {"name": "since", "in": "query", "schema": {"type": "string"},
         "description": "Only resources changed since this instant (FHIR _lastUpdated)."}


CDS_SERVICE = {"name": "service_id", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "a CDS service id from discovery (migraine-order-select, migraine-order-sign, "
                              "migraine-patient-view)"}
CDS_JWT: list[dict[str, list[str]]] = [{"cdsClientJwt": []}]
CDS_UNAUTHORIZED = _problem("No JWT, or one refused (untrusted iss, wrong key or aud, expired, replayed jti, "
                            "alg not accepted, jku not allowed); `WWW-Authenticate` says why.")
CDS_PATHS: dict[str, Any] = {
    "/cds-services": {
        "get": {
            "summary": "CDS Hooks discovery: the three services with their hooks and prefetch templates. See docs/cds-hooks.md.",
            "security": [],
            "responses": {"200": {"description": "`{\"services\": [...]}` (CDS Hooks 2.0).",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}},
        }
    },
    "/cds-services/{service_id}": {
        "post": {
            "summary": "Call a CDS service: the cards for this hook call (CDS Hooks 2.0); missing prefetch is "
                       "fetched from fhirServer with fhirAuthorization.",
            "security": CDS_JWT,
            "parameters": [CDS_SERVICE],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {"200": {"description": "`{\"cards\": [...]}`.",
                                  "content": {"application/json": {"schema": {"type": "object"}}}},
                          "400": _problem("Not a request of this service's hook: `errors` names each path "
                                          "(`$.hook`, `$.context`, `$.prefetch.<key>`, `$.fhirServer`)."),
                          "401": CDS_UNAUTHORIZED, "404": _problem("No such service."),
                          "422": INVALID},
        }
    },
    "/cds-services/{service_id}/feedback": {
        "post": {
            "summary": "Record which cards were accepted or overridden (CDS Hooks 2.0 feedback); no free text is kept.",
            "security": CDS_JWT,
            "parameters": [CDS_SERVICE],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {"200": {"description": "`{\"recorded\": n}`.",
                                  "content": {"application/json": {"schema": {"type": "object"}}}},
                          "400": _problem("Not a feedback body; `errors` names each path."),
                          "401": CDS_UNAUTHORIZED, "404": _problem("No such service.")},
        }
    },
}


@cache
def openapi() -> dict[str, Any]:
    protocol_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fhir-migraine",
            "version": __version__,
            "description": "IV migraine infusion protocols and headache diaries as FHIR R4 resources.",
        },
        "paths": {
            "/health": {
                "get": {
                    "summary": "Liveness: the process answers.",
                    "security": [],
                    "responses": {"200": {"description": "Alive.", "content": _json("Health")}},
                }
            },
            "/ready": {
                "get": {
                    "summary": "Readiness: the database answers; the outbox counts (dead items among them), how long "
                    "the oldest undelivered item has waited, and the EHR's last readiness probe (the EHR is never called inline).",
                    "security": [],
                    "responses": {"200": {"description": "Ready.", "content": _json("Ready")}},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (text exposition format 0.0.4): request and EHR call latencies, "
                    "outbox deliveries by status class, and the outbox's items by state and oldest waiting item, "
                    "read at each scrape. Needs the scope migraine:metrics (FHIR_MIGRAINE_API_METRICS_TOKEN), "
                    "which no other token holds; see docs/metrics.md.",
                    "responses": {
                        "200": {"description": "The metrics.",
                                "content": {"text/plain; version=0.0.4": {"schema": {"type": "string"}}}},
                        "401": _problem("No valid bearer token."),
                        "403": _problem("The token lacks the scope migraine:metrics."),
                    },
                }
            },
            "/outbox": {
                "get": {
                    "summary": "Outbox item summaries, oldest first, optionally of one state (the Bundles are not read).",
                    "parameters": [{"name": "state", "in": "query", "schema": {"enum": list(STATES)}},
                                   {"name": "limit", "in": "query",
                                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}],
                    "responses": {"200": {"description": "Items and counts by state.", "content": _json("OutboxList")},
                                  "404": _problem("No EHR is configured."), "422": INVALID},
                }
            },
            "/outbox/{id}": {
                "get": {
                    "summary": "One outbox item: state, attempts, parts sent, the EHR's transaction-responses, last error.",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "The item.", "content": _json("OutboxItem")}, "404": _problem("No such item.")},
                }
            },
            "/outbox/{id}/retry": {
                "post": {
                    "summary": "Put a dead or conflict item back in the queue; its last error is kept in its history.",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "The item, pending again.", "content": _json("OutboxItem")},
                                  "404": _problem("No such item."), "409": _problem("The item is neither dead nor in conflict.")},
                }
            },
            "/patients/{patient}/diary": {
                "get": {
                    "summary": "Pull the patient's diary Observations from the EHR (every page) and unmap them into entries.",
                    "parameters": [PATIENT, SINCE],
                    "responses": {"200": {"description": "The entries.", "content": _json("PulledDiary")},
                                  "404": _problem("No EHR is configured."), "422": INVALID, "502": EHR_FAILED, "503": EHR_FAILED},
                }
            },
            "/patients/{patient}/summary": {
                "get": {
                    "summary": "The figures of the patient's diary as the EHR holds it (pulled and unmapped first): "
                               "headache, migraine and acute-medication days, medication days by class, attacks, "
                               "the medication-overuse risk (ICHD-3 8.2) and the chronic pattern (ICHD-3 1.3).",
                    "parameters": [
                        PATIENT,
                        {"name": "month", "in": "query", "schema": {"type": "string"}, "description": "YYYY-MM"},
                        {"name": "from", "in": "query", "schema": {"type": "string"},
                         "description": "first day (YYYY-MM-DD), with `to`"},
                        {"name": "to", "in": "query", "schema": {"type": "string"},
                         "description": "last day, included; neither month nor from/to: the whole diary"},
                    ],
                    "responses": {"200": {"description": "The figures.", "content": _json("DiarySummary")},
                                  "404": _problem("No EHR is configured, or it holds no diary entries of the patient."),
                                  "422": INVALID, "502": EHR_FAILED, "503": EHR_FAILED},
                }
            },
            "/patients/{patient}/reports": {
                "post": {
                    "summary": "Make the patient's report of a month from what the EHR holds (calendar, figures, "
                               "medication-overuse flags, infusions, MIDAS and HIT-6) and file it in the chart as a "
                               "DocumentReference (the PDF and its HTML) through the outbox; the same report already "
                               "in the EHR is not filed again.",
                    "parameters": [PATIENT, REPORT_MONTH],
                    "responses": {"200": {"description": "The same report is in the EHR already.", "content": _json("FiledReport")},
                                  "202": {"description": "Queued for the EHR.", "content": _json("FiledReport")},
                                  "404": _problem("No EHR is configured, or it holds no diary entries of the patient."),
                                  "422": INVALID, "502": EHR_FAILED, "503": EHR_FAILED},
                }
            },
            "/patients/{patient}/report": {
                "get": {
                    "summary": "The patient's report of a month as the EHR's data make it now, as PDF or HTML, not filed.",
                    "parameters": [PATIENT, REPORT_MONTH,
                                   {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["pdf", "html"]},
                                    "description": "pdf (default) or html"}],
                    "responses": {"200": {"description": "The report.",
                                          "content": {"application/pdf": {}, "text/html": {}}},
                                  "404": _problem("No EHR is configured, or it holds no diary entries of the patient."),
                                  "422": INVALID, "502": EHR_FAILED, "503": EHR_FAILED},
                }
            },
            "/patients/{patient}/orders": {
                "get": {
                    "summary": "Pull the patient's MedicationRequests from the EHR (every page) and unmap them into orders.",
                    "parameters": [PATIENT, SINCE],
                    "responses": {"200": {"description": "The orders.", "content": _json("PulledOrders")},
                                  "404": _problem("No EHR is configured."), "422": INVALID, "502": EHR_FAILED, "503": EHR_FAILED},
                }
            },
            "/validate": {
                "post": {
                    "summary": "Validate any resource or Bundle against FHIR R4 and the profiles it declares.",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": f"{COMPONENTS}/Resource"}}}},
                    "responses": {"200": OUTCOME, "400": MALFORMED},
                }
            },
            "/smart/launch": {
                "get": {
                    "summary": "The SMART app's launch URL (browser): EHR launch with iss and launch, standalone with "
                    "neither; redirects to the EHR's authorization endpoint (code with PKCE S256). See docs/smart-app.md.",
                    "security": [],
                    "parameters": [{"name": "iss", "in": "query", "schema": {"type": "string"},
                                    "description": "the EHR's FHIR base URL (one of FHIR_MIGRAINE_SMART_ISSUERS)"},
                                   {"name": "launch", "in": "query", "schema": {"type": "string"},
                                    "description": "the EHR's launch context"}],
                    "responses": {"302": {"description": "To the EHR's authorization endpoint."},
                                  "400": _page("A launch that cannot go on (an iss not trusted, launch without iss)."),
                                  "404": _page("The SMART app is not configured."), "502": _page("The EHR failed.")},
                }
            },
            "/smart/callback": {
                "get": {
                    "summary": "The SMART app's redirect URL (browser): trades the code for the clinician's token and "
                    "opens a session; a loading page that goes on to the diary.",
                    "security": [],
                    "parameters": [{"name": "code", "in": "query", "schema": {"type": "string"}},
                                   {"name": "state", "in": "query", "schema": {"type": "string"}}],
                    "responses": {"200": _page("The loading page."),
                                  "400": _page("A missing, unknown or used state; no code; a token without patient."),
                                  "502": _page("The EHR's token endpoint refused the code or failed.")},
                }
            },
            "/smart/s/{session}/": {
                "get": {
                    "summary": "The SMART app's page of the diary's latest month (browser).",
                    "security": [],
                    "parameters": [SESSION],
                    "responses": {"200": _page("The month, or the empty state."), "400": _page("No such session, or ended."),
                                  "502": _page("The EHR refused a search (the page names it).")},
                }
            },
            "/smart/s/{session}/{month}": {
                "get": {
                    "summary": "The SMART app's page of a month (browser).",
                    "security": [],
                    "parameters": [SESSION, {"name": "month", "in": "path", "required": True, "schema": {"type": "string"},
                                             "description": "YYYY-MM, not in the future"}],
                    "responses": {"200": _page("The month, or the empty state."), "400": _page("No such session, or ended."),
                                  "422": _page("Not a month, or a month to come."),
                                  "502": _page("The EHR refused a search (the page names it).")},
                }
            },
            **CDS_PATHS,
            "/fhir/metadata": {
                "get": {
                    "summary": "The CapabilityStatement: supported profiles by resource type and $validate.",
                    "security": [],
                    "responses": {"200": {"description": "CapabilityStatement", "content": FHIR_RESOURCE}},
                }
            },
            "/fhir/StructureDefinition/{id}": {
                "get": {
                    "summary": "One of the project's StructureDefinitions (profiles and extensions).",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "StructureDefinition", "content": FHIR_RESOURCE},
                                  "404": FHIR_ERROR},
                }
            },
            "/fhir/$validate": {
                "post": {
                    "summary": "FHIR $validate: a resource, or Parameters with `resource` and `profile`; `?profile=` also works.",
                    "parameters": [PROFILE],
                    "requestBody": {"required": True, "content": {"application/fhir+json": {"schema": {"$ref": f"{COMPONENTS}/Resource"}}}},
                    "responses": {"200": OUTCOME, "400": FHIR_ERROR, "422": FHIR_ERROR},
                }
            },
            "/fhir/{type}/$validate": {
                "post": {
                    "summary": "FHIR $validate of a resource of this type.",
                    "parameters": [{"name": "type", "in": "path", "required": True, "schema": {"type": "string"}}, PROFILE],
                    "requestBody": {"required": True, "content": {"application/fhir+json": {"schema": {"$ref": f"{COMPONENTS}/Resource"}}}},
                    "responses": {"200": OUTCOME, "400": FHIR_ERROR, "422": FHIR_ERROR},
                }
            },
            "/openapi.json": {
                "get": {"summary": "This description.", "responses": {"200": {"description": "OpenAPI 3.1 document."}}}
            },
            "/protocols": {
                "get": {
                    "summary": "The protocols in the library.",
                    "responses": {"200": {"description": "Id, version, title and intent of each.", "content": _json("ProtocolList")}},
                }
            },
            "/protocols/{id}/history": {
                "get": {
                    "summary": "Every recorded change of a protocol: version, content hash, the hash it replaced, who, when.",
                    "parameters": [protocol_id],
                    "responses": {"200": {"description": "The changes, oldest first.", "content": _json("ProtocolHistory")},
                                  "404": _problem("No such protocol.")},
                }
            },
            "/protocols/{id}": {
                "get": {
                    "summary": "One protocol: the current version, or with ?version= one an earlier order names.",
                    "parameters": [protocol_id, {"name": "version", "in": "query", "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "The protocol.", "content": _json("Protocol")},
                                  "404": _problem("No such protocol (or version).")},
                },
                "put": {
                    "summary": "Create a protocol or store a new version of it (JSON, or YAML with Content-Type "
                               "application/yaml); needs the scope migraine:protocols. A version is immutable: "
                               "other content under a stored version is a 409; only its status may move forward "
                               "(draft, active, retired).",
                    "parameters": [protocol_id],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": f"{COMPONENTS}/Protocol"}},
                            "application/yaml": {"schema": {"$ref": f"{COMPONENTS}/Protocol"}},
                        },
                    },
                    "responses": {
                        "200": {"description": "Replaced.", "content": _json("Protocol")},
                        "201": {"description": "Created.", "content": _json("Protocol")},
                        "403": _problem("The token lacks the scope migraine:protocols, or has no subject."),
                        "409": _problem("The version is already stored with other content, or its status would go back."),
                        "422": INVALID,
                    },
                },
            },
            "/diary": {
                "post": {
                    "summary": "Map one diary entry, or a list of them, to a FHIR transaction Bundle of Observations.",
                    "parameters": [{"name": "summary", "in": "query", "schema": {"enum": ["true", "false"]},
                                    "description": "true: the Bundle also holds the diary's summary Observation and "
                                                   "a DetectedIssue per medication-overuse risk"}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": f"{COMPONENTS}/DiaryEntry"},
                                        {"type": "array", "items": {"$ref": f"{COMPONENTS}/DiaryEntry"}},
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "The transaction Bundle: per entry a diary-day Observation and its members.",
                            "content": {"application/fhir+json": {"schema": {"$ref": f"{COMPONENTS}/Bundle"}}},
                        },
                        "202": QUEUED,
                        "400": MALFORMED,
                        "413": TOO_MANY_ENTRIES,
                        "422": INVALID,
                    },
                }
            },
            "/imports": {
                "post": {
                    "summary": "Import a large diary: NDJSON, one entry per line, streamed to disk; a background importer "
                    "maps it in chunks and queues each chunk in the outbox. Invalid lines are reported, the valid ones sent.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/x-ndjson": {"schema": {"type": "string", "description": (
                            "UTF-8 text, one diary entry (a JSON object, see DiaryEntry) per line; at most "
                            "FHIR_MIGRAINE_MAX_IMPORT_BYTES (256 MiB by default).")}}},
                    },
                    "responses": {
                        "202": {"description": "Stored; `Location` is `/imports/{import_id}`.", "content": _json("ImportAccepted")},
                        "400": _problem("The body is empty, not UTF-8, or not NDJSON (its first line is not a JSON object)."),
                        "404": _problem("No EHR is configured."),
                        "413": _problem("The upload is larger than FHIR_MIGRAINE_MAX_IMPORT_BYTES; `detail` names the limit."),
                        "415": _problem("The Content-Type is not application/x-ndjson (UTF-8)."),
                    },
                }
            },
            "/imports/{id}": {
                "get": {
                    "summary": "One import: state, progress, the invalid lines (the first 100 in full) and the outbox items it made.",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "The import.", "content": _json("Import")},
                                  "404": _problem("No such import, or no EHR is configured.")},
                }
            },
            "/bulk-pulls": {
                "post": {
                    "summary": "Pull every member of a group of patients from the EHR, in the background: FHIR Bulk Data's "
                               "group export where the EHR offers it, else one pull per patient. Each member is unmapped "
                               "into orders and diary entries as a single pull is.",
                    "requestBody": {"required": True, "content": _json("BulkPullRequest")},
                    "responses": {
                        "202": {"description": "Queued; `Location` is `/bulk-pulls/{id}`.", "content": _json("BulkPull")},
                        "400": MALFORMED,
                        "404": _problem("No EHR is configured."),
                        "422": INVALID,
                    },
                }
            },
            "/bulk-pulls/{id}": {
                "get": {
                    "summary": "One group pull: its state (pending, pulling, done, failed), how it is made (bulk or "
                               "per-patient), the members read so far and what they held; the reason when it failed.",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "The group pull.", "content": _json("BulkPull")},
                                  "404": _problem("No such group pull, or no EHR is configured.")},
                }
            },
            "/bulk-pulls/{id}/patients": {
                "get": {
                    "summary": "Each member of a finished group pull, one JSON object per line: `patient`, `orders`, "
                               "`diary`, `reports`, `invalid`, `incomplete`, `warnings` and `resources`, as a single "
                               "patient's pull gives them.",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"description": "NDJSON, one member per line, in the group's order.",
                                "content": {"application/x-ndjson": {"schema": {"type": "string"}}}},
                        "404": _problem("No such group pull, or no EHR is configured."),
                        "409": _problem("The group pull is not done yet (or failed)."),
                    },
                }
            },
            "/orders/{order_id}": {
                "delete": {
                    "summary": "Cancel an order in the EHR, through the outbox behind the patient's earlier items: its "
                               "MedicationRequests `cancelled` (or `stopped` once a dose may have been given) and its "
                               "RequestGroup `revoked`.",
                    "parameters": [
                        {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "patient", "in": "query", "schema": {"type": "string"},
                         "description": "Patient/<id> or identifier=SYSTEM|VALUE; needed when the order did not go "
                                        "through this service's outbox."},
                        {"name": "reason", "in": "query", "schema": {"type": "string"},
                         "description": "Why; each MedicationRequest's statusReason.text."},
                    ],
                    "responses": {"202": WITHDRAWAL_QUEUED, "404": _problem("No EHR is configured, or the order's patient "
                                                                            "is not known here and was not named."),
                                  "422": INVALID},
                }
            },
            "/diary/{entry_id}": {
                "delete": {
                    "summary": "Retract a diary entry in the EHR, through the outbox: its day Observation and the "
                               "Observations it holds become `entered-in-error`.",
                    "parameters": [
                        {"name": "entry_id", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "patient", "in": "query", "schema": {"type": "string"},
                         "description": "Patient/<id> or identifier=SYSTEM|VALUE; needed when the entry did not go "
                                        "through this service's outbox."},
                    ],
                    "responses": {"202": WITHDRAWAL_QUEUED, "404": _problem("No EHR is configured, or the entry's "
                                                                            "patient is not known here and was not named."),
                                  "422": INVALID},
                }
            },
            "/orders": {
                "post": {
                    "summary": "Map an order (a protocol applied to a patient, the version it names or the current "
                               "one; only an active protocol) to a FHIR transaction Bundle of draft orders (or the "
                               "status and intent the site sets).",
                    "requestBody": {"required": True, "content": _json("Order")},
                    "responses": {
                        "201": {
                            "description": "The transaction Bundle: MedicationRequests (each carrying the order's "
                            "weight), a RequestGroup, DetectedIssues, and the weight as a vital sign when the site "
                            "charts it. A finding that does not stop the order (a delivery beyond a drug's labelled "
                            "rate) is a DetectedIssue in the Bundle, referenced from its MedicationRequest; with "
                            "an EHR the 202 answer also carries them as an OperationOutcome under `warnings`.",
                            "content": {"application/fhir+json": {"schema": {"$ref": f"{COMPONENTS}/Bundle"}}},
                        },
                        "202": QUEUED,
                        "400": MALFORMED,
                        "422": INVALID,
                    },
                }
            },
        },
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The static token FHIR_MIGRAINE_API_TOKEN (read and write), the static token "
                                   "FHIR_MIGRAINE_API_PROTOCOLS_TOKEN (read and protocols), the static token "
                                   "FHIR_MIGRAINE_API_METRICS_TOKEN (GET /metrics only), or a JWT whose scope grants "
                                   "migraine:read, migraine:write, migraine:protocols and/or migraine:metrics.",
                },
                "cdsClientJwt": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The CDS Hooks 2.0 JWT the EHR signs for each call (RS384/ES384), verified against "
                                   "its JWKS; see docs/cds-hooks.md.",
                },
            },
            "schemas": {
                "Protocol": _embed("protocol", "Protocol"),
                "Order": _embed("order", "Order"),
                "DiaryEntry": _embed("diary-entry", "DiaryEntry"),
                "ProtocolHistory": {
                    "type": "object",
                    "required": ["id", "changes"],
                    "properties": {
                        "id": {"type": "string"},
                        "changes": {"type": "array", "items": {
                            "type": "object",
                            "required": ["version", "content_hash", "previous_hash", "subject", "changed_at"],
                            "properties": {"version": {"type": "string"}, "content_hash": {"type": "string"},
                                           "previous_hash": {"type": ["string", "null"]}, "subject": {"type": "string"},
                                           "changed_at": {"type": "string", "format": "date-time"}},
                        }},
                    },
                },
                "ProtocolList": {
                    "type": "object",
                    "required": ["protocols"],
                    "properties": {
                        "protocols": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["id", "version", "title", "intent", "status"],
                                "properties": {k: {"type": "string"} for k in ("id", "version", "title", "intent", "status")},
                            },
                        }
                    },
                },
                "Bundle": {
                    "type": "object",
                    "description": "A FHIR R4 Bundle (https://hl7.org/fhir/R4/bundle.html).",
                    "required": ["resourceType", "type"],
                    "properties": {"resourceType": {"const": "Bundle"}, "type": {"type": "string"}, "entry": {"type": "array"}},
                },
                "Resource": {
                    "type": "object",
                    "description": "A FHIR R4 resource (https://hl7.org/fhir/R4/resourcelist.html).",
                    "required": ["resourceType"],
                    "properties": {"resourceType": {"type": "string"}},
                },
                "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
                "Ready": {
                    "type": "object",
                    "required": ["status", "ehr"],
                    "properties": {
                        "status": {"type": "string"},
                        "protocols": {"type": "integer"},
                        "outbox": {"type": "object", "properties": {
                            "pending": {"type": "integer"}, "sending": {"type": "integer"}, "sent": {"type": "integer"},
                            "dead": {"type": "integer"},
                            "oldest_pending_age_s": {"type": ["number", "null"],
                                                     "description": "seconds the oldest pending or sending item has waited"}}},
                        "ehr": {"type": "object", "properties": {
                            "configured": {"type": "boolean"},
                            "reachable": {"type": ["boolean", "null"], "description": "at the last probe; null before the first"},
                            "probe_age_s": {"type": ["number", "null"], "description": "seconds since the last probe"},
                            "error": {"type": "string"}}},
                    },
                },
                "Queued": {
                    "type": "object",
                    "required": ["outbox_id", "state", "bundle"],
                    "properties": {"outbox_id": {"type": "string"}, "state": {"const": "pending"},
                                   "bundle": {"$ref": f"{COMPONENTS}/Bundle"},
                                   "warnings": {"$ref": f"{COMPONENTS}/Resource",
                                                "description": "An OperationOutcome of findings that did not stop "
                                                "the order (orders only; absent when there are none)."}},
                },
                "EntryOutcome": {
                    "type": "object",
                    "required": ["index", "status"],
                    "properties": {
                        "index": {"type": "integer", "description": "its place in the transaction sent"},
                        "resource": {"type": "string", "description": "the resource type sent in that place"},
                        "status": {"type": ["string", "integer", "null"], "description": "entry.response.status"},
                        "location": {"type": "string", "description": "what the EHR created or found"},
                        "outcome": {"type": "string", "description": "the summary of the entry's OperationOutcome"},
                        "issue_codes": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "OutboxItem": {
                    "type": "object",
                    "required": ["id", "kind", "state", "attempts", "parts", "parts_sent"],
                    "properties": {
                        "id": {"type": "string"},
                        "kind": {"enum": ["order", "diary", "bundle", "withdrawal"]},
                        "state": {"enum": list(STATES)},
                        "attempts": {"type": "integer"},
                        "parts": {"type": "integer"},
                        "parts_sent": {"type": "integer"},
                        "resources": {"type": "integer"},
                        "part_progress": {
                            "type": "object",
                            "description": "the part being sent, written one request (or one batch) at a time: the "
                                           "EHR's answer to each entry written so far, by fullUrl (or Type/id); a "
                                           "retry goes on from there",
                            "additionalProperties": {"$ref": f"{COMPONENTS}/EntryOutcome"},
                        },
                        "last_error": {
                            "type": "object",
                            "description": "type, message, status and the EHR's OperationOutcome; max_attempts_reached"
                                           " when it gave up after FHIR_MIGRAINE_MAX_ATTEMPTS",
                            "properties": {
                                "type": {"type": "string"},
                                "message": {"type": "string"},
                                "status": {"type": "integer"},
                                "retryable": {"type": "boolean"},
                                "max_attempts_reached": {"type": "boolean"},
                                "changed": {"type": "array", "items": {"type": "string"},
                                            "description": "in conflict: the elements the EHR holds otherwise and "
                                                           "will not update"},
                                "entries": {
                                    "type": "array",
                                    "description": "a transaction the EHR did not wholly accept: each entry's outcome",
                                    "items": {"$ref": f"{COMPONENTS}/EntryOutcome"},
                                },
                            },
                        },
                        "retry_after_capped": {"type": "boolean",
                                               "description": "the EHR's Retry-After was longer than FHIR_MIGRAINE_RETRY_AFTER_CAP"},
                        "responses": {"type": "array", "items": {"$ref": f"{COMPONENTS}/Bundle"}},
                        "history": {"type": "array", "items": {"type": "object"},
                                    "description": "earlier lives: each time the item was dead and put back, its last error"},
                        "purged_at": {"type": "string", "description": "when its Bundles were dropped (retention)"},
                    },
                },
                "BulkPullRequest": {
                    "type": "object",
                    "required": ["group"],
                    "additionalProperties": False,
                    "properties": {
                        "group": {"type": "string", "description": "Group/<id> in the EHR, or its id."},
                        "since": {"type": "string", "description": "Only resources changed since this instant."},
                    },
                },
                "BulkPull": {
                    "type": "object",
                    "required": ["bulk_pull_id", "group", "state", "members", "patients_read", "resources",
                                 "invalid", "incomplete", "created_at", "updated_at"],
                    "properties": {
                        "bulk_pull_id": {"type": "string"}, "group": {"type": "string"},
                        "state": {"enum": ["pending", "pulling", "done", "failed"]},
                        "method": {"enum": ["bulk", "per-patient", None]},
                        "members": {"type": "integer"}, "patients_read": {"type": "integer"},
                        "resources": {"type": "integer"}, "invalid": {"type": "integer"},
                        "incomplete": {"type": "integer"}, "since": {"type": "string"},
                        "error": {"type": "string"}, "patients": {"type": "string"},
                        "created_at": {"type": "string"}, "updated_at": {"type": "string"},
                    },
                },
                "ImportAccepted": {
                    "type": "object",
                    "required": ["import_id", "state"],
                    "properties": {"import_id": {"type": "string"}, "state": {"const": "pending"}},
                },
                "Import": {
                    "type": "object",
                    "required": ["import_id", "state", "bytes", "lines_read", "entries_queued", "invalid", "problems",
                                 "outbox_ids", "created_at", "updated_at"],
                    "properties": {
                        "import_id": {"type": "string"},
                        "state": {"enum": ["pending", "mapping", "done", "failed"]},
                        "bytes": {"type": "integer", "description": "Size of the upload."},
                        "bytes_read": {"type": "integer"},
                        "lines_read": {"type": "integer"},
                        "entries_queued": {"type": "integer"},
                        "invalid": {"type": "integer", "description": "Lines that are not a valid diary entry."},
                        "problems": {"type": "array", "description": "The first 100 problems: line, JSON path, message.",
                                     "items": {"type": "object", "properties": {
                                         "path": {"type": "string"}, "message": {"type": "string"},
                                         "location": {"type": "string"}}}},
                        "problems_omitted": {"type": "integer", "description": "Problems beyond the first 100."},
                        "outbox_items": {"type": "integer"},
                        "outbox_ids": {"type": "array", "items": {"type": "string"},
                                       "description": "The outbox items made, one per chunk (see GET /outbox/{id})."},
                        "error": {"type": "string", "description": "Why a failed import stopped."},
                        "created_at": {"type": "string"},
                        "updated_at": {"type": "string"},
                    },
                },
                "OutboxList": {
                    "type": "object",
                    "properties": {"items": {"type": "array", "items": {"$ref": f"{COMPONENTS}/OutboxItem"}},
                                   "counts": {"type": "object", "additionalProperties": {"type": "integer"}}},
                },
                "PulledDiary": {"type": "object", "properties": {
                    "diary": {"type": "array", "items": {"$ref": f"{COMPONENTS}/DiaryEntry"}},
                    "resources": {"type": "integer"}, "invalid": INVALID_PULLED, "incomplete": INCOMPLETE,
                    "warnings": PULL_WARNINGS}},
                "FiledReport": {
                    "type": "object",
                    "required": ["month", "figures", "moh_risk", "identifier", "state"],
                    "properties": {
                        "month": {"type": "string"}, "figures": {"type": "object"}, "moh_risk": {"type": "array"},
                        "identifier": {"type": "object"}, "replaces": {"type": ["string", "null"]},
                        "state": {"type": "string", "enum": ["pending", "filed"]},
                        "outbox_id": {"type": "string"}, "document": {"type": "string"},
                    },
                },
                "DiarySummary": {
                    "type": "object",
                    "required": ["patient", "from", "to", "days_recorded", "headache_days", "migraine_days",
                                 "acute_medication_days", "medication_days_by_class", "attacks", "attacks_with_aura",
                                 "longest_attack_hours", "moh_risk", "chronic_pattern"],
                    "properties": {
                        "patient": {"type": "object"}, "from": {"type": "string"}, "to": {"type": "string"},
                        "days_recorded": {"type": "integer"}, "headache_days": {"type": "integer"},
                        "migraine_days": {"type": "integer"}, "acute_medication_days": {"type": "integer"},
                        "medication_days_by_class": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "unclassified_medication_days": {"type": "integer"},
                        "low_dose_aspirin_days": {"type": "integer"},
                        "attacks": {"type": "integer"}, "attacks_with_aura": {"type": "integer"},
                        "longest_attack_hours": {"type": ["number", "null"]},
                        "month": {"type": "string", "description": "the month of the overuse risk and chronic pattern"},
                        "moh_risk": {"type": "array", "items": {"type": "object", "required": [
                            "class", "days", "threshold", "consecutive_months"]}},
                        "moh_not_assessed": {"type": "array", "items": {"type": "object"}},
                        "chronic_pattern": {"type": "boolean"},
                        "chronic_pattern_months": {"type": "object"},
                        "menstrual_association": {
                            "type": "object", "required": ["cycles", "fits_a1_1_2", "association"],
                            "description": "ICHD-3 A1.1.2 from the days recorded as menstruating: the cycles whose "
                                           "day 1 is in the period; fits_a1_1_2 null with fewer than 3 cycles",
                            "properties": {"cycles": {"type": "integer"}, "fits_a1_1_2": {"type": ["boolean", "null"]},
                                           "association": {"type": "string"}}},
                        "attack_readings": {"type": "array", "items": {"type": "object"},
                                            "description": "each attack of the period against ICHD-3 1.1, 1.5.1 "
                                                           "and 1.2: statuses, criteria, warnings (never a diagnosis)"},
                        "ichd3_caveat": {"type": "string"},
                        "left_out": {"type": "object", "description": "entries the pull found invalid or incomplete"},
                        "warnings": PULL_WARNINGS,
                    },
                },
                "PulledOrders": {"type": "object", "properties": {
                    "orders": {"type": "array", "items": {"$ref": f"{COMPONENTS}/Order"}},
                    "resources": {"type": "integer"}, "invalid": INVALID_PULLED, "incomplete": INCOMPLETE,
                    "warnings": PULL_WARNINGS}},
                "Problem": {
                    "type": "object",
                    "description": "RFC 9457 problem details; `errors` locates each problem by JSON path.",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["path", "message"],
                                "properties": {
                                    "path": {"type": "string", "description": "JSON path of the field, e.g. $.steps[0].dose"},
                                    "message": {"type": "string"},
                                    "location": {"type": "string", "description": "NDJSON line or CSV row and column"},
                                },
                            },
                        },
                    },
                },
            }
        },
    }

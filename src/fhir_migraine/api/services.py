"""What the endpoints use, kept on the Flask app: the settings, the protocol library, the EHR gateway,
the import jobs, this process's importer and the SMART app's sessions."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from fhir_migraine.config import Settings
from fhir_migraine.ehr.gateway import EhrGateway
from fhir_migraine.ehr.importer import Importer
from fhir_migraine.ehr.imports import ImportJobs
from fhir_migraine.ehr.smart_sessions import SmartSessions
from fhir_migraine.library import ProtocolStore

EXTENSION = "fhir_migraine"


@dataclass
class Services:
    """What the endpoints use; ``gateway`` and ``imports`` are None when no EHR is configured,
    ``importer`` while this process's importer is not running."""

    settings: Settings
    protocols: ProtocolStore
    gateway: EhrGateway | None = None
    imports: ImportJobs | None = None
    importer: Importer | None = None
    smart: SmartSessions | None = None  # the SMART app's launches and sessions, opened on first use


def services_of(app: Flask) -> Services:
    found: Services = app.extensions[EXTENSION]
    return found

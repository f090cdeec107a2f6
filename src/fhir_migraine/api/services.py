"""What the endpoints use, kept on the Flask app: the settings, the protocol library, the EHR gateway,
the import jobs and group pulls, this process's importer and group puller, the SMART app's sessions and the CDS services' JWT check
and feedback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask

from fhir_migraine.config import Settings
from fhir_migraine.ehr.gateway import EhrGateway
from fhir_migraine.ehr.group_puller import GroupPuller
from fhir_migraine.ehr.group_pulls import GroupPulls
from fhir_migraine.ehr.importer import Importer
from fhir_migraine.ehr.imports import ImportJobs
from fhir_migraine.ehr.smart_sessions import SmartSessions
from fhir_migraine.library import ProtocolStore

if TYPE_CHECKING:
    from fhir_migraine.api.cds_auth import CdsAuthenticator
    from fhir_migraine.api.cds_feedback import FeedbackStore

EXTENSION = "fhir_migraine"


@dataclass
class Services:
    """What the endpoints use; ``gateway``, ``imports`` and ``group_pulls`` are None when no EHR is
    configured, ``importer`` and ``group_puller`` while this process's threads are not running."""

    settings: Settings
    protocols: ProtocolStore
    gateway: EhrGateway | None = None
    imports: ImportJobs | None = None
    importer: Importer | None = None
    group_pulls: GroupPulls | None = None
    group_puller: GroupPuller | None = None
    smart: SmartSessions | None = None  # the SMART app's launches and sessions, opened on first use
    cds_auth: CdsAuthenticator | None = None  # the CDS clients' JWT check, with its replay store
    cds_feedback: FeedbackStore | None = None


def services_of(app: Flask) -> Services:
    found: Services = app.extensions[EXTENSION]
    return found

"""What the endpoints use, kept on the Flask app: the settings, the protocol library, the EHR gateway."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from fhir_migraine.config import Settings
from fhir_migraine.ehr.gateway import EhrGateway
from fhir_migraine.library import ProtocolStore

EXTENSION = "fhir_migraine"


@dataclass
class Services:
    """What the endpoints use; ``gateway`` is None when no EHR is configured."""

    settings: Settings
    protocols: ProtocolStore
    gateway: EhrGateway | None = None


def services_of(app: Flask) -> Services:
    found: Services = app.extensions[EXTENSION]
    return found

"""The HTTP service: Flask app factory, blueprints, error handlers and the OpenAPI description."""

from __future__ import annotations

from flask import Flask

from fhir_migraine.api import errors, routes
from fhir_migraine.config import Settings
from fhir_migraine.library import ProtocolStore


def create_app(settings: Settings | None = None) -> Flask:
    """The service configured by ``settings`` (from the environment when None)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.extensions["protocols"] = ProtocolStore(settings.database, seed=settings.seed_protocols)
    errors.register(app)
    app.register_blueprint(routes.blueprint)
    return app

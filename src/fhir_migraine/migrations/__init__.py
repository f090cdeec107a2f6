"""Numbered SQL migrations of the PostgreSQL store (see ``fhir_migraine.postgres``)."""

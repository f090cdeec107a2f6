"""fhir-migraine: IV migraine infusion protocols and headache diaries as FHIR R4."""

__version__ = "0.1.0"

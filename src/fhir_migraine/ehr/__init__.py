"""The EHR edge: the gateway (push and pull composed once), FHIR client, authentication, outbox,
worker, pull."""

"""The EHR edge: FHIR client, authentication, outbox, push and pull."""

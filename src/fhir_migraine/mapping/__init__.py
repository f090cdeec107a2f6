"""Pure mapping functions between the input contracts and FHIR R4 resources; no I/O."""

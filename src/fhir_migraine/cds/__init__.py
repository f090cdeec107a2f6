"""CDS Hooks 2.0 services of fhir-migraine, the pure part: the services' definitions and prefetch
templates, the patient's context read from FHIR resources, the rules table and its evaluator, and
the cards. The HTTP edge (discovery, authentication, prefetch completion) lives in ``api``.
Spec: https://cds-hooks.hl7.org/2.0/"""

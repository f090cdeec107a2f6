"""Validation of FHIR R4 resources against the base spec and the project's profiles.

Pure: the package in ``profiles/`` is read once by ``Validator.load`` and compiled into checks;
validating a resource does no I/O. Results are OperationOutcome resources.
"""

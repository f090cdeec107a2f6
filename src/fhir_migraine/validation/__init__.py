"""Validation of FHIR R4 resources against the base spec and the project's profiles.

Pure: the package in ``profiles/`` is read once by ``Validator.load`` and compiled into checks;
validating a resource does no I/O. Results are OperationOutcome resources.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fhir_migraine.validation.engine import Validator


@lru_cache(maxsize=1)
def default_validator() -> Validator:
    """The validator of the package in profiles/, loaded and compiled once per process."""
    from fhir_migraine.validation.engine import Validator

    return Validator.load()


def check(resource: Any, what: str = "mapped resources") -> None:
    """Raise ProfileError with the OperationOutcome when ``resource`` (or a Bundle's entries)
    breaks the base spec or a profile it declares."""
    from fhir_migraine.errors import ProfileError
    from fhir_migraine.validation.issues import has_errors

    result = default_validator().validate(resource)
    if has_errors(result):
        raise ProfileError(f"The {what} do not conform to their profiles.", result)

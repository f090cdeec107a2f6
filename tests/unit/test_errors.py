"""The exception hierarchy: each class says once how the edges present it."""

from __future__ import annotations

import pytest

from fhir_migraine import errors


@pytest.mark.parametrize(
    ("cls", "status", "exit_code"),
    [
        (errors.InputError, 422, 1),
        (errors.UnreadableInput, 400, 1),
        (errors.LaunchRefused, 400, 1),
        (errors.HookRefused, 400, 1),
        (errors.TooLarge, 413, 1),
        (errors.UnsupportedMediaType, 415, 1),
        (errors.ProfileError, 422, 1),
        (errors.NotFound, 404, 1),
        (errors.ConfigError, 500, 2),
        (errors.EhrUnavailable, 503, 3),
        (errors.EhrRejected, 502, 3),
        (errors.EhrAuthError, 502, 3),
        (errors.PatientUnknown, 404, 3),
        (errors.PatientAmbiguous, 409, 3),
    ],
)
def test_each_error_class_sets_its_status_and_exit_code(cls, status: int, exit_code: int) -> None:
    assert issubclass(cls, errors.FhirMigraineError)
    assert cls.http_status == status
    assert cls.exit_code == exit_code


def test_an_input_error_lists_each_problem_with_its_path() -> None:
    error = errors.InputError.of([errors.Problem("$.a", "is required"), errors.Problem("$.b[0]", "bad")])
    assert str(error).splitlines() == ["The input is invalid (2 problems).", "  $.a: is required", "  $.b[0]: bad"]

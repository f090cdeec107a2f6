"""The project's FHIR profiles as a FHIR package (``profiles/``), generated from the code tables
and from the per-profile definitions in this folder; see docs/profiles.md.

Only ``build.read_sources``, ``build.write`` and ``build.write_all`` touch the disk.
"""

from __future__ import annotations

from fhir_migraine.profiles.build import (
    EXTENSIONS,
    PACKAGE_NAME,
    PROFILES,
    Sources,
    conformance_resources,
    examples,
    files,
    package_file_name,
    read_sources,
    tgz,
    write,
    write_all,
)

__all__ = [
    "EXTENSIONS",
    "PACKAGE_NAME",
    "PROFILES",
    "Sources",
    "conformance_resources",
    "examples",
    "files",
    "package_file_name",
    "read_sources",
    "tgz",
    "write",
    "write_all",
]

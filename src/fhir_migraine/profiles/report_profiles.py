"""Differential of the monthly diary report's DocumentReference (``mapping.report_document``)."""

from __future__ import annotations

from fhir_migraine import terminology
from fhir_migraine.mapping.report_document import DOCUMENT_TYPE, REPORT_SYSTEM
from fhir_migraine.profiles.elements import Element, coding_pattern, el, reference, sliced_by

DOC = "DocumentReference"


def diary_report() -> list[Element]:
    """A month of the headache diary filed in the chart: the PDF and its HTML, the month, the maker."""
    kind = terminology.Code(DOCUMENT_TYPE["system"], DOCUMENT_TYPE["code"], DOCUMENT_TYPE["display"])
    return [
        el(DOC, short="A month of a patient's headache diary, as a report filed in the chart"),
        el(f"{DOC}.identifier", min=1, slicing=sliced_by("value", "system")),
        el(f"{DOC}.identifier:report", min=1, max=1),
        el(f"{DOC}.identifier:report.system", min=1, fixed=("Uri", REPORT_SYSTEM)),
        el(f"{DOC}.identifier:report.value", min=1, short="<month>/<digest of the report's content>"),
        el(f"{DOC}.type", min=1, pattern=("CodeableConcept", coding_pattern(kind))),
        el(f"{DOC}.subject", min=1, types=reference("Patient")),
        el(f"{DOC}.date", min=1),
        el(f"{DOC}.author", min=1, short="The software that made the report (a contained Device)"),
        el(f"{DOC}.content", min=2, max=2, short="The PDF, then the same content as HTML"),
        el(f"{DOC}.content.attachment.contentType", min=1),
        el(f"{DOC}.content.attachment.data", min=1),
        el(f"{DOC}.context", min=1),
        el(f"{DOC}.context.period", min=1),
        el(f"{DOC}.context.period.start", min=1),
        el(f"{DOC}.context.period.end", min=1),
    ]

"""The CodeableConcept of a drug: its RxNorm ingredient, then the product-level codes of the table.

US Core binds ``MedicationRequest.medication[x]`` (extensibly) to RxNorm clinical drugs (SCD,
SCDF, SBD, ...): an ingredient (IN) alone does not meet it. A protocol names a drug and a dose,
not the vial, so the product codes are those the table lists for the route (docs/mapping.md).
"""

from __future__ import annotations

from typing import Any

from fhir_migraine import terminology
from fhir_migraine.inputs.protocols import Drug


def medication_concept(drug: Drug, route: str) -> dict[str, Any]:
    """The ingredient coding first (what unmap and older readers look for), then each product."""
    codes = [drug.code]
    # A step that carries its own code keeps only that code: the table's products are for the
    # table's ingredient.
    if terminology.drug(drug.name) == drug.code:
        codes += terminology.drug_products(drug.name, route)
    return {"coding": [code.coding() for code in codes], "text": drug.name}

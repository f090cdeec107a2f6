"""Hypothesis strategies for diary entries, and the normal form ``unmap`` gives back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from fhir_migraine import terminology

SYMPTOMS = ["nausea", "vomiting", "photophobia", "phonophobia", "osmophobia", "allodynia", "neck-pain", "dizziness"]
AURA = ["visual", "sensory", "speech", "motor"]
TRIGGERS = ["stress", "sleep-deprivation", "oversleeping", "dehydration", "skipped-meal", "alcohol", "menstruation",
            "weather", "bright-light", "strong-smell", "exercise", "travel", "caffeine-withdrawal", "other"]
ROUTES = ["oral", "nasal", "subcutaneous", "intramuscular", "intravenous", "rectal"]
PAIN_2H = ["none", "mild", "moderate", "severe"]
DRUGS = terminology.drug_names()
OFFSETS = st.integers(-12 * 60, 14 * 60).map(lambda m: m - m % 15)


def render(moment: datetime, offset_minutes: int, fraction: bool) -> str:
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    text = local.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0")
    if fraction:
        text += f".{local.microsecond:06d}"
    if offset_minutes == 0:
        return text + "Z"
    sign = "+" if offset_minutes > 0 else "-"
    return text + f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"


MOMENTS = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 30), timezones=st.just(UTC)
)


@st.composite
def instant(draw: Any) -> str:
    return render(draw(MOMENTS), draw(OFFSETS), draw(st.booleans()))


@st.composite
def quantity(draw: Any, units: list[str]) -> tuple[Any, str]:
    value = Decimal(draw(st.integers(1, 99999))) / Decimal(draw(st.sampled_from([1, 10, 100])))
    unit = draw(st.sampled_from(units))
    text = f"{format(value.normalize(), 'f')} {unit}"
    if draw(st.booleans()):
        return {"value": int(value) if value == value.to_integral() else float(value), "unit": unit}, text
    return text, text


# Any script, but no control characters except line breaks and tabs (FHIR strings cannot carry them),
# and never white space alone (no-break and ideographic spaces included): the contract refuses
# blank text (inputs/schema.py NOT_BLANK).
NOTES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\n\t"), min_size=1, max_size=3000
).filter(lambda s: not s.isspace())
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
    lambda s: not s.isspace()
)


@st.composite
def attack(draw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    start = draw(MOMENTS)
    fraction = draw(st.booleans())
    raw: dict[str, Any] = {"start": render(start, draw(OFFSETS), fraction)}
    if draw(st.booleans()):
        end = start + timedelta(minutes=draw(st.integers(0, 60 * 24 * 5)))
        raw["end"] = render(end, draw(OFFSETS), fraction)
    optional = {
        "peak_intensity": st.integers(0, 10),
        "location": st.sampled_from(["unilateral", "bilateral"]),
        "quality": st.sampled_from(["pulsating", "pressing", "stabbing", "other"]),
        "worse_with_activity": st.booleans(),
        "symptoms": st.lists(st.sampled_from(SYMPTOMS), unique=True),
        "aura": st.lists(st.sampled_from(AURA), unique=True),
        "triggers": st.lists(st.sampled_from(TRIGGERS), unique=True),
        "disability": st.integers(0, 3),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            raw[key] = draw(strategy)
    expected = {k: v for k, v in raw.items() if v != []}
    return raw, expected


@st.composite
def medication(draw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    dose, dose_text = draw(quantity(["mg", "ug", "g"]))
    raw: dict[str, Any] = {"drug": draw(st.sampled_from(DRUGS)), "dose": dose}
    expected: dict[str, Any] = {"drug": raw["drug"]}
    if draw(st.integers(0, 4)) == 0:
        raw["drug"] = expected["drug"] = draw(TEXT.filter(lambda s: terminology.drug(s) is None))
        raw["code"] = {"system": draw(st.sampled_from(["rxnorm", "http://example.org/drugs"])), "code": str(draw(st.integers(1, 10**7)))}
        expected["code"] = dict(raw["code"])
        if draw(st.booleans()):
            raw["code"]["display"] = expected["code"]["display"] = "Display " + raw["code"]["code"]
    expected["dose"] = dose_text
    if draw(st.booleans()):
        raw["route"] = expected["route"] = draw(st.sampled_from(ROUTES))
    raw["taken_at"] = expected["taken_at"] = draw(instant())
    if draw(st.booleans()):
        raw["relief_2h"] = expected["relief_2h"] = draw(st.booleans())
    if not raw["taken_at"].startswith("9999-12-31T2"):  # its outcome is dated 2 hours later, within FHIR's years
        raw.update(outcomes := draw(outcomes_2h()))
        expected.update(outcomes)
    return raw, expected


@st.composite
def outcomes_2h(draw: Any) -> dict[str, Any]:
    """Any of the IHS outcomes at 2 hours (none at all as often as not); pain freedom, when given
    with the pain, agrees with it (pain-free exactly when the pain is none)."""
    found: dict[str, Any] = {}
    if draw(st.booleans()):
        return found
    if draw(st.booleans()):
        found["pain_2h"] = draw(st.sampled_from(PAIN_2H))
    if draw(st.booleans()):
        found["pain_free_2h"] = found["pain_2h"] == "none" if "pain_2h" in found else draw(st.booleans())
    for name in ("mbs_free_2h", "rescue", "recurrence_48h"):
        if draw(st.booleans()):
            found[name] = draw(st.booleans())
    return found


@st.composite
def drink(draw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    volume, text = draw(quantity(["mL", "L"]))
    product = draw(TEXT)
    taken_at = draw(instant())
    return {"product": product, "volume": volume, "taken_at": taken_at}, {"product": product, "volume": text, "taken_at": taken_at}


@st.composite
def diary_entry(draw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A valid entry and the entry ``unmap`` must give back (quantities as text, no empty lists)."""
    day = draw(st.dates(min_value=datetime(1, 1, 1).date(), max_value=datetime(9999, 12, 31).date()))
    raw: dict[str, Any] = {
        "entry_id": draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9.\-_]{0,30}\Z")),
        "patient": draw(st.one_of(
            st.from_regex(r"\A[A-Za-z0-9\-.]{1,20}\Z").map(lambda i: {"reference": f"Patient/{i}"}),
            st.from_regex(r"\A[A-Z0-9]{1,12}\Z").map(lambda v: {"identifier": {"system": "urn:oid:1.2.3", "value": v}}),
        )),
        "date": day.isoformat().rjust(10, "0"),
    }
    expected = dict(raw)
    which = draw(st.sampled_from(["attack", "free", "absent"]))
    if which == "attack":
        raw["headache"], expected["headache"] = draw(attack())
    elif which == "free":
        raw["headache"] = expected["headache"] = None
    for key, strategy in (("medications", medication()), ("hydration", drink())):
        if draw(st.booleans()):
            pairs = draw(st.lists(strategy, max_size=4))
            raw[key] = [p[0] for p in pairs]
            if pairs:
                expected[key] = [p[1] for p in pairs]
    if draw(st.booleans()):
        infusion = {"received_at": draw(instant())}
        if draw(st.booleans()):
            infusion["protocol"] = draw(TEXT)
        raw["infusion"] = expected["infusion"] = infusion
    if draw(st.booleans()):
        raw["menstruation"] = expected["menstruation"] = draw(st.booleans())
    if draw(st.booleans()):
        raw["notes"] = expected["notes"] = draw(NOTES)
    if draw(st.booleans()):
        first, third = draw(st.integers(0, 92)), draw(st.integers(0, 92))
        raw["midas"] = expected["midas"] = {"q1": first, "q2": draw(st.integers(0, 92 - first)), "q3": third,
                                            "q4": draw(st.integers(0, 92 - third)), "q5": draw(st.integers(0, 92))}
    if draw(st.booleans()):
        answers = st.sampled_from(["never", "rarely", "sometimes", "very often", "always"])
        raw["hit6"] = expected["hit6"] = {f"q{i}": draw(answers) for i in range(1, 7)}
    return raw, expected

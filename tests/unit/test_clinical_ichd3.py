"""One attack read against ICHD-3 1.1, 1.5.1, 1.2 and 1.2.3: each criterion met, not met or unknown."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_migraine.clinical.ichd3 import AURA_TYPES, Attack, Aura, AuraSymptom, read_attack
from tests.conftest import examples

PROPERTY = settings(max_examples=examples(200), deadline=None)

MIGRAINE = Attack(duration_hours=8, treated=False, unilateral=True, pulsating=True, intensity="severe",
                  aggravated_by_routine_activity=True, nausea=True, vomiting=False, photophobia=True, phonophobia=True)
VISUAL = AuraSymptom("visual", onset_minutes=0, duration_minutes=20, spread_minutes=10, unilateral=True, positive=True)
TYPICAL_AURA = Aura((VISUAL,), fully_reversible=True, headache_after_minutes=30)


def status(attack: Attack, code: str, criterion: str | None = None) -> str:
    reading = read_attack(attack)
    found = reading.get(code)
    return found.criterion(criterion).status if criterion else found.status


def test_a_typical_attack_meets_every_criterion_of_migraine_without_aura() -> None:
    reading = read_attack(MIGRAINE)
    assert [(c.code, c.status) for c in reading.get("1.1").criteria] == [("1.1 B", "met"), ("1.1 C", "met"), ("1.1 D", "met")]
    assert reading.get("1.1").status == "met"
    assert reading.get("1.5.1").status == "not-met"  # a definite reading trumps a probable one
    assert reading.migraine_features == "met"
    assert [i.code for i in reading.interpretations] == ["1.1", "1.5.1"]


def test_every_reading_says_it_is_not_a_diagnosis_and_what_it_cannot_judge() -> None:
    caveat = read_attack(MIGRAINE).caveat
    assert "not a diagnosis" in caveat and "at least five" in caveat and "1.1 E" in caveat


@pytest.mark.parametrize(("hours", "treated", "successful", "expected"), [
    (3.9, False, None, "not-met"),
    (4, False, None, "met"),
    (72, False, None, "met"),
    (72.1, False, None, "not-met"),
    (3.9, True, False, "not-met"),
    (3.9, True, True, "unknown"),
    (3.9, True, None, "unknown"),
    (3.9, None, None, "unknown"),
    (6, True, True, "met"),
    (80, True, True, "not-met"),
    (None, False, None, "unknown"),
], ids=["3.9h-untreated", "4h", "72h", "72.1h", "3.9h-failed-treatment", "3.9h-treated-successfully",
        "3.9h-success-unknown", "3.9h-treatment-unknown", "6h-treated-successfully", "80h-treated", "no-duration"])
def test_duration_criterion_b(hours: float | None, treated: bool | None, successful: bool | None, expected: str) -> None:
    attack = replace(MIGRAINE, duration_hours=hours, treated=treated, treatment_successful=successful)
    assert status(attack, "1.1", "1.1 B") == expected


def test_under_18_attacks_may_last_from_2_hours() -> None:
    assert status(replace(MIGRAINE, duration_hours=2, under_18=True), "1.1", "1.1 B") == "met"
    assert status(replace(MIGRAINE, duration_hours=1.9, under_18=True), "1.1", "1.1 B") == "not-met"
    assert status(replace(MIGRAINE, duration_hours=2), "1.1", "1.1 B") == "not-met"


def test_a_short_untreated_attack_with_every_other_feature_is_probable_migraine() -> None:
    reading = read_attack(replace(MIGRAINE, duration_hours=3))
    assert reading.get("1.1").status == "not-met"
    assert reading.get("1.5.1").status == "met"
    assert reading.migraine_features == "met"  # C and D still count toward migraine days (1.3 C)


@pytest.mark.parametrize(("changes", "expected"), [
    ({"unilateral": True, "pulsating": True, "intensity": "mild", "aggravated_by_routine_activity": False}, "met"),
    ({"unilateral": True, "pulsating": False, "intensity": "mild", "aggravated_by_routine_activity": False}, "not-met"),
    ({"unilateral": False, "pulsating": False, "intensity": "moderate", "aggravated_by_routine_activity": None}, "unknown"),
    ({"unilateral": None, "pulsating": None, "intensity": None, "aggravated_by_routine_activity": None}, "unknown"),
    ({"unilateral": False, "pulsating": False, "intensity": "none", "aggravated_by_routine_activity": False}, "not-met"),
], ids=["two-of-four", "one-of-four", "one-and-one-unknown", "nothing-recorded", "none"])
def test_characteristics_criterion_c_needs_two_of_four(changes: dict[str, Any], expected: str) -> None:
    assert status(replace(MIGRAINE, **changes), "1.1", "1.1 C") == expected


@pytest.mark.parametrize(("nausea", "vomiting", "photo", "phono", "expected"), [
    (True, False, False, False, "met"),
    (False, True, False, False, "met"),
    (False, False, True, True, "met"),
    (False, False, True, False, "not-met"),
    (False, False, False, True, "not-met"),
    (False, False, True, None, "unknown"),
    (None, False, False, False, "unknown"),
    (False, False, False, None, "not-met"),
], ids=["nausea", "vomiting", "photo-and-phono", "photo-only", "phono-only", "phono-unknown", "nausea-unknown",
        "neither-pair"])
def test_symptoms_criterion_d(nausea: bool | None, vomiting: bool | None, photo: bool | None, phono: bool | None,
                              expected: str) -> None:
    attack = replace(MIGRAINE, nausea=nausea, vomiting=vomiting, photophobia=photo, phonophobia=phono)
    assert status(attack, "1.1", "1.1 D") == expected


def test_two_criteria_missing_is_neither_migraine_nor_probable_migraine() -> None:
    reading = read_attack(replace(MIGRAINE, duration_hours=2, nausea=False, photophobia=False))
    assert (reading.get("1.1").status, reading.get("1.5.1").status) == ("not-met", "not-met")


def test_an_attack_with_nothing_recorded_is_unknown_throughout() -> None:
    reading = read_attack(Attack())
    assert {c.status for c in reading.get("1.1").criteria} == {"unknown"}
    assert (reading.get("1.1").status, reading.get("1.5.1").status, reading.migraine_features) == ("unknown",) * 3


def test_one_criterion_missing_and_one_unknown_leaves_probable_migraine_unknown() -> None:
    reading = read_attack(replace(MIGRAINE, duration_hours=3, nausea=None, photophobia=None))
    assert (reading.get("1.1").status, reading.get("1.5.1").status) == ("not-met", "unknown")


def test_a_typical_visual_aura_is_read_as_migraine_with_aura() -> None:
    reading = read_attack(replace(MIGRAINE, aura=TYPICAL_AURA))
    aura = reading.get("1.2")
    assert aura.status == "met"
    assert {c.code: c.status for c in aura.criteria} == {
        "1.2 B": "met", "1.2 C": "met", "1.2 C1": "met", "1.2 C2": "not-met", "1.2 C3": "met", "1.2 C4": "met",
        "1.2 C5": "met", "1.2 C6": "met"}
    assert reading.get("1.1").status == "not-met" and "1.2" in reading.get("1.1").reason
    assert reading.warnings == () and not reading.motor_aura


@pytest.mark.parametrize(("symptom", "headache_after", "expected"), [
    (VISUAL, 30, "met"),                                                                  # 5 of 6
    (replace(VISUAL, spread_minutes=0, unilateral=False), 30, "met"),                    # 3 of 6
    (replace(VISUAL, spread_minutes=0, unilateral=False, positive=False), 30, "not-met"),  # 2 of 6
    (replace(VISUAL, spread_minutes=0, unilateral=False, positive=None), 30, "unknown"),   # 2 and 1 unknown
], ids=["five", "three", "two", "two-and-unknown"])
def test_aura_characteristics_c_need_three_of_six(symptom: AuraSymptom, headache_after: float, expected: str) -> None:
    aura = Aura((symptom,), fully_reversible=True, headache_after_minutes=headache_after)
    assert status(replace(MIGRAINE, aura=aura), "1.2", "1.2 C") == expected


@pytest.mark.parametrize(("after", "expected"), [(-10, "met"), (0, "met"), (60, "met"), (61, "not-met"), (None, "unknown")],
                         ids=["during", "at-end", "60-min", "61-min", "not-recorded"])
def test_headache_must_come_with_the_aura_or_within_60_minutes(after: float | None, expected: str) -> None:
    aura = replace(TYPICAL_AURA, headache_after_minutes=after)
    assert status(replace(MIGRAINE, aura=aura), "1.2", "1.2 C6") == expected


def test_an_aura_without_headache_does_not_meet_c6() -> None:
    aura = replace(TYPICAL_AURA, headache_after_minutes=None)
    assert status(replace(MIGRAINE, intensity="none", aura=aura), "1.2", "1.2 C6") == "not-met"


@pytest.mark.parametrize(("kind", "minutes", "expected"), [
    ("visual", 4, "not-met"), ("visual", 5, "met"), ("visual", 60, "met"), ("visual", 61, "not-met"),
    ("motor", 120, "met"), ("motor", 72 * 60 + 1, "not-met"), ("visual", None, "unknown"),
], ids=["4-min", "5-min", "60-min", "61-min", "motor-2h", "motor-over-72h", "not-recorded"])
def test_each_aura_symptom_lasts_5_to_60_minutes_motor_up_to_72_hours(kind: str, minutes: float | None, expected: str) -> None:
    aura = Aura((replace(VISUAL, type=kind, duration_minutes=minutes),), fully_reversible=True, headache_after_minutes=0)
    assert status(replace(MIGRAINE, aura=aura), "1.2", "1.2 C3") == expected  # type: ignore[arg-type]


def test_symptoms_in_succession_need_two_onsets() -> None:
    sensory = AuraSymptom("sensory", onset_minutes=15, duration_minutes=20, unilateral=True)
    together = replace(sensory, onset_minutes=0)
    assert status(replace(MIGRAINE, aura=replace(TYPICAL_AURA, symptoms=(VISUAL, sensory))), "1.2", "1.2 C2") == "met"
    assert status(replace(MIGRAINE, aura=replace(TYPICAL_AURA, symptoms=(VISUAL, together))), "1.2", "1.2 C2") == "not-met"
    unknown = replace(sensory, onset_minutes=None)
    assert status(replace(MIGRAINE, aura=replace(TYPICAL_AURA, symptoms=(VISUAL, unknown))), "1.2", "1.2 C2") == "unknown"


@pytest.mark.parametrize(("reversible", "expected"), [(True, "met"), (False, "not-met"), (None, "unknown")])
def test_aura_b_needs_fully_reversible_symptoms(reversible: bool | None, expected: str) -> None:
    assert status(replace(MIGRAINE, aura=replace(TYPICAL_AURA, fully_reversible=reversible)), "1.2", "1.2 B") == expected


def test_an_empty_aura_meets_nothing_of_1_2() -> None:
    reading = read_attack(replace(MIGRAINE, aura=Aura(())))
    assert reading.get("1.2").status == "not-met"
    assert reading.get("1.2").criterion("1.2 B").status == "not-met"


def test_a_motor_aura_warns_that_triptans_and_dhe_are_contraindicated_in_hemiplegic_migraine() -> None:
    motor = AuraSymptom("motor", onset_minutes=10, duration_minutes=90, spread_minutes=10, unilateral=True, positive=False)
    reading = read_attack(replace(MIGRAINE, aura=replace(TYPICAL_AURA, symptoms=(VISUAL, motor))))
    assert reading.motor_aura
    assert reading.hemiplegic_features == "met"
    [warning] = reading.warnings
    assert "1.2.3" in warning and "triptans" in warning and "dihydroergotamine" in warning and "contraindicated" in warning


def test_a_motor_aura_alone_warns_but_lacks_the_other_aura_of_1_2_3() -> None:
    motor = AuraSymptom("motor", onset_minutes=0, duration_minutes=90, spread_minutes=10, unilateral=True, positive=False)
    reading = read_attack(replace(MIGRAINE, aura=replace(TYPICAL_AURA, symptoms=(motor,))))
    assert reading.motor_aura and reading.warnings
    assert reading.hemiplegic_features == "not-met"


def test_an_aura_meeting_1_2_makes_a_migraine_day_even_without_1_1_features() -> None:
    attack = Attack(duration_hours=1, intensity="mild", nausea=False, vomiting=False, photophobia=False, phonophobia=False,
                    unilateral=False, pulsating=False, aggravated_by_routine_activity=False, treated=False, aura=TYPICAL_AURA)
    reading = read_attack(attack)
    assert reading.get("1.2").status == "met"
    assert reading.migraine_features == "met"


def test_values_outside_the_lists_are_refused() -> None:
    with pytest.raises(ValueError, match="intensity"):
        Attack(intensity="unbearable")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aura type"):
        AuraSymptom("auditory")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        Attack(duration_hours=-1)


def test_a_reading_serialises_every_criterion() -> None:
    found = read_attack(replace(MIGRAINE, aura=TYPICAL_AURA)).as_dict()
    assert [i["code"] for i in found["interpretations"]] == ["1.1", "1.5.1", "1.2"]
    assert found["interpretations"][2]["criteria"][0] == {"code": "1.2 B", "status": "met",
                                                          "reason": "aura (visual) fully reversible"}


OPTIONAL_BOOL = st.one_of(st.none(), st.booleans())
SYMPTOMS = st.builds(AuraSymptom, type=st.sampled_from(AURA_TYPES),
                     onset_minutes=st.one_of(st.none(), st.integers(0, 90)),
                     duration_minutes=st.one_of(st.none(), st.integers(0, 5000)),
                     spread_minutes=st.one_of(st.none(), st.integers(0, 30)),
                     unilateral=OPTIONAL_BOOL, positive=OPTIONAL_BOOL)
AURAS = st.builds(Aura, symptoms=st.lists(SYMPTOMS, max_size=3).map(tuple), fully_reversible=OPTIONAL_BOOL,
                  headache_after_minutes=st.one_of(st.none(), st.integers(-30, 120)))
ATTACKS = st.builds(
    Attack, duration_hours=st.one_of(st.none(), st.floats(0, 200)), treated=OPTIONAL_BOOL, treatment_successful=OPTIONAL_BOOL,
    unilateral=OPTIONAL_BOOL, pulsating=OPTIONAL_BOOL,
    intensity=st.one_of(st.none(), st.sampled_from(["none", "mild", "moderate", "severe"])),
    aggravated_by_routine_activity=OPTIONAL_BOOL, nausea=OPTIONAL_BOOL, vomiting=OPTIONAL_BOOL, photophobia=OPTIONAL_BOOL,
    phonophobia=OPTIONAL_BOOL, aura=st.one_of(st.none(), AURAS), under_18=st.booleans(),
)


@PROPERTY
@given(ATTACKS)
def test_an_interpretation_agrees_with_its_criteria(attack: Attack) -> None:
    reading = read_attack(attack)
    mo, probable = reading.get("1.1"), reading.get("1.5.1")
    statuses = [c.status for c in mo.criteria]
    if mo.status == "met":
        assert statuses == ["met"] * 3 and attack.aura is None
    if probable.status == "met":
        assert sorted(statuses) == ["met", "met", "not-met"] and attack.aura is None
    assert not (mo.status == "met" and probable.status == "met")
    if attack.aura is not None:
        aura = reading.get("1.2")
        if aura.status == "met":
            assert sum(c.status == "met" for c in aura.criteria if c.code.startswith("1.2 C") and c.code != "1.2 C") >= 3
        assert reading.motor_aura == any(s.type == "motor" for s in attack.aura.symptoms)
        brainstem = any(s.type == "brainstem" for s in attack.aura.symptoms)
        assert bool(reading.warnings) == (reading.motor_aura or brainstem)


@PROPERTY
@given(ATTACKS, st.data())
def test_a_decided_reading_stays_decided_when_missing_data_is_filled_in(attack: Attack, data: st.DataObject) -> None:
    """Unknown means the diary lacks something; once known, nothing already met or not met changes."""
    filled: dict[str, Any] = {}
    for f in fields(Attack):
        if getattr(attack, f.name) is None and f.name != "aura":
            strategy = {"duration_hours": st.floats(0, 200),
                        "intensity": st.sampled_from(["none", "mild", "moderate", "severe"])}.get(f.name, st.booleans())
            filled[f.name] = data.draw(strategy)
    before, after = read_attack(attack), read_attack(replace(attack, **filled))
    for code in ("1.1", "1.5.1"):
        for old, new in zip(before.get(code).criteria, after.get(code).criteria, strict=True):
            if old.status != "unknown":
                assert new.status == old.status, (code, old, new)
        if before.get(code).status != "unknown":
            assert after.get(code).status == before.get(code).status


def test_a_brainstem_aura_warns_as_basilar_migraine_does_and_a_visual_one_does_not() -> None:
    from fhir_migraine.clinical.ichd3 import BRAINSTEM_WARNING, Attack, Aura, AuraSymptom, read_attack

    brainstem = read_attack(Attack(duration_hours=6, aura=Aura((AuraSymptom("brainstem"),))))
    assert BRAINSTEM_WARNING in brainstem.warnings and "basilar" in BRAINSTEM_WARNING
    visual = read_attack(Attack(duration_hours=6, aura=Aura((AuraSymptom("visual"),))))
    assert visual.warnings == ()

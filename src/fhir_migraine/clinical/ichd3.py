"""One headache attack read against the ICHD-3 criteria that a single attack can meet: 1.1 migraine
without aura (B-D), 1.5.1 probable migraine without aura (all but one of B-D), 1.2 migraine with
aura (B, C) and the features of 1.2.3 hemiplegic migraine (motor aura).

Each criterion is ``met``, ``not-met`` or ``unknown`` (the diary lacks what it needs), with the
reason. A reading is an interpretation, never a diagnosis: ICHD-3 also asks for a number of such
attacks (1.1 A: at least five; 1.2 A: at least two) and that no other ICHD-3 diagnosis accounts
better for them (1.1 E, 1.2 D), which no single diary entry can tell. Source: ICHD-3, Cephalalgia
2018;38(1):1-211; the criteria and the choices made here are in docs/clinical-rules.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["met", "not-met", "unknown"]
Intensity = Literal["none", "mild", "moderate", "severe"]
AuraType = Literal["visual", "sensory", "speech", "motor", "brainstem", "retinal"]

MET: Status = "met"
NOT_MET: Status = "not-met"
UNKNOWN: Status = "unknown"

AURA_TYPES: tuple[AuraType, ...] = ("visual", "sensory", "speech", "motor", "brainstem", "retinal")
INTENSITIES: tuple[Intensity, ...] = ("none", "mild", "moderate", "severe")

# 1.1 B: 4-72 hours; note 3: 2-72 hours under 18 years of age.
MIN_HOURS, MIN_HOURS_UNDER_18, MAX_HOURS = 4.0, 2.0, 72.0
# 1.2 C: spread over at least 5 minutes; each symptom 5-60 minutes (note 1: motor up to 72 hours);
# headache within 60 minutes of the aura.
SPREAD_MINUTES, SYMPTOM_MIN_MINUTES, SYMPTOM_MAX_MINUTES = 5.0, 5.0, 60.0
MOTOR_MAX_MINUTES = 72 * 60.0
HEADACHE_AFTER_AURA_MINUTES = 60.0

CAVEAT = ("An interpretation of one recorded attack against ICHD-3 criteria, not a diagnosis: "
          "ICHD-3 also needs enough such attacks (1.1 A: at least five; 1.2 A: at least two) and that "
          "no other ICHD-3 diagnosis accounts better for them (1.1 E, 1.2 D); a clinician decides.")
HEMIPLEGIC_WARNING = ("Motor aura: if these attacks are 1.2.3 hemiplegic migraine, triptans and dihydroergotamine "
                      "are contraindicated (their US labels' Contraindications: hemiplegic or basilar migraine).")
BRAINSTEM_WARNING = ("Brainstem aura: if these attacks are 1.2.2 migraine with brainstem aura (previously basilar "
                     "migraine), triptans and dihydroergotamine are contraindicated (their US labels' "
                     "Contraindications: hemiplegic or basilar migraine).")


@dataclass(frozen=True)
class AuraSymptom:
    """One aura symptom. Times in minutes; ``onset_minutes`` from the start of the aura; ``None``
    where the diary does not say."""

    type: AuraType
    onset_minutes: float | None = None
    duration_minutes: float | None = None
    spread_minutes: float | None = None  # over how long it spread gradually (0: it did not spread)
    unilateral: bool | None = None
    positive: bool | None = None  # scintillations, pins and needles (ICHD-3 1.2, note 3 of A1.2)

    def __post_init__(self) -> None:
        if self.type not in AURA_TYPES:
            raise ValueError(f"aura type must be one of {', '.join(AURA_TYPES)}, not {self.type!r}")


@dataclass(frozen=True)
class Aura:
    """The aura of an attack: its symptoms, whether they all went away, and when the headache
    began: ``headache_after_minutes`` from the end of the aura (0 or less: during the aura)."""

    symptoms: tuple[AuraSymptom, ...]
    fully_reversible: bool | None = None
    headache_after_minutes: float | None = None


@dataclass(frozen=True)
class Attack:
    """One headache attack as a diary records it; ``None`` wherever the diary does not say.

    ``duration_hours`` runs from onset to the end of the attack (ICHD-3 1.1 note 2: when the patient
    falls asleep and wakes up without it, to the time of awakening). ``treated``: acute medication
    was taken; ``treatment_successful``: it ended the attack."""

    duration_hours: float | None = None
    treated: bool | None = None
    treatment_successful: bool | None = None
    unilateral: bool | None = None
    pulsating: bool | None = None
    intensity: Intensity | None = None
    aggravated_by_routine_activity: bool | None = None
    nausea: bool | None = None
    vomiting: bool | None = None
    photophobia: bool | None = None
    phonophobia: bool | None = None
    aura: Aura | None = None  # None: no aura recorded
    under_18: bool = False

    def __post_init__(self) -> None:
        if self.intensity is not None and self.intensity not in INTENSITIES:
            raise ValueError(f"intensity must be one of {', '.join(INTENSITIES)}, not {self.intensity!r}")
        if self.duration_hours is not None and self.duration_hours < 0:
            raise ValueError(f"duration_hours cannot be negative ({self.duration_hours})")


@dataclass(frozen=True)
class Criterion:
    """One ICHD-3 criterion (``1.1 B``) as this attack meets it, with the reason."""

    code: str
    status: Status
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class Interpretation:
    """One ICHD-3 entry (``1.1``) read for this attack: its status and the criteria behind it."""

    code: str
    title: str
    status: Status
    criteria: tuple[Criterion, ...]
    reason: str = ""

    def criterion(self, code: str) -> Criterion:
        return next(c for c in self.criteria if c.code == code)

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"code": self.code, "title": self.title, "status": self.status,
                                 "criteria": [c.as_dict() for c in self.criteria]}
        if self.reason:
            found["reason"] = self.reason
        return found


@dataclass(frozen=True)
class Reading:
    """Everything one attack says against ICHD-3: an interpretation per entry, whether the attack
    has migraine features (for counting migraine days, 1.3 C), the warnings, and the caveat."""

    interpretations: tuple[Interpretation, ...]
    migraine_features: Status
    warnings: tuple[str, ...] = ()
    caveat: str = CAVEAT
    motor_aura: bool = False
    hemiplegic_features: Status = NOT_MET

    def get(self, code: str) -> Interpretation:
        return next(i for i in self.interpretations if i.code == code)

    def as_dict(self) -> dict[str, Any]:
        return {"interpretations": [i.as_dict() for i in self.interpretations], "migraine_features": self.migraine_features,
                "motor_aura": self.motor_aura, "hemiplegic_features": self.hemiplegic_features,
                "warnings": list(self.warnings), "caveat": self.caveat}


def at_least(needed: int, statuses: Iterable[Status]) -> Status:
    """``needed`` or more of the statuses met: met; too few could be: not met; else unknown."""
    statuses = list(statuses)
    met, unknown = statuses.count(MET), statuses.count(UNKNOWN)
    if met >= needed:
        return MET
    return NOT_MET if met + unknown < needed else UNKNOWN


def all_of(statuses: Iterable[Status]) -> Status:
    statuses = list(statuses)
    if NOT_MET in statuses:
        return NOT_MET
    return UNKNOWN if UNKNOWN in statuses else MET


def any_of(statuses: Iterable[Status]) -> Status:
    return at_least(1, statuses)


def flag(value: bool | None) -> Status:
    return UNKNOWN if value is None else MET if value else NOT_MET


def duration_criterion(attack: Attack) -> Criterion:
    """1.1 B: attacks lasting 4-72 hours when untreated or unsuccessfully treated.

    An attack that lasted 4 to 72 hours meets it however it was treated (treatment only shortens an
    attack); one beyond 72 hours fails it (that is 1.4.1 status migrainosus). One shorter than 4
    hours fails it only when untreated or unsuccessfully treated: a successful treatment cut it
    short, so how long it would have lasted is unknown (ICHD-3 1.1 B limits the window to attacks
    untreated or unsuccessfully treated; 1.5: attacks treated early often do not achieve every
    characteristic)."""
    low = MIN_HOURS_UNDER_18 if attack.under_18 else MIN_HOURS
    window = f"{low:g}-{MAX_HOURS:g} h"
    hours = attack.duration_hours
    if hours is None:
        return Criterion("1.1 B", UNKNOWN, "the duration is not recorded")
    if hours > MAX_HOURS:
        return Criterion("1.1 B", NOT_MET, f"lasted {hours:g} h, more than {MAX_HOURS:g} h")
    if hours >= low:
        return Criterion("1.1 B", MET, f"lasted {hours:g} h, within {window}")
    if attack.treated is False:
        return Criterion("1.1 B", NOT_MET, f"untreated and lasted {hours:g} h, less than {low:g} h")
    if attack.treated and attack.treatment_successful is False:
        return Criterion("1.1 B", NOT_MET, f"unsuccessfully treated and lasted {hours:g} h, less than {low:g} h")
    if attack.treated and attack.treatment_successful:
        return Criterion("1.1 B", UNKNOWN, f"treated successfully after {hours:g} h: how long it would have lasted is unknown")
    return Criterion("1.1 B", UNKNOWN, f"lasted {hours:g} h, and whether a treatment cut it short is not recorded")


def characteristics_criterion(attack: Attack) -> Criterion:
    """1.1 C: at least two of unilateral, pulsating, moderate or severe, aggravated by routine activity."""
    intensity = UNKNOWN if attack.intensity is None else flag(attack.intensity in ("moderate", "severe"))
    found = {"unilateral location": flag(attack.unilateral), "pulsating quality": flag(attack.pulsating),
             "moderate or severe intensity": intensity,
             "aggravated by routine physical activity": flag(attack.aggravated_by_routine_activity)}
    return Criterion("1.1 C", at_least(2, found.values()), _tally(found, 2, 4))


def symptoms_criterion(attack: Attack) -> Criterion:
    """1.1 D: during the headache, nausea and/or vomiting, or both photophobia and phonophobia."""
    sick = any_of([flag(attack.nausea), flag(attack.vomiting)])
    light_and_sound = all_of([flag(attack.photophobia), flag(attack.phonophobia)])
    status = any_of([sick, light_and_sound])
    return Criterion("1.1 D", status, f"nausea and/or vomiting: {sick}; photophobia and phonophobia: {light_and_sound}")


def _tally(found: dict[str, Status], needed: int, of: int) -> str:
    met = [name for name, status in found.items() if status == MET]
    unknown = [name for name, status in found.items() if status == UNKNOWN]
    text = f"{len(met)} of {of} (needs {needed})" + (f": {', '.join(met)}" if met else "")
    return text + (f"; not recorded: {', '.join(unknown)}" if unknown else "")


def without_aura(attack: Attack) -> tuple[Interpretation, Interpretation]:
    """1.1 (B, C and D all met) and 1.5.1 (exactly one of B-D not met, the others met)."""
    criteria = (duration_criterion(attack), characteristics_criterion(attack), symptoms_criterion(attack))
    statuses = [c.status for c in criteria]
    if attack.aura is not None:
        reason = "an aura is recorded: the attack is read under 1.2"
        return (Interpretation("1.1", "Migraine without aura", NOT_MET, criteria, reason),
                Interpretation("1.5.1", "Probable migraine without aura", NOT_MET, criteria, reason))
    failed, unknown = statuses.count(NOT_MET), statuses.count(UNKNOWN)
    if failed == 1 and unknown == 0:
        probable = MET
    elif failed >= 2 or (failed == 0 and unknown == 0):
        probable = NOT_MET  # two or more missing, or all met (a definite reading trumps a probable one)
    else:
        probable = UNKNOWN
    return (Interpretation("1.1", "Migraine without aura", all_of(statuses), criteria),
            Interpretation("1.5.1", "Probable migraine without aura", probable, criteria,
                           "all but one of criteria B-D of 1.1"))


def aura_characteristics(aura: Aura, attack: Attack) -> tuple[Criterion, ...]:
    """The six characteristics of 1.2 C, one criterion each (``1.2 C1`` to ``1.2 C6``)."""
    symptoms = aura.symptoms
    spread = any_of(flag(s.spread_minutes >= SPREAD_MINUTES) if s.spread_minutes is not None else UNKNOWN for s in symptoms)
    onsets = [s.onset_minutes for s in symptoms]
    if len(symptoms) < 2:
        succession, why = NOT_MET, "a single symptom"
    elif None not in onsets:
        succession = flag(len(set(onsets)) > 1)
        why = "onsets " + ", ".join(f"{o:g}" for o in onsets if o is not None) + " min"
    else:
        succession, why = UNKNOWN, "onsets not recorded"

    def lasts(symptom: AuraSymptom) -> Status:
        if symptom.duration_minutes is None:
            return UNKNOWN
        high = MOTOR_MAX_MINUTES if symptom.type == "motor" else SYMPTOM_MAX_MINUTES
        return flag(SYMPTOM_MIN_MINUTES <= symptom.duration_minutes <= high)

    durations = all_of(lasts(s) for s in symptoms) if symptoms else NOT_MET
    unilateral = any_of(flag(s.unilateral) for s in symptoms)
    positive = any_of(flag(s.positive) for s in symptoms)
    if attack.intensity == "none":
        headache, when = NOT_MET, "no headache"
    elif aura.headache_after_minutes is None:
        headache, when = UNKNOWN, "when the headache began is not recorded"
    else:
        headache = flag(aura.headache_after_minutes <= HEADACHE_AFTER_AURA_MINUTES)
        when = ("during the aura" if aura.headache_after_minutes <= 0
                else f"{aura.headache_after_minutes:g} min after the aura")
    return (
        Criterion("1.2 C1", spread, "at least one symptom spreads gradually over 5 min or more"),
        Criterion("1.2 C2", succession, f"two or more symptoms in succession ({why})"),
        Criterion("1.2 C3", durations, "each symptom lasts 5-60 min (motor up to 72 h)"),
        Criterion("1.2 C4", unilateral, "at least one symptom is unilateral"),
        Criterion("1.2 C5", positive, "at least one symptom is positive"),
        Criterion("1.2 C6", headache, f"headache with the aura or within 60 min of it ({when})"),
    )


def with_aura(attack: Attack, aura: Aura) -> Interpretation:
    """1.2: B (one or more fully reversible aura symptoms of the six types) and C (at least three
    of six characteristics)."""
    types = sorted({s.type for s in aura.symptoms})
    if not aura.symptoms:
        b = Criterion("1.2 B", NOT_MET, "no aura symptom recorded")
    elif aura.fully_reversible is None:
        b = Criterion("1.2 B", UNKNOWN, f"aura ({', '.join(types)}); whether it fully went away is not recorded")
    else:
        b = Criterion("1.2 B", flag(aura.fully_reversible),
                      f"aura ({', '.join(types)}) {'fully reversible' if aura.fully_reversible else 'not fully reversible'}")
    characteristics = aura_characteristics(aura, attack)
    met = [c.code.removeprefix("1.2 ") for c in characteristics if c.status == MET]
    c = Criterion("1.2 C", at_least(3, (x.status for x in characteristics)),
                  f"{len(met)} of 6 (needs 3)" + (f": {', '.join(met)}" if met else ""))
    return Interpretation("1.2", "Migraine with aura", all_of([b.status, c.status]), (b, c, *characteristics))


def read_attack(attack: Attack) -> Reading:
    """Read one attack against ICHD-3 1.1, 1.5.1 and (when an aura is recorded) 1.2 and 1.2.3."""
    mo, probable = without_aura(attack)
    interpretations = [mo, probable]
    features = all_of([mo.criterion("1.1 C").status, mo.criterion("1.1 D").status])
    warnings: list[str] = []
    motor, hemiplegic = False, NOT_MET
    if attack.aura is not None:
        ma = with_aura(attack, attack.aura)
        interpretations.append(ma)
        # 1.3 C: a migraine day meets C and D of 1.1, or B and C of 1.2.
        features = any_of([features, all_of([ma.criterion("1.2 B").status, ma.criterion("1.2 C").status])])
        types = {s.type for s in attack.aura.symptoms}
        motor = "motor" in types
        if motor:
            # 1.2.3 B: both fully reversible motor weakness and visual, sensory and/or speech symptoms.
            others = flag(bool(types & {"visual", "sensory", "speech"}))
            hemiplegic = all_of([ma.status, others])
            warnings.append(HEMIPLEGIC_WARNING)
        if "brainstem" in types:
            warnings.append(BRAINSTEM_WARNING)
    return Reading(tuple(interpretations), features, tuple(warnings), motor_aura=motor, hemiplegic_features=hemiplegic)

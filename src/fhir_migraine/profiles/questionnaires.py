"""The MIDAS and HIT-6 Questionnaires of the package: the questionnaires the diary's
QuestionnaireResponses answer (mapping/diary.py), one item per scored question.

Both instruments are copyrighted, so the item texts are short paraphrases, not the published
wording; the scoring and its sources are in docs/clinical-rules.md. No LOINC code for either
panel or its items was found in the sources available to the project, so the items carry none.
"""

from __future__ import annotations

from typing import Any

from fhir_migraine.clinical.scores import HIT6_POINTS, MIDAS_PERIOD_DAYS, MIDAS_QUESTION_TOPICS
from fhir_migraine.profiles.codes import common

Resource = dict[str, Any]

# Paraphrases of the six HIT-6 items (the topic each one asks about, over the past 4 weeks where
# the instrument says so).
HIT6_TOPICS = (
    "How often the pain of a headache is severe",
    "How often headaches limit usual daily activities",
    "How often the patient wishes they could lie down during a headache",
    "In the past 4 weeks, how often the patient felt too tired for work or daily activities because of headaches",
    "In the past 4 weeks, how often the patient felt fed up or irritated because of headaches",
    "In the past 4 weeks, how often headaches limited the ability to concentrate on work or daily activities",
)


def midas() -> Resource:
    resource = common("Questionnaire", "midas", "MIDAS (Migraine Disability Assessment)",
                      "The five scored MIDAS questions: days in the last 3 months lost to headache at work or "
                      "school, at home and in family, social or leisure activities (paraphrased; the published "
                      "questionnaire is copyrighted). The score is their sum; grades I to IV.")
    resource["subjectType"] = ["Patient"]
    resource["item"] = [
        {"linkId": f"q{i}", "text": f"In the last 3 months: {topic} because of headaches", "type": "integer",
         "required": True,
         "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": MIDAS_PERIOD_DAYS},
                       {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": 0}]}
        for i, topic in enumerate(MIDAS_QUESTION_TOPICS, start=1)
    ]
    return resource


def hit6() -> Resource:
    resource = common("Questionnaire", "hit-6", "HIT-6 (Headache Impact Test)",
                      "The six HIT-6 items, each answered never, rarely, sometimes, very often or always "
                      "(paraphrased; the published test is copyrighted). Points 6, 8, 10, 11, 13; the score is "
                      "their sum, 36 to 78.")
    resource["subjectType"] = ["Patient"]
    resource["item"] = [
        {"linkId": f"q{i}", "text": topic, "type": "choice", "required": True,
         "answerOption": [{"valueString": answer} for answer in HIT6_POINTS]}
        for i, topic in enumerate(HIT6_TOPICS, start=1)
    ]
    return resource


def questionnaires() -> list[Resource]:
    return [midas(), hit6()]

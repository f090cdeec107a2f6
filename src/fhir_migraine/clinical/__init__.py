"""Pure clinical rules of the headache diary: ICHD-3 criteria per attack (``ichd3``), medication
overuse and the chronic pattern per month (``overuse``), menstrual association (``menstrual``),
and the MIDAS and HIT-6 scores (``scores``); the calendar months they count in (``months``).

Pure: no I/O, no clock; each rule takes plain records and returns a result that says what it
read and why. A result is an interpretation of recorded data against published criteria, never a
diagnosis. Sources: docs/clinical-rules.md.
"""

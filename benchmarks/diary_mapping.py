"""Diary mapping throughput and memory: ``map diary --out-ndjson`` on NDJSON diaries of 1,000
and 10,000 entries, each in its own process pinned to one core.

Baseline, measured in the same run: a process that only reads the same NDJSON file and writes
each entry back as JSON (the floor set by Python's JSON parsing and I/O). Prints entries per
second, peak resident memory, and the ratios against the baseline and between the two sizes.

    .venv/bin/python benchmarks/diary_mapping.py [--sizes 1000 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MONTH = json.loads((ROOT / "examples" / "diary" / "month.json").read_text(encoding="utf-8"))
BASELINE = (
    "import json, sys\n"
    "out = open(sys.argv[2], 'w')\n"
    "for line in open(sys.argv[1], encoding='utf-8'):\n"
    "    out.write(json.dumps(json.loads(line)) + '\\n')\n"
)


def write_diary(path: Path, size: int) -> None:
    """``size`` entries cycled from the example month, each with its own id."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(size):
            entry = dict(MONTH[i % len(MONTH)], entry_id=f"bench-{i}")
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")


def measure(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of a child process pinned to CPU 0."""
    pin = ["taskset", "-c", "0"] if _has_taskset() else []
    # The command's warnings go to a file: a pipe nobody reads while waiting would fill and stop it.
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(pin + argv, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise SystemExit(f"benchmark command failed: {' '.join(argv)}\n{errors.read().decode()[-4000:]}")
    return elapsed, usage.ru_maxrss


def _has_taskset() -> bool:
    return subprocess.run(["which", "taskset"], capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    python = sys.executable
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        # Start-up (interpreter, imports, compiling the profiles), measured on a one-entry diary.
        one = Path(folder) / "diary-1.ndjson"
        write_diary(one, 1)
        startup_s, _ = measure([python, "-m", "fhir_migraine.cli", "map", "diary", str(one), "--out-ndjson"])
        for size in args.sizes:
            diary = Path(folder) / f"diary-{size}.ndjson"
            write_diary(diary, size)
            out = Path(folder) / "out.ndjson"
            base_s, base_kib = measure([python, "-c", BASELINE, str(diary), str(out)])
            ours_s, ours_kib = measure([python, "-m", "fhir_migraine.cli", "map", "diary", str(diary), "--out-ndjson"])
            whole_s, whole_kib = measure([python, "-m", "fhir_migraine.cli", "map", "diary", str(diary)])
            rows.append((size, base_s, base_kib, ours_s, ours_kib, whole_s, whole_kib))
    print(f"{'entries':>8} {'baseline/s':>11} {'stream/s':>9} {'ratio':>6} {'stream MiB':>10} "
          f"{'baseline MiB':>12} {'one-Bundle/s':>12} {'one-Bundle MiB':>14}")
    for size, base_s, base_kib, ours_s, ours_kib, whole_s, whole_kib in rows:
        print(f"{size:>8} {size / base_s:>11.0f} {size / ours_s:>9.0f} {base_s / ours_s:>6.3f} "
              f"{ours_kib / 1024:>10.1f} {base_kib / 1024:>12.1f} {size / whole_s:>12.0f} {whole_kib / 1024:>14.1f}")
    print(f"start-up of map diary: {startup_s:.2f} s; steady state (start-up subtracted):")
    for size, _, _, ours_s, _, whole_s, _ in rows:
        print(f"  {size:>6} entries: streaming {size / max(ours_s - startup_s, 1e-9):.0f} entries/s, "
              f"one Bundle {size / max(whole_s - startup_s, 1e-9):.0f} entries/s")
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        print(f"memory growth {first[0]} -> {last[0]} entries: streaming x{last[4] / first[4]:.2f}, "
              f"one Bundle x{last[6] / first[6]:.2f}")
    print("(entries/s include process start-up; ratio = streaming throughput / baseline throughput)")


if __name__ == "__main__":
    main()

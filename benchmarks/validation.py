"""Validation speed: the engine against HAPI FHIR's validator and against JSON floors, on the same
resources, one core, in one run.

The corpus is the validation corpus of the tests (valid examples and golden outputs, and the
invalid variants; Bundles left out), each resource with its profile. Measured, in this order:

* the engine in this process from parsed dicts (``validator.validate(resource, profile=...)``),
  and from JSON text (``json.loads`` then validate);
* the floors: ``json.loads`` + ``json.dumps`` of each resource's text, and the same with orjson;
* HAPI FHIR's validator in process (``ValidatorBench`` of the Maven module in ``tests/ehr``: the
  validation support chain of a HAPI server with the project's FHIR package, a
  FhirInstanceValidator in a FhirValidator), from the same JSON text, warmed up; as shipped, and
  without its one avoidable cost: HAPI 8.8 builds a new InstanceValidator for every validation,
  and each reads and parses the OID registry again (about 1.5 MB). The harness counts those
  reads and times each from the opening of the registry to the closing of its stream inside
  the very validations it times, and the figure without it is validations / (round time -
  registry time) of the same rounds;
* HAPI's ``$validate`` over loopback HTTP against the local test EHR (``scripts/ehr start``),
  one request at a time: HAPI's server (HTTP, its JPA validation support, the validator), not
  its validator alone;
* with ``--instructions``, the engine's instructions per resource under
  ``valgrind --tool=callgrind`` (``PYTHONHASHSEED=0``, and without address randomisation through
  ``setarch -R`` where there is one): two runs that differ only in the
  number of timed passes, after the same load and warm-up; the difference of their counts
  divided by the extra resources validated.

Everything that is timed runs pinned to one core (this process, and the JVM through
``taskset``), in rounds (those of the engine and the floors take turns); every round is printed,
and the best and the median. The best round is
the speed with the least interference from the rest of the machine, the median shows that
interference. Ratios are between figures of the same run.

    .venv/bin/python benchmarks/validation.py [--rounds 9] [--seconds 1.0] [--hapi-seconds 1.0]
        [--hapi-warmup 60] [--http-passes 1] [--core N] [--no-hapi] [--no-http]
        [--instructions [--instruction-passes 5]]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

MODULE = ROOT / "tests" / "ehr"
JAR = MODULE / "target" / "fhir-migraine-ehr.jar"
BENCH_CLASS = "org.fhirmigraine.ehr.bench.ValidatorBench"
PACKAGE = ROOT / "profiles"  # the FHIR package as published; the shipped copy is the same


def corpus() -> list[tuple[dict[str, Any], str]]:
    """(resource, profile canonical) pairs of the cross-check corpus, Bundles left out."""
    from tests.validation_corpus import cases  # the corpus of the HAPI cross-check

    return [(case.resource, case.profile) for case in cases() if case.profile is not None]


def load_validator() -> Any:
    from fhir_migraine.validation.engine import Validator

    return Validator.load()


def pin(core: int) -> None:
    os.sched_setaffinity(0, {core})


def interleaved_rounds(passes: dict[str, Callable[[], None]], size: int, rounds: int, seconds: float,
                       hapi: HapiInProcess | None = None) -> tuple[dict[str, list[float]], list[dict[str, Any]]]:
    """Resources per second of each variant in each round, and HAPI's rounds. A round is whole
    passes until ``seconds`` have gone; the variants (and then HAPI, while this process waits)
    take turns round by round, so that whatever else the machine does at a time falls on all of
    them alike."""
    for one_pass in passes.values():  # warm-up: the engine writes its checks on first use
        one_pass()
    if hapi is not None:
        hapi.ready()
    rates: dict[str, list[float]] = {name: [] for name in passes}
    hapi_rounds = []
    for _ in range(rounds):
        if hapi is not None:
            hapi_rounds.append(hapi.round())
        for name, one_pass in passes.items():
            done, started = 0, time.perf_counter()
            while True:
                one_pass()
                done += size
                elapsed = time.perf_counter() - started
                if elapsed >= seconds:
                    break
            rates[name].append(done / elapsed)
    return rates, hapi_rounds


# --- HAPI in process -------------------------------------------------------------------------

def java_command() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def hapi_missing() -> list[str]:
    """What the in-process HAPI run lacks, worded for the user; empty when it can run."""
    missing = []
    if java_command() is None:
        missing.append("java (Java 17 or newer: set JAVA_HOME or put java on PATH)")
    if shutil.which("taskset") is None:
        missing.append("taskset (util-linux), to pin the JVM to one core")
    if not JAR.is_file() or not (JAR.parent / "lib").is_dir():
        missing.append(f"{JAR.relative_to(ROOT)} and its lib/ (build them: scripts/ehr build)")
    else:
        with zipfile.ZipFile(JAR) as jar:
            if BENCH_CLASS.replace(".", "/") + ".class" not in jar.namelist():
                missing.append(f"{BENCH_CLASS} in {JAR.relative_to(ROOT)} (an older build: scripts/ehr build)")
    return missing


class HapiInProcess:
    """ValidatorBench on ``items`` (JSON text, profile), pinned to ``core``, stepped: it warms
    up, then runs one round each time ``round()`` asks, while this process waits."""

    def __init__(self, items: list[tuple[str, str]], core: int, seconds: float, warmup: float) -> None:
        java = java_command()
        assert java is not None
        self.folder = tempfile.TemporaryDirectory(prefix="validation-bench-")
        folder = Path(self.folder.name)
        corpus_file, self.out, self.log = folder / "corpus.ndjson", folder / "hapi.json", folder / "hapi.log"
        corpus_file.write_text("".join(json.dumps({"profile": profile, "text": text}) + "\n"
                                       for text, profile in items), encoding="utf-8")
        command = ["taskset", "-c", str(core), java, "-Xms512m", "-Xmx1g", "-cp", str(JAR), BENCH_CLASS,
                   "--package", str(PACKAGE), "--corpus", str(corpus_file), "--out", str(self.out),
                   "--seconds", str(seconds), "--warmup", str(warmup), "--stepped", "true"]
        self.sink = self.log.open("w")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.sink, text=True)

    def _line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self._fail()
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _fail(self) -> None:
        code = self.process.wait()
        self.sink.close()
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"HAPI in-process run failed (exit code {code}):\n{tail}")

    def ready(self) -> None:
        """Waits for the end of the warm-up."""
        self._line()

    def round(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write("round\n")
        self.process.stdin.flush()
        return self._line()

    def finish(self) -> dict[str, Any]:
        """Ends the rounds; the whole result (warm-up, cross-check, verdicts) once it has exited."""
        assert self.process.stdin is not None
        self.process.stdin.write("end\n")
        self.process.stdin.close()
        if self.process.wait() != 0 or not self.out.is_file():
            self._fail()
        self.sink.close()
        result: dict[str, Any] = json.loads(self.out.read_text())
        self.folder.cleanup()
        return result


# --- HAPI over HTTP --------------------------------------------------------------------------

def http_url() -> tuple[str | None, str]:
    """The test EHR's base URL, or None and why not."""
    from local_ehr import ehr_url

    try:
        return ehr_url(), ""
    except SystemExit as exc:
        return None, str(exc)
    except (OSError, subprocess.CalledProcessError) as exc:  # scripts/ehr itself could not run
        return None, f"scripts/ehr url failed ({exc})"


def upload_package(url: str) -> None:
    import requests

    session = requests.Session()
    for pattern in ("CodeSystem-*.json", "ValueSet-*.json", "StructureDefinition-*.json"):
        for path in sorted(PACKAGE.glob(pattern)):
            resource = json.loads(path.read_text())
            answer = session.put(f"{url}/{resource['resourceType']}/{resource['id']}", json=resource,
                                 headers={"Content-Type": "application/fhir+json"}, timeout=60)
            answer.raise_for_status()


def http_rate(url: str, items: list[tuple[str, str, str]], passes: int) -> tuple[float, int]:
    """Resources per second through ``$validate``, one request at a time; items are
    (resource type, JSON text, profile)."""
    import requests

    session = requests.Session()
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}

    def once(kind: str, text: str, profile: str) -> None:
        answer = session.post(f"{url}/{kind}/$validate", params={"profile": profile}, data=text.encode(),
                              headers=headers, timeout=120)
        # HAPI answers 200 with the outcome, or 4xx when its parser already refuses the JSON.
        if answer.status_code not in (200, 400, 412, 422) or answer.json().get("resourceType") != "OperationOutcome":
            answer.raise_for_status()

    for item in items[:5]:  # warm-up: HAPI builds snapshots on first use
        once(*item)
    done, started = 0, time.perf_counter()
    for _ in range(passes):
        for item in items:
            once(*item)
        done += len(items)
    return done / (time.perf_counter() - started), done


# --- instructions ----------------------------------------------------------------------------

def count_passes(passes: int) -> None:
    """The target of callgrind: load, two passes of warm-up, then ``passes`` passes."""
    resources = corpus()
    validator = load_validator()
    for _ in range(2 + passes):
        for resource, profile in resources:
            validator.validate(resource, profile=profile)


def instructions(core: int, passes: int, size: int) -> tuple[float, int, int]:
    """Instructions per resource: (count of 1 + passes timed passes - count of 1) / (passes * size)."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    # Without address randomisation, too: sets and dicts keyed by identity then iterate alike.
    fixed = ["setarch", platform.machine(), "-R"] if shutil.which("setarch") else []
    counts = []
    with tempfile.TemporaryDirectory(prefix="validation-callgrind-") as folder:
        for n in (1, 1 + passes):
            out = Path(folder, f"callgrind.{n}.out")
            command = [*fixed, "taskset", "-c", str(core), "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                       sys.executable, str(Path(__file__).resolve()), "--count-passes", str(n)]
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"callgrind run failed:\n{done.stderr[-3000:]}")
            summary = [line for line in out.read_text().splitlines() if line.startswith("summary:")]
            counts.append(int(summary[0].split()[1]))
    return (counts[1] - counts[0]) / (passes * size), counts[0], counts[1]


# --- report ----------------------------------------------------------------------------------

def fmt(rate: float) -> str:
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9,
                        help="rounds; each has one of the engine, of the floors and of HAPI in process (default 9)")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="least length of a round, in whole passes over the corpus (default 1.0)")
    parser.add_argument("--hapi-seconds", type=float, default=1.0,
                        help="least length of a HAPI round, in whole passes (default 1.0; one pass takes longer)")
    parser.add_argument("--hapi-warmup", type=float, default=60.0,
                        help="least seconds of whole passes HAPI runs before its rounds, then on while its passes "
                             "still get faster, up to 3 times as long (default 60)")
    parser.add_argument("--http-passes", type=int, default=1, help="passes over the corpus through $validate")
    parser.add_argument("--core", type=int, default=max(os.sched_getaffinity(0)),
                        help="the core to pin to (default: the highest this process may use)")
    parser.add_argument("--no-hapi", action="store_true", help="leave out HAPI in process")
    parser.add_argument("--no-http", action="store_true", help="leave out $validate over HTTP")
    parser.add_argument("--instructions", action="store_true",
                        help="also count the engine's instructions per resource under callgrind (minutes)")
    parser.add_argument("--instruction-passes", type=int, default=20,
                        help="extra passes of the longer callgrind run (default 20)")
    parser.add_argument("--count-passes", type=int, help=argparse.SUPPRESS)  # the callgrind target
    args = parser.parse_args()
    if args.count_passes is not None:
        count_passes(args.count_passes)
        return

    # Everything missing is said before anything long runs.
    missing = [] if args.no_hapi else [f"HAPI in process needs {what}" for what in hapi_missing()]
    url, why = (None, "") if args.no_http else http_url()
    if not args.no_http and url is None:
        missing.append(f"$validate over HTTP needs the test EHR: {why}")
    if args.instructions and shutil.which("valgrind") is None:
        missing.append("--instructions needs valgrind")
    if args.instructions and shutil.which("taskset") is None:
        missing.append("--instructions needs taskset (util-linux)")
    try:
        import orjson
    except ImportError:
        missing.append("the orjson floor needs orjson (pip install -e '.[test]')")
    if missing:
        raise SystemExit("cannot run:\n  " + "\n  ".join(missing)
                         + "\n(--no-hapi / --no-http leave those parts out)")

    resources = corpus()
    size = len(resources)
    texts = [json.dumps(resource, separators=(",", ":")) for resource, _ in resources]
    with_text = [(text, profile) for text, (_, profile) in zip(texts, resources, strict=True)]
    pin(args.core)
    validator = load_validator()

    def engine_dicts() -> None:
        for resource, profile in resources:
            validator.validate(resource, profile=profile)

    def engine_text() -> None:
        for text, profile in with_text:
            validator.validate(json.loads(text), profile=profile)

    def floor_json() -> None:
        for text in texts:
            json.dumps(json.loads(text))

    def floor_orjson() -> None:
        for text in texts:
            orjson.dumps(orjson.loads(text))

    # HAPI warms up first, alone on the core; then it takes its turn in every round.
    harness = None if args.no_hapi else HapiInProcess(with_text, args.core, args.hapi_seconds, args.hapi_warmup)
    rows, hapi_rounds = interleaved_rounds(
        {"engine, dicts": engine_dicts, "engine, JSON text": engine_text,
         "floor: json.loads+dumps": floor_json, "floor: orjson.loads+dumps": floor_orjson},
        size, args.rounds, args.seconds, harness)
    hapi = None if harness is None else harness.finish()
    engine_invalid = [any(i["severity"] in ("error", "fatal") for i in validator.validate(r, profile=p)["issue"])
                      for r, p in resources]

    if hapi is not None:
        shipped = [r["validations"] / r["seconds"] for r in hapi_rounds]
        no_registry = [r["validations"] / (r["seconds"] - r["registry_seconds"]) for r in hapi_rounds]
        rows["HAPI in process, as shipped"] = shipped
        rows["HAPI in process, w/o OID registry"] = no_registry
    http: tuple[float, int] | None = None
    if url is not None:
        upload_package(url)
        http = http_rate(url, [(r["resourceType"], t, p) for (r, p), t in zip(resources, texts, strict=True)], args.http_passes)
    counted = instructions(args.core, args.instruction_passes, size) if args.instructions else None

    print(f"corpus: {size} resources ({size - sum(engine_invalid)} valid, {sum(engine_invalid)} invalid "
          f"by the engine), each against its profile; Python {sys.version.split()[0]}, one core (core {args.core})")
    print("\nrounds (resources/s):")
    for name, rates in rows.items():
        print(f"  {name:<34} " + ", ".join(fmt(rate) for rate in rates))
    dicts, text = rows["engine, dicts"], rows["engine, JSON text"]
    print(f"\n{'':<36}{'best':>10}{'median':>10}{'us/res':>9}   engine(dicts)/this  engine(text)/this")
    for name, rates in rows.items():
        best, median = max(rates), statistics.median(rates)
        print(f"  {name:<34}{fmt(best):>10}{fmt(median):>10}{1e6 / best:>9.1f}"
              f"   {max(dicts) / best:>7.3g} | {statistics.median(dicts) / median:<7.3g}"
              f"  {max(text) / best:>7.3g} | {statistics.median(text) / median:<7.3g}")
    print("  (ratios: best round against best round | median against median; above 1 = the engine is faster)")
    if http is not None:
        print(f"  {'HAPI $validate over loopback HTTP':<34}{fmt(http[0]):>10}{'':>10}{1e6 / http[0]:>9.1f}"
              f"   {max(dicts) / http[0]:>7.3g} | {statistics.median(dicts) / http[0]:<7.3g}"
              f"  {max(text) / http[0]:>7.3g} | {statistics.median(text) / http[0]:<7.3g}")
        print(f"  (one pass of {http[1]} requests, one at a time: measures HAPI's server, the HTTP round trip, "
              "its JPA validation support and validator, not the validator alone; the server runs unpinned)")

    if hapi is not None:
        shipped, no_registry = rows["HAPI in process, as shipped"], rows["HAPI in process, w/o OID registry"]
        loads = sum(r["registry_loads"] for r in hapi["rounds"]) / sum(r["validations"] for r in hapi["rounds"])
        share = sum(r["registry_seconds"] for r in hapi["rounds"]) / sum(r["seconds"] for r in hapi["rounds"])
        per_load = (sum(r["registry_seconds"] for r in hapi["rounds"])
                    / max(1, sum(r["registry_loads"] for r in hapi["rounds"])))
        agree = sum(a == b for a, b in zip(engine_invalid, hapi["has_errors"], strict=True))
        print("\n=== the engine against HAPI's validator, both in process, one core, from the same JSON text ===")
        print(f"  engine(text) / HAPI as shipped:           {max(text) / max(shipped):8.1f}x best rounds, "
              f"{statistics.median(text) / statistics.median(shipped):8.1f}x medians")
        print(f"  engine(text) / HAPI w/o the OID registry: {max(text) / max(no_registry):8.1f}x best rounds, "
              f"{statistics.median(text) / statistics.median(no_registry):8.1f}x medians")
        print(f"  HAPI {hapi['hapi_version']} on Java {hapi['java_version']} ({hapi['processors']} processor seen), "
              f"{hapi['package_resources']} resources of the project's package loaded; warm-up: "
              f"{hapi['warmup_passes']} passes in {hapi['warmup_seconds']:.0f} s, the last five "
              + ", ".join(f"{s:.2f}" for s in hapi["warmup_pass_seconds"][-5:]) + " s per pass")
        fastest = max(hapi_rounds, key=lambda r: r["validations"] / r["seconds"])
        print(f"  OID registry: {loads:.2f} reads per validation, {per_load * 1e3:.1f} ms each "
              f"({fastest['registry_seconds'] / max(1, fastest['registry_loads']) * 1e3:.1f} ms in the fastest round), "
              f"{share:.0%} of HAPI's time in its rounds; 'w/o' = validations / (round time - time spent "
              "between opening the registry and closing it, timed inside those validations)")
        print(f"  cross-check: the registry read alone (new OIDUtilities()) in the same JVM after the rounds: "
              f"{hapi['registry_alone_seconds'] * 1e3:.1f} ms each ({hapi['registry_alone_reads']} reads)")
        print(f"  valid/invalid verdicts: engine and HAPI agree on {agree} of {size}")
    print(f"\nfloors: the engine from dicts takes {max(rows['floor: json.loads+dumps']) / max(dicts):.1f}x the time "
          f"of json.loads+json.dumps, {max(rows['floor: orjson.loads+dumps']) / max(dicts):.1f}x that of "
          "orjson (best rounds)")
    if counted is not None:
        per_resource, short, long = counted
        fixed = "PYTHONHASHSEED=0, setarch -R" if shutil.which("setarch") else "PYTHONHASHSEED=0"
        print(f"instructions (callgrind, {fixed}): {per_resource:,.0f} per resource, the engine from dicts "
              f"(({long:,} - {short:,}) / ({args.instruction_passes} passes x {size} resources))")
    print("(a shared machine: the best round is the least disturbed, the median shows the disturbance)")


if __name__ == "__main__":
    main()

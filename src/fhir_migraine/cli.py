"""The ``fhir-migraine`` command: the service's operations from the shell.

Output is JSON on stdout; problems go to stderr. Exit status: 0 success, 1 invalid input,
2 usage error, 3 the EHR could not be reached or refused.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from fhir_migraine import library, operations
from fhir_migraine.config import Settings, order_settings_from_env
from fhir_migraine.documents import dumps, parse_json
from fhir_migraine.errors import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    AmendmentRefused,
    Conflict,
    EhrRejected,
    EhrUnavailable,
    FhirMigraineError,
    InputError,
    Problem,
    UnreadableInput,
)
from fhir_migraine.inputs.diary_files import FORMATS, format_of, iter_entries
from fhir_migraine.inputs.orders import finder, parse_instant
from fhir_migraine.mapping.attacks import Ledger
from fhir_migraine.validation.issues import has_errors

if TYPE_CHECKING:
    from fhir_migraine.ehr.gateway import EhrGateway
    from fhir_migraine.ehr.outbox import Item

Handler = Callable[[argparse.Namespace, TextIO], int]


class UsageError(Exception):
    """A command line that cannot be carried out as written (missing file, bad option)."""


def _read(path: str) -> bytes:
    """A file's bytes: the readers decode them (documents.decode), so a file that is not UTF-8
    is invalid input (exit 1) as it is for the service, and nothing is replaced or guessed."""
    if path == "-":
        return sys.stdin.buffer.read()
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"no such file: {path}")
    return file.read_bytes()


def _map_order(args: argparse.Namespace, out: TextIO) -> int:
    source = Path(args.protocols)
    if not source.exists():
        raise UsageError(f"no such file or folder: {args.protocols}")
    settings = order_settings_from_env()
    found = library.read_protocols(source)
    document = parse_json(_read(args.order), "order")
    mapped = operations.map_order_with_warnings(document, finder(found), settings=settings)
    out.write(dumps(mapped.bundle))
    if mapped.warnings is not None:
        # Warnings do not stop the order: the Bundle is printed and the exit status is 0.
        args.err.write(dumps(mapped.warnings))
    return EXIT_OK


def _open_diary(args: argparse.Namespace) -> tuple[TextIO, str]:
    fmt = args.format or format_of(args.diary)
    if fmt is None:
        raise UsageError(f"cannot tell the format of {args.diary}; name it .json, .ndjson or .csv, or give --format")
    if args.diary == "-":
        binary: BinaryIO = sys.stdin.buffer
    elif Path(args.diary).is_file():
        binary = open(args.diary, "rb")  # noqa: SIM115 - closed with the text stream
    else:
        raise UsageError(f"no such file: {args.diary}")
    # Strict UTF-8 whatever the locale (stdin may otherwise smuggle bytes in as surrogates).
    return io.TextIOWrapper(binary, encoding="utf-8", errors="strict", newline=""), fmt


def _map_diary(args: argparse.Namespace, out: TextIO) -> int:
    stream, fmt = _open_diary(args)
    with stream:
        try:
            if not args.out_ndjson:
                bundle, warnings = operations.map_diary_with_warnings(iter_entries(stream, fmt), with_summary=args.summary)
                out.write(dumps(bundle))
                if warnings is not None:
                    # Warnings do not stop the diary: the Bundle is printed and the exit status is 0.
                    args.err.write(dumps(warnings))
                return EXIT_OK
            if args.summary:
                raise UsageError("--summary needs the whole diary in one Bundle: leave out --out-ndjson")
            problems: list[Problem] = []
            ledger = Ledger()  # the attacks of the entries before: continued, and overlapping later days
            for where in iter_entries(stream, fmt):
                try:
                    # One entry at a time (memory stays flat): each entry's own warnings only.
                    bundle, warnings = operations.map_diary_with_warnings([where], ledger=ledger)
                except InputError as exc:
                    problems += exc.problems
                    continue
                out.write(json.dumps(bundle, ensure_ascii=False, separators=(",", ":")) + "\n")
                if warnings is not None:
                    args.err.write(json.dumps(warnings, ensure_ascii=False, separators=(",", ":")) + "\n")
            if problems:
                raise InputError.of(problems[: operations.MAX_PROBLEMS], "diary")
            return EXIT_OK
        except UnicodeDecodeError:
            raise UnreadableInput.of([Problem("$", "is not UTF-8 text")], "diary") from None


def _summary(args: argparse.Namespace, out: TextIO) -> int:
    stream, fmt = _open_diary(args)
    with stream:
        try:
            entries = operations.load_diary(iter_entries(stream, fmt))
        except UnicodeDecodeError:
            raise UnreadableInput.of([Problem("$", "is not UTF-8 text")], "diary") from None
    out.write(dumps(operations.diary_summary(entries, month=args.month, first=args.start, last=args.end)))
    return EXIT_OK


def _unmap(args: argparse.Namespace, out: TextIO) -> int:
    found = None
    if args.protocols:
        source = Path(args.protocols)
        if not source.exists():
            raise UsageError(f"no such file or folder: {args.protocols}")
        found = finder(library.read_protocols(source))
    bundle = parse_json(_read(args.bundle), "FHIR input")
    out.write(dumps(operations.unmap(bundle, found)))
    return EXIT_OK


def _export_protocol(args: argparse.Namespace, out: TextIO) -> int:
    file = Path(args.protocol)
    if not file.is_file():
        raise UsageError(f"no such file: {args.protocol}")
    out.write(dumps(operations.export_protocol(library.read_protocol_file(file))))
    return EXIT_OK


def _gateway(args: argparse.Namespace) -> EhrGateway:
    """The EHR gateway of the settings, with ``--ehr`` instead of FHIR_MIGRAINE_EHR_URL when given."""
    from fhir_migraine.ehr.gateway import EhrGateway

    settings = Settings.from_env()
    url = args.ehr or settings.ehr.url
    if not url:
        raise UsageError("give --ehr URL or set FHIR_MIGRAINE_EHR_URL")
    return EhrGateway.from_settings(replace(settings, ehr=replace(settings.ehr, url=url)))


def _push(args: argparse.Namespace, out: TextIO) -> int:
    bundle = parse_json(_read(args.bundle), "Bundle")
    return _delivered(_gateway(args).push_now(bundle, wait=args.wait), args.wait, out)


def _cancel(args: argparse.Namespace, out: TextIO) -> int:
    gateway = _gateway(args)
    item_id = gateway.cancel_order(args.order_id, patient=args.patient, reason=args.reason)
    return _delivered(gateway.send_now(item_id, wait=args.wait), args.wait, out)


def _retract(args: argparse.Namespace, out: TextIO) -> int:
    gateway = _gateway(args)
    item_id = gateway.retract_diary(args.entry_id, patient=args.patient)
    return _delivered(gateway.send_now(item_id, wait=args.wait), args.wait, out)


def _delivered(item: Item, wait: float, out: TextIO) -> int:
    """Print the EHR's answer of a sent item (exit 0), or raise what became of it (exit 3)."""
    from fhir_migraine.ehr.gateway import transaction_response

    if item.state == "sent":
        out.write(dumps(transaction_response(item)))
        return EXIT_OK
    error = item.last_error or {}
    if item.state == "dead":
        raise EhrRejected(f"the EHR refused it (outbox item {item.id} is dead): {error.get('message', '')}",
                          status=error.get("status"), outcome=error.get("outcome"))
    if item.state == "conflict":
        raise AmendmentRefused(f"outbox item {item.id} is in conflict with the EHR: {error.get('message', '')}",
                               changed=list(error.get("changed") or []), status=error.get("status"))
    raise EhrUnavailable(
        f"not sent within {wait:g} s ({error.get('message', 'no answer')}); outbox item {item.id} stays queued "
        "and the service's worker will retry it"
    )


def _pull(args: argparse.Namespace, out: TextIO) -> int:
    if args.since is not None and parse_instant(args.since) is None:
        raise UsageError("--since must be an instant such as 2026-11-01T00:00:00Z")
    if args.group is not None:
        return _pull_group(args, out)
    gateway = _gateway(args)
    if args.unmap:
        found = gateway.pull_unmapped(args.patient, since=args.since, cursor=args.cursor)
        found.pop("resources")
        out.write(dumps(found))
        for item in found["invalid"]:
            errors = [i for i in item["outcome"]["issue"] if i["severity"] in ("error", "fatal")]
            err_text = "; ".join(f"{', '.join(i.get('expression', []))}: {i['diagnostics']}" for i in errors[:3])
            sys.stderr.write(f"fhir-migraine: {item['resource']} does not conform to its profile: {err_text}\n")
        for warning in found["warnings"]:
            sys.stderr.write(f"fhir-migraine: warning: {warning}\n")
        return EXIT_OK
    bundle = gateway.pull(args.patient, since=args.since, cursor=args.cursor)
    for entry in bundle["entry"]:
        if entry["search"]["mode"] == "outcome":
            for issue in entry["resource"]["issue"]:
                sys.stderr.write(f"fhir-migraine: warning: {issue['diagnostics']}\n")
    out.write(dumps(bundle))
    return EXIT_OK


def _pull_group(args: argparse.Namespace, out: TextIO) -> int:
    """One JSON line per member of the group: its searchset Bundle, or (``--unmap``) its orders and
    diary entries with the invalid and incomplete ones reported as for one patient."""
    if args.cursor:
        raise UsageError("--cursor is for one patient; give --since with --group")
    gateway = _gateway(args)
    found = gateway.group_pull(args.group, since=args.since)
    sys.stderr.write(f"fhir-migraine: {found.group}: {len(found.members)} patient(s), "
                     f"{'FHIR Bulk Data export' if found.method == 'bulk' else 'one pull per patient'}\n")
    lines = gateway.unmapped(found) if args.unmap else ({"patient": p, "bundle": b} for p, b in found.bundles)
    try:
        for line in lines:
            out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
            if args.unmap and (line["invalid"] or line["incomplete"]):
                sys.stderr.write(f"fhir-migraine: {line['patient']}: {len(line['invalid'])} invalid and "
                                 f"{len(line['incomplete'])} incomplete resource(s) left out\n")
    finally:
        found.close()
    return EXIT_OK


def _report(args: argparse.Namespace, out: TextIO) -> int:
    """A month's report: from a diary file (written out only), or from what the EHR holds, then filed
    in the chart as a DocumentReference through the outbox."""
    if args.diary is not None:
        if args.patient is not None or args.ehr is not None:
            raise UsageError("give --diary FILE, or --patient REF (with --ehr or FHIR_MIGRAINE_EHR_URL), not both")
        stream, fmt = _open_diary(args)
        with stream:
            entries = operations.load_diary(iter_entries(stream, fmt))
        report = operations.render_report(operations.report_view(entries, [], args.month))
        _write_report(args, report)
        out.write(dumps({"month": report.view["month"], "figures": report.view["figures"],
                         "moh_risk": report.view["moh_risk"], "identifier": report.document["identifier"][0]}))
        return EXIT_OK
    if args.patient is None:
        raise UsageError("give --patient REF (the report is made from what the EHR holds), or --diary FILE")
    gateway = _gateway(args)
    filed = gateway.file_report(args.patient, args.month)
    _write_report(args, filed.report)
    said: dict[str, Any] = {"month": filed.report.view["month"], "figures": filed.report.view["figures"],
                            "moh_risk": filed.report.view["moh_risk"],
                            "identifier": filed.report.document["identifier"][0], "replaces": filed.replaces}
    if filed.outbox_id is None:
        out.write(dumps({**said, "state": "filed", "document": filed.document}))
        return EXIT_OK
    item = gateway.send_now(filed.outbox_id, wait=args.wait)
    if item.state != "sent":
        return _delivered(item, args.wait, out)  # raises what became of it
    out.write(dumps({**said, "state": "sent", "outbox_id": item.id}))
    return EXIT_OK


def _write_report(args: argparse.Namespace, report: operations.MonthlyReport) -> None:
    if args.out is not None:
        Path(args.out).write_bytes(report.pdf)
    if args.html is not None:
        Path(args.html).write_text(report.html, encoding="utf-8")


def _outbox_retry(args: argparse.Namespace, out: TextIO) -> int:
    from fhir_migraine.ehr.outbox import Outbox

    if (args.id is None) == (args.state is None):
        raise UsageError("give an outbox item ID, or --state dead or --state conflict")
    outbox = Outbox(Settings.from_env().database)
    if args.id is not None:
        outbox.revive(args.id)  # NotFound, or Conflict for an item neither dead nor in conflict
        retried = [args.id]
    else:
        retried = []
        for item_id in outbox.ids(args.state):
            try:
                outbox.revive(item_id)
            except Conflict:  # put back meanwhile by someone else
                continue
            retried.append(item_id)
    out.write(dumps({"retried": retried}))
    return EXIT_OK


def _outbox_purge(args: argparse.Namespace, out: TextIO) -> int:
    from fhir_migraine.ehr.outbox import Outbox
    from fhir_migraine.ehr.worker import DAY_S

    settings = Settings.from_env()
    days = settings.outbox.retention_days if args.older_than is None else args.older_than
    if days < 0 or days != days:
        raise UsageError("--older-than must be a number of days, zero or more")
    purged = Outbox(settings.database).purge(days * DAY_S)
    out.write(dumps({"older_than_days": days, "purged": purged}))
    return EXIT_OK


def _validate(args: argparse.Namespace, out: TextIO) -> int:
    resource = parse_json(_read(args.file), "FHIR input")
    result = operations.validate(resource, profile=args.profile)
    out.write(dumps(result))
    return EXIT_INVALID if has_errors(result) else EXIT_OK


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    from fhir_migraine.api.server import serve

    settings = Settings.from_env()
    return serve(settings, host=args.host or settings.http.host, port=args.port or settings.http.port)


def _profile_sources(args: argparse.Namespace) -> tuple[Path, Any]:
    from fhir_migraine import profiles

    root = Path(args.root)
    if not (root / "examples").is_dir():
        raise UsageError(f"{args.root} is not the project folder (it has no examples/)")
    return root, profiles.read_sources(root)


def _profiles_build(args: argparse.Namespace, out: TextIO) -> int:
    from fhir_migraine import profiles

    root, sources = _profile_sources(args)
    written = profiles.write_all(root, sources)
    out.write(dumps({"written": [p.relative_to(root).as_posix() for p in written]}))
    return EXIT_OK


def _profiles_package(args: argparse.Namespace, out: TextIO) -> int:
    from fhir_migraine import profiles, shipped

    target = Path(args.out) if args.out else Path(profiles.package_file_name())
    target.write_bytes(profiles.tgz(shipped.package_files()))
    out.write(dumps({"package": str(target)}))
    return EXIT_OK


def _profiles_dump_checks(args: argparse.Namespace, out: TextIO) -> int:
    from fhir_migraine.validation import default_validator

    resources = [json.loads(Path(name).read_text(encoding="utf-8")) for name in args.resources]
    out.write(default_validator().generated_source(resources))
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="fhir-migraine",
        description="IV migraine infusion protocols and headache diaries as FHIR R4.",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    mapping = commands.add_parser("map", help="map an input to a FHIR transaction Bundle")
    kinds = mapping.add_subparsers(dest="kind", required=True, metavar="KIND")
    order = kinds.add_parser("order", help="an order (a protocol applied to a patient)")
    order.add_argument("order", metavar="ORDER.json", help="the order; - for standard input")
    order.add_argument("--protocols", required=True, metavar="PATH", help="a protocol file or a folder of them")
    order.set_defaults(handler=_map_order)

    diary = kinds.add_parser("diary", help="a headache diary (.json entry or array, .ndjson, .csv)")
    diary.add_argument("diary", metavar="DIARY", help="the diary file; - for standard input (with --format)")
    diary.add_argument("--format", choices=FORMATS, help="the file's format when its name does not say")
    diary.add_argument("--summary", action="store_true",
                       help="add the diary's summary Observation and its medication-overuse DetectedIssues to the Bundle")
    diary.add_argument(
        "--out-ndjson",
        action="store_true",
        help="write one transaction Bundle per entry, one per line, streaming (memory stays flat)",
    )
    diary.set_defaults(handler=_map_diary)

    summary = commands.add_parser("summary", help="a diary's figures: headache, migraine and medication days, "
                                                  "medication-overuse risk (JSON)")
    summary.add_argument("diary", metavar="DIARY", help="the diary file; - for standard input (with --format)")
    summary.add_argument("--format", choices=FORMATS, help="the file's format when its name does not say")
    summary.add_argument("--month", metavar="YYYY-MM", help="this calendar month (default: the diary's first to last day)")
    summary.add_argument("--from", dest="start", metavar="DATE", help="from this day (with --to)")
    summary.add_argument("--to", dest="end", metavar="DATE", help="to this day, included (with --from)")
    summary.set_defaults(handler=_summary)

    unmap = commands.add_parser("unmap", help="a Bundle or searchset back into orders and diary entries")
    unmap.add_argument("bundle", metavar="BUNDLE.json")
    unmap.add_argument(
        "--protocols", metavar="PATH", help="protocols to leave out overrides that only repeat them"
    )
    unmap.set_defaults(handler=_unmap)

    export = commands.add_parser("export-protocol", help="a protocol as a FHIR PlanDefinition")
    export.add_argument("protocol", metavar="PROTOCOL", help="a protocol file (YAML or JSON)")
    export.set_defaults(handler=_export_protocol)

    validate = commands.add_parser("validate", help="validate a resource or Bundle; prints an OperationOutcome")
    validate.add_argument("file", metavar="FILE.json")
    validate.add_argument("--profile", metavar="URL", help="validate against this profile instead of meta.profile")
    validate.set_defaults(handler=_validate)

    push = commands.add_parser("push", help="push a transaction Bundle to the EHR through the outbox")
    push.add_argument("bundle", metavar="BUNDLE.json")
    push.add_argument("--ehr", metavar="URL", help="the EHR's FHIR base URL (FHIR_MIGRAINE_EHR_URL)")
    push.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                      help="how long to keep retrying before leaving the item queued (default 60)")
    push.set_defaults(handler=_push)

    cancel = commands.add_parser("cancel", help="cancel an order in the EHR (its requests cancelled or stopped)")
    cancel.add_argument("order_id", metavar="ORDER_ID")
    cancel.add_argument("--reason", metavar="TEXT", help="why (each MedicationRequest's statusReason)")
    retract = commands.add_parser("retract", help="retract a diary entry in the EHR (its Observations entered-in-error)")
    retract.add_argument("entry_id", metavar="ENTRY_ID")
    for command, handler in ((cancel, _cancel), (retract, _retract)):
        command.add_argument("--patient", metavar="REF",
                             help="Patient/123 or identifier=SYSTEM|VALUE; needed when this machine's outbox never held it")
        command.add_argument("--ehr", metavar="URL", help="the EHR's FHIR base URL (FHIR_MIGRAINE_EHR_URL)")
        command.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                             help="how long to keep retrying before leaving it queued (default 60)")
        command.set_defaults(handler=handler)

    pull = commands.add_parser("pull", help="a patient's (or a group's) resources of this project from the EHR")
    pull.add_argument("--ehr", metavar="URL", help="the EHR's FHIR base URL (FHIR_MIGRAINE_EHR_URL)")
    whom = pull.add_mutually_exclusive_group(required=True)
    whom.add_argument("--patient", metavar="REF",
                      help="Patient/123, or identifier=SYSTEM|VALUE (an MRN, found in the EHR first)")
    whom.add_argument("--group", metavar="REF",
                      help="Group/7: every member, by FHIR Bulk Data where the EHR offers it; one JSON line per patient")
    when = pull.add_mutually_exclusive_group()
    when.add_argument("--since", metavar="INSTANT", help="only resources changed since (FHIR _lastUpdated)")
    when.add_argument("--cursor", action="store_true", help="only what changed since the last --cursor pull of this patient")
    pull.add_argument("--unmap", action="store_true", help="print orders and diary entries instead of the searchset Bundle")
    pull.set_defaults(handler=_pull)

    report = commands.add_parser("report", help="a month of a patient's diary as a PDF report (and HTML), filed in the "
                                                "chart as a DocumentReference")
    report.add_argument("--month", required=True, metavar="YYYY-MM", help="the month of the report (begun already)")
    source = report.add_mutually_exclusive_group()
    source.add_argument("--patient", metavar="REF", help="Patient/123 or identifier=SYSTEM|VALUE: made from what the EHR "
                                                        "holds, then filed there")
    source.add_argument("--diary", metavar="DIARY", help="made from a diary file instead (not filed)")
    report.add_argument("--format", choices=FORMATS, help="the diary file's format when its name does not say")
    report.add_argument("--ehr", metavar="URL", help="the EHR's FHIR base URL (FHIR_MIGRAINE_EHR_URL)")
    report.add_argument("--out", metavar="FILE.pdf", help="write the PDF here")
    report.add_argument("--html", metavar="FILE.html", help="write the HTML here")
    report.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                        help="how long to keep retrying the filing before leaving it queued (default 60)")
    report.set_defaults(handler=_report)

    outbox = commands.add_parser("outbox", help="the outbox of the service's database (FHIR_MIGRAINE_DB)")
    actions = outbox.add_subparsers(dest="action", required=True, metavar="ACTION")
    retry = actions.add_parser("retry", help="put dead or conflict items back in the queue (their last error stays in "
                                             "their history)")
    retry.add_argument("id", nargs="?", metavar="ID", help="the outbox item to put back")
    retry.add_argument("--state", choices=["dead", "conflict"], help="put back every item in this state")
    retry.set_defaults(handler=_outbox_retry)
    purge = actions.add_parser("purge", help="drop the Bundles of items sent more than DAYS ago, keeping their "
                               "identifiers and delivery metadata; prints the ids purged")
    purge.add_argument("--older-than", type=float, metavar="DAYS",
                       help="sent more than DAYS days ago (default FHIR_MIGRAINE_RETENTION_DAYS, 30)")
    purge.set_defaults(handler=_outbox_purge)

    conformance = commands.add_parser("profiles", help="the project's FHIR profiles package (profiles/)")
    steps = conformance.add_subparsers(dest="step", required=True, metavar="STEP")
    build = steps.add_parser("build", help="regenerate profiles/ and the package's copy of it from the code tables and "
                             "the examples (in the project's folder)")
    build.add_argument("--root", default=".", metavar="DIR", help="the project folder (default: the current one)")
    build.set_defaults(handler=_profiles_build)
    package = steps.add_parser("package", help="write the FHIR package this installation ships as a .tgz")
    package.add_argument("--out", metavar="PATH", help="the .tgz to write (default fhir-migraine.profiles-<version>.tgz)")
    package.set_defaults(handler=_profiles_package)
    dump = steps.add_parser("dump-checks", help="print the Python source of the generated validation checks (of every "
                            "profile, and of what validating the given resources needs)")
    dump.add_argument("resources", nargs="*", metavar="FILE", help="resources (.json) whose checks to include")
    dump.set_defaults(handler=_profiles_dump_checks)

    serve = commands.add_parser("serve", help="run the HTTP service under gunicorn")
    serve.add_argument("--host", help="address to listen on (FHIR_MIGRAINE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (FHIR_MIGRAINE_PORT, default 8080)")
    serve.set_defaults(handler=_serve)
    return top


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command; returns the exit status (testable without a subprocess)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse has already printed its usage message
        return int(exc.code or 0)
    args.err = err
    try:
        handler: Handler = args.handler
        return handler(args, out)
    except UsageError as exc:
        err.write(f"fhir-migraine: {exc}\n")
        return EXIT_USAGE
    except FhirMigraineError as exc:
        err.write(f"fhir-migraine: {exc}\n")
        return exc.exit_code


def console_main() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console_main()

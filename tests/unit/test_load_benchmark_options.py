"""The pure parts of the load benchmark (benchmarks/push_and_load.py and its load client): the
``--instances`` option, the spreading of requests over the instances' ports, the summary of a round."""

from __future__ import annotations

import argparse
import importlib
import math
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """benchmarks/push_and_load.py as a module; sys.path as it was after the test."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("push_and_load")


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("load_client")


def test_instances_are_read_in_the_order_given(bench: ModuleType) -> None:
    assert bench.parse_instances("1,2,3") == [1, 2, 3]
    assert bench.parse_instances(" 3, 1 ") == [3, 1]
    assert bench.parse_instances("8") == [8]


@pytest.mark.parametrize("text", ["", "0", "1,,2", "two", "-1", "1.5", "9", "1;2", "²"])
def test_instances_other_than_counts_from_1_to_8_are_refused_naming_the_value(bench: ModuleType, text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a number of instances from 1 to 8"):
        bench.parse_instances(text)


def test_without_options_the_benchmark_runs_as_before_on_sqlite(bench: ModuleType) -> None:
    args = bench.arguments([])
    assert (args.store, args.instances, args.seconds, args.clients) == ("sqlite", None, 10.0, 50)


def test_postgresql_runs_rounds_of_1_2_and_3_instances_unless_told(bench: ModuleType) -> None:
    assert bench.arguments(["--store", "postgresql"]).instances == [1, 2, 3]
    args = bench.arguments(["--store", "postgresql", "--instances", "2,4", "--seconds", "3"])
    assert (args.instances, args.seconds) == ([2, 4], 3.0)


@pytest.mark.parametrize("argv", [
    ["--instances", "1,2"],  # several instances only share a PostgreSQL database
    ["--store", "postgresql", "--instances", "0"],
    ["--store", "postgresql", "--seconds", "0"],
    ["--store", "postgresql", "--warmup", "-1"],
    ["--clients", "0"],
    ["--store", "mysql"],
])
def test_options_that_make_no_round_are_refused(bench: ModuleType, argv: list[str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        bench.arguments(argv)
    assert stopped.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_requests_are_spread_evenly_over_the_instances(client: ModuleType) -> None:
    bases = ["http://127.0.0.1:1001", "http://127.0.0.1:1002", "http://127.0.0.1:1003"]
    # each thread goes round the instances, request after request
    for thread in range(5):
        assert {client.base_for(bases, thread, i) for i in range(3)} == set(bases)
        assert client.base_for(bases, thread, 0) != client.base_for(bases, thread, 1)
    # the threads' first requests are not all on the first instance
    assert [client.base_for(bases, thread, 0) for thread in range(3)] == bases
    # 50 threads of 7 requests each (the round ends in the middle of the round robin): the
    # instances' shares differ by one request
    spread = Counter(client.base_for(bases, thread, i) for thread in range(50) for i in range(7))
    assert sorted(spread.values()) == [116, 117, 117]


def test_one_instance_takes_every_request(client: ModuleType) -> None:
    assert {client.base_for(["http://127.0.0.1:1001"], t, i) for t in range(4) for i in range(4)} == {
        "http://127.0.0.1:1001"}


def test_a_round_counts_only_2xx_answers_as_accepted(bench: ModuleType) -> None:
    latencies = [0.010 * (n + 1) for n in range(100)]  # 10 ms to 1 s
    row = bench.summarise(latencies, {"202": 80, "503": 15, "401": 5}, 4.0)
    assert row["requests"] == 100
    assert row["per_second"] == 25.0
    assert row["accepted_per_second"] == 20.0
    assert row["p50_ms"] == pytest.approx(505.0)
    assert row["p99_ms"] == pytest.approx(1000.0)


def test_a_round_without_answers_has_no_latency(bench: ModuleType) -> None:
    row = bench.summarise([], {}, 2.0)
    assert (row["requests"], row["accepted_per_second"]) == (0, 0.0)
    assert math.isnan(row["p50_ms"]) and math.isnan(row["p99_ms"])

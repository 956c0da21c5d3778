"""The benchmarks' harness: a wrk round in which one gunicorn worker took (nearly) all the connections is run again,
for the bare route and the app alike, and never preferred to a round in which both workers worked."""

from __future__ import annotations

import itertools

import pytest

from bench import _harness as harness


def _measured(rps: float) -> harness.Measured:
    return harness.Measured(requests=int(rps), seconds=1.0, errors=0, p50_ms=1.0, p95_ms=2.0)


@pytest.fixture
def rounds(monkeypatch):
    """Feed balanced_wrk() rounds: each item (req/s, CPU ticks of worker 1, of worker 2)."""
    planned: list[tuple[float, int, int]] = []
    ran: list[float] = []
    clock = {1: 0, 2: 0}
    pending: list[tuple[int, int]] = []

    def fake_wrk(port, **_load):
        rps, one, two = planned.pop(0)
        pending.append((one, two))
        ran.append(rps)
        return _measured(rps)

    def fake_ticks(master):
        if pending:
            one, two = pending.pop()
            clock[1] += one
            clock[2] += two
        return dict(clock)

    monkeypatch.setattr(harness, "wrk", fake_wrk)
    monkeypatch.setattr(harness, "worker_cpu_ticks", fake_ticks)
    return planned, ran


def test_an_unbalanced_round_is_run_again_until_both_workers_work(rounds):
    planned, ran = rounds
    planned += [(1700, 400, 2), (5000, 390, 100), (5600, 380, 350)]
    result = harness.balanced_wrk(harness.Served(1, 1), seconds=1, connections=16)
    assert ran == [1700, 5000, 5600]
    assert result.rps == 5600 and result.balanced
    assert result.workers == pytest.approx((380 / 730, 350 / 730))


def test_a_round_that_stays_unbalanced_is_kept_and_says_so(rounds):
    planned, ran = rounds
    planned += [(1700, 400, 2)] * (harness.UNBALANCED_RETRIES + 1)
    result = harness.balanced_wrk(harness.Served(1, 1), seconds=1, connections=16)
    assert len(ran) == harness.UNBALANCED_RETRIES + 1
    assert not result.balanced and "UNBALANCED" in harness.shares(result)


def test_the_best_round_is_a_balanced_one_even_when_an_unbalanced_one_was_faster(monkeypatch):
    plans = {"bare": iter([(9000, True), (9900, False), (9300, True)]), "page": itertools.repeat((10, True))}

    def fake(served, **load):
        rps, balanced = next(plans["bare" if served.port == 1 else "page"])
        measured = _measured(rps)
        measured.workers = (0.5, 0.5) if balanced else (0.99, 0.01)
        return measured

    monkeypatch.setattr(harness, "balanced_wrk", fake)
    monkeypatch.setattr(harness, "wrk", lambda *a, **k: _measured(1))
    best = harness.best_of_rounds(
        harness.Served(1, 1), harness.Served(2, 2), {"page": {}}, rounds=3, seconds=1, connections=16
    )
    assert best["bare"].rps == 9300

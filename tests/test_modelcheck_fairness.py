"""The explicit-state model checker (sim/modelcheck.py) on small cases, and the starvation
scenarios of issue 15 (sim/fairness.py): unbounded in paper mode, bounded in fair mode."""

from __future__ import annotations

import pytest

from sim import fairness, modelcheck


@pytest.mark.parametrize("kw", [{}, {"fair": True}])
def test_model_checker_k3_one_request_per_edge(kw) -> None:
    r = modelcheck.check("K3", 1, **kw)
    assert r.complete and r.violations == 0 and r.deadlocks == 0 and r.traps == 0
    assert r.states > 100 and r.terminal >= 1


def test_model_checker_robust_mode_bounded_search() -> None:
    """Robust mode (reordering, one loss, one duplicate, retransmissions at any time) does not
    close (sequence numbers grow along SYN/SYNREJ/WAKE loops): a bounded breadth-first search,
    no violation or deadlock within it."""
    r = modelcheck.check("K3", 1, robust=True, loss=1, dup=1, max_states=1000)
    assert not r.complete and r.violations == 0 and r.deadlocks == 0


def test_model_checker_finds_a_planted_deadlock(monkeypatch) -> None:
    """A core that forgets to wake rejected requests: the checker reports the stuck requests."""
    from hwctl.protocols.esp import EspNode

    monkeypatch.setattr(EspNode, "_queue_wake", lambda self, target: None)
    r = modelcheck.check("K3", 2)
    assert r.deadlocks > 0 and "deadlock" in r.first_problem


def test_model_checker_arrival_interleavings() -> None:
    r = modelcheck.check("K3", 1, arrivals=True)
    assert r.complete and r.violations == r.deadlocks == r.traps == 0


@pytest.mark.parametrize("name, paper_at_least, fair_bound", [
    ("tiebreak", fairness.STREAM_LEN - 1, 1),  # deg(B) + deg(C) - 2 = 1
    ("wake", fairness.STREAM_LEN, 2),  # deg(A) + deg(B) - 2 = 2
    ("star", 0, 3),  # K1,4: deg(hub) + deg(leaf) - 2 = 3
])
def test_starvation_patterns_bounded_in_fair_mode(name, paper_at_least, fair_bound) -> None:
    paper = fairness.scenario(name, fair=False)
    fair = fairness.scenario(name, fair=True)
    assert paper["all_done"] and fair["all_done"]
    assert paper["victim_overtaken"] >= paper_at_least  # grows with the stream: no bound
    assert fair["worst_overtaken"] <= fair_bound


def test_fair_mode_is_robust_too() -> None:
    r = fairness.scenario("wake", fair=True, robust=True)
    assert r["all_done"] and r["worst_overtaken"] <= 2

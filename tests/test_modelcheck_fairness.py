"""The explicit-state model checker (sim/modelcheck.py) on small cases, and the starvation
scenarios of issue 15 (sim/fairness.py): unbounded in paper mode, bounded in fair mode."""

from __future__ import annotations

import pytest

from hwctl.sim import fairness, modelcheck


@pytest.mark.parametrize("kw", [{}, {"fair": True}])
def test_model_checker_k3_one_request_per_edge(kw) -> None:
    r = modelcheck.check("K3", 1, **kw)
    assert r.complete and r.violations == 0 and r.deadlocks == 0 and r.traps == 0
    assert r.states > 100 and r.terminal >= 1


def test_robust_model_checker_terminates_on_k13() -> None:
    """Robust mode with ids relative to each stream's floor closes: K1,3, reordering, one
    duplication, at most 3 messages in flight: exhaustive, 0 violations (the ESP layer never
    sees a bad message), 0 deadlocks (every link quiescent at the end), 0 traps."""
    r = modelcheck.check("K1,3", 1, robust=True, dup=1, inflight=3)
    assert r.complete and r.violations == 0 and r.deadlocks == 0 and r.traps == 0
    assert r.terminal >= 1 and r.cut > 0


def _plant_no_dedup(monkeypatch) -> None:
    """The planted bug: a link layer (``Arq.accept``) that delivers a duplicate again."""
    from hwctl.protocols import reliable

    orig = reliable.Arq.accept

    def no_dedup(self, msg):
        link = self.links[msg.src]
        if msg.kind != self._ack_kind and msg.seq < link.in_next:
            return [msg], self.ack(msg.src), False  # the planted bug
        return orig(self, msg)

    monkeypatch.setattr(reliable.Arq, "accept", no_dedup)


def test_robust_model_checker_catches_a_planted_dedup_bug(monkeypatch) -> None:
    """A link layer that delivers a duplicate again: the ESP layer sees a duplicate SYN/ACK."""
    _plant_no_dedup(monkeypatch)
    r = modelcheck.check("K1,3", 1, robust=True, dup=1, inflight=3)
    assert r.violations > 0 and "remote error" in r.first_problem


def test_streams_workload_measures_overtaking() -> None:
    """One request at a time per edge (the next one when the last completed), all interleavings:
    no deadlock, and the worst overtaking count is measured."""
    r = modelcheck.check("K3", 2, fair=True, streams=True)
    assert r.complete and r.violations == r.deadlocks == r.traps == 0
    assert 0 < r.worst_overtaken <= 4


@pytest.mark.slow
def test_bound_b_is_refuted_under_adversarial_interleavings() -> None:
    """B = 2 (deg i + deg j - 2) is not a property of every interleaving (docs/reliability.md,
    "Bounded waiting"): K3, 3 requests per edge in streams, fair mode: overtaken 5 > 4."""
    r = modelcheck.check("K3", 3, fair=True, streams=True, check_bound=True)
    assert r.violations > 0 and "overtaken 5 times > B = 4" in r.first_problem


def test_model_checker_finds_a_planted_deadlock(monkeypatch) -> None:
    """A core that forgets to wake rejected requests: the checker reports the stuck requests."""
    from hwctl.protocols.esp import EspNode

    monkeypatch.setattr(EspNode, "_queue_wake", lambda self, *a: None)
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
    assert paper["all_done"]
    assert paper["victim_overtaken"] >= paper_at_least  # grows with the stream: no bound
    for seed in range(1, 9):  # the timed simulations stay within deg(i) + deg(j) - 2 <= B
        fair = fairness.scenario(name, fair=True, seed=seed)
        assert fair["all_done"] and fair["worst_overtaken"] <= fair_bound, (seed, fair)


def test_fair_mode_is_robust_too() -> None:
    r = fairness.scenario("wake", fair=True, robust=True)
    assert r["all_done"] and r["worst_overtaken"] <= 2


# -- reductions of the state space (docs/reliability.md, "Model checker") -----------------------

@pytest.mark.parametrize("topo, n, fair", [("K3", 1, False), ("C4", 1, True), ("K1,3", 2, False)])
def test_partial_order_reduction_preserves_the_verdicts(topo, n, fair) -> None:
    """Persistent sets with the cycle proviso: a subset of the states, the same terminal states
    (deadlocks are preserved), no violation, deadlock or trap either way."""
    full = modelcheck.check(topo, n, fair=fair)
    por = modelcheck.check(topo, n, fair=fair, por=True)
    assert full.complete and por.complete and por.por and not full.por
    assert por.states <= full.states and por.terminal == full.terminal
    assert (por.violations, por.deadlocks, por.traps) == (full.violations, full.deadlocks,
                                                          full.traps) == (0, 0, 0)


def test_partial_order_reduction_still_finds_a_planted_invariant_violation(monkeypatch) -> None:
    """A core that accepts every SYN (even while BUSY) breaks invariant (1); the reduced search
    finds it too (violations of invariant (1) are preserved, docs/reliability.md)."""
    from hwctl.protocols.esp import EspNode, State

    orig = EspNode._accepts_syn

    def greedy(self, src, req):
        return self.state in (State.READY, State.BUSY) or orig(self, src, req)

    monkeypatch.setattr(EspNode, "_accepts_syn", greedy)
    for por in (False, True):
        r = modelcheck.check("C4", 1, por=por)
        assert r.violations > 0, por
        assert "invariant (1)" in r.first_problem or "protocol violation" in r.first_problem


def test_planted_deadlock_found_with_partial_order_reduction(monkeypatch) -> None:
    from hwctl.protocols.esp import EspNode

    monkeypatch.setattr(EspNode, "_queue_wake", lambda self, *a: None)
    r = modelcheck.check("K3", 2, por=True)
    assert r.deadlocks > 0 and "deadlock" in r.first_problem


def test_digests_count_the_same_states_as_keys() -> None:
    """Hash compaction (128-bit digests of a canonical key) merges exactly the equal states."""
    a = modelcheck.check("K3", 2, fair=True)
    b = modelcheck.check("K3", 2, fair=True, digest=True)
    assert (a.states, a.transitions, a.terminal) == (b.states, b.transitions, b.terminal)


# -- bounded waiting under the timing assumptions T1/T2 (docs/reliability.md) ------------------

PATH = "X-A,A-B,B-Y"  # the WAKE starvation pattern


@pytest.mark.parametrize("topo, n, worst", [("K3", 3, 2), ("K1,3", 3, 0), (PATH, 4, 3),
                                            ("C4", 3, 3)])
def test_fair_mode_keeps_bound_b_under_t1_t2(topo, n, worst) -> None:
    """Every interleaving that T1 (control before the next generation end) and T2 (generations
    end in start order) allow, streams workload: every request overtaken at most B times."""
    r = modelcheck.check(topo, n, fair=True, streams=True, timed=True, check_bound=True)
    assert r.complete and r.violations == r.deadlocks == r.traps == 0
    assert r.worst_overtaken == worst


@pytest.mark.parametrize("topo", ["K3", PATH, "C4"])
def test_paper_mode_breaks_bound_b_even_under_t1_t2(topo) -> None:
    """The bound check can fail: paper mode (no age tie-break, WAKE_SENT for one round trip)
    overtakes a request a fifth time on 3 requests per edge."""
    r = modelcheck.check(topo, 3, streams=True, timed=True, check_bound=True)
    assert r.violations > 0 and "overtaken 5 times > B = 4" in r.first_problem
    assert r.trace  # the path to the violation, for the report


@pytest.mark.slow
@pytest.mark.parametrize("topo, n, worst", [("K3", 6, 2), (PATH, 6, 3), ("C4", 4, 3),
                                            ("K1,3", 4, 0), ("K4", 3, 7)])
def test_fair_mode_bound_b_longer_streams(topo, n, worst) -> None:
    r = modelcheck.check(topo, n, fair=True, streams=True, timed=True, check_bound=True)
    assert r.complete and r.violations == r.deadlocks == r.traps == 0
    assert r.worst_overtaken == worst


@pytest.mark.slow
def test_bound_b_holds_on_k4_with_4_per_edge_under_t1_t2() -> None:
    """K4, 4 requests per edge in streams, fair mode, T1/T2. Before a node in WAKE_SENT could hold
    a WAKE for an older request, a WAKE reaching it was always NACKed and a request was overtaken
    9 > B = 8 times here (docs/reliability.md)."""
    r = modelcheck.check("K4", 4, fair=True, streams=True, timed=True, check_bound=True)
    assert r.complete and r.violations == r.deadlocks == r.traps == 0
    assert r.worst_overtaken == 7


def test_wake_reaching_a_node_in_wake_sent_is_held_for_an_older_request() -> None:
    """The K4 counterexample's step: A is in WAKE_SENT (for C's request 9), B's WAKE wakes A's
    request 3 (older than 9): A holds it (B stays in WAKE_SENT for A's SYN) instead of NACKing;
    for a request younger than 9 A NACKs (holding could close a cycle of WAKE_SENT nodes)."""
    from hwctl.protocols.base import Request, Send
    from hwctl.protocols.esp import EspMessage, EspNode, MsgType, State

    for t3, held in ((1.0, True), (5.0, False)):
        a = EspNode("A", {"B": 1e-5, "C": 1e-5}, fair=True)
        r3 = Request(3, "A", "B", 0.75, 1, t3)
        a.submit(r3, 0.0)
        a.receive(EspMessage(MsgType.SYNREJ, "B", "A", 3), 0.0)  # 3 sleeps
        r9 = Request(9, "C", "A", 0.75, 1, 2.0)
        # A rejected C's SYN 9 earlier: R_wake(C) with 9's age; idle now, A sends WAKE to C
        a._queue_wake("C", (r9.t, r9.rid))
        acts = a._process(0.0)
        assert a.state is State.WAKE_SENT and any(
            isinstance(x, Send) and x.msg.kind == MsgType.WAKE for x in acts)
        acts = a.receive(EspMessage(MsgType.WAKE, "B", "A", 7, wake=True), 0.0)
        nack = [x for x in acts if isinstance(x, Send) and x.msg.kind == MsgType.NACK]
        assert (not nack) is held and ("B" in a.owed) is held


# -- the fast engine (sim/mcfast.py): the same search, the same counts ---------------------------

def _counts(r) -> tuple:
    return (r.states, r.transitions, r.terminal, r.violations, r.deadlocks, r.traps,
            r.worst_overtaken, r.complete)


@pytest.mark.parametrize("topo, n, kw", [
    ("K3", 1, {}), ("K3", 1, {"fair": True}), ("K3", 2, {}), ("K1,3", 2, {}),
    ("C4", 1, {"fair": True}), ("K3", 1, {"arrivals": True}), ("K3", 2, {"joint_finish": True}),
    ("K3", 2, {"fair": True, "streams": True}), ("K3", 2, {"streams": True}),
    ("C4", 2, {"fair": True, "streams": True, "timed": True}),
])
def test_fast_engine_counts_equal_the_old_checker(topo, n, kw) -> None:
    """Memoised core transitions and canonical packed states change nothing: every count equal
    (states, transitions, terminal, violations, deadlocks, traps, worst overtaking)."""
    old = modelcheck.check(topo, n, engine="old", **kw)
    new = modelcheck.check(topo, n, engine="fast", **kw)
    assert _counts(new) == _counts(old)
    assert old.complete and old.states > 100


def test_fast_engine_cut_at_the_state_limit() -> None:
    r = modelcheck.check("C4", 2, engine="fast", max_states=1000)
    assert not r.complete and r.traps == -1 and r.states == 1001


def test_fast_engine_finds_the_planted_bugs(monkeypatch) -> None:
    """A core that accepts every SYN (even while BUSY) and one that never queues a wake-up: the
    fast engine finds the same violations and deadlocks as the old checker, count for count
    (the memo holds the planted core's own transitions), with a trace."""
    from hwctl.protocols.esp import EspNode, State

    orig = EspNode._accepts_syn

    def greedy(self, src, req):
        return self.state in (State.READY, State.BUSY) or orig(self, src, req)

    with monkeypatch.context() as m:
        m.setattr(EspNode, "_accepts_syn", greedy)
        old, new = (modelcheck.check("C4", 1, engine=e) for e in ("old", "fast"))
        assert new.violations > 0 and _counts(new) == _counts(old)
        assert new.first_problem == old.first_problem and len(new.trace) >= 2
    with monkeypatch.context() as m:
        m.setattr(EspNode, "_queue_wake", lambda self, *a: None)
        old, new = (modelcheck.check("K3", 2, engine=e) for e in ("old", "fast"))
        assert new.deadlocks > 0 and "deadlock" in new.first_problem
        assert _counts(new) == _counts(old)


@pytest.mark.slow
def test_fast_engine_c4_two_requests_per_edge() -> None:
    """The count of docs/reliability.md (old checker: 291,095 states, 899,483 transitions)."""
    r = modelcheck.check("C4", 2, engine="fast")
    assert (r.states, r.transitions, r.terminal, r.violations, r.deadlocks, r.traps) == (
        291_095, 899_483, 1, 0, 0, 0)


# -- the fast engine in robust mode (sim/mcrobust.py) ------------------------------------------

def _rcounts(r) -> tuple:
    return (r.states, r.transitions, r.cut, r.terminal, r.violations, r.deadlocks, r.traps,
            r.complete)


@pytest.mark.parametrize("topo, loss, dup", [
    ("K1,3", 0, 0), ("K1,3", 0, 1), ("K3", 0, 0),
    pytest.param("K1,3", 1, 0, marks=pytest.mark.slow),
    pytest.param("K1,3", 1, 1, marks=pytest.mark.slow),
    pytest.param("K3", 0, 1, marks=pytest.mark.slow),
    pytest.param("K3", 1, 0, marks=pytest.mark.slow),  # ~55 s of CPU on the original checker
])
def test_robust_fast_engine_counts_equal_the_old_checker(topo, loss, dup) -> None:
    """Link-layer state, the multiset in flight, floor-relative ids and stale tokens encoded in
    the packed state: every count equal to the original checker's (states, transitions, cut,
    terminal, violations, deadlocks, traps), 1 request per edge, at most 3 in flight."""
    kw = {"robust": True, "loss": loss, "dup": dup, "inflight": 3}
    old = modelcheck.check(topo, 1, engine="old", **kw)
    new = modelcheck.check(topo, 1, engine="fast", **kw)
    assert _rcounts(new) == _rcounts(old)
    assert old.complete and old.cut > 0 and old.violations == old.deadlocks == old.traps == 0


def test_robust_fast_engine_without_an_inflight_bound_matches_on_a_single_edge() -> None:
    """No in-flight bound (nothing cut) on one edge with one request: the same counts."""
    old, new = (modelcheck.check("A-B", 1, robust=True, engine=e) for e in ("old", "fast"))
    assert _rcounts(new) == _rcounts(old) and old.complete and old.cut == 0


def test_robust_fast_engine_catches_the_planted_dedup_bug(monkeypatch) -> None:
    """A link layer that delivers a duplicate again: both engines report it, with the same first
    problem (the duplicated SYN reaches ESP), and the fast engine gives the path to it."""
    _plant_no_dedup(monkeypatch)
    old, new = (modelcheck.check("K1,3", 1, robust=True, dup=1, inflight=3, engine=e)
                for e in ("old", "fast"))
    assert new.violations > 0 and old.violations > 0
    assert new.first_problem == old.first_problem == "remote error: B: duplicate SYN"
    assert len(new.trace) >= 2 and "SYN1" in new.trace[-1]


def test_cli_reports_a_bound_violation_without_a_traceback() -> None:
    """``python -m`` runs the checker as ``__main__``: the fast engine must catch that module's
    violations (paper mode breaks B on C4 with 3 per edge under T1/T2); a bad --requests is one
    usage error."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    cmd = [sys.executable, "-m", "hwctl.sim.modelcheck", "--topology", "C4", "--streams",
           "--timed", "--bound"]
    p = subprocess.run([*cmd, "--requests", "3"], capture_output=True, text=True, env=env,
                       timeout=600, check=False)  # the timeout only bounds a hang
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "bounded waiting" in p.stderr and "exhaustive" in p.stdout
    p = subprocess.run([*cmd, "--requests", "0"], capture_output=True, text=True, env=env,
                       timeout=600, check=False)
    assert p.returncode == 2 and "--requests must be >= 1" in p.stderr


@pytest.mark.parametrize("args, needle", [
    (["--requests", "x"], "--requests: invalid int value: 'x'"),
    (["--engine", "turbo"], "--engine: invalid choice"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--requests", "0"], "--requests must be >= 1"),
])
def test_cli_bad_argument_is_one_line_and_exit_2(args, needle, capsys) -> None:
    """The shared one-line parser (hwctl.cli.OneLineParser): one line on stderr, no usage
    block, exit status 2."""
    with pytest.raises(SystemExit) as exc:
        modelcheck.main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and "usage:" not in err
    assert err.startswith("python -m hwctl.sim.modelcheck: error: ")

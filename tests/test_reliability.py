"""Robust ESP (issue 15): validation, duplicate suppression, reordering, leases, expiry, restart
recovery, and the seeded fault runs of sim/dst.py (a short slice here, 10,000 under -m slow)."""

from __future__ import annotations

import dataclasses

import pytest

from hwctl.protocols.base import (
    AbortAttempts,
    Expired,
    RemoteError,
    Request,
    Send,
    StartAttempts,
)
from hwctl.protocols.esp import EspMessage, EspNode, MsgType, State
from hwctl.protocols.reliable import RobustConfig
from hwctl.sim import dst, topologies
from hwctl.sim.faults import FaultConfig, FaultModel
from hwctl.sim.network import NetworkSim, SimConfig

D = 10e-6
RC = RobustConfig(rto=1e-4, rto_max=1e-3, lease=5e-3, busy_lease=10e-3, request_ttl=0.1)


def rnode(name: str, *peers: str, inc: int = 0, fair: bool = False) -> EspNode:
    return EspNode(name, {p: D for p in peers}, robust=RC, incarnation=inc, fair=fair)


def req(rid: int, i: str, j: str, pairs: int = 1, t: float = 0.0) -> Request:
    return Request(rid, i, j, 0.75, pairs, t)


def data(actions: list) -> list[EspMessage]:
    return [a.msg for a in actions if isinstance(a, Send) and a.msg.kind is not MsgType.LINK_ACK]


def acks(actions: list) -> list[EspMessage]:
    return [a.msg for a in actions if isinstance(a, Send) and a.msg.kind is MsgType.LINK_ACK]


def test_validation_reports_instead_of_raising() -> None:
    b = EspNode("B", {"A": D, "C": D}, qubits=2)
    bad = [
        (EspMessage(MsgType.SYN, "Z", "B", 1, req(1, "Z", "B")), "not a neighbour"),
        (EspMessage(MsgType.SYN, "A", "B", 1, req(1, "C", "B")), "does not name this edge"),
        (EspMessage(MsgType.SYN, "A", "X", 1, req(1, "A", "X")), "addressed to"),
        (EspMessage(MsgType.SYNACK, "A", "B", 9), "unexpected SYNACK"),
        (EspMessage(MsgType.ACK, "C", "B", 9), "unexpected ACK"),
    ]
    for msg, why in bad:
        acts = b.receive(msg, 0.0)
        errs = [a for a in acts if isinstance(a, RemoteError)]
        assert len(errs) == 1 and why in errs[0].reason and errs[0].src == msg.src
    assert b.state is State.IDLE
    # a SYN for more pairs than the node's qubits: reported and refused, the requester expires it
    a = EspNode("A", {"B": D})
    syn = data(a.submit(req(5, "A", "B", pairs=3), 0.0))[0]
    acts = b.receive(syn, D)
    assert any(isinstance(x, RemoteError) for x in acts)
    refuse = [x.msg for x in acts if isinstance(x, Send)][0]
    assert refuse.kind is MsgType.REFUSE
    out = a.receive(refuse, 2 * D)
    assert [type(x) for x in out] == [Expired] and "refused by B" in out[0].reason
    # an ACK from a node that does not hold the Lock
    c = EspNode("C", {"B": D})
    b2 = EspNode("B", {"A": D, "C": D})
    b2.receive(data(a.submit(req(6, "A", "B"), 0.0))[0], D)
    assert b2.state is State.SYN_RECEIVED
    forged = EspMessage(MsgType.ACK, "C", "B", 6, t_min=1.0)
    assert any(isinstance(x, RemoteError) for x in b2.receive(forged, 2 * D))
    assert b2.state is State.SYN_RECEIVED and c.state is State.IDLE


def _handshake(a: EspNode, b: EspNode, r: Request) -> list:
    """Deliver everything between a and b in order; return b's StartAttempts actions."""
    q = list(a.submit(r, 0.0))
    t = 0.0
    starts = []
    while q:
        act = q.pop(0)
        if isinstance(act, StartAttempts):
            starts.append(act)
        if not isinstance(act, Send):
            continue
        t += D
        dst_core = b if act.msg.dst == b.name else a
        q += dst_core.receive(act.msg, t)
    return starts


def test_duplicates_are_suppressed_in_robust_mode() -> None:
    a, b = rnode("A", "B"), rnode("B", "A")
    syn = data(a.submit(req(1, "A", "B"), 0.0))[0]
    first = b.receive(syn, D)
    synack = data(first)[0]
    again = b.receive(syn, 2 * D)  # duplicated SYN: acknowledged again, not processed again
    assert data(again) == [] and len(acks(again)) == 1
    assert not any(isinstance(x, RemoteError) for x in again)
    ack = data(a.receive(synack, 2 * D))[0]
    assert data(a.receive(synack, 3 * D)) == []  # duplicated SYNACK
    starts = [x for x in b.receive(ack, 3 * D) if isinstance(x, StartAttempts)]
    assert len(starts) == 1
    assert [x for x in b.receive(ack, 4 * D) if not isinstance(x, Send)] == []  # duplicated ACK
    assert a.state is State.READY and b.state is State.READY
    assert b.arq is not None and b.arq.stats.duplicates == 2


def test_wake_overtaking_synrej_is_not_lost() -> None:
    """Issue 15: a WAKE that overtook the SYNREJ it belongs to left the request asleep forever."""
    for robust in (False, True):
        mk = rnode if robust else (lambda n, *p: EspNode(n, {x: D for x in p}))
        a, b, c = mk("A", "B"), mk("B", "A", "C"), mk("C", "B")
        _handshake(c, b, req(1, "C", "B"))  # B locked by C
        syn = data(a.submit(req(2, "A", "B"), 0.0))[0]
        rej = data(b.receive(syn, D))[0]
        assert rej.kind is MsgType.SYNREJ
        c.attempts_finished(1, 1e-3)
        wake = data(b.attempts_finished(1, 1e-3))[0]
        assert wake.kind is MsgType.WAKE
        a.receive(wake, 1e-3 + D)  # overtakes the SYNREJ
        out = a.receive(rej, 1e-3 + 2 * D)
        assert a.sleeping() == []
        syns = [m for m in data(out) if m.kind is MsgType.SYN]
        assert [m.rid for m in syns] == [2], robust


def test_retransmission_until_acknowledged() -> None:
    a = rnode("A", "B")
    syn = data(a.submit(req(1, "A", "B"), 0.0))[0]
    t = a.get_timer()
    assert t == pytest.approx(RC.rto)
    resent = data(a.handle_timer(t))
    assert resent == [syn]  # the same id: the receiver can drop a duplicate
    assert a.get_timer() == pytest.approx(t + 2 * RC.rto)  # backs off
    b = rnode("B", "A")
    out = b.receive(resent[0], t + D)
    a.receive(acks(out)[0], t + 2 * D)
    assert a.arq is not None and a.arq.pending("B") == 0


def test_reordered_messages_are_delivered_in_order() -> None:
    a, b, c = rnode("A", "B"), rnode("B", "A", "C"), rnode("C", "B")
    _handshake(c, b, req(1, "C", "B"))
    syn = data(a.submit(req(2, "A", "B"), 0.0))[0]
    rej = data(b.receive(syn, D))[0]
    c.attempts_finished(1, 1e-3)
    wake = [m for m in data(b.attempts_finished(1, 1e-3)) if m.kind is MsgType.WAKE][0]
    assert (rej.seq, wake.seq) == (1, 2)
    assert data(a.receive(wake, 1e-3 + D)) == []  # buffered until the SYNREJ is in
    out = a.receive(rej, 1e-3 + 2 * D)
    assert [m.kind for m in data(out)] == [MsgType.SYN]  # SYNREJ then WAKE: the request retries


def test_lease_releases_lock_of_silent_initiator() -> None:
    a, b = rnode("A", "B"), rnode("B", "A")
    syn = data(a.submit(req(1, "A", "B"), 0.0))[0]
    b.receive(syn, D)  # A goes silent (crashed) before its ACK
    assert b.state is State.SYN_RECEIVED and b.lock_deadline() == pytest.approx(D + RC.lease)
    t = b.lock_deadline()
    b.handle_timer(t)
    assert b.state is State.IDLE
    # READY/BUSY: the physical layer is told to stop when t_min + busy_lease passes
    a2, b2 = rnode("A", "B"), rnode("B", "A")
    _handshake(a2, b2, req(1, "A", "B"))
    assert b2.state is State.READY
    t = b2.lock_deadline()
    out = b2.handle_timer(t)
    assert any(isinstance(x, AbortAttempts) and x.reason == "lease" for x in out)
    assert b2.state is State.IDLE


def test_stale_request_expires_with_reason() -> None:
    a, b, c = rnode("A", "B"), rnode("B", "A", "C"), rnode("C", "B")
    _handshake(c, b, req(1, "C", "B"))
    syn = data(a.submit(req(2, "A", "B"), 0.0))[0]
    a.receive(data(b.receive(syn, D))[0], 2 * D)  # sleeps; B's WAKE never comes
    assert a.sleeping() == [req(2, "A", "B")]
    out = []
    while not any(isinstance(x, Expired) for x in out):
        out = a.handle_timer(a.get_timer())
    assert [x.reason for x in out if isinstance(x, Expired)] == ["ttl"]
    assert a.sleeping() == [] and a.open_requests() == []


def test_restarted_peer_releases_what_it_held_and_requests_resume() -> None:
    a, b = rnode("A", "B"), rnode("B", "A")
    _handshake(a, b, req(1, "A", "B"))
    assert a.state is State.READY and b.state is State.READY
    b_new = rnode("B", "A", inc=1)  # B crashed and came back with no state
    hello = data(b_new.recover([], 1e-3))[0]
    assert hello.kind is MsgType.HELLO
    out = a.receive(hello, 1e-3 + D)
    assert any(isinstance(x, AbortAttempts) for x in out)
    syn = [m for m in data(out) if m.kind is MsgType.SYN]
    assert [m.rid for m in syn] == [1] and syn[0].dinc == 1  # resumed towards the new life
    # the restarted initiator resumes its own requests, or expires the too-old ones
    n = rnode("A", "B", inc=3)
    out = n.recover([req(7, "A", "B", t=0.0), req(8, "A", "B", t=0.5)], 0.2)
    assert [(x.request.rid, x.reason) for x in out if isinstance(x, Expired)] == [(7, "restarted")]
    assert [m.rid for m in data(out) if m.kind is MsgType.SYN] == [8]


def test_no_fault_robust_run_matches_paper_mode() -> None:
    """Robustness on, no faults: the same requests finish at the same times as in paper mode."""
    g = topologies.by_name("2x3")
    base = NetworkSim(g, SimConfig(seed=5, duration=5.0)).run()
    rob = NetworkSim(g, SimConfig(seed=5, duration=5.0, robust=True)).run()
    assert [(r.rid, r.t_finish) for r in base.records] == [(r.rid, r.t_finish) for r in rob.records]
    assert rob.messages > base.messages  # the acknowledgements


def test_fault_model_with_zero_rates_is_the_fault_free_run() -> None:
    g = topologies.by_name("K3")
    base = NetworkSim(g, SimConfig(seed=2, duration=3.0)).run()
    zero = NetworkSim(g, SimConfig(seed=2, duration=3.0),
                      faults=FaultModel(FaultConfig(), 7)).run()
    assert base.summary == zero.summary


def test_fault_model_draws() -> None:
    fm = FaultModel(FaultConfig(loss=0.2, duplicate=0.2, reorder=0.5, reorder_window=1e-3,
                                until=1.0), 3)
    n = 20000
    arrivals = [fm.arrivals("A", "B", 0.0, D) for _ in range(n)]
    lost = sum(1 for a in arrivals if not a) / n
    dup = sum(1 for a in arrivals if len(a) == 2) / (n * 0.8)
    assert lost == pytest.approx(0.2, abs=0.02) and dup == pytest.approx(0.2, abs=0.02)
    assert max(max(a) for a in arrivals if a) <= D + 1e-3
    assert fm.arrivals("A", "B", 1.0, D) == [1.0 + D]  # faults stop at `until`
    fm.cuts.append((frozenset({"A"}), 0.0, 0.5))
    assert fm.partitioned("A", "B", 0.1) and not fm.partitioned("A", "B", 0.6)


def test_crash_during_generation_frees_the_survivor() -> None:
    g = topologies.by_name("K2")
    work = [Request(1, "A", "B", 0.75, 6, 0.0), Request(2, "A", "B", 0.75, 1, 0.0)]
    sim = NetworkSim(g, SimConfig(seed=1, robust=True), workload=work, robust=RC)
    while 1 not in sim._running:
        sim.run(until=sim._heap[0][0])
    sim.crash("B")
    assert sim.cores["A"].state is not State.BUSY  # attempts_failed released A's Lock
    sim._at(sim.now + 1e-3, sim.restart, "B")
    res = sim.run_to_quiescence()
    assert all(r.done for r in res.records)


def test_dst_replays_exactly() -> None:
    one = dst.run_one(123)
    two = dst.run_one(123)
    assert dataclasses.asdict(one) == dataclasses.asdict(two) and one.ok


def test_dst_failure_prints_seed_and_replay(capsys, monkeypatch) -> None:
    real = NetworkSim._generate

    def broken(self, req, t_start):  # a physical layer that loses every completion
        real(self, req, t_start)
        self._running.pop(req.rid, None)

    monkeypatch.setattr(NetworkSim, "_generate", broken)
    out = dst.run_one(5)
    assert not out.ok
    err = capsys.readouterr().err
    assert "seed 5: FAIL" in err and "replay: PYTHONPATH=. python -m hwctl.sim.dst --seed 5" in err


def test_dst_short_slice() -> None:
    outs = dst.run_many(0, 150)
    assert [o.seed for o in outs if not o.ok] == []
    assert sum(o.crashes for o in outs) > 50 and sum(o.partitions for o in outs) > 50
    assert sum(o.expired for o in outs) > 0 and sum(o.completed for o in outs) > 1000


@pytest.mark.slow
def test_dst_ten_thousand_seeds() -> None:
    outs = dst.run_many(0, 10_000)
    assert [o.seed for o in outs if not o.ok] == []


# ------------------------------------------------------------------------------------------------
# DQP: the same for the scheduler and its clients

def _dqp(robust: RobustConfig | None = RC):
    from hwctl.protocols.dqp import DqpNode, DqpScheduler
    s = DqpScheduler({"A": D, "B": D, "C": D}, robust=robust)
    return s, {n: DqpNode(n, robust=robust) for n in "ABC"}


def _pump(s, nodes, acts_by: list, t: float = 0.0, drop=lambda m: False) -> tuple[list, float]:
    """Deliver every Send (in order, D apart) between S and the nodes; return the other actions."""
    out = []
    q = list(acts_by)
    while q:
        src, act = q.pop(0)
        if not isinstance(act, Send):
            out.append((src, act))
            continue
        if drop(act.msg):
            continue
        t += D
        core = s if act.msg.dst == "S" else nodes[act.msg.dst]
        q += [(act.msg.dst, a) for a in core.receive(act.msg, t)]
    return out, t


def test_dqp_validation_and_duplicates() -> None:
    from hwctl.protocols.dqp import DqpMessage, DqpMsgType
    s, nodes = _dqp(None)
    forged = DqpMessage(DqpMsgType.ADD, "B", "S", req(1, "A", "C"))
    assert [type(x) for x in s.receive(forged, 0.0)] == [RemoteError]
    assert [type(x) for x in s.receive(DqpMessage(DqpMsgType.ADD, "Z", "S", req(2, "Z", "A")),
                                       0.0)] == [RemoteError]
    assert [type(x) for x in nodes["A"].receive(DqpMessage(DqpMsgType.DONE, "S", "A",
                                                           req(3, "B", "C")), 0.0)] == [RemoteError]
    # robust: a duplicated ADD is queued once, a duplicated START starts once
    s, nodes = _dqp()
    add = nodes["A"].submit(req(4, "A", "B"), 0.0)[0].msg
    first = s.receive(add, D)
    assert len([a for a in first if isinstance(a, Send) and a.msg.kind is DqpMsgType.START]) == 2
    again = s.receive(add, 2 * D)
    assert [a.msg.kind for a in again] == [DqpMsgType.LINK_ACK] and not s.queue
    start_a = [a.msg for a in first if isinstance(a, Send) and a.msg.dst == "A"
               and a.msg.kind is DqpMsgType.START][0]
    assert len([x for x in nodes["A"].receive(start_a, 2 * D) if isinstance(x, StartAttempts)]) == 1
    assert [x for x in nodes["A"].receive(start_a, 3 * D) if isinstance(x, StartAttempts)] == []


def test_dqp_lease_aborts_silent_run_and_expiry_reaches_requester() -> None:
    from hwctl.protocols.dqp import DqpMsgType
    s, nodes = _dqp()
    acts = [("A", a) for a in nodes["A"].submit(req(1, "A", "B"), 0.0)]
    acts += [("C", a) for a in nodes["C"].submit(req(2, "C", "B", t=0.0), 0.0)]
    other, t = _pump(s, nodes, acts)
    assert s.running is not None and s.running.rid == 1
    # A and B never report DONE: the lease ends the run, both ends are told to stop
    aborts: list[str] = []
    while not aborts:
        t = s.get_timer()
        out = s.handle_timer(t)
        aborts = [a.msg.dst for a in out if isinstance(a, Send) and a.msg.kind is DqpMsgType.ABORT]
    assert sorted(aborts) == ["A", "B"] and t >= RC.busy_lease
    assert s.running.rid == 1  # back at the head of the queue and started again
    other, t2 = _pump(s, nodes, [("S", a) for a in out], t)
    assert any(isinstance(a, AbortAttempts) for _, a in other)
    # a request that cannot start before its lifetime ends expires at its initiator, with reason
    s2, nodes2 = _dqp()
    acts = [("A", a) for a in nodes2["A"].submit(req(5, "A", "B"), 0.0)]
    acts += [("C", a) for a in nodes2["C"].submit(req(6, "C", "B"), 0.0)]
    _pump(s2, nodes2, acts)  # 5 runs (never finishes), 6 waits
    exp = []
    t = 0.0
    while not exp:
        t = min(x for x in (s2.get_timer(), nodes2["C"].get_timer()) if x is not None)
        outs = [("S", a) for a in s2.handle_timer(t)] + [("C", a) for a in
                                                         nodes2["C"].handle_timer(t)]
        other, _ = _pump(s2, nodes2, outs, t)
        exp = [a for _, a in other if isinstance(a, Expired)]
    assert exp[0].request.rid == 6 and "ttl" in exp[0].reason


def test_dqp_scheduler_restart_recovers_queue_from_clients() -> None:
    from hwctl.protocols.dqp import DqpScheduler
    s, nodes = _dqp()
    acts = [("A", a) for a in nodes["A"].submit(req(1, "A", "B"), 0.0)]
    acts += [("C", a) for a in nodes["C"].submit(req(2, "C", "B"), 0.0)]
    _pump(s, nodes, acts)
    s_new = DqpScheduler({"A": D, "B": D, "C": D}, robust=RC, incarnation=1)
    other, _ = _pump(s_new, nodes, [("S", a) for a in s_new.recover(1e-3)], 1e-3)
    # A's running request was aborted and sent again; C's queued one too
    assert any(isinstance(a, AbortAttempts) for _, a in other)
    assert s_new.running is not None and s_new.running.rid == 1
    assert [r.rid for r in s_new.queue] == [2]


def test_dqp_under_faults_in_the_simulator() -> None:
    seeds = [s for s in range(1000) if dst._scenario(s)[6] == "dqp"][:80]
    outs = [dst.run_one(s) for s in seeds]
    assert all(o.ok and o.protocol == "dqp" for o in outs)
    assert sum(o.crashes for o in outs) > 20

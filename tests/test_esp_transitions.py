"""One test per ESP state transition (ESP paper Table II, Algorithm 1), driving EspNode directly."""

from __future__ import annotations

import pytest

from hwctl.protocols.base import (
    Completed,
    ProtocolViolation,
    RemoteError,
    Request,
    Send,
    StartAttempts,
)
from hwctl.protocols.esp import EspMessage, EspNode, MsgType, State

D = 10e-6  # one-way control delay of every link in these tests


def node(name: str, *peers: str) -> EspNode:
    return EspNode(name, {p: D for p in peers}, debug=True)


def req(rid: int, i: str, j: str, pairs: int = 2, t: float = 0.0) -> Request:
    return Request(rid, i, j, 0.75, pairs, t)


def sent(actions: list) -> list[EspMessage]:
    return [a.msg for a in actions if isinstance(a, Send)]


def one(actions: list, kind: MsgType) -> EspMessage:
    msgs = [m for m in sent(actions) if m.kind is kind]
    assert len(msgs) == 1, f"expected one {kind.name} in {actions}"
    return msgs[0]


def handshake(a: EspNode, b: EspNode, r: Request, now: float = 0.0) -> float:
    """Run SYN -> SYNACK -> ACK between initiator a and remote b; return t_min."""
    syn = one(a.submit(r, now), MsgType.SYN)
    synack = one(b.receive(syn, now + D), MsgType.SYNACK)
    ack = one(a.receive(synack, now + 2 * D), MsgType.ACK)
    b.receive(ack, now + 3 * D)
    return ack.t_min


def test_idle_to_syn_sent_on_request() -> None:
    a = node("A", "B")
    assert a.state is State.IDLE
    syn = one(a.submit(req(1, "A", "B"), 0.0), MsgType.SYN)
    assert a.state is State.SYN_SENT
    assert (syn.src, syn.dst, syn.rid) == ("A", "B", 1) and syn.request == req(1, "A", "B")


def test_idle_to_syn_received_first_syn_wins_rest_rejected() -> None:
    a, b, c = node("A", "B", "C"), node("B", "A"), node("C", "A")
    syn_b = one(b.submit(req(1, "B", "A"), 0.0), MsgType.SYN)
    syn_c = one(c.submit(req(2, "C", "A"), 0.0), MsgType.SYN)
    assert one(a.receive(syn_b, D), MsgType.SYNACK).dst == "B"
    assert a.state is State.SYN_RECEIVED and a.busy
    assert one(a.receive(syn_c, D + 1e-9), MsgType.SYNREJ).dst == "C"
    assert a.queued_wakes() == ["C"]  # the rejecter queues R_wake


def test_syn_sent_to_ready_on_synack_sets_t_min() -> None:
    a, b = node("A", "B"), node("B", "A")
    syn = one(a.submit(req(1, "A", "B"), 0.0), MsgType.SYN)
    synack = one(b.receive(syn, D), MsgType.SYNACK)
    acts = a.receive(synack, 2 * D)
    ack = one(acts, MsgType.ACK)
    assert a.state is State.READY
    assert ack.t_min == pytest.approx(3 * D)  # the time the remote enters READY
    assert [x for x in acts if isinstance(x, StartAttempts)] == [
        StartAttempts(req(1, "A", "B"), "B", ack.t_min)]


def test_syn_received_to_ready_on_ack() -> None:
    a, b = node("A", "B"), node("B", "A")
    syn = one(a.submit(req(1, "A", "B"), 0.0), MsgType.SYN)
    synack = one(b.receive(syn, D), MsgType.SYNACK)
    ack = one(a.receive(synack, 2 * D), MsgType.ACK)
    acts = b.receive(ack, 3 * D)
    assert b.state is State.READY
    assert acts == [StartAttempts(req(1, "A", "B"), "A", ack.t_min)]


def test_ready_to_busy_at_t_min_and_busy_to_idle_on_completion() -> None:
    a, b = node("A", "B"), node("B", "A")
    t_min = handshake(a, b, req(1, "A", "B"))
    assert a.get_timer() == t_min and b.get_timer() == t_min
    a.handle_timer(t_min - 1e-9)
    assert a.state is State.READY  # not before t_min
    a.handle_timer(t_min)
    b.handle_timer(t_min)
    assert a.state is State.BUSY and b.state is State.BUSY
    done = a.attempts_finished(1, 0.02)
    assert b.attempts_finished(1, 0.02) == []  # only the initiator reports completion
    assert done == [Completed(req(1, "A", "B"), t_min, 0.02, 0.02)]
    assert a.state is State.IDLE and b.state is State.IDLE  # Lock released


def test_syn_sent_to_idle_on_synrej_request_sleeps() -> None:
    a, b, c = node("A", "B"), node("B", "A", "C"), node("C", "B")
    handshake(c, b, req(1, "C", "B"))  # B is locked by C
    syn = one(a.submit(req(2, "A", "B"), 0.0), MsgType.SYN)
    rej = one(b.receive(syn, D), MsgType.SYNREJ)
    a.receive(rej, 2 * D)
    assert a.state is State.IDLE
    assert a.sleeping() == [req(2, "A", "B")]
    assert b.queued_wakes() == ["A"]


def test_rejecter_queues_one_wake_per_initiator() -> None:
    b, c = node("B", "A", "C"), node("C", "B")
    handshake(c, b, req(1, "C", "B"))
    for rid in (2, 3):  # two requests of A on the same edge, both rejected
        syn = EspMessage(MsgType.SYN, "A", "B", rid, req(rid, "A", "B"))
        one(b.receive(syn, D), MsgType.SYNREJ)
    assert b.queued_wakes() == ["A"]


def _rejected_then_freed() -> tuple[EspNode, EspNode, EspNode, EspMessage]:
    """C locks B; A is rejected by B; B finishes with C and sends WAKE to A."""
    a, b, c = node("A", "B"), node("B", "A", "C"), node("C", "B")
    t_min = handshake(c, b, req(1, "C", "B"))
    syn = one(a.submit(req(2, "A", "B"), 0.0), MsgType.SYN)
    a.receive(one(b.receive(syn, D), MsgType.SYNREJ), 2 * D)
    c.handle_timer(t_min)
    b.handle_timer(t_min)
    c.attempts_finished(1, 0.01)
    wake = one(b.attempts_finished(1, 0.01), MsgType.WAKE)
    return a, b, c, wake


def test_idle_to_wake_sent_when_r_wake_is_polled() -> None:
    a, b, c, wake = _rejected_then_freed()
    assert b.state is State.WAKE_SENT and b.busy
    assert wake.dst == "A" and wake.wake


def test_wake_cannot_be_interrupted_by_syn() -> None:
    a, b, c, wake = _rejected_then_freed()
    syn = one(c.submit(req(3, "C", "B"), 0.02), MsgType.SYN)
    assert one(b.receive(syn, 0.02 + D), MsgType.SYNREJ).dst == "C"
    assert b.state is State.WAKE_SENT


def test_wake_sent_to_syn_received_on_woken_nodes_syn() -> None:
    a, b, c, wake = _rejected_then_freed()
    syn = one(a.receive(wake, 0.01 + D), MsgType.SYN)  # the woken request, sent at once
    assert a.sleeping() == [] and a.state is State.SYN_SENT
    one(b.receive(syn, 0.01 + 2 * D), MsgType.SYNACK)
    assert b.state is State.SYN_RECEIVED


def test_wake_sent_to_idle_on_nack_when_woken_node_cannot_answer() -> None:
    a, b, c, wake = _rejected_then_freed()
    x = node("X", "A")
    a.delays["X"] = D
    # A is locked by X when the WAKE arrives: it requeues its request and answers NACK.
    a.receive(one(x.submit(req(9, "X", "A"), 0.01), MsgType.SYN), 0.01 + D / 2)
    nack = one(a.receive(wake, 0.01 + D), MsgType.NACK)
    assert nack.wake and nack.rid == wake.rid
    assert [it.request.rid for it in a.q_main if it.request] == [2]
    b.receive(nack, 0.01 + 2 * D)
    assert b.state is State.IDLE


def test_syn_received_to_idle_on_nack() -> None:
    # A in SYN_SENT accepts a SYN from a lower id, so its own request is no longer valid when the
    # SYNACK arrives: it answers NACK and the remote releases its Lock.
    a0, b, c = node("A", "B"), node("B", "A", "C"), node("C", "B")
    syn_bc = one(b.submit(req(1, "B", "C"), 0.0), MsgType.SYN)
    syn_ab = one(a0.submit(req(2, "A", "B"), 0.0), MsgType.SYN)
    assert b.state is State.SYN_SENT
    one(b.receive(syn_ab, D / 2), MsgType.SYNACK)  # "A" < "B": accepted while SYN_SENT
    assert b.state is State.SYN_RECEIVED
    synack = one(c.receive(syn_bc, D), MsgType.SYNACK)
    assert c.state is State.SYN_RECEIVED
    nack = one(b.receive(synack, 2 * D), MsgType.NACK)
    c.receive(nack, 3 * D)
    assert c.state is State.IDLE
    assert [it.request.rid for it in b.q_main if it.request] == [1]  # back in Q_main


def test_syn_sent_rejects_syn_from_higher_id() -> None:
    a, b = node("A", "B"), node("B", "A")
    syn_ab = one(a.submit(req(1, "A", "B"), 0.0), MsgType.SYN)
    syn_ba = one(b.submit(req(2, "B", "A"), 0.0), MsgType.SYN)
    assert one(a.receive(syn_ba, D), MsgType.SYNREJ).dst == "B"
    assert one(b.receive(syn_ab, D), MsgType.SYNACK).dst == "A"


def test_sleeping_request_keeps_arrival_number_and_priority() -> None:
    a, b, c, wake = _rejected_then_freed()  # A's request 2 (arrival 1) sleeps
    x = node("X", "A")
    a.delays["X"] = D
    syn_x = one(x.submit(req(9, "X", "A"), 0.01), MsgType.SYN)
    ack_x = one(x.receive(one(a.receive(syn_x, 0.01 + D / 2), MsgType.SYNACK), 0.01 + D),
                MsgType.ACK)
    a.receive(ack_x, 0.01 + 1.5 * D)  # A is READY with X
    assert a.submit(req(5, "A", "B"), 0.01 + 1.6 * D) == []  # newer request waits in Q_main
    one(a.receive(wake, 0.01 + 2 * D), MsgType.NACK)  # busy: wakes request 2, answers NACK
    assert sorted((it.arrival, it.request.rid) for it in a.q_main) == [(1, 2), (2, 5)]
    a.handle_timer(ack_x.t_min)
    syn = one(a.attempts_finished(9, 0.03), MsgType.SYN)
    assert syn.rid == 2  # the woken request keeps arrival 1 and goes before the newer one


def test_arrival_numbers_strictly_increase_including_wakes() -> None:
    b = node("B", "A", "C", "D")
    handshake(node("C", "B"), b, req(1, "C", "B"))
    for rid, src in ((2, "A"), (3, "D")):
        b.receive(EspMessage(MsgType.SYN, src, "B", rid, req(rid, src, "B")), 0.001)
    b.submit(req(4, "B", "A"), 0.002)
    arrivals = [it.arrival for it in sorted(b.q_main)]
    assert arrivals == sorted(set(arrivals)) and len(arrivals) == 3
    kinds = [it.wake_target or it.request.rid for it in sorted(b.q_main)]
    assert kinds == ["A", "D", 4]


def test_remote_errors_are_reported_local_misuse_raises() -> None:
    a = node("A", "B")
    acts = a.receive(EspMessage(MsgType.ACK, "B", "A", 7), 0.0)
    assert [type(x) for x in acts] == [RemoteError] and acts[0].src == "B"
    with pytest.raises(ProtocolViolation):  # the local driver's mistake, not a remote's
        a.attempts_finished(7, 0.0)
    with pytest.raises(ValueError):
        a.submit(req(1, "A", "Q"), 0.0)


@pytest.mark.parametrize("kind", list(MsgType))
def test_message_bytes_round_trip(kind: MsgType) -> None:
    msg = EspMessage(kind, "A", "node-7", 12345, req(12345, "A", "node-7") if kind is MsgType.SYN
                     else None, 0.125 if kind is MsgType.ACK else 0.0, kind is MsgType.WAKE)
    assert EspMessage.from_bytes(msg.to_bytes()) == msg
    with pytest.raises(ValueError):
        EspMessage.from_bytes(msg.to_bytes()[:-1] if kind is MsgType.SYN else b"\x01")

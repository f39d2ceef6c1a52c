"""The node's latency breakdown (hwctl.nodetiming): the device's join cycle from its DONE is exact
(the lab twin in virtual time, with and without the device's late join), and segments are
computed from marks on a given clock."""

from __future__ import annotations

import asyncio

import pytest

from hwctl.nodetiming import NodeTiming, join_cycle, merge
from hwctl.protocols.base import Request
from hwctl.protocols.esp import EspMessage, MsgType
from hwctl.sim import topologies
from hwctl.sim.twin.lab import Lab
from hwctl.wire import ControlBit, Done, FrameDecoder, Reg, RegWrite, SchedulePairs, encode


def _run_to_done(lab: Lab, starts: dict[str, int], pairs: int = 2) -> dict[str, Done]:
    dec = {n: FrameDecoder() for n in starts}
    for n, t in starts.items():
        lab.feed(n, encode(SchedulePairs(t, 2**32 - 1, 50, pairs, lab.port(n, "AB".replace(n, ""))),
                           1))
    done: dict[str, Done] = {}
    while len(done) < len(starts):
        lab.advance(200_000)
        for n in starts:
            for f in dec[n].feed(lab.read(n)):
                if isinstance(f.msg, Done):
                    done[n] = f.msg
    return done


@pytest.mark.parametrize("late_join", [False, True])
def test_join_cycle_from_done_is_where_the_device_started(late_join: bool) -> None:
    lab = Lab(topologies.by_name("K2"), p_photon=0.02, seed=3, start=0,
              node_kw={n: {"uart_cycles_per_byte": 0} for n in "AB"})
    origin = 10_000
    if late_join:  # B's command reaches its device 12,345 cycles after the origin: it joins
        for n in "AB":  # the grid by itself at the next grid point
            lab.feed(n, encode(RegWrite(Reg.CONTROL, 0b11 | 1 << ControlBit.LATE_JOIN), 0))
        lab.feed("A", encode(SchedulePairs(origin, 2**32 - 1, 50, 2, lab.port("A", "B")), 1))
        lab.advance_to(origin + 12_345)
        done = _run_to_done(lab, {"B": origin})
        expect_b = origin + -(-12_345 // 50) * 50
        assert join_cycle(done["B"].ts, done["B"].attempts, origin, 50) == expect_b
    else:  # the host gave each end its own grid point
        done = _run_to_done(lab, {"A": origin, "B": origin + 50 * 7})
        assert join_cycle(done["A"].ts, done["A"].attempts, origin, 50) == origin
        assert join_cycle(done["B"].ts, done["B"].attempts, origin, 50) == origin + 350


def test_segments_from_marks_on_the_given_clock() -> None:
    t = [100.0]
    tm = NodeTiming({"B": 10e-6}, clock=lambda: t[0])
    tm.mark(7, "start")
    t[0] += 0.001
    tm.command_out(7)
    t[0] += 0.002
    tm.command_acked(7)
    tm.done_seen(5_000, lambda c: c / 1e6)  # DONE stamped at 5 ms of a 1 MHz clock: 99.997 s late
    t[0] += 0.0005
    tm.finished(7, join_s=100.0015, t_min=100.0, done_ts=5_000)
    # an ACK from B: B sent it at t_min - d
    tm.esp_in(EspMessage(MsgType.ACK, "B", "A", 7, t_min=t[0] - 0.0004 + 10e-6), None)
    tm.esp_in(EspMessage(MsgType.SYNACK, "B", "A", 8), t_syn=t[0] - 0.0012)
    s = tm.summary()
    assert s["to_cmd"]["mean"] == pytest.approx(1.0)
    assert s["cmd_rtt"]["mean"] == pytest.approx(2.0)
    assert s["cmd_to_device"]["mean"] == pytest.approx(0.5)  # joined 0.5 ms after the command
    assert s["join_after_tmin"]["mean"] == pytest.approx(1.5)
    assert s["done_to_core"]["mean"] == pytest.approx(0.5)
    assert s["ack_flight"]["mean"] == pytest.approx(0.4)
    assert s["syn_rtt"]["mean"] == pytest.approx(1.2)
    assert list(s) == [k for k in ("syn_rtt", "ack_flight", "to_cmd", "cmd_rtt", "cmd_to_device",
                                   "join_after_tmin", "done_to_host", "done_to_core") if k in s]
    m = merge([s, s])
    assert m["to_cmd"]["n"] == 2 and m["to_cmd"]["mean"] == pytest.approx(1.0)


def test_pl_start_is_the_later_join_whichever_end_reports_first() -> None:
    tm = NodeTiming()
    assert tm.pl_start(1, 0.002) == 0.002
    assert tm.pl_start(1, 0.001) == 0.002
    assert tm.pl_start(2, 0.001) == 0.001
    assert tm.pl_start(2, 0.003) == 0.003


def test_request_payload_untouched() -> None:
    """ESP messages are only read (the breakdown never changes what the core gets)."""
    msg = EspMessage(MsgType.SYN, "A", "B", 1, Request(1, "A", "B", 0.75, 2, 0.0))
    NodeTiming().esp_in(msg, None)
    assert EspMessage.from_bytes(msg.to_bytes()) == msg


def test_link_stamped_segments_are_kept_apart() -> None:
    """Segments stamped by the device link (wall clock) go to ``summary(link=True)``, which the
    node reports under its snapshot's ``link`` (a replay, which has no link, leaves it out)."""
    from hwctl import timebase

    t = [200.0]
    tm = NodeTiming(clock=lambda: t[0])
    ns = lambda s: round(s * 1e9) + timebase.epoch_ns()  # noqa: E731 - shared s -> wall ns
    tm.mark(9, "start")
    tm.command_out(9)
    tm.command_acked(9, tx_ns=ns(200.0003))
    tm.done_seen(100, lambda c: 199.9, rx_ns=ns(200.0))  # DONE at 199.9 s, bytes in at 200.0
    t[0] = 200.0002
    tm.finished(9, join_s=200.001, t_min=200.0, done_ts=100)
    link, own = tm.summary(link=True), tm.summary()
    assert set(link) == {"action_to_frame", "device_to_link", "link_to_core"}
    assert not set(link) & set(own)
    assert link["action_to_frame"]["mean"] == pytest.approx(0.3, abs=1e-3)
    assert link["device_to_link"]["mean"] == pytest.approx(100.0, abs=1e-3)
    assert link["link_to_core"]["mean"] == pytest.approx(0.2, abs=1e-3)


def test_pair_lists_of_different_generations_are_never_compared() -> None:
    """A generation that failed at one end (its device path broke) and ran again: the other
    end's list of the earlier generation is dropped as stale, not compared with the new one (a
    bridge killed under a node gave 8 false disagreements this way), and its pairs (held at the
    end that finished it only) count in ``one_sided``; lists of the same generation are
    compared, and a real mismatch is still counted."""
    from hwctl.node import NodeConfig, NodeService

    async def main() -> NodeService:
        node = NodeService(NodeConfig.from_dict({
            "name": "A", "listen": "tcp://127.0.0.1:1", "backend": "twin://",
            "peers": {"B": {"endpoint": "tcp://127.0.0.1:2"}}, "workload": {"enabled": False}}))
        g1 = [[100, 2, 0], [300, 6, 1]]
        g2 = [[900, 18, 1]]
        node._check_pairs(7, theirs=g1, tm=10.0)  # B finished the first generation, A did not
        node._check_pairs(7, mine=g2, tm=11.0)    # A's re-run
        assert node.counters.stale_pair_lists == 1 and node.counters.pair_checks == 0
        assert node.counters.one_sided == 2  # B holds g1's two pairs, A never recorded them
        node._check_pairs(7, theirs=g2, tm=11.0)  # B's re-run: the same pairs
        assert node.counters.pair_checks == 1 and node.counters.disagree == 0
        node._check_pairs(8, mine=g1, tm=12.0)
        node._check_pairs(8, theirs=g2, tm=12.0)  # same generation, different pairs: counted
        assert node.counters.pair_checks == 2 and node.counters.disagree == 3
        node._check_pairs(9, mine=g1, tm=13.0)
        node._check_pairs(9, theirs=g1)  # a peer that does not name its generation: compared
        assert node.counters.pair_checks == 3 and node.counters.disagree == 3
        node._check_pairs(10, mine=g1, tm=14.0)  # A finished, B's generation failed...
        node._check_pairs(10, mine=g2, tm=15.0)  # ...and A's re-run ends before B's list comes
        assert node.counters.stale_pair_lists == 2 and node.counters.one_sided == 4
        node._check_pairs(10, theirs=g2, tm=15.0)
        node._check_pairs(11, theirs=[], tm=16.0)  # a failed generation without pairs...
        node._check_pairs(11, mine=g2, tm=17.0)
        assert node.counters.stale_pair_lists == 3 and node.counters.one_sided == 4  # ...none
        assert node.counters.pair_checks == 4 and node.counters.disagree == 3
        return node

    asyncio.run(main())

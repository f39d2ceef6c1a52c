"""Node service in block mode (wire v4, docs/header-path.md): two nodes on a lab twin fed by one
midpoint source, HDR_BLOCK events decoded in batches, verified pairs pinned while the application
holds them and unpinned after. Timeouts only bound a hang."""

from __future__ import annotations

import asyncio
import socket

from hwctl import timebase
from hwctl.node import NodeConfig, NodeService
from hwctl.sim import topologies
from hwctl.sim.twin.hdrblock import block_arrivals
from hwctl.sim.twin.header import HeaderSource
from hwctl.sim.twin.lab import Lab, LabServer
from hwctl.stall import StallBound
from hwctl.wire import CLOCK_HZ, Ack, HdrBlock, Nak, PinMask, Reg, UnpinMask
from tests.test_node import drive


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def configs(url_a: str, url_b: str, hold_s: float, period: int) -> tuple[NodeConfig, NodeConfig]:
    pa, pb = free_port(), free_port()
    ver = {"memory": "nv", "f_th": 0.81, "report_interval_s": 0.0005, "header_blocks": True,
           "hold_s": hold_s, "source_hz": CLOCK_HZ / period}
    out = []
    for me, other, pm, po in (("A", "B", pa, pb), ("B", "A", pb, pa)):
        out.append(NodeConfig.from_dict({
            "name": me, "listen": f"tcp://127.0.0.1:{pm}", "backend": (url_a, url_b)[me == "B"],
            "peers": {other: {"endpoint": f"tcp://127.0.0.1:{po}"}},
            "workload": {"enabled": False}, "verification": ver | {"partner": other}}))
    return out[0], out[1]


async def run_until(a: NodeConfig, b: NodeConfig, verified: int, timeout: float = 60.0):
    """Run both nodes until ``verified`` pairs at each; ``timeout`` bounds a hang only: no
    progress (headers, verified or taken pairs, pins) for that long (hwctl.stall)."""
    na, nb = NodeService(a, rid_base=0), NodeService(b, rid_base=1_000_000)
    await na.start()
    await nb.start()
    bound = StallBound(lambda: tuple((n.vcore.metrics.headers, n.vcore.metrics.verified,
                                      n.hdrpath.taken, n.hdrpath.unpins_sent, n.counters.msgs_in)
                                     for n in (na, nb)), timeout)
    await drive(na, nb, lambda: (min(na.vcore.metrics.verified, nb.vcore.metrics.verified) >= verified
                                 and min(na.hdrpath.taken, nb.hdrpath.taken) >= verified // 2
                                 and min(na.hdrpath.unpins_sent, nb.hdrpath.unpins_sent) > 0),
                bound, lambda: (na.verification_summary(), nb.verification_summary()))
    return na, nb  # (unpins follow takes: the last condition waits for the first)


def test_block_mode_verifies_and_pins_held_pairs() -> None:
    # 1 kHz source, each arm keeps 40 %: 400 arrivals/s, 20 ms blocks (~8 arrivals each). The
    # lab runs in real time in this process: at 5 kHz with 1 ms blocks it fell behind the wall
    # clock beside 3 CPU hogs (load 17) until a command timed out, 2 of 2 runs (the same as
    # tests/test_recovery.py's block-mode tests, BLOCK_PERIOD there; benchmarks/RESULTS.md,
    # tenth session, hdr-host)
    period = 100_000
    start = timebase.cycle_now()
    src = HeaderSource(period=period, seed=5, phase=start + 3 * CLOCK_HZ // 10,
                       seq0=0xFFFF_FE00, arrival=(0.4, 0.4))
    lab = Lab(topologies.by_name("K2"), p_photon=0.0, seed=3, start=start,
              node_kw={n: src.arm(i) | {"block_flush": 2_000_000} for i, n in enumerate("AB")})
    ma, mb = lab.nodes["A"], lab.nodes["B"]
    ma.record = mb.record = True
    with LabServer(lab) as srv:
        a, b = configs(srv.urls["A"] + "?timeout=2", srv.urls["B"] + "?timeout=2", 0.05, period)
        na, nb = asyncio.run(run_until(a, b, verified=300))
    assert srv.error is None
    arrived = {}
    for n, m in (("A", ma), ("B", mb)):
        blocks = [r.msg for r in m.tx_log if isinstance(r.msg, HdrBlock)]
        assert blocks, "the node switched its device to block mode"
        arrived[n] = {s for bl in blocks for s, _ in block_arrivals(bl)}
    both = arrived["A"] & arrived["B"]
    for n, m in ((na, ma), (nb, mb)):
        v = n.verification_summary()
        bp = v["block_path"]
        assert bp["lost_blocks"] == bp["slot_mismatches"] == bp["malformed"] == 0
        assert bp["pin_naks"] == 0 and bp["pins_sent"] > 0 and bp["unpins_sent"] > 0
        assert v["discards"]["OVERWRITTEN"] == 0  # verification is far faster than the ring wrap
        seqs = {r["seq"] for r in n.pair_rows()}
        assert len(seqs) >= 300 and seqs <= both
        # the device executed pins and unpins (ACKs in its log), refused none
        acks = {r.msg.opcode for r in m.tx_log if isinstance(r.msg, Ack)}
        assert {PinMask.OPCODE, UnpinMask.OPCODE} <= acks
        assert not [r for r in m.tx_log if isinstance(r.msg, Nak)]
        assert m.reg(Reg.CNT_PINNED) <= bp["pinned"] + 240  # one command may be cut by the stop


def test_a_restarted_node_clears_the_pins_of_its_previous_life() -> None:
    """Block mode: a node process restarted on a device that still holds its previous life's
    pins (hold_s > 0: pairs its application held when it died). The new node knows none of them:
    its ring mirror predicts those slots as free, so arrivals the device stores past them get
    the wrong slot (slot_mismatches), and nobody would ever unpin them (ring slots lost for good).
    At start it reads CNT_PINNED and unpins the whole ring when it is not 0, before its first
    block, counted (``stale_pins``). Virtual-time twin; the waits are on events."""
    from hwctl.hdrpath import enable_blocks
    from hwctl.sim.twin import TwinConfig, TwinModel
    from hwctl.transport import open_backend
    from hwctl.wire import ControlBit

    period = 20_000
    m = TwinModel(TwinConfig(header_period=period, header_arrival=1.0, seed=1,
                             ring_slots=2048, block_flush=100_000))
    stale = [30, 31, 32, 90, 1500]

    async def go() -> NodeService:
        # the previous life: block mode on, five slots pinned, then the process dies
        b = await open_backend("twin://?mode=virtual", model=m)
        await enable_blocks(b, None, CLOCK_HZ / period, hold_s=0.05)
        for s in stale:
            assert isinstance(await b.pin_mask(s, 1), Ack)
        await b.close()
        assert m.reg(Reg.CNT_PINNED) == len(stale)
        assert m.reg(Reg.CONTROL) >> ControlBit.HDR_BLOCK & 1  # (the device stays in block mode)
        a, _ = configs("twin://", "twin://", 0.05, period)
        node = NodeService(a)
        await node.start(await open_backend("twin://?mode=virtual", model=m))
        assert m.reg(Reg.CNT_PINNED) == 0
        run = asyncio.create_task(node.run())
        while node.vcore.metrics.headers < 600:  # arrivals past every stale slot but 1500
            assert not run.done(), run.result()
            await asyncio.sleep(0.01)
        node.stop()
        await run
        return node

    node = asyncio.run(go())
    bp = node.verification_summary()["block_path"]
    assert bp["stale_pins"] == len(stale)
    assert bp["slot_mismatches"] == 0 and bp["pin_naks"] == 0  # (before: 2 mismatches)
    assert m.reg(Reg.CNT_PINNED) == 0

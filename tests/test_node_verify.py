"""Node service with pair verification and the physical layer: two nodes on a lab twin (node
devices on ptys fed by one shared midpoint header source, a heralding station), ZeroMQ on
loopback."""

from __future__ import annotations

import asyncio
import socket

import pyarrow.parquet as pq
import pytest

from hwctl import timebase
from hwctl.errors import UserError
from hwctl.node import NodeConfig, NodeService, write_results
from hwctl.protocols.verification import SendToPartner, VerificationCore
from hwctl.sim import topologies
from hwctl.sim.twin import TwinConfig, TwinModel
from hwctl.sim.twin.header import HeaderSource
from hwctl.sim.twin.lab import Lab, LabServer
from hwctl.stall import StallBound
from hwctl.wire import CLOCK_HZ, FREE_MASK_BITS, Ack, ControlBit, Header, Nak, Opcode, Pair, Reg
from tests.test_node import drive


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vconfigs(url_a: str, url_b: str) -> tuple[NodeConfig, NodeConfig]:
    pa, pb = free_port(), free_port()
    wl = {"fidelity": 0.75, "pairs": [1, 3], "mean_backoff": 0.02}
    ver = {"memory": "nv", "f_th": 0.81, "report_interval_s": 0.0005}
    a = NodeConfig.from_dict({"name": "A", "listen": f"tcp://127.0.0.1:{pa}", "backend": url_a,
                              "peers": {"B": {"endpoint": f"tcp://127.0.0.1:{pb}"}},
                              "workload": wl | {"seed": 1}, "verification": ver | {"partner": "B"}})
    b = NodeConfig.from_dict({"name": "B", "listen": f"tcp://127.0.0.1:{pb}", "backend": url_b,
                              "peers": {"A": {"endpoint": f"tcp://127.0.0.1:{pa}"}},
                              "workload": wl | {"seed": 2}, "verification": ver | {"partner": "A"}})
    return a, b


async def run_verified(a: NodeConfig, b: NodeConfig, *, verified: int, completed: int,
                       stall_s: float = 60.0) -> tuple[NodeService, NodeService]:
    """Run both nodes until each verified ``verified`` pairs and completed ``completed``
    requests. Fails only on a hang: no progress towards a goal not yet met for ``stall_s``
    (hwctl.stall), never on the total time a loaded machine takes. (A count past its goal is no
    progress: requests completing on while no pair is verified, e.g. a device whose slots all
    went to HEADERs the host never read, is a hang, not the 1200 s pytest timeout it was.)"""
    na, nb = NodeService(a, rid_base=0), NodeService(b, rid_base=1_000_000)
    await na.start()
    await nb.start()
    bound = StallBound(lambda: tuple((min(n.vcore.metrics.verified, verified),
                                      min(n.counters.completed, completed))
                                     for n in (na, nb)), stall_s)
    await drive(na, nb, lambda: (min(na.vcore.metrics.verified, nb.vcore.metrics.verified)
                                 >= verified
                                 and min(na.counters.completed, nb.counters.completed) >= completed),
                bound, lambda: (na.snapshot(), nb.snapshot()))
    return na, nb


def _frames(model: TwinModel, kind: type) -> list:
    return [r.msg for r in model.tx_log if isinstance(r.msg, kind)]


def test_verified_pairs_and_both_ends_fire(tmp_path) -> None:
    # one source, 1 kHz, each arm keeps 60 %; headers start 0.3 s after the lab starts
    start = timebase.cycle_now()
    src = HeaderSource(period=100_000, seed=11, phase=start + 3 * CLOCK_HZ // 10,
                       seq0=0xFFFF_FF00, arrival=(0.6, 0.6))
    lab = Lab(topologies.by_name("K2"), p_photon=0.02, seed=3, start=start,
              node_kw={"A": src.arm(0), "B": src.arm(1)})
    ma, mb = lab.nodes["A"], lab.nodes["B"]
    ma.record = mb.record = True
    with LabServer(lab) as srv:
        # a generous command timeout: a loaded CI machine must not turn a slow ACK into a retry
        a, b = vconfigs(srv.urls["A"] + "?timeout=2", srv.urls["B"] + "?timeout=2")
        na, nb = asyncio.run(run_verified(a, b, verified=60, completed=4))
    assert srv.error is None

    # --- verification: the same pairs at both ends, each stored at both twins, above F_th
    hdr = {n: {h.seq for h in _frames(m, Header)} for n, m in (("A", ma), ("B", mb))}
    pa, pb = ({r["seq"] for r in n.pair_rows()} for n in (na, nb))
    for n, p in ((na, pa), (nb, pb)):  # each 32-bit seq verified once (the wrap is at 256)
        assert len(n.pair_rows()) == len(p) == n.verification_summary()["verified"]
    common = pa & pb
    assert len(common) >= 50
    assert pa <= hdr["A"] & hdr["B"] and pb <= hdr["A"] & hdr["B"]
    assert len(pa ^ pb) <= 5 + len(common) // 10  # only what was in flight at the stop differs
    for n, o in ((na, nb), (nb, na)):
        v = n.verification_summary()
        assert v["verified"] == len(n.pair_rows()) and v["discards"]["PARTNER_MISSING"] > 0
        assert v["rejected_headers"] == 0 and v["repeated_discards"] == 0
        # a revocation only follows the partner's timeout (a stall longer than the 119 ms timeout)
        assert v["revoked"] <= o.verification_summary()["discards"]["TIMEOUT"]
        assert 0.81 < v["fidelity_min"] <= v["fidelity_mean"] <= 1.0
        assert {r["partner"] for r in n.pair_rows()} == {"B" if n is na else "A"}

    # --- slots: every HEADER's slot handed back exactly once (device ACKed each FREE_MASK, no NAK)
    for n, m in ((na, ma), (nb, mb)):
        c = n.counters
        assert c.double_free == 0 and c.slot_conflicts == 0 and c.device_errors == 0
        assert [x for x in _frames(m, Ack) if x.opcode == Opcode.FREE_MASK]
        assert not _frames(m, Nak)
        assert n.backend.stats.retries == 0  # so each ACK is one executed FREE_MASK
        # the device's own books: every HEADER allocated a slot; those not allocated now were
        # freed, by the node's FREE_MASKs or at its start (slots of HEADERs sent before it listened)
        dev_freed = m.slots_taken - len(m.allocated_slots())
        assert 0 <= dev_freed - c.slots_freed - c.slots_reclaimed <= FREE_MASK_BITS  # one cut short
        v = n.verification_summary()
        assert c.headers == v["headers"] <= len(_frames(m, Header))  # the twin ran on after the stop
        assert c.slots_freed + v["free_pending"] + v["slots_held"] == c.headers
        assert v["slots_held"] == v["occupancy"]

    # --- physical layer: both devices got SCHEDULE_PAIRS and fired; the station heralded to both
    for n, m in ((na, ma), (nb, mb)):
        scheds = [x for x in _frames(m, Ack) if x.opcode == Opcode.SCHEDULE_PAIRS]
        assert 0 <= len(scheds) - n.counters.schedules <= 1 and n.counters.schedules > 0
        assert m.reg(Reg.CNT_ATTEMPTS) > 0
        # every PAIR the device sent was taken by the service (the last request may be in flight)
        assert 0 <= len(_frames(m, Pair)) - n.counters.heralds <= 6
    remote_rounds = {n.cfg.name: sum(1 for r in o.records.values() if r.t_finish is not None)
                     for n, o in ((na, nb), (nb, na))}
    assert remote_rounds["A"] > 0 and remote_rounds["B"] > 0  # each was remote at least once
    done = [r for n in (na, nb) for r in n.records.values() if r.t_finish is not None]
    for r in done:
        assert len(r.herald_ts) == r.pairs and r.attempts >= r.pairs and r.disagree == 0
    # both ends hold the same pairs: compared per request, none differ
    assert all(n.counters.disagree == 0 for n in (na, nb))
    assert na.counters.pair_checks + nb.counters.pair_checks >= 2 * (len(done) - 1)

    # --- results: requests + verified pairs + metrics in meta
    path = write_results(na.result_rows() + nb.result_rows(),
                         {"nodes": {n.cfg.name: n.snapshot() for n in (na, nb)}}, tmp_path,
                         pairs=na.pair_rows() + nb.pair_rows())
    t = pq.read_table(tmp_path / "requests.pairs.parquet")
    assert path.exists() and t.num_rows == len(pa) + len(pb)
    assert t.schema.field("seq").type.bit_width == 64  # the schema's ints are int64
    assert {"store_ts_cycles", "verify_ts_cycles"} <= set(t.column_names)
    assert 0.81 < min(t.column("fidelity").to_pylist())


def test_verification_config_errors() -> None:
    base = {"name": "A", "listen": "tcp://127.0.0.1:1", "backend": "twin://",
            "peers": {"B": {"endpoint": "tcp://127.0.0.1:2"}}}
    with pytest.raises(UserError, match="not one of \\[peers\\]"):
        NodeConfig.from_dict(base | {"verification": {"partner": "C"}})
    with pytest.raises(UserError, match="not in Table I"):
        NodeConfig.from_dict(base | {"verification": {"partner": "B", "memory": "cheese"}})
    with pytest.raises(UserError, match="f_th"):
        NodeConfig.from_dict(base | {"verification": {"partner": "B", "f_th": 0.4}})
    with pytest.raises(UserError, match="missing key 'partner'"):
        NodeConfig.from_dict(base | {"verification": {"memory": "nv"}})
    with pytest.raises(UserError, match="period_cycles"):
        NodeConfig.from_dict(base | {"physical": {"period_cycles": 1}})
    with pytest.raises(UserError, match="margin_s no longer exist"):
        NodeConfig.from_dict(base | {"physical": {"margin_s": 0.004}})
    cfg = NodeConfig.from_dict(base | {"verification": {"partner": "B", "memory": "Ion trap (40Ca+)"}})
    assert cfg.verification is not None
    cc = cfg.verification.core_config()
    assert abs(cc.timeout_ticks / cc.clock_hz - 0.0905) < 0.001  # Ca+ at F_th = 0.81 (docs)


def test_pair_rows_and_summary_agree_whatever_the_order() -> None:
    """A HEADER the partner's report already covered is matched when the core ingests it (it
    stages single HEADERs, hwctl.protocols.verification "Hot path"). A node stopped with such a
    HEADER staged must give the same pairs to whichever of pair_rows() / verification_summary()
    is read first: before the twelfth session pair_rows() did not ingest, so rows read first
    missed that pair while the summary read next counted it (test above, 125 parquet rows for
    62 + 62 seqs read earlier; hwctl.node.proc sends pair_rows() before snapshot())."""
    a, _ = vconfigs("twin://", "twin://")
    node = NodeService(a)
    partner = VerificationCore(a.verification.core_config())
    seq, ts = 0xFFFF_FFFF, 1_000_000  # one below the 32-bit wrap, as the test above runs
    partner.handle_header(seq, ts, 5)
    partner.flush(ts + 10)
    (have,) = [x.data for x in partner.drain() if isinstance(x, SendToPartner)]
    node.vcore.handle_message(have, ts + 20)  # the partner's ID first (its host decoded sooner)
    node._vrf_apply()
    node._on_header(Header(seq=seq, ts=ts, slot=7))  # then our HEADER: staged, not yet matched
    rows = node.pair_rows()
    v = node.verification_summary()
    assert [(r["seq"], r["slot"], r["verify_ts"]) for r in rows] == [(seq, 7, ts + 20)]
    assert v["verified"] == len(rows) == len(node.pair_rows())
    assert v["free_pending"] == 1 and v["slots_held"] == 0  # the verified slot goes back once


def test_device_books_count_headers_still_on_the_uart() -> None:
    """The slot books above compare the node's frees with the device's: slots the device handed
    to HEADERs minus those still allocated. A HEADER stored at the lab's stop whose frame was
    still on the UART holds a slot but is not in ``tx_log``; counting frames understated the
    device's frees by one (a load-dependent failure of the test above, twelfth session), so the
    twin counts the slots it handed out (``slots_taken``)."""
    m = TwinModel(TwinConfig(header_period=20_000, header_arrival=1.0, seed=1))
    m.record = True
    m.advance_to(3 * 20_000 + 10)  # the 4th HEADER stored 10 cycles ago, its frame on the UART
    assert m.slots_taken == len(m.allocated_slots()) == 4
    assert len(_frames(m, Header)) == 3
    m.advance_to(4 * 20_000 - 10)
    assert m.slots_taken == len(_frames(m, Header)) == len(m.allocated_slots()) == 4


def test_slots_of_headers_nobody_heard_are_reclaimed_at_start() -> None:
    """A device's header decoder runs from reset: HEADERs sent before the node opened its link
    (or while pyserial's open() flushed the port's input) are lost, but the slots they were
    given stay allocated. With the legacy pool (8 slots) full of those, every later header is
    NO_SLOT and the node never verifies anything (a 4-in-65 failure of the test above under load:
    node B with headers 0, no_slot 54232). The node frees every slot it does not hold before it
    takes headers. Virtual-time twin: the lost HEADERs are made before the link exists."""
    from hwctl.transport import open_backend

    m = TwinModel(TwinConfig(header_period=20_000, header_arrival=1.0, seed=1))
    m.advance_to(10 * 20_000 + 10)  # 10 headers: 8 took every slot, 2 were NO_SLOT
    m.read()  # sent to nobody
    assert len(m.allocated_slots()) == m.cfg.n_slots == 8
    a, _ = vconfigs("twin://", "twin://")
    a.workload = False

    async def go() -> NodeService:
        node = NodeService(a)
        await node.start(await open_backend("twin://?mode=virtual", model=m))
        run = asyncio.create_task(node.run())
        while node.counters.headers + node.counters.no_slot < 50:  # events, not time
            assert not run.done(), run.result()
            await asyncio.sleep(0.01)
        node.stop()
        await run
        return node

    node = asyncio.run(go())
    c, v = node.counters, node.verification_summary()
    assert c.headers > 0, node.snapshot()  # before the fix: 0 (every slot leaked)
    assert c.slots_reclaimed == v["slots_reclaimed"] == 8
    assert c.double_free == c.slot_conflicts == c.device_errors == 0
    assert not _frames(m, Nak)  # the lost slots were the lowest free ones: one FREE_MASK


def test_reclaim_halves_refused_masks_and_never_frees_a_free_slot() -> None:
    """After a reconnect the unheard slots need not be the lowest (the node had freed some):
    FREE_MASK is all or nothing, so a refused mask is halved until exactly the allocated ones are
    freed; it stops once the count (pool - SLOTS_FREE - held) is reached."""
    from hwctl.errors import DeviceError

    class Dev:  # the pool's FREE_MASK rule (wire spec): NAK unless every named slot is allocated
        def __init__(self, used: set[int]) -> None:
            self.used, self.calls = set(used), 0

        async def free_mask(self, base: int, mask: int) -> None:
            self.calls += 1
            named = {base + i for i in range(mask.bit_length()) if mask >> i & 1}
            if not named <= self.used:
                raise DeviceError("NAK(BAD_SLOT)")
            self.used -= named

    a, _ = vconfigs("twin://", "twin://")
    node = NodeService(a)
    for lost in ({1, 2, 6, 100, 101, 102, 103}, {1, 2, 6, 299}):
        node.backend = dev = Dev(lost)  # fragmented; 300 slots, none held
        got = asyncio.run(node._free_unheard(list(range(300)), len(lost)))
        assert got == len(lost) and not dev.used
        # it stops at the count: at most 2 commands per slot up to the highest unheard one (the
        # pool's bitmap cannot be read over the wire, and a refused mask frees nothing)
        assert dev.calls <= 2 * (max(lost) + 1), dev.calls
    node.backend = dev = Dev(set(range(5)))  # the allocator's order (a fresh device): one mask
    assert asyncio.run(node._free_unheard(list(range(8)), 5)) == 5 and dev.calls == 1


class _LoseOneHeader:
    """Device -> host bytes of twin ``m`` with one HEADER frame lost on the link, the first after
    ``after`` HEADERs: dropped whole ("drop": the next event's seq shows the gap, events_lost) or
    with a byte changed ("crc": a bad frame, rx_frame_errors). Whole frames only pass (the tail
    of a frame waits for its delimiter), so the frame is seen whole."""

    def __init__(self, m: TwinModel, after: int, how: str) -> None:
        from hwctl.wire.codec import cobs_decode, decode_body

        self._decode = lambda seg: decode_body(cobs_decode(seg))
        self.m, self.after, self.how = m, after, how
        self.seen = 0
        self.lost: Header | None = None
        self._buf = b""
        self._read = m.read
        m.read = self.read  # type: ignore[method-assign]
        self.holder: dict[int, int] = {}  # slot -> seq of the HEADER that took it last
        emit = m._emit

        def _emit(msg) -> None:
            if isinstance(msg, Header):
                self.holder[msg.slot] = msg.seq
            emit(msg)

        m._emit = _emit  # type: ignore[method-assign]

    def leaked(self) -> bool:
        """The lost HEADER's slot is still allocated to it."""
        assert self.lost is not None
        s = self.lost.slot
        return s in self.m.allocated_slots() and self.holder[s] == self.lost.seq

    def read(self) -> bytes:
        self._buf += self._read()
        cut = self._buf.rfind(b"\x00") + 1
        ready, self._buf = self._buf[:cut], self._buf[cut:]
        if self.lost is not None or not ready:
            return ready
        out = []
        for seg in ready.split(b"\x00")[:-1]:
            f = self._decode(seg) if seg else None
            if self.lost is None and f is not None and isinstance(getattr(f, "msg", None), Header):
                self.seen += 1
                if self.seen > self.after:
                    self.lost = f.msg
                    if self.how == "drop":
                        continue
                    i = len(seg) // 2
                    seg = seg[:i] + bytes([seg[i] ^ 0x40 or 0x01]) + seg[i + 1:]
            out.append(seg + b"\x00")
        return b"".join(out)


@pytest.mark.parametrize("how", ["drop", "crc"])
def test_a_header_lost_mid_run_gives_its_slot_back(how: str) -> None:
    """Legacy pool: a HEADER frame lost on the link mid-run (dropped, or a bad CRC) leaves its
    slot allocated on the device, and nobody frees it: the pool (8 slots) shrinks for good with
    every loss. The node notices the loss on its link's books (events_lost, rx_frame_errors) at
    its next slot check (one per verification timeout), and when SLOTS_FREE says a slot is
    missing runs the start's reclaim (HEADER_EN off, events drained, unheld slots freed):
    counted, and never a slot a HEADER gave it. Virtual-time twin; the check the node's timer
    runs is called here once the loss is on the link's books (events, not time)."""
    from hwctl.transport import open_backend

    m = TwinModel(TwinConfig(header_period=20_000, header_arrival=1.0, seed=1))
    m.record = True
    a, _ = vconfigs("twin://", "twin://")
    a.workload = False
    lose = _LoseOneHeader(m, after=40, how=how)

    async def go() -> tuple[NodeService, int]:
        node = NodeService(a)
        await node.start(await open_backend("twin://?mode=virtual", model=m))
        b = node.backend
        run = asyncio.create_task(node.run())

        def lost_seen() -> bool:
            return b.stats.events_lost + b.stats.rx_frame_errors > 0

        while not lost_seen():  # events, not time: the loss is on the link's books
            assert not run.done(), run.result()
            await asyncio.sleep(0.01)
        assert lose.lost is not None
        slot = lose.lost.slot
        assert lose.leaked()  # allocated to the lost HEADER, and the node does not hold it
        assert not node._slots.held(slot) and not node._slots.pending(slot)
        await node._slot_check()  # (or the node's own timer did it already: the same result)
        assert node.counters.slots_reclaimed == 1 and node.counters.slot_sweeps == 1
        assert not lose.leaked()  # freed (a later HEADER may have it now)
        assert not await node._slot_check()  # no new loss: nothing read, nothing freed
        h0 = node.counters.headers
        while node.counters.headers < h0 + 100:  # headers go on after the sweep
            assert not run.done(), run.result()
            await asyncio.sleep(0.01)
        node.stop()
        await run
        return node, slot

    node, slot = asyncio.run(go())
    c, v = node.counters, node.verification_summary()
    assert v["slots_reclaimed"] == 1 and v["slot_sweeps"] == 1
    assert c.double_free == c.slot_conflicts == c.device_errors == 0
    dev_freed = m.slots_taken - len(m.allocated_slots())
    assert 0 <= dev_freed - c.slots_freed - c.slots_reclaimed <= FREE_MASK_BITS


def test_a_refused_command_in_a_slot_sweep_is_counted_and_the_next_check_retries() -> None:
    """A device NAK during the mid-run sweep (here its STATUS read, once) is the device's answer:
    counted (device_errors), HEADER_EN set back, the node goes on, and the next check sweeps
    (the loss is still unreconciled)."""
    from hwctl.errors import DeviceError
    from hwctl.transport import open_backend

    m = TwinModel(TwinConfig(header_period=20_000, header_arrival=1.0, seed=1))
    a, _ = vconfigs("twin://", "twin://")
    a.workload = False
    lose = _LoseOneHeader(m, after=40, how="drop")

    async def go() -> NodeService:
        node = NodeService(a)
        await node.start(await open_backend("twin://?mode=virtual", model=m))
        b = node.backend
        real = b.read_reg
        refused: list[int] = []

        async def read_reg(reg, *args, **kw):
            if reg == Reg.STATUS and node.counters.slot_sweeps and not refused:
                refused.append(1)
                raise DeviceError("NAK(BAD_ARG) (planted)")
            return await real(reg, *args, **kw)

        b.read_reg = read_reg
        run = asyncio.create_task(node.run())
        while not b.stats.events_lost:  # events, not time
            assert not run.done(), run.result()
            await asyncio.sleep(0.01)
        if not refused:  # (the node's own timer may have swept, refused, first)
            await node._slot_check()
        assert refused and node.counters.device_errors == 1
        assert m.reg(Reg.CONTROL) >> ControlBit.HEADER_EN & 1  # set back
        if lose.leaked():
            await node._slot_check()
        assert not lose.leaked() and node.counters.slots_reclaimed == 1
        assert not run.done()
        node.stop()
        await run
        return node

    node = asyncio.run(go())
    c = node.counters
    assert c.double_free == c.slot_conflicts == 0 and c.device_errors == 1


def _legacy_node(m: TwinModel) -> NodeService:
    a, _ = vconfigs("twin://", "twin://")
    a.workload = False
    return NodeService(a)


def _header_en(m: TwinModel) -> bool:
    return bool(m.reg(Reg.CONTROL) >> ControlBit.HEADER_EN & 1)


def test_a_sweep_cut_by_a_broken_link_leaves_header_en_on_after_the_reconnect() -> None:
    """Legacy pool: a slot sweep turns HEADER_EN off, drains, and restores it. When the link
    breaks mid-sweep its restore never reaches the device; the same device life comes back and
    the reconnect's reclaim (hwctl.recovery ``_resync``) used to restore what it found (off):
    the node never saw a header again. Now the restore is owed and the reconnect's reclaim turns
    HEADER_EN on. Virtual-time twin; no waits."""
    from hwctl.errors import LinkError
    from hwctl.transport import open_backend

    m = TwinModel(TwinConfig(header_period=20_000, header_arrival=1.0, seed=1))

    async def go() -> tuple[bool, bool, NodeService]:
        node = _legacy_node(m)
        await node.start(await open_backend("twin://?mode=virtual", model=m))
        b = node.backend
        assert _header_en(m)
        real_read, real_write = b.read_reg, b.write_reg
        broken: list[int] = []

        async def read_reg(reg, *args, **kw):
            if reg == Reg.STATUS or broken:  # the sweep's drain: the link breaks here
                broken.append(1)
                raise LinkError("link broke (planted)")
            return await real_read(reg, *args, **kw)

        async def write_reg(reg, *args, **kw):
            if broken:
                raise LinkError("link broke (planted)")
            return await real_write(reg, *args, **kw)

        b.read_reg, b.write_reg = read_reg, write_reg
        with pytest.raises(LinkError):
            await node._reclaim_slots()  # (the mid-run sweep's reclaim, _slot_check)
        off_after_break = not _header_en(m)
        # the same device life answers again: the recovery closes the lost link, re-syncs on
        # a new one
        await b.close()
        b2 = await open_backend("twin://?mode=virtual", model=m)
        await node.recovery._resync(b2)
        on_after = _header_en(m)
        await b2.close()
        return off_after_break, on_after, node

    off_after_break, on_after, node = asyncio.run(go())
    assert off_after_break  # (the planted break cut the sweep with HEADER_EN off)
    assert on_after and not node._headers_owed  # before the fix: off for good
    assert node.recovery.counters.path_restarts == 1  # the same life, not a restarted device


def test_go_waits_for_a_sweep_that_has_header_en_off() -> None:
    """The demo's go (enable_headers) and a slot sweep share the node's CONTROL lock: a go
    during a sweep's drain waits for the sweep's restore instead of turning headers on in the
    middle of it (HEADERs arriving after the drain's count would be taken for unheard slots);
    HEADER_EN ends on. Ordered by events only."""
    from hwctl.transport import open_backend

    m = TwinModel(TwinConfig(header_period=20_000, header_arrival=1.0, seed=1))

    async def go() -> list[tuple[str, bool]]:
        node = _legacy_node(m)
        await node.start(await open_backend("twin://?mode=virtual", model=m))
        b = node.backend
        real_read, real_write = b.read_reg, b.write_reg
        log: list[tuple[str, bool]] = []
        in_drain, release = asyncio.Event(), asyncio.Event()

        async def read_reg(reg, *args, **kw):
            if reg == Reg.STATUS and not release.is_set():
                in_drain.set()
                await release.wait()
            return await real_read(reg, *args, **kw)

        async def write_reg(reg, value, *args, **kw):
            if reg == Reg.CONTROL:
                log.append(("write", bool(value >> ControlBit.HEADER_EN & 1)))
            return await real_write(reg, value, *args, **kw)

        b.read_reg, b.write_reg = read_reg, write_reg
        sweep = asyncio.create_task(node._reclaim_slots())
        await in_drain.wait()
        log.append(("drain", _header_en(m)))
        go_task = asyncio.create_task(node.enable_headers())
        for _ in range(20):  # the go gets every chance to run
            await asyncio.sleep(0)
        log.append(("still draining", _header_en(m)))
        release.set()
        await sweep
        await go_task
        log.append(("end", _header_en(m)))
        return log

    log = asyncio.run(go())
    assert log == [("write", False), ("drain", False), ("still draining", False),
                   ("write", True), ("write", True), ("end", True)], log


def test_a_restarted_device_gets_header_en_back_after_the_go() -> None:
    """A lab whose header decoders start off (the demo's go, NodeService.enable_headers): a
    restarted device comes back with HEADER_EN off (its reset value), and the recovery's
    re-sync (hwctl.recovery ``_resync``) used to re-apply CONTROL.LATE_JOIN and the rest but not
    HEADER_EN: the node saw no header for the rest of the run. Now the go is remembered and the
    re-sync after a restart turns HEADER_EN on again (counted ``headers_reenabled``). A node
    whose go never ran leaves the restarted device's HEADER_EN as it is. Virtual-time twin."""
    from hwctl.transport import open_backend

    tc = TwinConfig(header_period=20_000, header_arrival=1.0, seed=1,
                    control_reset=1 << ControlBit.HERALD_EN)  # header decoders start off

    async def go(with_go: bool) -> tuple[bool, bool, NodeService]:
        m = TwinModel(tc)
        node = _legacy_node(m)
        await node.start(await open_backend("twin://?mode=virtual", model=m))
        if with_go:
            await node.enable_headers()
        on_before = _header_en(m)
        await node.backend.close()
        m2 = TwinModel(tc)  # the device restarted: a new life, registers at reset
        b2 = await open_backend("twin://?mode=virtual", model=m2)
        await node.recovery._resync(b2)
        on_after = _header_en(m2)
        await b2.close()
        return on_before, on_after, node

    on_before, on_after, node = asyncio.run(go(True))
    c = node.recovery.counters
    assert on_before and c.device_restarts == 1
    assert on_after, "HEADER_EN off on the restarted device after the re-sync"
    assert c.headers_reenabled == 1
    on_before, on_after, node = asyncio.run(go(False))
    assert not on_before and not on_after  # no go: the node does not turn headers on
    assert node.recovery.counters.headers_reenabled == 0

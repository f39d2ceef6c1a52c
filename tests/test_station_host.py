"""The heralding station's own host link in the twin (hwctl.sim.twin.stationdev, docs/physical-layer.md
section 2) and the lab served over ZeroMQ (``hwctl twin --lab K2 --zmq``): sans-IO in virtual
time, then served in real time (waits on events; timeouts only bound a hang)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from hwctl import timebase
from hwctl.errors import UserError
from hwctl.sim import topologies
from hwctl.sim.twin.lab import Lab, LabServer
from hwctl.wire import (
    STATION_ID,
    WIRE_VERSION,
    Ack,
    ControlBit,
    Done,
    Error,
    ErrorCode,
    Frame,
    FrameDecoder,
    Herald,
    Nak,
    Pair,
    Reg,
    RegRead,
    RegValue,
    RegWrite,
    SchedulePairs,
    Time,
    TimeSet,
    TimeValue,
    encode,
)

U32 = 2**32 - 1
FAST = {"uart_cycles_per_byte": 0}
ST = "A-B"


class Host:
    """A host on one lab device: numbered commands, decoded answers (sans-IO)."""

    def __init__(self, lab: Lab, dev: str) -> None:
        self.lab, self.dev, self.seq, self.dec = lab, dev, 0, FrameDecoder()
        self.events: list = []

    def cmd(self, msg, seq: int | None = None):
        if seq is None:
            self.seq = (self.seq + 1) & 0xFF
            seq = self.seq
        self.lab.feed(self.dev, encode(msg, seq))
        return self.poll()

    def poll(self):
        resp = None
        for f in self.dec.feed(self.lab.read(self.dev)):
            assert isinstance(f, Frame), f
            if f.msg.KIND == "event":
                self.events.append(f.msg)
            else:
                resp = f.msg
        return resp

    def reg(self, r: Reg) -> int:
        v = self.cmd(RegRead(r))
        assert isinstance(v, RegValue) and v.addr == r
        return v.value


def k2(p: float, seed: int = 1) -> Lab:
    return Lab(topologies.by_name("K2"), p_photon=p, seed=seed, node_kw={n: FAST for n in "AB"})


def test_station_registers_commands_and_herald_events() -> None:
    """The station answers its registers (ID = meta.station_id), refuses node registers
    (BAD_REG) and node commands (BAD_OPCODE), and reports one HERALD per herald: every pair both
    nodes recorded is one of them (attempt cycle and Bell state), and CNT_HERALD counts them."""
    lab = k2(0.05, seed=4)
    st, a, b = Host(lab, ST), Host(lab, "A"), Host(lab, "B")
    assert st.reg(Reg.ID) == STATION_ID and st.reg(Reg.VERSION) == WIRE_VERSION & 0xFFFF
    assert st.reg(Reg.ST_DELAY) == lab.station("A", "B").cfg.delay > 0
    assert st.reg(Reg.ST_WINDOW) == 2
    assert st.cmd(RegRead(Reg.QUBITS)) == Nak(RegRead.OPCODE, int(ErrorCode.BAD_REG))
    assert st.cmd(RegWrite(Reg.HERALD_WAIT, 5)) == Nak(RegWrite.OPCODE, int(ErrorCode.BAD_REG))
    assert st.cmd(SchedulePairs(lab.now + 10_000, U32, 50, 2, 0)) == Nak(
        SchedulePairs.OPCODE, int(ErrorCode.BAD_OPCODE))
    assert a.reg(Reg.ID) != STATION_ID  # (the node device next to it)
    t0 = lab.now + 10_000
    for h, peer in ((a, "B"), (b, "A")):
        assert h.cmd(SchedulePairs(t0, U32, 50, 4, lab.port(h.dev, peer))) == Ack(SchedulePairs.OPCODE)
    for _ in range(10_000):  # bounded: virtual time
        lab.advance(100_000)
        for h in (a, b, st):
            h.poll()
        if all(any(isinstance(e, Done) for e in h.events) for h in (a, b)):
            break
    lab.advance(10_000)  # heralds in flight at COMPLETE
    st.poll()
    pairs = {(e.ts, e.bell) for e in a.events if isinstance(e, Pair)}
    assert len(pairs) == 4 and pairs == {(e.ts, e.bell) for e in b.events if isinstance(e, Pair)}
    heralds = [e for e in st.events if isinstance(e, Herald)]
    assert pairs <= {(e.ts, e.detector) for e in heralds}
    assert [e.attempt for e in heralds] == list(range(len(heralds)))
    assert st.reg(Reg.CNT_HERALD) == len(heralds) == lab.station("A", "B").reg(Reg.CNT_HERALD)
    assert st.reg(Reg.CNT_MARKS) >= 2 * (max(ts for ts, _ in pairs) - t0) // 50


def test_station_writes_time_retries_and_bad_frames() -> None:
    lab = k2(0.0)
    st = Host(lab, ST)
    assert st.cmd(RegWrite(Reg.ST_WINDOW, 3)) == Ack(RegWrite.OPCODE)
    assert st.reg(Reg.ST_WINDOW) == 3 and lab.station("A", "B").window == 3
    assert st.cmd(RegWrite(Reg.SCRATCH, 0xC0FFEE)) == Ack(RegWrite.OPCODE)
    assert st.reg(Reg.SCRATCH) == 0xC0FFEE
    # a retry (same seq) is answered again, not executed twice
    assert st.cmd(RegWrite(Reg.SCRATCH, 1), seq=77) == Ack(RegWrite.OPCODE)
    assert st.cmd(RegWrite(Reg.SCRATCH, 2), seq=77) == Ack(RegWrite.OPCODE)
    assert st.reg(Reg.SCRATCH) == 1
    # device time: the lab's clock, TIME_SET mode 0 moves it, mode 2 is refused
    assert st.cmd(Time()) == TimeValue(lab.now)
    assert st.cmd(TimeSet(lab.now + 1000, 0)) == Ack(TimeSet.OPCODE)
    lab.advance(5)
    assert st.cmd(Time()) == TimeValue(lab.now + 1000)
    assert st.cmd(TimeSet(0, 2)) == Nak(TimeSet.OPCODE, int(ErrorCode.BAD_ARG))
    # a corrupted frame: ERR_CRC and ERROR(CRC)
    bad = bytearray(encode(RegRead(Reg.ID), 9))
    bad[-2] ^= 0x40  # a CRC byte
    lab.feed(ST, bytes(bad))
    st.poll()
    assert any(isinstance(e, Error) and e.code == ErrorCode.CRC for e in st.events)
    assert st.reg(Reg.ERR_CRC) == 1
    assert st.cmd(RegWrite(Reg.CONTROL, 1 << ControlBit.CLEAR_COUNTERS)) == Ack(RegWrite.OPCODE)
    assert st.reg(Reg.ERR_CRC) == 0 and st.reg(Reg.CNT_HERALD) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_pair(url_a: str, url_b: str):
    from hwctl.node import NodeConfig

    pa, pb = free_port(), free_port()
    wl = {"fidelity": 0.75, "pairs": [1, 3], "mean_backoff": 0.02}
    a = NodeConfig.from_dict({"name": "A", "listen": f"tcp://127.0.0.1:{pa}", "backend": url_a,
                              "peers": {"B": {"endpoint": f"tcp://127.0.0.1:{pb}"}},
                              "duration": None, "workload": wl})
    b = NodeConfig.from_dict({"name": "B", "listen": f"tcp://127.0.0.1:{pb}", "backend": url_b,
                              "peers": {"A": {"endpoint": f"tcp://127.0.0.1:{pa}"}},
                              "duration": None, "workload": wl | {"seed": 2}})
    return a, b


async def _run_nodes_and_watch_station(urls: dict[str, str], until: int) -> tuple:
    """Two node services on the lab's node devices and a host on its station: the station's
    HERALD events cover every pair the nodes recorded. Waits on the nodes' own completions;
    the timeout only bounds a hang."""
    from hwctl.node import NodeService
    from hwctl.transport import open_backend

    station = await open_backend(urls[ST])
    assert station.device_kind == "station"
    na, nb = (NodeService(c, rid_base=k * 1_000_000) for k, c in enumerate(node_pair(urls["A"],
                                                                                      urls["B"])))
    await na.start()
    await nb.start()
    runs = [asyncio.create_task(n.run()) for n in (na, nb)]
    heralds: list[Herald] = []

    async def watch() -> None:
        while True:
            ev = await station.next_event()
            if isinstance(ev, Herald):
                heralds.append(ev)

    w = asyncio.create_task(watch())
    async with asyncio.timeout(120):  # hang guard only
        while na.counters.completed + nb.counters.completed < until:
            for r in runs:
                if r.done():
                    r.result()
            await asyncio.sleep(0.02)
    na.stop()
    nb.stop()
    await asyncio.gather(*runs)
    n_heralds = await station.read_reg(Reg.CNT_HERALD)
    delay = await station.read_reg(Reg.ST_DELAY)
    async with asyncio.timeout(30):  # the events of the heralds counted so far
        while len(heralds) < n_heralds:
            await asyncio.sleep(0.01)
    w.cancel()
    await station.close()
    return na, nb, heralds, delay


@pytest.mark.parametrize("served", ["pty", "zmq"])
def test_served_lab_nodes_and_station_host_link(served: str) -> None:
    lab = Lab(topologies.by_name("K2"), p_photon=0.02, seed=3, start=timebase.cycle_now())
    kw = {"zmq": "tcp://127.0.0.1:0"} if served == "zmq" else {}
    with LabServer(lab, **kw) as srv:
        scheme = "zmq+tcp://" if served == "zmq" else "serial://"
        assert set(srv.urls) == {"A", "B", ST} and all(u.startswith(scheme) for u in srv.urls.values())
        na, nb, heralds, delay = asyncio.run(_run_nodes_and_watch_station(srv.urls, until=4))
    assert srv.error is None
    assert delay == lab.station("A", "B").cfg.delay
    for n in (na, nb):
        c = n.counters
        assert c.disagree == 0 and c.device_errors == 0 and c.completed >= 1
        assert n.clock_sync == "shared"
    # every pair the nodes recorded was heralded by the station (its attempt cycle)
    pair_ts = {ts for n in (na, nb) for r in n.records.values() for ts in r.herald_ts}
    assert pair_ts and pair_ts <= {h.ts for h in heralds}


def test_node_service_refuses_a_station_url() -> None:
    from hwctl.node import NodeService

    lab = Lab(topologies.by_name("K2"), p_photon=0.0, start=timebase.cycle_now())
    with LabServer(lab) as srv:
        a, _ = node_pair(srv.urls[ST], srv.urls["B"])

        async def main() -> None:
            with pytest.raises(UserError, match="heralding station"):
                await NodeService(a).start()

        asyncio.run(main())


def test_twin_lab_cli_serves_every_device_on_zeromq(capsys) -> None:
    from hwctl.cli import main

    assert main(["twin", "--lab", "K2", "--zmq", "tcp://127.0.0.1:0", "--duration", "0.3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = [ln.split()[0] for ln in lines]
    assert names == ["A", "B", ST] and all(ln.split()[1].startswith("zmq+tcp://127.0.0.1:")
                                           for ln in lines)
    assert main(["twin", "--lab", "K2", "--zmq", "tcp://0.0.0.0:0", "--duration", "0.1"]) == 2


def test_served_lab_serves_a_station_link_once_a_host_talks_to_it() -> None:
    """Nobody on a station's link (``hwctl demo``): the served lab encodes no HERALD events for it
    and holds no bytes for its pty; the node devices' pairs still come (the station decides them).
    Waits on the devices' own DONE events; the timeout only bounds a hang."""
    import threading

    lab = Lab(topologies.by_name("K2"), p_photon=0.05, seed=2, start=timebase.cycle_now())
    got = {n: FrameDecoder() for n in "AB"}
    dones: dict[str, int] = {"A": 0, "B": 0}
    both = threading.Event()

    def sink(n: str):
        def take(data: bytes) -> None:
            dones[n] += sum(isinstance(f, Frame) and isinstance(f.msg, Done) for f in got[n].feed(data))
            if dones["A"] and dones["B"]:
                both.set()
        return take

    # the schedules are fed before the server runs, 1 ms ahead of the lab's clock: never LATE
    # however late a loaded machine starts the server's thread (sent through the running
    # server 1 ms ahead, both came back LATE about 1 run in 10 at load 12)
    t0 = lab.now + 100_000
    for k, n in enumerate("AB"):
        lab.feed(n, encode(SchedulePairs(t0, U32, 50, 2, 0), k + 1))
    srv = LabServer(lab, pty=False)
    for n in "AB":
        srv.attach(n, sink(n))
    with srv:
        assert both.wait(60)  # hang guard only
        assert lab.station("A", "B").regs[Reg.CNT_HERALD] >= 2
        assert lab._hosts == {} and ST not in srv._served and not len(srv._pending[ST])
    assert srv.error is None

"""Device sessions shared by the bridge and the served twin (hwctl.transport.devserver): commands
of different clients cannot be confused by the device's retry memory, resources stay bounded,
and no input (random or mutated) ends a server. Sans-IO against the twin model."""

from __future__ import annotations

import random

import pytest

from hwctl.sim.twin import TwinConfig, TwinModel
from hwctl.transport.devserver import DeviceSessions, ServerLimits
from hwctl.transport.zmqwire import CONTROL, PING, STATUS
from hwctl.wire import (
    DEVICE_ID,
    Ack,
    Frame,
    FrameDecoder,
    Reg,
    RegRead,
    RegValue,
    RegWrite,
    Schedule,
    Time,
    TimeValue,
    encode,
)


class Rig:
    """DeviceSessions in front of a twin model; clients' answers collected per identity."""

    def __init__(self, limits: ServerLimits | None = None, **twin) -> None:
        self.s = DeviceSessions(limits, seed=1)
        self.model = TwinModel(TwinConfig(uart_cycles_per_byte=0, **twin))
        self.now = 0.0
        self.got: dict[bytes, list] = {}

    def _apply(self, step) -> None:
        for ident, parts in step.to_clients:
            dec = FrameDecoder()
            self.got.setdefault(ident, []).extend(dec.feed(parts[0]))
        if step.to_device:
            self.model.feed(bytes(step.to_device))
            self.model.advance(10)
            out = self.model.read()
            if out:
                self._apply(self.s.device_data(out, self.now))

    def send(self, ident: bytes, *parts: bytes) -> None:
        self._apply(self.s.client_message(ident, list(parts), self.now))

    def responses(self, ident: bytes) -> list[Frame]:
        return [f for f in self.got.get(ident, []) if isinstance(f, Frame)
                and f.msg.KIND == "response"]


def test_same_seq_from_two_clients_runs_both_commands() -> None:
    """Issue 16: B's command with A's seq must not make A's SCHEDULE a 'retry' (acked, not run)."""
    r = Rig()
    r.send(b"A", encode(RegWrite(int(Reg.SCRATCH), 7), 5))
    r.send(b"B", encode(RegWrite(int(Reg.SCRATCH), 9), 5))  # same seq, other client
    assert r.model.reg(Reg.SCRATCH) == 9  # executed, not answered from the retry memory
    r.send(b"A", encode(Schedule(10_000, 3, 50, 2), 5 + 1))
    assert [f.seq for f in r.responses(b"A")] == [5, 6]  # each client sees its own seqs
    assert [f.seq for f in r.responses(b"B")] == [5]
    assert all(isinstance(f.msg, Ack) for f in r.responses(b"A"))


def test_retry_is_answered_not_executed_twice() -> None:
    r = Rig()
    frame = encode(RegWrite(int(Reg.SCRATCH), 1), 42)
    r.send(b"A", frame)
    r.model.feed(encode(RegWrite(int(Reg.SCRATCH), 2), 0))  # device state changes meanwhile
    r.model.advance(10)
    r.model.read()
    r.send(b"A", frame)  # the host's retry of seq 42 (its response was lost)
    assert r.model.reg(Reg.SCRATCH) == 2  # not executed again
    assert [f.seq for f in r.responses(b"A")] == [42, 42]
    assert r.s.retries == 1


def test_reads_and_time_reach_the_device() -> None:
    r = Rig()
    r.send(b"A", encode(RegRead(int(Reg.ID)), 1))
    r.send(b"A", encode(Time(), 2))
    rs = r.responses(b"A")
    assert [f.seq for f in rs] == [1, 2]
    assert isinstance(rs[0].msg, RegValue) and rs[0].msg.value == DEVICE_ID
    assert isinstance(rs[1].msg, TimeValue)


def test_a_waiting_command_is_superseded_by_the_next() -> None:
    """One message with two commands: the client gave up on the first, the second runs."""
    r = Rig()
    r.s.client_message(b"B", [encode(RegRead(int(Reg.ID)), 9)], 0.0)  # B's command on the device
    r.send(b"A", encode(RegWrite(int(Reg.SCRATCH), 1), 1) + encode(RegWrite(int(Reg.SCRATCH), 2), 2))
    assert r.s.drops["superseded"] == 1


def test_client_table_is_bounded_and_expires() -> None:
    r = Rig(ServerLimits(max_clients=4, client_ttl_s=10.0, evict_idle_s=3.0))
    for k in range(8000):  # the 8000 stale clients, each silent after one message
        r.now = k * 1.0
        r.send(f"c{k}".encode(), CONTROL, PING)
        assert len(r.s.clients) <= 4
    assert b"c7999" in r.s.clients  # newcomers admitted: silent ones made room
    r.now += 11
    r.s.expire(r.now)
    assert not r.s.clients and r.s.clients_evicted + r.s.clients_expired == 8000


def test_live_clients_keep_their_place() -> None:
    r = Rig(ServerLimits(max_clients=2, client_ttl_s=10.0))
    r.send(b"A", CONTROL, PING)
    r.send(b"B", CONTROL, PING)
    r.send(b"X", CONTROL, PING)  # table full of live clients: the stranger waits
    assert set(r.s.clients) == {b"A", b"B"} and r.s.drops["client_table_full"] == 1


def test_limits_are_counted_drops() -> None:
    r = Rig(ServerLimits(max_message_bytes=100, rate_bytes_s=1000, burst_bytes=300))
    r.send(b"A", b"\x01" * 200)
    r.send(b"A", b"a", b"b", b"c")
    r.send(b"A", b"a", b"b")
    r.send(b"A", CONTROL, b"reboot")
    for _ in range(60):  # 60 x 8 bytes at once: more than the 300-byte burst
        r.send(b"A", encode(RegRead(int(Reg.ID)), 1))
    d = r.s.drops
    assert d["too_large"] == 1 and d["malformed"] == 2 and d["unknown_control"] == 1
    assert d["rate_limited"] >= 1


def test_status_is_routed_to_the_server() -> None:
    r = Rig()
    st = r.s.client_message(b"A", [CONTROL, STATUS], 0.0)
    assert st.status_for == [b"A"]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        if op == 0 and b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
        elif op == 2 and b:
            del b[rng.randrange(len(b))]
        else:
            b += bytes(rng.randrange(256) for _ in range(rng.randrange(8)))
    return bytes(b)


def _fuzz(n: int, seed: int) -> DeviceSessions:
    rng = random.Random(seed)
    r = Rig(ServerLimits(max_clients=8), p_photon=0.01, header_period=0)
    good = [encode(m, rng.randrange(256)) for m in (
        RegRead(int(Reg.ID)), Time(), RegWrite(int(Reg.SCRATCH), 3), Schedule(1000, 5, 50, 2))]
    idents = [bytes([k]) for k in range(12)]
    for k in range(n):
        r.now = k * 1e-3
        ident = rng.choice(idents)
        kind = rng.random()
        if kind < 0.3:
            parts = [bytes(rng.randrange(256) for _ in range(rng.randrange(64)))]
        elif kind < 0.7:
            parts = [_mutate(rng, rng.choice(good))]
        elif kind < 0.8:
            parts = [rng.choice(good)]
        else:
            parts = [bytes(rng.randrange(256) for _ in range(rng.randrange(8)))
                     for _ in range(rng.randrange(4))]
        r.send(ident, *parts)
        if k % 97 == 0:  # and mutated device output
            r._apply(r.s.device_data(_mutate(rng, rng.choice(good)), r.now))
        assert len(r.s.clients) <= 8 and len(r.s._queue) <= r.s.limits.max_queue
    return r.s


def test_fuzz_sessions_ci() -> None:
    s = _fuzz(3000, seed=16)
    assert sum(s.drops.values()) > 0 and s.commands > 0


@pytest.mark.slow
def test_fuzz_sessions_soak() -> None:
    for seed in range(5):
        _fuzz(50_000, seed)


def test_a_new_server_takes_over_the_device_retry_memory() -> None:
    """A bridge restarted under a running board: the device's last command came from the old
    bridge with some seq s. A new server whose first seq happens to be s would have its first
    client command answered from the device's cache and never run (a stale device state, 1 in
    256 restarts). prime() spends that seq on a harmless read of its own first."""
    for primed in (False, True):
        r = Rig()
        first = (r.s._dev_seq + 1) & 0xFF  # the seq the new server sends first
        r.model.feed(encode(RegWrite(int(Reg.SCRATCH), 1), first))  # the old bridge's last
        r.model.advance(10)
        r.model.read()
        if primed:
            r._apply(r.s.prime(r.now))
        r.send(b"A", encode(RegWrite(int(Reg.SCRATCH), 2), 7))
        assert [type(f.msg) for f in r.responses(b"A")] == [Ack]
        # without prime the ACK is the device's cached one: SCRATCH was never written
        assert r.model.reg(Reg.SCRATCH) == (2 if primed else 1)
        assert r.s.counters()["primed"] is primed and not r.s.drops

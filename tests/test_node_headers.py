"""Shared midpoint header source for a verification pair: one sequence, independent arm losses."""

from __future__ import annotations

import pytest

from hwctl.sim.twin import TwinConfig, TwinModel
from hwctl.sim.twin.header import HeaderSource
from hwctl.wire import FrameDecoder, Free, Header, encode


def _headers(src: HeaderSource, arm: int, until: int) -> dict[int, int]:
    """Run one arm's twin in virtual time, FREE every slot at once; {seq: ts} of its HEADERs."""
    m = TwinModel(TwinConfig(p_photon=0.0, uart_cycles_per_byte=0, **src.arm(arm)))
    dec, out, cseq = FrameDecoder(), {}, 0
    while m.now < until:
        m.advance_to(min(until, m.now + src.period))
        for f in dec.feed(m.read()):
            if isinstance(f.msg, Header):
                out[f.msg.seq] = f.msg.ts
                cseq = (cseq + 1) & 0xFF
                m.feed(encode(Free(f.msg.slot), cseq))
            else:
                assert f.msg.KIND == "response", f.msg  # ACKs of FREE; no NO_SLOT, no errors
    return out


def test_both_arms_see_the_same_sequence_at_the_same_cycles() -> None:
    src = HeaderSource(period=1000, seed=5, phase=300, seq0=0xFFFF_FF00, arrival=(0.6, 0.8))
    n = 4000
    a, b = _headers(src, 0, 300 + (n - 1) * 1000), _headers(src, 1, 300 + (n - 1) * 1000)
    emitted = {(0xFFFF_FF00 + k) & 0xFFFF_FFFF: 300 + k * 1000 for k in range(n)}
    # every received header is one the source emitted, stamped at its emission cycle, on both arms
    assert all(emitted[s] == t for s, t in a.items()) and all(emitted[s] == t for s, t in b.items())
    # independent losses per arm: marginals near the arrival probabilities, joint near the product
    assert abs(len(a) / n - 0.6) < 0.04 and abs(len(b) / n - 0.8) < 0.04
    assert abs(len(a.keys() & b.keys()) / n - 0.48) < 0.04
    assert a.keys() != b.keys()
    # seeded: the same source gives the same draws; another seed gives others
    assert _headers(src, 0, 300 + (n - 1) * 1000) == a
    other = HeaderSource(period=1000, seed=6, phase=300, seq0=0xFFFF_FF00, arrival=(0.6, 0.8))
    assert _headers(other, 0, 300 + (n - 1) * 1000).keys() != a.keys()


def test_header_source_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        HeaderSource(period=0)
    with pytest.raises(ValueError):
        HeaderSource(period=10, arrival=(0.5, 1.5))
    with pytest.raises(ValueError):
        HeaderSource(period=10).arm(2)

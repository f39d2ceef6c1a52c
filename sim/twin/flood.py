"""Twins that offer a chosen fraction of the device link's line rate, for link benchmarks and tests.

:func:`flood_model` sets the midpoint header source's period so that its events fill ``offered`` of
the modelled UART (3 Mbaud 8N1): HEADER events (20 bytes on the line) from the ordinary model, or
with ``big=True`` one HDR_BLOCK-sized event (73 bytes on the line, docs/header-path.md section 2)
per source tick from :class:`BlockFlood`. Every event goes through the model's event FIFO and UART
like any other, so a source offering more than the line loses events in the FIFO (EVT_LOST,
ERROR(EVENT_OVERFLOW)) exactly as the device would, and one offering less loses none.

:class:`BlockFlood` is synthetic load, not the block encoder: its blocks carry the right size and
field ranges (blk, seq0 and ts0 of the tick, fixed entries), not arrival bitmaps. The real encoder
is the twin's CONTROL.HDR_BLOCK mode (docs/header-path.md).
"""

from __future__ import annotations

import random

from hwctl.wire import Error, ErrorCode, HdrBlock, Header, Reg, encode
from sim.twin.model import UART_CYCLES_PER_BYTE, TwinConfig, TwinModel

#: bytes on the line of one event of each kind (COBS frame + delimiter)
HEADER_BYTES = len(encode(Header(0, 0, 0), 0))
BLOCK_BYTES = len(encode(HdrBlock(0, 0, 0, 0, 0, 0, 0, 0), 0))


class BlockFlood(TwinModel):
    """A twin whose header source emits one 73-byte HDR_BLOCK-sized event per arriving header."""

    def __init__(self, config: TwinConfig | None = None, **kw) -> None:
        super().__init__(config, **kw)
        self._entries = int.from_bytes(random.Random(self.cfg.seed).randbytes(48), "big")

    def _on_header(self, seq: int, corrupt: bool) -> None:
        if corrupt:
            self._emit(Error(int(ErrorCode.BAD_HEADER), 0))
            return
        self._bump(Reg.CNT_HEADERS)
        self._emit(HdrBlock(seq & 0xFFFF, seq, self.now, seq & 0x7FF, 48, 48, 0, self._entries))


def flood_config(offered: float, *, big: bool = False, **kw) -> TwinConfig:
    """A config whose header source offers ``offered`` (> 0) of the line rate in events of one
    kind; other TwinConfig fields by keyword (default: 65535 slots, so HEADERs find a slot while
    the host frees them)."""
    if offered <= 0:
        raise ValueError("offered must be > 0")
    frame = BLOCK_BYTES if big else HEADER_BYTES
    cpb = kw.get("uart_cycles_per_byte", UART_CYCLES_PER_BYTE)
    kw.setdefault("n_slots", 65535)
    return TwinConfig(header_period=max(1, round(frame * cpb / offered)), **kw)


def flood_model(offered: float, *, big: bool = False, **kw) -> TwinModel:
    """The twin of :func:`flood_config` (a :class:`BlockFlood` with ``big``)."""
    cfg = flood_config(offered, big=big, **kw)
    return BlockFlood(cfg) if big else TwinModel(cfg)

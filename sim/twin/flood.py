"""Twins that load the device link to a chosen fraction of its line rate, for link benchmarks and
tests (issue 14).

- :func:`flood_config`: the legacy midpoint source (HEADER events, 20 bytes on the line each)
  with its period set so that the events fill ``offered`` of the modelled UART (3 Mbaud 8N1).
- :func:`block_config`: block mode (CONTROL.HDR_BLOCK, docs/header-path.md): a source at
  ``source_hz`` (the paper's 1.3 MHz by default) whose headers arrive with probability
  ``arrival``; the twin's block encoder sends 73-byte HDR_BLOCK events (about 0.67 of the line
  at p = 0.1, 0.93 at p = 0.143).
- :func:`line_fraction`: what a config's stream occupies of the line, measured on a fresh model
  in virtual time (the same numbers a real-time twin produces).
- :func:`source_off`: the same twin with its source off until the host writes CONTROL.

Every event goes through the model's event FIFO and UART like any other, so a source offering
more than the line loses events in the FIFO (EVT_LOST, ERROR(EVENT_OVERFLOW)) exactly as the
device would, and one offering less loses none.
"""

from __future__ import annotations

import dataclasses

from hwctl.sim.twin.model import UART_CYCLES_PER_BYTE, TwinConfig, TwinModel
from hwctl.wire import CLOCK_HZ, ControlBit, Header, encode

#: bytes on the line of one HEADER event (COBS frame + delimiter)
HEADER_BYTES = len(encode(Header(0, 0, 0), 0))
#: the paper's source rate (pulses per second)
SOURCE_HZ = 1_300_000


def flood_config(offered: float, **kw) -> TwinConfig:
    """Legacy HEADER events offering ``offered`` (> 0) of the line rate; other TwinConfig fields
    by keyword (default: 65535 slots, so HEADERs find a slot while the host frees them)."""
    if offered <= 0:
        raise ValueError("offered must be > 0")
    cpb = kw.get("uart_cycles_per_byte", UART_CYCLES_PER_BYTE)
    kw.setdefault("n_slots", 65535)
    return TwinConfig(header_period=max(1, round(HEADER_BYTES * cpb / offered)), **kw)


def flood_model(offered: float, **kw) -> TwinModel:
    return TwinModel(flood_config(offered, **kw))


def block_config(arrival: float, *, source_hz: float = SOURCE_HZ, **kw) -> TwinConfig:
    """Block mode on from reset: a source at ``source_hz`` pulses/s, each header arriving with
    probability ``arrival``; other TwinConfig fields by keyword."""
    ctl = (1 << ControlBit.HERALD_EN) | (1 << ControlBit.HEADER_EN) | (1 << ControlBit.HDR_BLOCK)
    kw.setdefault("control_reset", ctl)
    return TwinConfig(header_period=max(1, round(CLOCK_HZ / source_hz)), header_arrival=arrival,
                      **kw)


def line_fraction(cfg: TwinConfig, seconds: float = 0.1) -> float:
    """Fraction of the line rate (bytes/s over UART bytes/s) the twin of ``cfg`` sends in its
    first ``seconds`` of device time (virtual time, no host)."""
    m = TwinModel(cfg)
    cycles = round(seconds * CLOCK_HZ)
    m.advance_to(cycles)
    return len(m.read()) * cfg.uart_cycles_per_byte / cycles


def source_off(cfg: TwinConfig) -> tuple[TwinConfig, int]:
    """``cfg`` with the header source disabled at reset (CONTROL.HEADER_EN clear), and the
    CONTROL value a host writes to start it: a served twin then streams only once a host is
    reading, not into an unread pty (where a real-time twin's line overruns)."""
    on = cfg.control_reset | 1 << ControlBit.HEADER_EN
    return dataclasses.replace(cfg, control_reset=on & ~(1 << ControlBit.HEADER_EN)), on

"""Cycle-level reference of the heralding station's window / verdict rule (docs/physical-layer.md
section 2), for the station RTL testbenches until they are scored against the twin's
StationModel. Inputs are the stamped cycles (synchronized edges) of the markers and clicks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

#: Cycles from a station pin (marker or detector) rising to the stamped cycle (2-FF synchronizer).
ST_IN_LAT = 2


@dataclass
class StationResult:
    heralds: list[tuple[int, int]] = field(default_factory=list)  # (t, bell) in decision order
    herald: int = 0
    one_end: int = 0
    both: int = 0
    dark: int = 0
    marks: int = 0
    windows: list[tuple[int, int, int]] = field(default_factory=list)  # (o, seen, clicked)


def station_ref(events: Iterable[tuple[int, int, int]], delay: int, window: int) -> StationResult:
    """``events``: (stamped cycle, marker bits, detector bits); bit 0 end A / detector 0."""
    per: dict[int, list[int]] = {}
    for c, m, d in events:
        e = per.setdefault(c, [0, 0])
        e[0] |= m
        e[1] |= d
    w = max(1, window)
    res = StationResult()
    open_ = False
    o = seen = clk = 0

    def close() -> None:
        res.windows.append((o, seen, clk))
        if seen == 3:
            if clk in (1, 2):
                res.herald += 1
                res.heralds.append(((o - delay) % 2**64, clk >> 1))
            elif clk == 3:
                res.both += 1
        elif seen in (1, 2):
            res.one_end += 1

    for c in sorted(per):
        m, d = per[c]
        if open_ and c >= o + w:
            close()
            open_ = False
        res.marks += bin(m).count("1")
        if open_:
            seen |= m
            clk |= d
        elif m:
            open_, o, seen, clk = True, c, m, d
        else:
            res.dark += bin(d).count("1")
    if open_:
        close()
    return res

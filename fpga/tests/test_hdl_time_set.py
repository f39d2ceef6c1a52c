"""time_set driving the two timestamp counters (ts and the scheduler's ts + 4), directed at the
races between a TIME_SET strobe and a sync edge (fpga/rtl/time_set.v).

Checked in every cycle: ts counts by one except in the cycle a load lands, where it reads the
value the rule below names, and ts4 == ts + 4 always. ts_counter registers its wrap flags from
val_i the cycle before load_i, so a value that changes in the load cycle loads with the old
value's flags (a missed carry when the new value is 0x...FFFF_FFFF) and a val4 that is not
ready loads the wrong ts4 for good. The rule (the twin's order: an edge the device saw before a
command's effect belongs to the old arm):
- an edge seen (synchronizer output rising, SYNC_LAT - 2 cycles after the pin) in or before the
  strobe's cycle loads the value armed before (the counter reads it SYNC_LAT after the pin);
- the strobe clears the old arm from the next cycle; a mode-1 TIME_SET catches edges seen from
  ARM_LAT = 3 cycles after its strobe; a mode-0 one loads TSET_LAT = 5 cycles after it.
"""

from __future__ import annotations

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotb_run import TB_DIR, run_cocotb

TSET_LAT = 5
SYNC_LAT = 4
ARM_LAT = 3
M64 = 2**64 - 1


class Bench:
    def __init__(self, dut) -> None:
        self.dut = dut
        self.cycle = 0
        self.ts: list[int] = []     # ts_o in cycle i
        self.bad: list[str] = []

    async def watch(self) -> None:
        """ts4 == ts + 4 in every cycle; ts + 1 except where a load lands (checked after)."""
        while True:
            await RisingEdge(self.dut.clk_i)
            await ReadOnly()
            self.cycle += 1
            ts, ts4 = int(self.dut.ts_o.value), int(self.dut.ts4_o.value)
            self.ts.append(ts)
            if ts4 != (ts + 4) & M64:
                self.bad.append(f"cycle {self.cycle}: ts {ts:#x} ts4 {ts4:#x}")

    async def start(self) -> None:
        dut = self.dut
        cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
        for s in (dut.set_i, dut.val_i, dut.mode_i, dut.sync_i):
            s.value = 0
        dut.rst_i.value = 1
        await ClockCycles(dut.clk_i, 3)
        dut.rst_i.value = 0
        cocotb.start_soon(self.watch())
        await ClockCycles(dut.clk_i, 5)

    async def drive(self, acts: dict[int, tuple[int, int]], pins: list[int], n: int) -> int:
        """Drive ``n`` cycles from the next one (cycle c0, returned): a strobe (value, mode) in
        cycle c0 + k for each k in ``acts``, sync_i high for 8 cycles from c0 + k for k in
        ``pins``. The decoder's value field moves on after a strobe."""
        dut = self.dut
        c0 = self.cycle + 1
        for k in range(n):
            if k in acts:
                dut.set_i.value, dut.val_i.value, dut.mode_i.value = 1, *acts[k]
            else:
                dut.set_i.value, dut.val_i.value = 0, 0x5A5A_5A5A_5A5A_5A5A
            dut.sync_i.value = int(any(p <= k < p + 8 for p in pins))
            await RisingEdge(dut.clk_i)
        return c0

    def check(self, loads: dict[int, int], until: int) -> None:
        """ts reads loads[c] in cycle c, else the previous cycle + 1, up to cycle ``until``."""
        errs = list(self.bad)
        for c in range(1, until):
            want = loads.get(c, (self.ts[c - 2] + 1) & M64 if c >= 2 else None)
            if want is not None and self.ts[c - 1] != want:
                errs.append(f"cycle {c}: ts {self.ts[c - 1]:#x}, expected {want:#x}")
        assert not errs, "\n".join(errs[:8])


async def race(dut, arm_to_edge: int, new_mode: int | None) -> None:
    """Arm V1; a second TIME_SET (V2, ``new_mode``; None: none) whose strobe is
    ``arm_to_edge`` cycles before the cycle the sync edge is seen (negative: after it)."""
    b = Bench(dut)
    await b.start()
    v1 = 7 * 2**32 - 3            # both values cross a carry into bits 47:32 right after loading
    v2 = 0x0000_0001_FFFF_FFFF
    await b.drive({0: (v1, 1)}, [], 20)
    # the edge is seen SYNC_LAT - 2 cycles after the pin rose
    p, s = 10, 10 + SYNC_LAT - 2 - arm_to_edge
    acts = {s: (v2, new_mode)} if new_mode is not None else {}
    c0 = await b.drive(acts, [p], 40)
    p, s, seen = c0 + p, c0 + s, c0 + p + SYNC_LAT - 2
    loads: dict[int, int] = {}
    if new_mode is None or seen <= s:
        loads[p + SYNC_LAT] = v1        # the old arm's edge
    elif new_mode == 1 and seen >= s + ARM_LAT:
        loads[p + SYNC_LAT] = v2
    if new_mode == 0:
        loads[s + TSET_LAT] = v2
    if new_mode == 1 and v2 not in loads.values():
        c1 = await b.drive({}, [0], 30)     # still armed: the next edge loads V2
        loads[c1 + SYNC_LAT] = v2
    await b.drive({}, [0], 30)              # then disarmed: an edge loads nothing
    b.check(loads, b.cycle)


@cocotb.test()
async def time_set_race(dut) -> None:
    import os
    await race(dut, int(os.environ["TS_RACE"]),
               None if os.environ["TS_MODE"] == "-" else int(os.environ["TS_MODE"]))


@pytest.mark.rtl
@pytest.mark.parametrize(("arm_to_edge", "mode"), [
    (0, "-"), *((a, m) for m in ("0", "1") for a in (-3, -1, 0, 1, 2, 3, 4))])
def test_time_set_race(tmp_path, arm_to_edge: int, mode: str) -> None:
    run_cocotb(tmp_path, "tb_time_set", "test_hdl_time_set",
               extra_sources=[TB_DIR / "tb_time_set.v"],
               extra_env={"TS_RACE": str(arm_to_edge), "TS_MODE": mode})

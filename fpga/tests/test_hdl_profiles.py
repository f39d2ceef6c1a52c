"""The node top built as each reduced profile (fpga/README.md "Build profiles"; V2 / PAIRS /
BLOCKS / HEADERS parameters): VERSION carries the profile's features, and every command is
answered exactly as the twin built with the same features answers it (a mode left out: an
unknown opcode, NAK(BAD_OPCODE); a mode that is there: its usual response)."""

from __future__ import annotations

import os

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb_run import run_cocotb
from hostbfm import Host

from hwctl.sim.twin.model import TwinConfig, TwinModel
from hwctl.wire import (
    WIRE_VERSION,
    Abort,
    ControlBit,
    FrameDecoder,
    Free,
    FreeMask,
    PinMask,
    Reg,
    RegRead,
    RegValue,
    RegWrite,
    Schedule,
    SchedulePairs,
    UnpinMask,
    encode,
)
from hwctl.wire.features import PROFILES, features_of_version

CPB = 4


def _twin_answer(model: TwinModel, msg, seq: int):
    model.feed(encode(msg, seq))
    model.advance_to(model.now + 100_000)
    out = [f.msg for f in FrameDecoder().feed(model.read()) if hasattr(f, "msg")]
    return [m for m in out if m.KIND == "response"][-1]


@cocotb.test()
async def profile_commands_match_the_twin(dut) -> None:
    profile = PROFILES[os.environ["HW_PROFILE"]]
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    host = Host(dut, CPB)
    await host.start()
    twin = TwinModel(TwinConfig(p_photon=0.0, dark_prob=0.0, n_slots=2,
                                features=profile.features))
    ver = await host.request(RegRead(Reg.VERSION), 1)
    assert isinstance(ver, RegValue) and ver.value & 0xFFFF == WIRE_VERSION
    assert features_of_version(ver.value) == profile.features
    far = 2**40
    cmds = [
        Schedule(far, 3, 100, 2),
        SchedulePairs(far, 3, 100, 1, 0),
        Abort(),
        Free(0),
        FreeMask(0, 1),
        PinMask(0, 1),
        UnpinMask(0, 1),
        RegWrite(Reg.CONTROL, 1 << ControlBit.HDR_BLOCK | 3),
        RegRead(Reg.CONTROL),
        # the pairs' writable register (absent without PAIRS: NAK(BAD_REG)) and the counters
        # of left-out modes, which the register file reads as 0 through no read group
        RegWrite(Reg.HERALD_WAIT, 1234),
        RegRead(Reg.HERALD_WAIT),
        RegRead(Reg.CNT_PAIRS),
        RegRead(Reg.CNT_HERALD),
        RegRead(Reg.ERR_LATE),
        RegRead(Reg.SCRATCH),
    ]
    for seq, msg in enumerate(cmds, start=2):
        got = await host.request(msg, seq, timeout=200_000)
        want = _twin_answer(twin, msg, seq)
        assert got == want, (type(msg).__name__, got, want)


@pytest.mark.rtl
@pytest.mark.parametrize("profile", ["esp", "verify"])
def test_profile_top(tmp_path, profile: str) -> None:
    params = {"CLKS_PER_BIT": CPB, "HDR_BIT_CYCLES": 4, "N_SLOTS": 2, "RING_SLOTS": 64,
              **PROFILES[profile].params}
    run_cocotb(tmp_path, "top", "test_hdl_profiles", parameters=params,
               extra_env={"HW_PROFILE": profile})

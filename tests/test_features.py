"""Build profiles (hwctl/wire/features.py, fpga/README.md "Build profiles"): the twin models the
profile's features like the RTL top (VERSION bits 31:16, commands of a missing feature are
unknown opcodes), and the host refuses such a command with one line instead of waiting."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from hwctl.errors import UserError
from hwctl.sim.twin import TwinConfig, TwinModel
from hwctl.transport import open_backend
from hwctl.wire import (
    WIRE_VERSION,
    ControlBit,
    ErrorCode,
    FeatureBit,
    FrameDecoder,
    Nak,
    PinMask,
    Reg,
    RegRead,
    RegValue,
    RegWrite,
    SchedulePairs,
    encode,
)
from hwctl.wire.features import (
    ALL_FEATURES,
    FEATURES,
    PROFILES,
    FeatureMissing,
    features_of_version,
    get_profile,
    profile_of,
)

ROOT = Path(__file__).resolve().parents[1]


def arun(coro, timeout: float = 30.0):
    # (the timeout only bounds a hang; the twin runs in virtual time)
    return asyncio.run(asyncio.wait_for(coro, timeout))


def _ask(model: TwinModel, msg, seq: int = 1):
    """One command into a twin model, its response back (virtual time, no link)."""
    model.feed(encode(msg, seq))
    model.advance_to(model.now + 100_000)
    out = [f.msg for f in FrameDecoder().feed(model.read()) if hasattr(f, "msg")]
    return [m for m in out if m.KIND == "response"][-1]


def test_profiles_cover_the_top_parameters() -> None:
    """Every feature bit is a parameter of fpga/rtl/top.v with the same name, and the profiles
    the docs name exist (esp and verify each lack what the other has; full has everything)."""
    top = (ROOT / "fpga" / "rtl" / "top.v").read_text()
    for f in FEATURES:
        assert re.search(rf"parameter\s+{f.name}\s*=\s*1", top), f.name
    assert PROFILES["full"].features == ALL_FEATURES
    esp, ver = get_profile("esp"), get_profile("verify")
    assert esp.features >> FeatureBit.PAIRS & 1 and not esp.features >> FeatureBit.BLOCKS & 1
    assert ver.features >> FeatureBit.BLOCKS & 1 and not ver.features >> FeatureBit.PAIRS & 1
    assert profile_of(esp.features) == "esp" and esp.params["PAIRS"] == 1
    with pytest.raises(UserError, match="unknown build profile"):
        get_profile("tiny")


@pytest.mark.parametrize("name", list(PROFILES))
def test_twin_version_register_carries_the_features(name: str) -> None:
    m = TwinModel(TwinConfig(p_photon=0.0, features=PROFILES[name].features))
    resp = _ask(m, RegRead(Reg.VERSION))
    assert isinstance(resp, RegValue)
    assert resp.value & 0xFFFF == WIRE_VERSION
    assert features_of_version(resp.value) == PROFILES[name].features


def test_twin_refuses_commands_of_a_missing_feature_as_unknown_opcodes() -> None:
    esp = TwinModel(TwinConfig(p_photon=0.0, features=PROFILES["esp"].features))
    assert _ask(esp, PinMask(0, 1)) == Nak(PinMask.OPCODE, int(ErrorCode.BAD_OPCODE))
    ver = TwinModel(TwinConfig(p_photon=0.0, features=PROFILES["verify"].features))
    assert _ask(ver, SchedulePairs(10**6, 5, 100, 1, 0)) == Nak(
        SchedulePairs.OPCODE, int(ErrorCode.BAD_OPCODE))
    # HERALD_WAIT, the pairs' register, is no register without them (the RTL's regfile too)
    assert _ask(ver, RegRead(Reg.HERALD_WAIT), seq=2) == Nak(RegRead.OPCODE, int(ErrorCode.BAD_REG))
    assert _ask(ver, RegWrite(Reg.HERALD_WAIT, 5), seq=3) == Nak(
        RegWrite.OPCODE, int(ErrorCode.BAD_REG))
    assert _ask(esp, RegRead(Reg.HERALD_WAIT), seq=2) == RegValue(Reg.HERALD_WAIT, 4000)
    # the full build takes both (the same commands, so the NAKs above come from the profile)
    full = TwinModel(TwinConfig(p_photon=0.0))
    assert _ask(full, SchedulePairs(10**6, 5, 100, 1, 0)).KIND == "response"
    assert not isinstance(_ask(full, SchedulePairs(10**6, 5, 100, 1, 0), seq=2), Nak)


def test_host_refuses_a_missing_feature_with_one_line_and_sends_nothing() -> None:
    async def go():
        async with await open_backend("twin://?profile=verify") as b:
            assert b.features == PROFILES["verify"].features
            sent = b.stats.commands
            with pytest.raises(FeatureMissing) as ei:
                await b.schedule_pairs(await b.time() + 10**6, 10, 100, 1, 0)
            msg = str(ei.value)
            assert "\n" not in msg and "SCHEDULE_PAIRS needs the PAIRS feature" in msg
            assert "profile 'verify'" in msg and "--profile full or esp" in msg
            assert b.stats.commands == sent + 1   # the TIME above; SCHEDULE_PAIRS never sent
            await b.pin_mask(0, 1)   # block mode is there
            with pytest.raises(FeatureMissing, match="REG_READ needs the PAIRS feature"):
                await b.read_reg(Reg.HERALD_WAIT)
        async with await open_backend("twin://?profile=esp") as b:
            with pytest.raises(FeatureMissing, match="PIN_MASK needs the BLOCKS feature"):
                await b.pin_mask(0, 1)
            with pytest.raises(FeatureMissing, match="REG_WRITE needs the BLOCKS feature"):
                await b.write_reg(Reg.CONTROL, 1 << ControlBit.HDR_BLOCK | 3)
            with pytest.raises(FeatureMissing, match="SCHEDULE needs the V2 feature"):
                await b.schedule(await b.time() + 10**6, 3, 100, 2)
            await b.write_reg(Reg.CONTROL, 3)   # a CONTROL write without HDR_BLOCK is fine
            await b.schedule_pairs(await b.time() + 10**6, 10, 100, 1, 0)

    arun(go())


def test_nak_for_a_missing_feature_without_handshake_is_one_clear_line() -> None:
    async def go():
        async with await open_backend("twin://?profile=esp", handshake=False) as b:
            assert b.features is None
            with pytest.raises(FeatureMissing, match="refused the command as unknown"):
                await b.free(0)

    arun(go())


def test_twin_without_headers_drops_headers_outside_block_mode() -> None:
    """A verify-less build has no per-photon mode: headers outside block mode give nothing
    (the RTL top with HEADERS = 0 receives and drops them); the full build gives HEADERs."""
    feats = PROFILES["verify"].features & ~(1 << FeatureBit.HEADERS)
    for features, want in ((feats, 0), (ALL_FEATURES, 3)):
        m = TwinModel(TwinConfig(p_photon=0.0, features=features))
        for s in range(3):
            m.advance_to(m.now + 1000)
            m.inject_header(s)
        assert m.reg(Reg.CNT_HEADERS) == want


def test_twin_url_profile_is_checked() -> None:
    from hwctl.errors import BadUrl

    async def go():
        with pytest.raises(BadUrl, match="profile must be one of"):
            await open_backend("twin://?profile=small")

    arun(go())

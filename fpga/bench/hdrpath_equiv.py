"""Compare the block-mode header path (hdr_block + slot_ring + blk_tx, wired as in top.v) of the
work tree with the same modules at an older git revision, cycle for cycle, in Icarus on random
stimulus: every output of the three modules in every cycle (fpga/README.md "ECP5 Fmax, twelfth
session"). A timing change that keeps the cycles must report 0 differences.

Usage (from the repository root):
  python fpga/bench/hdrpath_equiv.py REV [--cycles N] [--seed S] [--slots N] [--lutram 0|1]
Prints the cycles run, the events seen (arrivals, blocks, pin changes, bytes) and the number of
cycles in which the two paths' outputs differ (the first few with both values); exit 1 on any.

Stimulus: reset, arrivals 1..130 cycles apart (some closer than the spec's 60, bursts 1..3
apart, so the arrival queue overflows now and then) with random sequence gaps (mostly < 40, some > 124) and
timestamps, malformed headers, HDR_BLOCK enable toggles, BLOCK_FLUSH changes, CLEAR_COUNTERS,
pin changes as the command path makes them (load_i, then the next only after pin_done_o; masks
sparse, dense, 0, slots past the ring), blk_tx tokens as event_arb queues them, a busy frame_tx
and a UART that takes bytes at random; a reset now and then.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RTL = ROOT / "fpga" / "rtl"
FILES = ["slot_ring.v", "hdr_block.v", "blk_tx.v", "ram_sdp_oreg.v", "crc_byte.v"]
MODS = ["slot_ring", "hdr_block", "blk_tx", "ram_sdp_oreg", "crc_byte"]

PATH = r"""
`default_nettype none
`include "wire_spec.vh"
module hpath{SUF} #(parameter LUTRAM = 1, parameter SLOTS = 512, parameter MW = 240) (
    input wire clk_i, input wire rst, input wire en, input wire [31:0] flush, input wire clr,
    input wire arr, input wire [31:0] arr_seq, input wire [63:0] arr_ts, input wire bad,
    input wire load, input wire set, input wire [15:0] base, input wire [MW-1:0] mask,
    input wire bvalid, input wire [7:0] seq, input wire obusy, input wire bready,
    output wire [255:0] o
);
    wire pin_go, pin_done, nxt_rdy, nxt_ok, take, tok, lost, cnt_blk, ns_valid, drop, chk_ok;
    wire busy, rel, bvalid_o, bready_o;
    wire [15:0] nxt_slot;
    wire [31:0] ns_seq;
    wire [6:0] rd_off;
    wire [7:0] rd_byte, byte_o;
    wire [1:0] pin_err;
    wire [16:0] pinned, free;
    hdr_block{SUF} #(.NB(8), .LUTRAM(LUTRAM), .RL(3)) u_blk (
        .clk_i(clk_i), .rst_i(rst), .ts_i(64'd0), .en_i(en), .flush_i(flush), .clr_i(clr),
        .arr_i(arr), .arr_seq_i(arr_seq), .arr_ts_i(arr_ts), .bad_i(bad), .close_i(chk_ok),
        .pin_go_o(pin_go), .pin_done_i(pin_done), .nxt_rdy_i(nxt_rdy), .nxt_ok_i(nxt_ok),
        .nxt_slot_i(nxt_slot), .take_o(take), .tok_o(tok), .lost_o(lost), .cnt_blk_o(cnt_blk),
        .ns_valid_o(ns_valid), .ns_seq_o(ns_seq), .drop_o(drop), .rd_off_i(rd_off),
        .rd_byte_o(rd_byte), .rel_i(rel));
    slot_ring{SUF} #(.N_SLOTS(SLOTS), .MW(MW), .LUTRAM(LUTRAM)) u_ring (
        .clk_i(clk_i), .rst_i(rst), .take_i(take), .nxt_rdy_o(nxt_rdy), .nxt_ok_o(nxt_ok),
        .nxt_slot_o(nxt_slot), .load_i(load), .pin_i(pin_go), .set_i(set), .base_i(base),
        .mask_i(mask), .chk_ok_o(chk_ok), .pin_done_o(pin_done), .pin_err_o(pin_err),
        .busy_o(busy), .pinned_o(pinned), .free_o(free));
    blk_tx{SUF} #(.RL(3){BTXP}) u_btx (
        .clk_i(clk_i), .rst_i(rst), .valid_i(bvalid), .ready_o(bready_o), .seq_i(seq),
        .rd_off_o(rd_off), .rd_byte_i(rd_byte), .rel_o(rel), .other_busy_i(obusy),
        .byte_o(byte_o), .byte_valid_o(bvalid_o), .byte_ready_i(bready));
    assign o = {pin_go, pin_done, nxt_rdy, nxt_ok, take, tok, lost, cnt_blk, ns_valid, drop,
                chk_ok, busy, rel, bvalid_o, bready_o, nxt_slot, ns_seq, rd_off, rd_byte,
                pin_err, pinned, free, byte_o};
endmodule
`default_nettype wire
"""

TB = r"""
`timescale 1ns/1ps
module tb;
    localparam MW = 240;
    reg clk = 0;
    always #5 clk = ~clk;
    reg rst = 1, en = 1, clr = 0, arr = 0, bad = 0, load = 0, set = 0, bvalid = 0, obusy = 0;
    reg bready = 0;
    reg [31:0] flush = 32'd600, arr_seq = 0;
    reg [63:0] arr_ts = 0, now = 0;
    reg [15:0] base = 0;
    reg [MW-1:0] mask = 0;
    reg [7:0] seq = 0;
    wire [255:0] o_new, o_old;
    hpath #(.LUTRAM(`LUTRAM), .SLOTS(`SLOTS), .MW(MW)) u_new (clk, rst, en, flush, clr, arr,
        arr_seq, arr_ts, bad, load, set, base, mask, bvalid, seq, obusy, bready, o_new);
    hpath_old #(.LUTRAM(`LUTRAM), .SLOTS(`SLOTS), .MW(MW)) u_old (clk, rst, en, flush, clr, arr,
        arr_seq, arr_ts, bad, load, set, base, mask, bvalid, seq, obusy, bready, o_old);
    integer burst = 0, len, cyc = 0, ndiff = 0, gap = 10, ptime = 0, toks = 0, nrst = 0, k, dens;
    integer n_drop = 0, n_arr = 0, n_tok = 0, n_pin = 0, n_byte = 0, n_ns = 0, n_lost = 0, n_err = 0;
    reg pin_busy = 0;
    integer seed;
    initial begin
        seed = `SEED;
        while (cyc < `CYCLES) begin
            @(negedge clk);
            // compare the outputs of the cycle that just ended
            if (cyc > 2 && o_new !== o_old) begin
                ndiff = ndiff + 1;
                if (ndiff <= 5) $display("DIFF cycle %0d\n new %b\n old %b", cyc, o_new, o_old);
            end
            // counts (new path's outputs)
            if (u_new.tok) begin toks = toks + 1; n_tok = n_tok + 1; end
            if (u_new.lost) n_lost = n_lost + 1;
            if (u_new.ns_valid) n_ns = n_ns + 1;
            if (u_new.drop) n_drop = n_drop + 1;
            if (u_new.pin_done) begin pin_busy = 0; n_pin = n_pin + 1;
                                      if (u_new.pin_err != 0) n_err = n_err + 1; end
            if (u_new.bvalid_o && bready) n_byte = n_byte + 1;
            if (bvalid && u_new.bready_o) toks = toks - 1;
            cyc = cyc + 1;
            now = now + 1;
            // next inputs
            rst = (cyc < 4) || ($urandom(seed) % 200000 == 0 && cyc > 1000);
            if (rst) begin toks = 0; pin_busy = 0; nrst = nrst + 1; end
            arr = 0; bad = 0; clr = 0; load = 0;
            gap = gap - 1;
            if (gap <= 0) begin
                arr = 1;
                n_arr = n_arr + 1;
                k = $urandom(seed) % 100;
                arr_seq = arr_seq + 1 + ((k < 70) ? $urandom(seed) % 8 : (k < 95) ? $urandom(seed) % 40
                                         : (k < 99) ? $urandom(seed) % 300 : $urandom(seed));
                arr_ts = now - ($urandom(seed) % 8);
                k = $urandom(seed) % 100;
                if (burst == 0 && $urandom(seed) % 300 == 0) burst = 5 + $urandom(seed) % 12;
                if (burst > 0) burst = burst - 1;
                gap = (burst > 0 || k < 4) ? 1 + $urandom(seed) % 3
                    : (k < 12) ? 1 + $urandom(seed) % 20 : 40 + $urandom(seed) % 90;
            end
            if ($urandom(seed) % 500 == 0) bad = 1;
            if ($urandom(seed) % 20000 == 0) en = !en;
            if (!en && $urandom(seed) % 200 == 0) en = 1;
            if ($urandom(seed) % 30000 == 0) clr = 1;
            if ($urandom(seed) % 20000 == 0) flush = 30 + $urandom(seed) % 3000;
            if (!pin_busy && !rst && $urandom(seed) % 700 == 0) begin
                load = 1;
                pin_busy = 1;
                set = ((cyc / 40000) % 2) ? ($urandom(seed) % 3 == 0) : ($urandom(seed) % 10 != 0);
                len = 1 + $urandom(seed) % MW;
                k = $urandom(seed) % 100;
                base = (k < 5) ? `SLOTS - ($urandom(seed) % 100)
                     : (len < `SLOTS) ? $urandom(seed) % (`SLOTS - len + 1) : $urandom(seed) % `SLOTS;
                dens = $urandom(seed) % 4;
                for (k = 0; k < MW; k = k + 1)
                    mask[k] = (k >= len) ? 1'b0 : (dens == 0) ? ($urandom(seed) % 40 == 0)
                            : (dens == 1) ? ($urandom(seed) % 2 == 0)
                            : (dens == 2) ? ($urandom(seed) % 10 != 0) : (k < 3);
                if ($urandom(seed) % 30 == 0) mask = 0;
            end
            seq = $urandom(seed);
            bvalid = (toks > 0) && ($urandom(seed) % 4 != 0);
            obusy = ($urandom(seed) % 10 == 0);
            bready = ($urandom(seed) % 3 == 0);
        end
        $display("cycles %0d resets %0d arrivals %0d blocks %0d lost %0d no_slot %0d (queue full %0d) pins %0d (errors %0d) bytes %0d",
                 cyc, nrst, n_arr, n_tok, n_lost, n_ns, n_drop, n_pin, n_err, n_byte);
        $display("differences %0d", ndiff);
        $finish;
    end
endmodule
"""


def blk_tx_param(text: str) -> str:
    """blk_tx's LUTRAM override, if that revision's blk_tx has the parameter (since the
    thirteenth session; before it blk_tx had none)."""
    return ", .LUTRAM(LUTRAM)" if re.search(r"parameter\s+LUTRAM\b", text) else ""


def old_sources(rev: str, out: Path) -> tuple[list[Path], str]:
    paths = []
    btxp = ""
    for f in FILES:
        text = subprocess.run(["git", "show", f"{rev}:fpga/rtl/{f}"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
        if f == "blk_tx.v":
            btxp = blk_tx_param(text)
        for m in MODS:
            text = re.sub(rf"\b{m}\b(?=\s*(#|\(|u_|$))", f"{m}_old", text, flags=re.M)
        p = out / f"old_{f}"
        p.write_text(text)
        paths.append(p)
    return paths, btxp


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rev")
    ap.add_argument("--cycles", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--slots", type=int, default=512)
    ap.add_argument("--lutram", type=int, default=1)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d)
        olds, old_btxp = old_sources(a.rev, out)
        new_btxp = blk_tx_param((RTL / "blk_tx.v").read_text())
        (out / "path_new.v").write_text(PATH.replace("{SUF}", "").replace("{BTXP}", new_btxp))
        (out / "path_old.v").write_text(PATH.replace("{SUF}", "_old").replace("{BTXP}", old_btxp))
        (out / "tb.v").write_text(TB)
        srcs = [RTL / f for f in FILES] + olds
        srcs += [out / "path_new.v", out / "path_old.v", out / "tb.v"]
        subprocess.run(["iverilog", "-g2012", "-o", str(out / "sim"), f"-I{RTL}",
                        f"-DCYCLES={a.cycles}", f"-DSEED={a.seed}", f"-DSLOTS={a.slots}",
                        f"-DLUTRAM={a.lutram}", "-s", "tb", *map(str, srcs)], check=True)
        r = subprocess.run(["vvp", "-n", str(out / "sim")], capture_output=True, text=True)
        print(r.stdout, end="")
        print(r.stderr, end="", file=sys.stderr)
        m = re.search(r"differences (\d+)", r.stdout)
        return 0 if r.returncode == 0 and m and m.group(1) == "0" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

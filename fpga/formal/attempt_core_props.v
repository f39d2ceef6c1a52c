// Formal harness for the timing core (attempt_core = timestamp + scheduler + herald), ports
// only (no taps, so it survives internal rework): no trigger outside a scheduled attempt, and a
// LATE schedule fires nothing.
//
// Reference and properties: sched_props.vh (shared with pair_sched_props.v): the queue of accepted
// SCHEDULE entries, processed in order; the head is the running entry until its LATE / HERALD /
// DONE event. Asserted: fire_o only at ts == t_start + k*period of the head with k < count,
// never for a head that was LATE; a LATE event is for the head, before any attempt of it, with
// t_start < now; DONE reports the attempts fired. Assumed: no ABORT, pushes only with arguments the command decoder accepts
// (count >= 1, window >= 1, period >= window + 2), small values (count <= 3, period <= 12,
// t_start within [ts - 8, ts + 24]) so that whole schedules fit in the bound.
// attempt_core.sby: bmc, a bounded model check from reset (depth 30) on the RTL as it is; prove,
// k-induction (unbounded) with the strengthening invariants under INDUCT at the end (taps into
// the scheduler: one-hot state, the running entry = the reference's head, the FIFO's words = the
// reference's queue, derived flags, the compare pipeline, period / window counters as functions
// of the reference's next / last attempt) and the timestamp counters replaced by their ideal
// model (ts_counter_ideal.v; ts_counter_props.v proves the RTL counter equal to it), timestamps
// below 2^63.
`default_nettype none
`include "wire_spec.vh"
module attempt_core_props (
    input wire         clk_i,
    input wire         rst_i,
    input wire [1:0]   det_i,
    input wire         herald_en_i,
    input wire         push_i,
    input wire [63:0]  t_start_i,
    input wire [31:0]  count_i,
    input wire [31:0]  period_i,
    input wire [15:0]  window_i
);
    wire         full, fire, in_win, running, c_late, c_both, c_her, ev_valid;
    wire [7:0]   ev_op;
    wire [127:0] ev_payload;
    wire [63:0]  ts, ts4;
    attempt_core #(.TS_INIT(64'd0), .AW(1), .LUTRAM(1)) dut (
        .clk_i(clk_i), .rst_i(rst_i), .load_i(1'b0), .val_i(64'd0), .val4_i(64'd4),
        .det_i(det_i), .herald_en_i(herald_en_i),
        .push_i(push_i), .t_start_i(t_start_i), .count_i(count_i), .period_i(period_i),
        .window_i(window_i), .full_o(full), .abort_i(1'b0), .ts_o(ts), .ts4_o(ts4), .fire_o(fire),
        .in_win_o(in_win), .running_o(running), .cnt_late_o(c_late), .cnt_both_o(c_both),
        .cnt_herald_o(c_her), .ev_valid_o(ev_valid), .ev_op_o(ev_op), .ev_payload_o(ev_payload)
    );

    reg init_q = 1'b1;
    always @(posedge clk_i) init_q <= 1'b0;
    always @(*) assume(rst_i == init_q);
    always @(*) if (push_i) begin
        assume(!full && !rst_i);
        assume(count_i >= 1 && count_i <= 3);
        assume(window_i >= 1 && period_i >= window_i + 2 && period_i <= 12);
        assume(t_start_i + 64'd8 >= ts && t_start_i <= ts + 64'd24);
    end

    // shared reference queue + fire / LATE / DONE properties (sched_props.vh); the v2 head also
    // ends with its HERALD event; no late join
    localparam SP_XW = 1, SP_JOIN = 0;
    wire [SP_XW-1:0] sp_x_in = 1'b0;
    wire [63:0] sp_ts = ts;
    wire sp_fire = fire;
    wire sp_ends = ev_valid && (ev_op == `HW_OP_LATE || ev_op == `HW_OP_HERALD
                                || ev_op == `HW_OP_DONE);
    wire sp_jn = 1'b0;
    wire [63:0] sp_now2 = 64'd0;
`include "sched_props.vh"

    always @(*) cover(!init_q && ev_valid && ev_op == `HW_OP_DONE && f_q == 32'd2);

`ifdef INDUCT
    // ---------------------------------------------------------------- k-induction (task prove)
    // Strengthening invariants on the scheduler's internal state (taps, connected by
    // attempt_core.sby), so the properties above close by k-induction. They add nothing to the
    // properties; each is itself proven. The timestamp counters are the ideal model
    // (ts_counter_ideal.v: what ts_counter_props.v proves of the RTL counter).
    // Timestamps below 2^63 (2900 years at 100 MHz from reset): the scheduler's ts + 4 compare
    // and the reference's t_start + k*period are exact there (the wrap at 2^64 is excluded).
    always @(*) assume(!ts[63]);
    wire st_idle, st_load, st_sub1, st_sub2, st_cmp1, st_cmp2, st_wait, st_run;
    wire [63:0]  t_t;                       // t_start_q, count_q, period_q, window_q
    wire [31:0]  t_c, t_p, t_pm3, t_cm2, t_att;
    wire [15:0]  t_w, t_wm1, t_pcl, t_pch, t_wleft;
    wire         t_cis1, t_win1, t_wm1is1, t_plz, t_phz, t_pm3z, t_pcl0, t_last;
    wire         t_fire, t_fw, t_fire0, t_firen, t_late, t_gt, t_eq;
    wire         t_won, t_wl1, t_ev, t_ev2, t_evl, t_al, t_ah, t_ad;
    wire [2:1]   t_th;                      // the schedule FIFO (AW = 1): thermometer count,
    wire         t_rd, t_wr, t_fempty, t_ffull;   // pointers, flags, words, output register
    wire [143:0] t_m0, t_m1, t_dout;

    function ok_entry(input [31:0] c, input [31:0] p, input [15:0] w);
        ok_entry = c >= 32'd1 && c <= 32'd3 && w >= 16'd1 && p >= {16'd0, w} + 32'd2
                   && p <= 32'd12;
    endfunction
    wire [143:0] f_e0 = t_rd ? t_m1 : t_m0;  // FIFO head
    wire [143:0] f_e1 = t_rd ? t_m0 : t_m1;
    wire [1:0]   f_cnt = {1'b0, t_th[1]} + {1'b0, t_th[2]};
    // the running / loading entry (R) and an entry the DUT has ended whose event is not out yet
    // (P: the reference pops its head when the event leaves)
    wire         r_dut = !st_idle;
    wire         p_ev = t_al || t_ah || t_ad || sp_ends;
    wire [1:0]   idx = {1'b0, r_dut} + {1'b0, p_ev};
    wire [63:0]  j = ts - tlast_q;          // cycles since the head's last attempt
    wire         after_cmp1 = st_cmp1 || st_cmp2 || st_wait || st_run;
    function match(input [143:0] e, input [1:0] i);
        match = (i == 2'd0) ? (e[143:80] == qt[0] && e[79:48] == qc[0] && e[47:16] == qp[0])
                            : (e[143:80] == qt[1] && e[79:48] == qc[1] && e[47:16] == qp[1]);
    endfunction
    always @(*) if (!init_q) begin
        assert(ts4 == ts + 64'd4);
        // one-hot state
        assert({3'd0, st_idle} + {3'd0, st_load} + {3'd0, st_sub1} + {3'd0, st_sub2}
               + {3'd0, st_cmp1} + {3'd0, st_cmp2} + {3'd0, st_wait} + {3'd0, st_run} == 4'd1);
        // reference: at most 2 entries, ordered state of the head
        assert(qn_q <= 2'd2 && !late_q && k_q == f_q);
        if (qn_q == 2'd0) assert(f_q == 32'd0);
        if (qn_q != 2'd0) assert(qc[0] >= 32'd1 && qc[0] <= 32'd3 && qp[0] >= 32'd3
                                 && qp[0] <= 32'd12 && f_q <= qc[0]);
        if (qn_q == 2'd2) assert(qc[1] >= 32'd1 && qc[1] <= 32'd3 && qp[1] >= 32'd3
                                 && qp[1] <= 32'd12);
        if (qn_q != 2'd0 && f_q == 32'd0) assert(next_q == qt[0]);
        if (f_q != 32'd0) assert(next_q == tlast_q + qp[0] && tlast_q < ts);
        // the FIFO (sync_fifo, AW = 1) and its contents = the reference's entries after the
        // running and the ended ones
        assert(!(t_th[2] && !t_th[1]) && t_fempty == !t_th[1] && t_ffull == t_th[2]);
        assert(t_wr == (t_rd ^ (f_cnt == 2'd1)));
        assert({1'b0, f_cnt} + {2'd0, r_dut} + {2'd0, p_ev} == {1'b0, qn_q});
        if (f_cnt != 2'd0) assert(match(f_e0, idx) && ok_entry(f_e0[79:48], f_e0[47:16],
                                                               f_e0[15:0]));
        if (f_cnt == 2'd2) assert(match(f_e1, 2'd1) && ok_entry(f_e1[79:48], f_e1[47:16],
                                                                f_e1[15:0]));
        // events in flight only around the DUT's idle / load
        if (t_al || t_ah || t_ad) assert(st_idle);
        if (sp_ends) assert(st_idle || st_load);
        if (st_load) assert(match(t_dout, {1'b0, p_ev})
                            && ok_entry(t_dout[79:48], t_dout[47:16], t_dout[15:0]));
        if ((st_idle && !p_ev) || (st_load && !p_ev) || st_sub1 || st_sub2 || st_cmp1
            || st_cmp2 || st_wait) assert(f_q == 32'd0);
        // the running entry's registers and their derived flags
        if (r_dut && !st_load) begin
            assert(!p_ev && t_t == qt[0] && t_c == qc[0] && t_p == qp[0]
                   && ok_entry(t_c, t_p, t_w));
            if (!st_sub1) assert(t_pm3 == t_p - 32'd3 && t_wm1 == t_w - 16'd1
                                 && t_cm2 == t_c - 32'd2);
        end
        if (after_cmp1) assert(t_cis1 == (t_c == 32'd1) && t_win1 == (t_w == 16'd1)
                               && t_wm1is1 == (t_w == 16'd2) && t_plz == (t_pm3[15:0] == 16'd0)
                               && t_phz == (t_pm3[31:16] == 16'd0));
        if (st_cmp2 || st_wait || st_run) begin
            assert(t_pm3z == (t_pm3 == 32'd0));
            assert(t_gt == (ts + 64'd1 > t_t) && t_eq == (ts + 64'd1 == t_t));
        end
        assert(t_fw == t_fire);
        if (st_wait) begin
            assert(t_fire == t_fire0);
            if (t_fire0) assert(ts == t_t);
            if (t_late) assert(ts > t_t);
        end else if (!st_run) assert(!t_fire && !t_fire0);
        if (!st_run) assert(!t_won && !t_ev && !t_ev2 && !t_evl && !t_firen);
        if (!st_run && !st_idle) assert(t_att == 32'd0);
        if (st_run) begin
            // attempts: the last one fired iff f_q == count; the period counter = cycles to the
            // next attempt - 2; the window counters = functions of the cycles since the last
            assert(f_q != 32'd0 && !t_fire0);
            assert(t_last == (f_q == qc[0]) && t_att == f_q - 32'd1);
            assert({t_pch, t_pcl} == next_q[31:0] - ts[31:0] - 32'd2);
            assert(t_pcl0 == (t_pcl == 16'd0));
            assert(j >= 64'd1 && (t_last ? j <= {48'd0, t_w} + 64'd1 : j <= {32'd0, t_p}));
            assert(t_won == (j < {48'd0, t_w}) && t_wleft == t_w - j[15:0]
                   && t_wl1 == (j + 64'd1 == {48'd0, t_w}) && t_ev == (j == {48'd0, t_w})
                   && t_ev2 == (j == {48'd0, t_w} + 64'd1) && t_evl == (t_ev2 && t_last));
            assert(t_fire == (!t_last && ts == next_q));
        end
    end
`endif

endmodule
`default_nettype wire

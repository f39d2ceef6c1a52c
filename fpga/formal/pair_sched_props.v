// Formal harness for the node's attempt engine (fpga/rtl/pair_sched.v, SCHEDULE_PAIRS; docs/
// physical-layer.md sections 3 and 5), ports only (no taps: it survives rework of the
// internals): no trigger outside a scheduled attempt, a LATE schedule fires nothing, a
// late-joined schedule starts on its commanded attempt grid.
//
// Reference and the fire / LATE / DONE properties: sched_props.vh (shared with
// attempt_core_props.v): the queue of accepted SCHEDULE_PAIRS entries, run in order; the head
// runs until its LATE or DONE event. The timestamp is a plain counter from 0 (ts4_i = ts_i + 4,
// as attempt_core's second counter). Asserted (sched_props.vh):
//  - fire_o only at ts == t_start + k*period of the head with k < count, never for a head that
//    was LATE (LATE never fires anything); a head that was late at its check with
//    CONTROL.LATE_JOIN set (late_join_i, free) starts at the first grid point at or after its
//    second check (check cycle + 78), with k < count;
//  - LATE is for the head, before any attempt of it, with t_start < now (its payload); after a
//    join now is the second check's cycle;
//  - DONE reports the attempts fired.
// And here: port_o = the head's port at every fire; k0_o = the grid index of a joined head's
// first attempt; heralds are accepted (acc_o) only while the head runs, from its first attempt
// on, and after its last attempt for at most HERALD_WAIT cycles; nfired_o = the head's attempts
// fired so far; COMPLETE exactly when the head's `pairs`-th pair was recorded, EXHAUSTED only
// after all `count` attempts (its last grid point) with fewer pairs.
// Assumed (bmc / cover): no ABORT; pushes only with arguments the command decoder accepts (count
// >= 1, period >= 2, pairs >= 1) and small values so that whole schedules fit in the bound (count
// <= 3, period <= 8, pairs <= 2, t_start within [ts - 8, ts + 20], port < 2, HERALD_WAIT <= 4 and
// held); pair_i (pair_match's registered pair_o) only a cycle after acc_o was high, never in two
// cycles in a row. With count <= 3 a join never succeeds (it skips >= 5 attempts) and its
// sequence outlasts the bound: the join / join_cover tasks (-DJOIN) push one entry right after
// reset with LATE_JOIN set, period JP and count JC fixed per task, t_start free (join_cover) or
// fixed to JT (join_tNN / join_fail_tNN: one task per value, together every value), no heralds,
// and run past the entry's final event (the check, the 72-cycle JOIN, the second check, the
// joined schedule to its DONE), then assert the engine idle from JEND on.
// BMC from reset (depths in pair_sched.sby). prove (-DINDUCT): the same properties by
// k-induction (unbounded) for schedules without CONTROL.LATE_JOIN (late_join_i low) and any
// t_start relative to ts (no absolute bound), timestamps below 2^63, with the strengthening
// invariants at the end (taps into pair_sched: one-hot state, the running entry and the FIFO's
// words = the reference queue, attempts left / drain / period counters and pairs as functions of
// the reference's attempts, the compare pipeline).
`default_nettype none
`include "wire_spec.vh"
module pair_sched_props (
    input wire         clk_i,
    input wire         rst_i,
    input wire         push_i,
    input wire [63:0]  t_start_i,
    input wire [31:0]  count_i,
    input wire [31:0]  period_i,
    input wire [7:0]   pairs_i,
    input wire [7:0]   port_i,
    input wire [31:0]  herald_wait_i,
    input wire         late_join_i,
    input wire         pair_i
);
    reg  [63:0]  ts_q;
    wire [63:0]  ts4 = ts_q + 64'd4;
    wire         full, acc, fire, running, c_late, ev_valid;
    wire [63:0]  t_start_o;
    wire [31:0]  period_o, nfired, k0;
    wire [7:0]   port_o, qubit, ev_op;
    wire [127:0] ev_payload;
    pair_sched #(.AW(1), .LUTRAM(1)) dut (
        .clk_i(clk_i), .rst_i(rst_i), .ts4_i(ts4), .ts_i(ts_q), .push_i(push_i),
        .t_start_i(t_start_i), .count_i(count_i), .period_i(period_i), .pairs_i(pairs_i),
        .port_i(port_i), .full_o(full), .abort_i(1'b0), .herald_wait_i(herald_wait_i),
        .late_join_i(late_join_i), .k0_o(k0),
        .pair_i(pair_i), .acc_o(acc), .t_start_o(t_start_o), .period_o(period_o),
        .port_o(port_o), .nfired_o(nfired), .qubit_o(qubit), .fire_o(fire), .running_o(running),
        .cnt_late_o(c_late), .ev_valid_o(ev_valid), .ev_op_o(ev_op), .ev_payload_o(ev_payload)
    );

    reg init_q = 1'b1;
    always @(posedge clk_i) init_q <= 1'b0;
    always @(*) assume(rst_i == init_q);
    always @(posedge clk_i) ts_q <= rst_i ? 64'd0 : ts_q + 64'd1;

`ifdef JOIN
    // join task: one push with LATE_JOIN set, the period and count fixed per
    // task (JP, JC: the 32-step division by a constant period stays within reach of the
    // solver; JC > the attempts skipped so that the join succeeds, JC = 2^32-1: until done),
    // t_start free; the push in the first cycle after reset; no heralds (they do not touch the
    // grid)
    always @(*) assume(push_i == (!init_q && ts_q == 64'd0));
    localparam [31:0] CMAX = `JC, PMAX = `JP;
    always @(*) begin
        assume(count_i == `JC && period_i == `JP && late_join_i && !pair_i);
        assume(herald_wait_i == 32'd2);
    end
`ifdef JT
    // join_tNN / join_fail_tNN tasks: t_start fixed to JT. The push (ts = 0) allows t_start in
    // [0, 20] (the range assumptions below) and the tasks take each of these 21 values once, so
    // together they check exactly the histories a single task with t_start free would (one
    // task with t_start free did not finish depth 100 in > 2 h: the symbolic t_start runs
    // through the 32-step division; with it fixed a task takes 10-50 s of CPU)
    always @(*) if (push_i) assume(t_start_i == `JT);
`endif
`else
    localparam [31:0] CMAX = 32'd3, PMAX = 32'd8;
    always @(*) assume(count_i[31:2] == 30'd0 && period_i[31:4] == 28'd0);
`endif
    always @(*) begin
        assume(herald_wait_i <= 32'd4);
        // the same ranges as plain zero bits too (equivalent; they let the solver drop the high
        // bits of the comparators at once: ts stays below 256 within the bound)
        assume(herald_wait_i[31:3] == 29'd0);
        assume(pairs_i[7:2] == 6'd0);
`ifdef INDUCT
        assume(port_i[7:1] == 7'd0);   // t_start only relative to ts (below): any time
`else
        assume(port_i[7:1] == 7'd0 && t_start_i[63:6] == 58'd0);
`endif
        if (push_i) begin
            assume(!full && !rst_i);
            assume(count_i >= 1 && count_i <= CMAX);
            assume(period_i >= 2 && period_i <= PMAX);
            assume(pairs_i >= 1 && pairs_i <= 2);
            assume(port_i < 8'd2);
            assume(t_start_i + 64'd8 >= ts_q && t_start_i <= ts_q + 64'd20);
        end
    end
    // pair_i is pair_match's registered pair_o: a cycle after a decision taken while acc_o was
    // high, never in two cycles in a row (a decision takes ~38 cycles)
    reg acc_d_q = 1'b0, pair_d_q = 1'b0;
    always @(posedge clk_i) begin
        acc_d_q <= acc && !rst_i;
        pair_d_q <= pair_i;
    end
    always @(*) if (pair_i) assume(acc_d_q && !pair_d_q && !rst_i);
    always @(posedge clk_i) if (!init_q) assume(herald_wait_i == $past(herald_wait_i));

    // the head's check cycle L: 6 cycles after running_o rises (pop + LOAD, SUB1, SUB2, CMP1,
    // CMP2, WAIT); CONTROL.LATE_JOIN is sampled there, the join's second check is L + 78
    // (JOIN_LAT, docs/physical-layer.md section 5)
    reg        run_d_q = 1'b0, jn_q = 1'b0;
    reg [2:0]  rc_q = 3'd0;
    reg [63:0] now2_q = 64'd0;
    always @(posedge clk_i) begin
        run_d_q <= running && !rst_i;
        if (rst_i) rc_q <= 3'd0;
        else if (running && !run_d_q) rc_q <= 3'd1;
        else if (rc_q != 3'd0 && rc_q != 3'd7) rc_q <= rc_q + 3'd1;
        if (rc_q == 3'd6) begin
            jn_q <= late_join_i;
            now2_q <= ts_q + 64'd78;
        end
    end

    // shared reference queue + fire / LATE / DONE properties (sched_props.vh)
    localparam SP_XW = 16, SP_JOIN = 1;
    wire [SP_XW-1:0] sp_x_in = {pairs_i, port_i};
    wire [63:0] sp_ts = ts_q;
    wire sp_fire = fire;
    wire sp_ends = ev_valid && (ev_op == `HW_OP_LATE || ev_op == `HW_OP_DONE);
    wire sp_jn = jn_q;
    wire [63:0] sp_now2 = now2_q;
`include "sched_props.vh"

    // the head's pairs (qx = {pairs, port})
    reg [7:0] pr_q = 8'd0;
    always @(posedge clk_i) begin
        if (rst_i || sp_ends) pr_q <= 8'd0;
        else if (pair_i) pr_q <= pr_q + 8'd1;
    end
    wire [7:0] h_pairs = qx[0][15:8], h_port = qx[0][7:0];

    always @(*) if (!init_q) begin
        if (fire) assert(port_o == h_port);
        // a joined head's attempts are numbered from the commanded t_start: k0 = the skipped ones
        if (sp_joined) assert(k0 == {24'd0, sp_kj});
        // heralds accepted only for the running head, from its first attempt, for HERALD_WAIT
        // cycles after its last
        if (acc) begin
            assert(qn_q != 2'd0 && !late_q && (f_q != 32'd0 || fire));
            if (k_q == qc[0]) assert(ts_q <= tlast_q + {32'd0, herald_wait_i});
        end
        // (not in the cycle of the head's event: the next entry may already be loading)
        if (qn_q != 2'd0 && running && !sp_ends) assert(nfired == f_q);
        if (sp_done_ev) begin
            assert(qn_q != 2'd0 && !late_q);
            if (ev_payload[31:24] == `HW_DONE_COMPLETE) assert(pr_q == h_pairs);
            else assert(ev_payload[31:24] == `HW_DONE_EXHAUSTED && pr_q < h_pairs
                        && k_q == qc[0]);
        end
    end

`ifdef INDUCT
    // ---------------------------------------------------------------- k-induction (task prove)
    // Schedules without CONTROL.LATE_JOIN (late_join_i low; the join is the bounded join /
    // join_fail tasks), timestamps below 2^63. Strengthening invariants on taps into pair_sched
    // (connected by pair_sched.sby), as in attempt_core_props.v: they add nothing to the
    // properties and are proven with them.
    always @(*) assume(!late_join_i && !ts_q[63]);
    wire st_idle, st_load, st_sub1, st_sub2, st_cmp1, st_cmp2, st_wait, st_run, st_join;
    wire         t_joined, t_pcz, t_p2, t_lz, t_dz, t_wz, t_lastp, t_fire, t_late, t_gt, t_eq;
    wire         t_al, t_ae, t_ac;
    wire [31:0]  t_c, t_pc, t_left, t_dw;
    wire [7:0]   t_pairs, t_prem;
    wire         t_pr1, t_pl0, t_ph0, t_ppl0, t_pph0, t_ll0, t_lh0, t_dl0, t_dh0, t_nff;
    wire [2:1]   t_th;
    wire         t_rd, t_wr, t_fempty, t_ffull;
    wire [143:0] t_m0, t_m1, t_dout;
    function ok_entry(input [143:0] e);
        ok_entry = e[79:48] >= 32'd1 && e[79:48] <= CMAX && e[47:16] >= 32'd2
                   && e[47:16] <= PMAX && e[15:8] >= 8'd1 && e[15:8] <= 8'd2 && e[7:0] < 8'd2;
    endfunction
    function match(input [143:0] e, input [1:0] i);
        match = (i == 2'd0) ? (e[143:80] == qt[0] && e[79:48] == qc[0] && e[47:16] == qp[0]
                               && e[15:0] == qx[0])
                            : (e[143:80] == qt[1] && e[79:48] == qc[1] && e[47:16] == qp[1]
                               && e[15:0] == qx[1]);
    endfunction
    wire [143:0] f_e0 = t_rd ? t_m1 : t_m0;
    wire [143:0] f_e1 = t_rd ? t_m0 : t_m1;
    wire [1:0]   f_cnt = {1'b0, t_th[1]} + {1'b0, t_th[2]};
    wire         r_dut = running;
    wire         act = t_al || t_ae || t_ac;
    wire         p_ev = act || sp_ends;
    wire [1:0]   idx = {1'b0, r_dut} + {1'b0, p_ev};
    wire [63:0]  j = ts_q - tlast_q;
    wire [63:0]  d = next_q - ts_q;
    wire [143:0] cur = {t_start_o, t_c, period_o, t_pairs, port_o};
    always @(*) if (!init_q) begin
        assert({3'd0, st_idle} + {3'd0, st_load} + {3'd0, st_sub1} + {3'd0, st_sub2}
               + {3'd0, st_cmp1} + {3'd0, st_cmp2} + {3'd0, st_wait} + {3'd0, st_run} == 4'd1);
        assert(!st_join && !t_joined && !jn_q);
        assert(qn_q <= 2'd2 && !late_q && k_q == f_q);
        if (qn_q == 2'd0) assert(f_q == 32'd0 && pr_q == 8'd0);
        if (qn_q != 2'd0) assert(qc[0] >= 32'd1 && qc[0] <= CMAX && qp[0] >= 32'd2
                                 && qp[0] <= PMAX && qx[0][15:8] >= 8'd1 && qx[0][15:8] <= 8'd2
                                 && f_q <= qc[0]);
        if (qn_q == 2'd2) assert(qc[1] >= 32'd1 && qc[1] <= CMAX && qp[1] >= 32'd2
                                 && qp[1] <= PMAX && qx[1][15:8] >= 8'd1 && qx[1][15:8] <= 8'd2);
        if (qn_q != 2'd0 && f_q == 32'd0) assert(next_q == qt[0]);
        if (f_q != 32'd0) assert(next_q == tlast_q + qp[0] && tlast_q < ts_q);
        // the FIFO and its words = the reference queue after the running and ended entries
        assert(!(t_th[2] && !t_th[1]) && t_fempty == !t_th[1] && t_ffull == t_th[2]);
        assert(t_wr == (t_rd ^ (f_cnt == 2'd1)));
        assert({1'b0, f_cnt} + {2'd0, r_dut} + {2'd0, p_ev} == {1'b0, qn_q});
        if (f_cnt != 2'd0) assert(match(f_e0, idx) && ok_entry(f_e0));
        if (f_cnt == 2'd2) assert(match(f_e1, 2'd1) && ok_entry(f_e1));
        if (act) assert(st_idle && nfired == f_q);
        if (sp_ends) assert(st_idle || st_load);
        if (st_load) assert(match(t_dout, {1'b0, p_ev}) && ok_entry(t_dout));
        if (!p_ev && !st_run) assert(f_q == 32'd0 && pr_q == 8'd0);
        if (r_dut && !st_run && !(st_load && p_ev)) assert(nfired == 32'd0 && qubit == 8'd0);
        if (r_dut && !st_load) begin
            assert(!p_ev && match(cur, 2'd0) && ok_entry(cur) && k0 == 32'd0);
            if (!st_sub1) assert(t_p2 == (period_o == 32'd2) && t_ppl0 == (period_o[15:0] == 16'd0)
                                 && t_pph0 == (period_o[31:16] == 16'd0) && t_left == t_c - f_q
                                 && t_lz == (t_left == 32'd0)
                                 && t_lastp == (qubit + 8'd1 == t_pairs)
                                 && t_prem == t_pairs - 8'd1 - qubit
                                 && t_pr1 == (t_prem == 8'd1));
        end
        // the period counter's halves: their "== 0" flags (always, reset included)
        assert(t_pl0 == (t_pc[15:0] == 16'd0) && t_ph0 == (t_pc[31:16] == 16'd0));
        // ... and of the attempts-left and drain counters, nfired's low half all ones
        assert(t_ll0 == (t_left[15:0] == 16'd0) && t_lh0 == (t_left[31:16] == 16'd0));
        assert(t_dl0 == (t_dw[15:0] == 16'd0) && t_dh0 == (t_dw[31:16] == 16'd0));
        assert(t_nff == (nfired[15:0] == 16'hFFFF));
        if (st_cmp2 || st_wait || st_run)
            assert(t_gt == (ts_q + 64'd1 > t_start_o) && t_eq == (ts_q + 64'd1 == t_start_o));
        if (!st_run) assert(!t_fire);
        if (st_wait && t_late) assert(ts_q > t_start_o);
        if (st_run) begin
            assert(nfired == f_q && qubit == pr_q && pr_q < h_pairs);
            assert(t_fire == (!t_lz && ts_q == next_q));
            assert(t_wz == (herald_wait_i == 32'd0));
            if (f_q == 32'd0) assert(t_fire);
            else begin
                if (!t_lz) assert(t_pc == d[31:0] + 32'd1 && t_pcz == (d <= 64'd1)
                                  && d < {32'd0, qp[0]});
                assert(j >= 64'd1 && t_dw == herald_wait_i - j[31:0] + 32'd1
                       && t_dz == (j > {32'd0, herald_wait_i}));
                if (t_lz) assert(j <= {32'd0, herald_wait_i} + 64'd1);
            end
        end
    end
`endif
`ifdef JOIN
    always @(*) cover(!init_q && fire && f_q == 32'd1 && jn_q && k_q > 32'd1);
`ifdef JEND
    // join_tNN / join_fail_tNN: the bound reaches past the entry's final event (DONE or LATE,
    // at ts <= JEND - 1 for every t_start); from JEND on the engine is idle with nothing queued
    // (the single push is long gone: it stays so, as pop needs a FIFO entry)
    always @(*) if (!init_q && ts_q >= `JEND)
        assert(qn_q == 2'd0 && !running && !full && !fire && !acc && !ev_valid);
`endif
`else
    always @(*) cover(!init_q && ev_valid && ev_op == `HW_OP_DONE
                      && ev_payload[31:24] == `HW_DONE_COMPLETE && k_q == 32'd2);
`endif
endmodule
`default_nettype wire

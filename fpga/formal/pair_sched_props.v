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
//    second check (check cycle + 48), with k < count;
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
// reset with LATE_JOIN set, period JP and count JC fixed per task, t_start free, no heralds, and
// run 70 cycles (the check, the 42-cycle JOIN, the second check, the first joined attempts).
// BMC from reset (depths in pair_sched.sby).
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
        assume(port_i[7:1] == 7'd0 && t_start_i[63:6] == 58'd0);
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
    // CMP2, WAIT); CONTROL.LATE_JOIN is sampled there, the join's second check is L + 48
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
            now2_q <= ts_q + 64'd48;
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
`ifdef JOIN
    always @(*) cover(!init_q && fire && f_q == 32'd1 && jn_q && k_q > 32'd1);
`else
    always @(*) cover(!init_q && ev_valid && ev_op == `HW_OP_DONE
                      && ev_payload[31:24] == `HW_DONE_COMPLETE && k_q == 32'd2);
`endif
endmodule
`default_nettype wire

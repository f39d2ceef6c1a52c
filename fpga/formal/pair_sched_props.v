// Formal harness for the node's attempt engine (fpga/rtl/pair_sched.v, SCHEDULE_PAIRS; docs/
// physical-layer.md section 3), ports only (no taps: it survives rework of the internals): no
// trigger outside a scheduled attempt, and a LATE schedule fires nothing.
//
// Reference: the queue of accepted SCHEDULE_PAIRS entries (pushes while full_o is low), run in
// order; the head runs until its LATE or DONE event. The timestamp is a plain counter from 0
// (ts4_i = ts_i + 4, as attempt_core's second counter). Asserted:
//  - fire_o only at ts == t_start + k*period of the head with k < count, on the head's port
//    (port_o), never for a head that was LATE (LATE never fires anything);
//  - LATE is for the head, before any attempt of it, with t_start < now (its payload);
//  - heralds are accepted (acc_o) only while the head runs, from its first attempt on, and after
//    its last attempt for at most HERALD_WAIT cycles; nfired_o = the head's attempts fired so far;
//  - DONE reports the attempts fired; COMPLETE exactly when the head's `pairs`-th pair was
//    recorded, EXHAUSTED only after all `count` attempts with fewer pairs.
// Assumed: no ABORT, CONTROL.LATE_JOIN clear (the late join's 48-cycle JOIN sequence is beyond the
// bound: test_hdl_node_join.py simulates it); pushes only with arguments the command decoder accepts (count >= 1,
// period >= 2, pairs >= 1) and small values so that whole schedules fit in the bound (count <= 3,
// period <= 8, pairs <= 2, t_start within [ts - 8, ts + 20], port < 2, HERALD_WAIT <= 4 and
// held); pair_i (pair_match's registered pair_o) only a cycle after acc_o was high, never in two
// cycles in a row. BMC from reset (depth in
// pair_sched.sby).
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
    input wire         pair_i
);
    reg  [63:0]  ts_q;
    wire [63:0]  ts4 = ts_q + 64'd4;
    wire         full, acc, fire, running, c_late, ev_valid;
    wire [63:0]  t_start_o;
    wire [31:0]  period_o, nfired;
    wire [7:0]   port_o, qubit, ev_op;
    wire [127:0] ev_payload;
    pair_sched #(.AW(1), .LUTRAM(1)) dut (
        .clk_i(clk_i), .rst_i(rst_i), .ts4_i(ts4), .ts_i(ts_q), .push_i(push_i),
        .t_start_i(t_start_i), .count_i(count_i), .period_i(period_i), .pairs_i(pairs_i),
        .port_i(port_i), .full_o(full), .abort_i(1'b0), .herald_wait_i(herald_wait_i),
        .late_join_i(1'b0), .k0_o(),
        .pair_i(pair_i), .acc_o(acc), .t_start_o(t_start_o), .period_o(period_o),
        .port_o(port_o), .nfired_o(nfired), .qubit_o(qubit), .fire_o(fire), .running_o(running),
        .cnt_late_o(c_late), .ev_valid_o(ev_valid), .ev_op_o(ev_op), .ev_payload_o(ev_payload)
    );

    reg init_q = 1'b1;
    always @(posedge clk_i) init_q <= 1'b0;
    always @(*) assume(rst_i == init_q);
    always @(posedge clk_i) ts_q <= rst_i ? 64'd0 : ts_q + 64'd1;

    always @(*) begin
        assume(herald_wait_i <= 32'd4);
        // the same ranges as plain zero bits too (equivalent; they let the solver drop the high
        // bits of the comparators at once: ts stays below 64 within the bound)
        assume(herald_wait_i[31:3] == 29'd0);
        assume(count_i[31:2] == 30'd0 && period_i[31:4] == 28'd0 && pairs_i[7:2] == 6'd0);
        assume(port_i[7:1] == 7'd0 && t_start_i[63:6] == 58'd0);
        if (push_i) begin
            assume(!full && !rst_i);
            assume(count_i >= 1 && count_i <= 3);
            assume(period_i >= 2 && period_i <= 8);
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

    // reference queue (2 entries: the FIFO's AW = 1) + the head's attempts, pairs, last attempt
    reg [63:0] qt [0:1];
    reg [31:0] qc [0:1], qp [0:1];
    reg [7:0]  qa [0:1], qo [0:1];
    reg [1:0]  qn_q = 2'd0;
    reg [31:0] k_q = 32'd0;
    reg [7:0]  pr_q = 8'd0;
    reg [63:0] next_q, tlast_q;
    reg        late_q = 1'b0;
    wire ends = ev_valid && (ev_op == `HW_OP_LATE || ev_op == `HW_OP_DONE);
    always @(posedge clk_i) begin
        if (rst_i) begin
            qn_q <= 2'd0; k_q <= 32'd0; pr_q <= 8'd0; late_q <= 1'b0;
        end else begin
            if (fire) begin
                k_q <= k_q + 32'd1;
                next_q <= next_q + {32'd0, qp[0]};
                tlast_q <= ts_q;
            end
            if (pair_i) pr_q <= pr_q + 8'd1;
            if (ev_valid && ev_op == `HW_OP_LATE) late_q <= 1'b1;
            if (ends) begin
                // pop the head; the next entry (if any) becomes the head
                qt[0] <= qt[1]; qc[0] <= qc[1]; qp[0] <= qp[1]; qa[0] <= qa[1]; qo[0] <= qo[1];
                next_q <= qt[1];
                k_q <= 32'd0;
                pr_q <= 8'd0;
                late_q <= 1'b0;
                if (push_i && qn_q == 2'd2) begin
                    qt[1] <= t_start_i; qc[1] <= count_i; qp[1] <= period_i;
                    qa[1] <= pairs_i; qo[1] <= port_i;
                end else if (push_i && qn_q == 2'd1) begin
                    qt[0] <= t_start_i; qc[0] <= count_i; qp[0] <= period_i;
                    qa[0] <= pairs_i; qo[0] <= port_i;
                    next_q <= t_start_i;
                end
                qn_q <= qn_q - 2'd1 + {1'b0, push_i};
            end else if (push_i) begin
                if (qn_q == 2'd0) begin
                    qt[0] <= t_start_i; qc[0] <= count_i; qp[0] <= period_i;
                    qa[0] <= pairs_i; qo[0] <= port_i;
                    next_q <= t_start_i;
                end else begin
                    qt[1] <= t_start_i; qc[1] <= count_i; qp[1] <= period_i;
                    qa[1] <= pairs_i; qo[1] <= port_i;
                end
                qn_q <= qn_q + 2'd1;
            end
        end
    end
    // the FIFO holds 2 entries besides the running one: the reference may hold 3
    always @(*) if (push_i) assume(qn_q < 2'd2 || ends);

    always @(*) if (!init_q) begin
        // no trigger outside a scheduled attempt; LATE fires nothing
        if (fire) begin
            assert(qn_q != 2'd0);
            assert(!late_q);
            assert(k_q < qc[0]);
            assert(ts_q == next_q);
            assert(port_o == qo[0]);
        end
        if (ev_valid && ev_op == `HW_OP_LATE) begin
            assert(qn_q != 2'd0 && k_q == 32'd0);
            assert(ev_payload[127:64] == qt[0]);
            assert(ev_payload[127:64] < ev_payload[63:0]);
        end
        // heralds accepted only for the running head, from its first attempt, for HERALD_WAIT
        // cycles after its last
        if (acc) begin
            assert(qn_q != 2'd0 && !late_q && (k_q != 32'd0 || fire));
            if (k_q == qc[0]) assert(ts_q <= tlast_q + {32'd0, herald_wait_i});
        end
        // (not in the cycle of the head's event: the next entry may already be loading)
        if (qn_q != 2'd0 && running && !ends) assert(nfired == k_q);
        if (ev_valid && ev_op == `HW_OP_DONE) begin
            assert(qn_q != 2'd0 && !late_q);
            assert(ev_payload[63:32] == k_q);
            if (ev_payload[31:24] == `HW_DONE_COMPLETE) assert(pr_q == qa[0]);
            else assert(ev_payload[31:24] == `HW_DONE_EXHAUSTED && pr_q < qa[0]
                        && k_q == qc[0]);
        end
    end
    always @(*) cover(!init_q && ev_valid && ev_op == `HW_OP_DONE
                      && ev_payload[31:24] == `HW_DONE_COMPLETE && k_q == 32'd2);
endmodule
`default_nettype wire

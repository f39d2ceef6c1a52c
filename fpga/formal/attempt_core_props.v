// Formal harness for the timing core (attempt_core = timestamp + scheduler + herald), ports
// only (no taps, so it survives internal rework): no trigger outside a scheduled attempt, and a
// LATE schedule fires nothing.
//
// Reference: the queue of accepted SCHEDULE entries (pushes while full_o is low), processed in
// order; the head is the running entry until its LATE / HERALD / DONE event. Asserted: fire_o
// only at ts == t_start + k*period of the head with k < count, never for a head that was LATE;
// a LATE event is for the head, before any attempt of it, with t_start < now; DONE reports the
// attempts fired. Assumed: no ABORT, pushes only with arguments the command decoder accepts
// (count >= 1, window >= 1, period >= window + 2), small values (count <= 3, period <= 12,
// t_start within [ts - 8, ts + 24]) so that whole schedules fit in the bound.
// Bounded model check from reset (depth in attempt_core.sby).
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
    wire [63:0]  ts;
    attempt_core #(.TS_INIT(64'd0), .AW(1), .LUTRAM(1)) dut (
        .clk_i(clk_i), .rst_i(rst_i), .load_i(1'b0), .val_i(64'd0), .val4_i(64'd4),
        .det_i(det_i), .herald_en_i(herald_en_i),
        .push_i(push_i), .t_start_i(t_start_i), .count_i(count_i), .period_i(period_i),
        .window_i(window_i), .full_o(full), .abort_i(1'b0), .ts_o(ts), .ts4_o(), .fire_o(fire),
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

    // reference queue (2 entries: the FIFO's AW = 1) + the head's attempt counter
    reg [63:0] qt [0:1];
    reg [31:0] qc [0:1], qp [0:1];
    reg [1:0]  qn_q = 2'd0;
    reg [31:0] k_q = 32'd0;
    reg [63:0] next_q;
    reg        late_q = 1'b0;
    wire ends = ev_valid && (ev_op == `HW_OP_LATE || ev_op == `HW_OP_HERALD
                             || ev_op == `HW_OP_DONE);
    always @(posedge clk_i) begin
        if (rst_i) begin
            qn_q <= 2'd0; k_q <= 32'd0; late_q <= 1'b0;
        end else begin
            if (fire) begin
                k_q <= k_q + 32'd1;
                next_q <= next_q + qp[0];
            end
            if (ev_valid && ev_op == `HW_OP_LATE) late_q <= 1'b1;
            if (ends) begin
                // pop the head; the next entry (if any) becomes the head
                qt[0] <= qt[1]; qc[0] <= qc[1]; qp[0] <= qp[1];
                next_q <= qt[1];
                k_q <= 32'd0;
                late_q <= 1'b0;
                if (push_i && qn_q == 2'd2) begin
                    qt[1] <= t_start_i; qc[1] <= count_i; qp[1] <= period_i;
                end else if (push_i && qn_q == 2'd1) begin
                    qt[0] <= t_start_i; qc[0] <= count_i; qp[0] <= period_i;
                    next_q <= t_start_i;
                end
                qn_q <= qn_q - 2'd1 + {1'b0, push_i};
            end else if (push_i) begin
                if (qn_q == 2'd0) begin
                    qt[0] <= t_start_i; qc[0] <= count_i; qp[0] <= period_i; next_q <= t_start_i;
                end else begin
                    qt[1] <= t_start_i; qc[1] <= count_i; qp[1] <= period_i;
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
            assert(ts == next_q);
        end
        if (ev_valid && ev_op == `HW_OP_LATE) begin
            assert(qn_q != 2'd0 && k_q == 32'd0);
            assert(ev_payload[127:64] == qt[0]);
            assert(ev_payload[127:64] < ev_payload[63:0]);
        end
        if (ev_valid && ev_op == `HW_OP_DONE) assert(ev_payload[63:32] == k_q);
    end
    always @(*) cover(!init_q && ev_valid && ev_op == `HW_OP_DONE && k_q == 32'd2);
endmodule
`default_nettype wire

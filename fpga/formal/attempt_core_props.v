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
endmodule
`default_nettype wire

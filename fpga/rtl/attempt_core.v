// Timestamp counter + herald logic + attempt scheduler, wired together (the timing core of top).
`default_nettype none
module attempt_core #(
    parameter [63:0] TS_INIT = 64'd0,
    parameter        AW      = 2,
    parameter        LUTRAM  = 0,    // schedule FIFO in LUT RAM (see sync_fifo)
    parameter        V2      = 1     // 0: no v2 SCHEDULE / herald logic (area: iCE40 HX8K)
) (
    input  wire         clk_i,
    input  wire         rst_i,
    input  wire         load_i,     // TIME_SET (time_set): both counters load
    input  wire [63:0]  val_i,
    input  wire [63:0]  val4_i,     // val_i + 4
    input  wire [1:0]   det_i,
    input  wire         herald_en_i,
    input  wire         push_i,
    input  wire [63:0]  t_start_i,
    input  wire [31:0]  count_i,
    input  wire [31:0]  period_i,
    input  wire [15:0]  window_i,
    output wire         full_o,
    input  wire         abort_i,
    output wire [63:0]  ts_o,
    output wire [63:0]  ts4_o,      // ts_o + 4 (for pair_sched)
    output wire         fire_o,
    output wire         in_win_o,
    output wire         running_o,
    output wire         cnt_late_o,
    output wire         cnt_both_o,
    output wire         cnt_herald_o,
    output wire         ev_valid_o,
    output wire [7:0]   ev_op_o,
    output wire [127:0] ev_payload_o
);
    wire [1:0]  clicked;
    wire        single;
    wire [63:0] tw, ts_d;
    /* verilator lint_off PINCONNECTEMPTY */
    ts_counter #(.INIT(TS_INIT)) u_ts (.clk_i(clk_i), .rst_i(rst_i), .load_i(load_i),
                                       .val_i(val_i), .ts_o(ts_o));
    // the same count + 4, for the scheduler's t_start compare (no subtraction there; and the
    // timestamp's fanout stays low)
    wire [63:0] ts4;
    ts_counter #(.INIT(TS_INIT + 64'd4)) u_ts4 (.clk_i(clk_i), .rst_i(rst_i), .load_i(load_i),
                                                .val_i(val4_i), .ts_o(ts4));
    assign ts4_o = ts4;
    generate
        if (V2 != 0) begin : g_v2
            herald u_herald (
                .clk_i(clk_i), .rst_i(rst_i), .det_i(det_i), .en_i(herald_en_i), .ts_i(ts_o),
                .fire_i(fire_o), .in_win_i(in_win_o), .clicked_o(clicked), .single_o(single),
                .tw_o(tw), .rise_o(), .ts_d_o(ts_d)
            );
            scheduler #(.AW(AW), .LUTRAM(LUTRAM)) u_sched (
                .clk_i(clk_i), .rst_i(rst_i), .ts4_i(ts4),
                .push_i(push_i), .t_start_i(t_start_i), .count_i(count_i), .period_i(period_i),
                .window_i(window_i), .full_o(full_o), .abort_i(abort_i),
                .clicked_i(clicked), .single_i(single), .tw_i(tw), .ts_d_i(ts_d), .fire_o(fire_o),
                .in_win_o(in_win_o), .running_o(running_o), .cnt_late_o(cnt_late_o),
                .cnt_both_o(cnt_both_o), .cnt_herald_o(cnt_herald_o), .ev_valid_o(ev_valid_o),
                .ev_op_o(ev_op_o), .ev_payload_o(ev_payload_o)
            );
        end else begin : g_no_v2
            // no v2 SCHEDULE / det_i mode (the command decoder refuses SCHEDULE as unknown)
            wire unused_v2 = &{1'b0, det_i, herald_en_i, push_i, t_start_i, count_i, period_i,
                               window_i, abort_i, clicked, single, tw, ts_d};
            assign {clicked, single, tw, ts_d} = 131'd0;
            assign {full_o, fire_o, in_win_o, running_o, cnt_late_o, cnt_both_o, cnt_herald_o,
                    ev_valid_o} = 8'd0;
            assign ev_op_o = 8'd0;
            assign ev_payload_o = 128'd0;
        end
    endgenerate
    /* verilator lint_on PINCONNECTEMPTY */
endmodule
`default_nettype wire

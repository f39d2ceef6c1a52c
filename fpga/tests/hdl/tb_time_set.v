// Test bench for time_set driving two ts_counters the way attempt_core does (ts, and ts + 4 for
// the scheduler): fpga/tests/test_hdl_time_set.py.
`default_nettype none
module tb_time_set (
    input  wire        clk_i,
    input  wire        rst_i,
    input  wire        set_i,
    input  wire [63:0] val_i,
    input  wire        mode_i,
    input  wire        sync_i,
    output wire        load_o,
    output wire        armed_o,
    output wire [63:0] ts_o,
    output wire [63:0] ts4_o
);
    wire [63:0] val, val4;
    time_set u_tset (.clk_i(clk_i), .rst_i(rst_i), .set_i(set_i), .val_i(val_i), .mode_i(mode_i),
                     .sync_i(sync_i), .load_o(load_o), .val_o(val), .val4_o(val4),
                     .armed_o(armed_o));
    ts_counter u_ts (.clk_i(clk_i), .rst_i(rst_i), .load_i(load_o), .val_i(val), .ts_o(ts_o));
    ts_counter #(.INIT(64'd4)) u_ts4 (.clk_i(clk_i), .rst_i(rst_i), .load_i(load_o), .val_i(val4),
                                      .ts_o(ts4_o));
endmodule
`default_nettype wire

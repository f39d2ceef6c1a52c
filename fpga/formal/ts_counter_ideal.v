// Abstraction of ts_counter (fpga/rtl/ts_counter.v) for the k-induction of attempt_core
// (attempt_core.sby, task prove): the behaviour ts_counter_props.v proves of the RTL counter by
// k-induction at full width, as a plain register: a reset loads INIT, load_i loads val_i (read
// the cycle after), else ts + 1 (mod 2^64). Replacing the split-carry counter by it is sound
// (assume-guarantee: the RTL's output equals this one in every cycle, proven separately) and
// leaves the scheduler's proof free of the carry flags' invariants.
`default_nettype none
module ts_counter #(
    parameter [63:0] INIT = 64'd0
) (
    input  wire        clk_i,
    input  wire        rst_i,
    input  wire        load_i,
    input  wire [63:0] val_i,
    output wire [63:0] ts_o
);
    reg [63:0] ts_q;
    always @(posedge clk_i) ts_q <= rst_i ? INIT : load_i ? val_i : ts_q + 64'd1;
    assign ts_o = ts_q;
endmodule
`default_nettype wire

// TIME_SET (docs/physical-layer.md section 1: one device clock for every device of a network).
//
// set_i (the command decoder's strobe, with val_i / mode_i valid in that cycle) takes the value.
// Mode 0 loads it into the timestamp counters a fixed few cycles later: the counter reads val_i
// in the cycle TSET_LAT = 5 after set_i. Mode 1 arms it: the counter reads val_i in the cycle
// SYNC_LAT = 4 after the sync_i pin rises (2-FF synchronizer, edge, load); devices sharing a
// sync line (PPS / White Rabbit style) load in the same cycle. A later TIME_SET replaces an armed
// one; mode 0 disarms.
// val4_o = val + 4 for the scheduler's second counter, in two registered 32-bit halves; both
// outputs are stable >= 2 cycles before load_o (ts_counter registers its wrap flags from them).
`default_nettype none
module time_set (
    input  wire        clk_i,
    input  wire        rst_i,
    input  wire        set_i,
    input  wire [63:0] val_i,
    input  wire        mode_i,      // 0 now, 1 at the next sync_i rising edge
    input  wire        sync_i,      // pin
    output reg         load_o,
    output reg  [63:0] val_o,
    output reg  [63:0] val4_o,
    output reg         armed_o
);
    wire sync_s;
    reg  sync_prev_q;
    sync2 u_sync (.clk_i(clk_i), .rst_i(rst_i), .d_i(sync_i), .q_o(sync_s));
    reg [32:0] lo4_q;
    reg [2:0]  p_q;                 // mode 0 load pipeline
    always @(posedge clk_i) begin
        lo4_q <= {1'b0, val_o[31:0]} + 33'd4;
        val4_o <= {val_o[63:32] + {31'd0, lo4_q[32]}, lo4_q[31:0]};
        if (rst_i) begin
            sync_prev_q <= 1'b0;
            p_q <= 3'd0;
            load_o <= 1'b0;
            armed_o <= 1'b0;
            val_o <= 64'd0;
        end else begin
            sync_prev_q <= sync_s;
            p_q <= {p_q[1:0], set_i && !mode_i};
            load_o <= p_q[2] || (armed_o && sync_s && !sync_prev_q);
            if (set_i) begin
                val_o <= val_i;
                armed_o <= mode_i;
            end else if (armed_o && sync_s && !sync_prev_q) begin
                armed_o <= 1'b0;
            end
        end
    end
endmodule
`default_nettype wire

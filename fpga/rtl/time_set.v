// TIME_SET (docs/physical-layer.md section 1: one device clock for every device of a network).
//
// set_i (the command decoder's strobe, with val_i / mode_i valid in that cycle) takes the value.
// Mode 0 loads it into the timestamp counters a fixed few cycles later: the counter reads val_i
// in the cycle TSET_LAT = 5 after set_i. Mode 1 arms it: the counter reads val_i in the cycle
// SYNC_LAT = 4 after the sync_i pin rises (2-FF synchronizer, edge, load); devices sharing a
// sync line (PPS / White Rabbit style) load in the same cycle. A later TIME_SET replaces an armed
// one; mode 0 disarms.
// Races (test_hdl_time_set.py): an edge seen (sync_s rising, 2 cycles after the pin) in the cycle
// of a strobe or before belongs to the arm made before it: that value loads (the twin's order, an
// edge before the command). The strobe clears the old arm from the next cycle; a mode-1 value is
// armed ARM_LAT = 3 cycles after its strobe (edges seen 1-2 cycles after it load nothing), so
// val_o and val4_o hold the value being loaded in the load cycle and the one before, as
// ts_counter needs (it registers its wrap flags from val_i the cycle before load_i).
// Strobes come >= TSET_LAT cycles apart (one command frame each).
// val_o follows the strobe's value (nv_q) 2 cycles after the strobe; val4_o = val + 4 one cycle
// later, its low half added from nv_q in parallel, the high half's carry in a second register
// (two 32-bit additions: timing).
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
    reg [63:0] nv_q;                // the strobe's value (the decoder's field moves on)
    reg        ns_q;                // strobe last cycle: val_o takes nv_q
    reg [32:0] lo4_q;
    reg [2:0]  p_q;                 // mode 0 load pipeline
    reg [1:0]  a_q;                 // mode 1 arm pipeline
    wire       fire = armed_o && sync_s && !sync_prev_q;
    always @(posedge clk_i) begin
        if (set_i) nv_q <= val_i;
        lo4_q <= {1'b0, nv_q[31:0]} + 33'd4;
        val4_o <= {val_o[63:32] + {31'd0, lo4_q[32]}, lo4_q[31:0]};
        if (rst_i) begin
            sync_prev_q <= 1'b0;
            ns_q <= 1'b0;
            p_q <= 3'd0;
            a_q <= 2'd0;
            load_o <= 1'b0;
            armed_o <= 1'b0;
            val_o <= 64'd0;
        end else begin
            sync_prev_q <= sync_s;
            ns_q <= set_i;
            if (ns_q) val_o <= nv_q;
            p_q <= {p_q[1:0], set_i && !mode_i};
            a_q <= {a_q[0] && !set_i, set_i && mode_i};
            load_o <= p_q[2] || fire;
            if (set_i || fire) armed_o <= 1'b0;
            else if (a_q[1]) armed_o <= 1'b1;
        end
    end
endmodule
`default_nettype wire

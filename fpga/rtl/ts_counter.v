// 64-bit free-running timestamp counter in device clock cycles (machine units).
//
// Split carry: two 32-bit halves. The carry into the high half is registered one cycle ahead
// (carry_q is set while the low half holds 0xFFFF_FFFE), so the high half increments on the same
// edge the low half wraps. ts_o is therefore always a consistent 64-bit value, and the longest
// carry chain is 32 bits instead of 64 (157 MHz vs 90 MHz on iCE40 HX8K).
// carry_q itself is not a 32-bit compare in one cycle (three LUT levels with long routes on ECP5):
// nib_q registers, per 4-bit group, "the low half equals 0xFFFF_FFFD here", i.e. the cycle before
// 0xFFFF_FFFE, and carry_q is the AND of those eight flags (one LUT level each step).
// INIT sets the reset value (tests start near 2^32 to exercise the low-word wrap).
// load_i (TIME_SET) loads val_i: the counter reads val_i in the cycle after load_i. val_i must be
// stable the cycle before load_i (its wrap flags are registered from it every cycle: timing).
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
    localparam [31:0] PRE = 32'hFFFF_FFFD;   // low half two cycles before it wraps
    reg [31:0] lo_q, hi_q;
    reg        carry_q;                        // lo_q == 0xFFFF_FFFF: hi_q counts at this edge
    reg [7:0]  nib_q;                          // per nibble: lo_q was PRE last cycle
    reg        vff_q, vfe_q;                   // val_i low half == 0xFFFF_FFFF / 0xFFFF_FFFE
    always @(posedge clk_i) begin
        vff_q <= (val_i[31:0] == 32'hFFFF_FFFF);
        vfe_q <= (val_i[31:0] == 32'hFFFF_FFFE);
    end

    integer k;
    always @(posedge clk_i) begin
        if (rst_i) begin
            lo_q    <= INIT[31:0];
            hi_q    <= INIT[63:32];
            carry_q <= (INIT[31:0] == 32'hFFFF_FFFF);
            nib_q   <= {8{INIT[31:0] == 32'hFFFF_FFFE}};
        end else if (load_i) begin
            lo_q    <= val_i[31:0];
            hi_q    <= val_i[63:32];
            carry_q <= vff_q;
            nib_q   <= {8{vfe_q}};
        end else begin
            lo_q    <= lo_q + 32'd1;
            hi_q    <= hi_q + {31'd0, carry_q};
            carry_q <= &nib_q;
            for (k = 0; k < 8; k = k + 1) nib_q[k] <= (lo_q[4*k +: 4] == PRE[4*k +: 4]);
        end
    end

    assign ts_o = {hi_q, lo_q};
endmodule
`default_nettype wire

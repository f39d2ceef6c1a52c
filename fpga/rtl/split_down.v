// Down-counter of W bits as two W/2-bit halves (timing: two short carry chains, no W-bit chain
// into the load mux), with each half's "== 0" flag registered. The high half counts down in the
// cycle after the low half read 0 (its borrow, flagged a cycle ahead in l0_o), so {hi_o, lo_o}
// is exactly a W-bit down-counter (wrapping) in every cycle. ld_i loads val_i with its halves'
// zero flags (vl0_i, vh0_i: the caller computes or registers them); else dec_i counts down; a
// reset loads 0 (flags set). pair_sched's period, attempts-left and drain counters.
`default_nettype none
module split_down #(
    parameter W = 32                // even
) (
    input  wire           clk_i,
    input  wire           rst_i,
    input  wire           ld_i,
    input  wire [W-1:0]   val_i,
    input  wire           vl0_i,    // val_i[W/2-1:0] == 0
    input  wire           vh0_i,    // val_i[W-1:W/2] == 0
    input  wire           dec_i,
    output reg  [W/2-1:0] lo_o,
    output reg  [W/2-1:0] hi_o,
    output reg            l0_o,     // lo_o == 0
    output reg            h0_o      // hi_o == 0
);
    localparam H = W / 2;
    always @(posedge clk_i) begin
        if (ld_i) begin
            {hi_o, lo_o} <= val_i;
            l0_o <= vl0_i;
            h0_o <= vh0_i;
        end else if (dec_i) begin
            lo_o <= lo_o - 1'b1;
            l0_o <= (lo_o == {{(H-1){1'b0}}, 1'b1});
            if (l0_o) begin
                hi_o <= hi_o - 1'b1;
                h0_o <= (hi_o == {{(H-1){1'b0}}, 1'b1});
            end
        end
        if (rst_i) begin
            {hi_o, lo_o} <= {W{1'b0}};
            {l0_o, h0_o} <= 2'b11;
        end
    end
endmodule
`default_nettype wire

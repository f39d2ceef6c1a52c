// One copy of the reset flip-flop (top instantiates one per block).
//
// Timing: a single reset flip-flop fanned out to every block is a 2+ ns route on ECP5 wherever
// the reset enters logic as data (a LUT input rather than the flip-flop's set/reset pin). Copies
// are only worth having if synthesis keeps them apart: yosys merges identical flip-flops, and a
// keep attribute on the register does not stop that, but a module it must not flatten does.
// Initialised to 1 (in reset from configuration on).
`default_nettype none
(* keep_hierarchy *)
module rst_copy (
    input  wire clk_i,
    input  wire d_i,
    output reg  q_o
);
    initial q_o = 1'b1;
    always @(posedge clk_i) q_o <= d_i;
endmodule
`default_nettype wire

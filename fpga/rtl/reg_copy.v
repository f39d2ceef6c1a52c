// A W-bit register that synthesis keeps as a module of its own: copies of one register that yosys
// must not merge (event_arb's copies of pick_q, each driving a part of a 136-bit select).
//
// Timing: yosys merges identical flip-flops (a keep attribute on the register does not stop
// that; see rst_copy), so one select register fanned out to every bit of a wide mux is one net
// spread across the die. No reset: the caller's d_i carries it.
`default_nettype none
(* keep_hierarchy *)
module reg_copy #(
    parameter W = 1
) (
    input  wire         clk_i,
    input  wire [W-1:0] d_i,
    output reg  [W-1:0] q_o
);
    always @(posedge clk_i) q_o <= d_i;
endmodule
`default_nettype wire

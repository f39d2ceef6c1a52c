// A W-bit 2:1 multiplexer that synthesis keeps as a module of its own (event_arb's select tree).
//
// Timing (ECP5): event_arb chooses the 136 bits of an event among its sources by a registered
// select. Flattened, yosys shares one decode of the select bits among all 136 bits, and that
// decode LUT with its fanout plus two LUTs into the FIFO's input register was the station's
// HeAP path (5.1-6.0 ns). Kept as a module, each bit's first level is one LUT of flip-flops (the
// select bit, two holding registers). (A `keep` attribute on the first level's wires did the same
// on ECP5, but on iCE40 yosys turned such wires into one net driven by two LUTs and nextpnr
// stopped before placement: the lead's revert 1dd2ae1, fpga/README.md.)
`default_nettype none
(* keep_hierarchy *)
module sel_mux2 #(
    parameter W = 1
) (
    input  wire         s_i,
    input  wire [W-1:0] a_i,        // s_i = 0
    input  wire [W-1:0] b_i,        // s_i = 1
    output wire [W-1:0] o_o
);
    assign o_o = s_i ? b_i : a_i;
endmodule
`default_nettype wire

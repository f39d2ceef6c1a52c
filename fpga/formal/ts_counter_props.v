// Formal harness for ts_counter (fpga/rtl/ts_counter.v): the 64-bit timestamp is monotonic and
// never misses the carry from the low to the high half.
//
// Proven for all 2^64 states by k-induction at the full width (no abstraction): out of reset
// ts(t+1) == ts(t) + 1 (mod 2^64) in every cycle, and a reset loads INIT. The helper invariants
// relate the registered carry flags to the low half (they make the proof inductive and are
// themselves proven): carry_q is "lo == 0xFFFF_FFFF", and the AND of the nibble flags is
// "lo == 0xFFFF_FFFE". "Monotonic" holds up to the 2^64 wrap (5800 years at 100 MHz), where the
// counter wraps to 0 as the assertion says. Run by `hwctl fpga prove ts_counter`.
`default_nettype none
module ts_counter_props #(
    parameter [63:0] INIT = 64'd0
) (
    input wire clk_i,
    input wire rst_i
);
    wire [63:0] ts;
    // (TIME_SET loads, load_i, are not part of this proof: tied off; the cocotb test of
    // ts_counter checks them)
    ts_counter #(.INIT(INIT)) dut (.clk_i(clk_i), .rst_i(rst_i), .load_i(1'b0), .val_i(64'd0),
                                   .ts_o(ts));
    // internal signals of dut: yosys has no hierarchical references, so ts_counter.sby connects
    // these undriven taps to them after flattening (connect -set tap_x dut.x)
    wire [31:0] tap_lo_q;
    wire        tap_carry_q;
    wire [7:0]  tap_nib_q;

    reg init_q = 1'b1;          // first cycle: reset assumed
    always @(posedge clk_i) init_q <= 1'b0;
    always @(*) if (init_q) assume(rst_i);

    reg past_rst_q = 1'b1;
    always @(posedge clk_i) past_rst_q <= rst_i;

    always @(posedge clk_i) if (!init_q) begin
        if (past_rst_q) assert(ts == INIT);
        else assert(ts == $past(ts) + 64'd1);
    end
    // helper invariants (inductive strengthening): hold in every cycle after the first reset
    always @(*) if (!init_q) begin
        assert(tap_carry_q == (tap_lo_q == 32'hFFFF_FFFF));
        assert((&tap_nib_q) == (tap_lo_q == 32'hFFFF_FFFE));
    end
    // the high half really counts (not vacuous): reached within the bound from INIT near 2^32
    always @(posedge clk_i) if (!init_q && !past_rst_q) cover(ts[63:32] != $past(ts[63:32]));
endmodule
`default_nettype wire

// Formal harness for ts_counter (fpga/rtl/ts_counter.v): the 64-bit timestamp is monotonic and
// never misses a carry between its parts (16-bit bits 15:0, 31:16, 47:32 and 63:48).
//
// Proven for all 2^64 states by k-induction at the full width (no abstraction): out of reset
// ts(t+1) == ts(t) + 1 (mod 2^64) in every cycle, a reset loads INIT, and a TIME_SET load
// (load_i, val_i free, under the module's contract that val_i is stable the cycle before
// load_i) reads val_i in the cycle after load_i. So the 64-bit value any reader samples is exact
// in every cycle, including the edge where the low half wraps and the registered carries move
// both upper halves. The helper invariants relate the registered carry flags to the halves
// (they make the proof inductive and are themselves proven): carry_q is "lo == 0xFFFF_FFFF",
// c16_q is "lo[15:0] == 0xFFFF" (the carry between lo's two 16-bit chains), pre_q is
// "lo == 0xFFFF_FFFE", the AND of the nibble flags is "lo == 0xFFFF_FFFD", carry_hi_q is "lo == 0xFFFF_FFFF and
// md == 0xFFFF", and mff_q is "md == 0xFFFF" whenever lo != 0 (it lags md by the one cycle
// after md counts, when lo == 0). "Monotonic" holds up to the 2^64 wrap (5800 years at
// 100 MHz), where the counter wraps to 0 as the assertion says. Run by
// `hwctl fpga prove ts_counter`. dut1 (FAST = 1, the ECP5 station's variant: the wrap flags of
// val_i in two steps, mff_q from nibble flags) runs beside dut on the same inputs and is proven
// equal to it (timestamp and state, mff_q exact while lo > 1) while every load kept FAST's
// stronger contract (val_i stable the two cycles before load_i).
`default_nettype none
module ts_counter_props #(
    parameter [63:0] INIT = 64'd0
) (
    input wire        clk_i,
    input wire        rst_i,
    input wire        load_i,
    input wire [63:0] val_i
);
    wire [63:0] ts;
    ts_counter #(.INIT(INIT)) dut (.clk_i(clk_i), .rst_i(rst_i), .load_i(load_i), .val_i(val_i),
                                   .ts_o(ts));
    // FAST = 1 (the ECP5 station's variant) on the same inputs; its contract is stronger (val_i
    // stable the two cycles before load_i: time_set's val_o is), so it must equal dut while every
    // load so far kept that (ok2_q)
    wire [63:0] ts1;
    ts_counter #(.INIT(INIT), .FAST(1)) dut1 (.clk_i(clk_i), .rst_i(rst_i), .load_i(load_i),
                                             .val_i(val_i), .ts_o(ts1));
    // internal signals of dut: yosys has no hierarchical references, so ts_counter.sby connects
    // these undriven taps to them after flattening (connect -set tap_x dut.x)
    wire [31:0] tap_lo_q;
    wire [15:0] tap_md_q;
    wire        tap_carry_q, tap_carry_hi_q, tap_mff_q, tap_c16_q, tap_pre_q;
    wire [7:0]  tap_nib_q;
    wire [31:0] tap1_lo_q;                      // the same of dut1
    wire [15:0] tap1_md_q;
    wire        tap1_carry_q, tap1_carry_hi_q, tap1_mff_q, tap1_c16_q, tap1_pre_q;
    wire [7:0]  tap1_nib_q;

    reg init_q = 1'b1;          // first cycle: reset assumed
    always @(posedge clk_i) init_q <= 1'b0;
    always @(*) if (init_q) assume(rst_i);

    reg        past_rst_q = 1'b1;
    reg        past_load_q = 1'b0;
    reg [63:0] past_val_q;
    always @(posedge clk_i) begin
        past_rst_q  <= rst_i;
        past_load_q <= load_i;
        past_val_q  <= val_i;
    end
    // the module's contract (time_set.v keeps it): val_i stable the cycle before load_i
    always @(*) if (!init_q && load_i) assume(val_i == past_val_q);
    // ... and FAST's: the two cycles before (ok2_q: kept by every load so far, out of reset)
    reg [63:0] past2_val_q;
    reg        past2_ok_q = 1'b0;      // past2_val_q is a value of val_i (two cycles after init)
    reg        ok2_q = 1'b1;
    always @(posedge clk_i) begin
        past2_val_q <= past_val_q;
        past2_ok_q <= !init_q;
        if (!init_q && load_i && !rst_i && !(past2_ok_q && val_i == past2_val_q)) ok2_q <= 1'b0;
    end

    always @(posedge clk_i) if (!init_q) begin
        if (past_rst_q) assert(ts == INIT);
        else if (past_load_q) assert(ts == $past(val_i));
        else assert(ts == $past(ts) + 64'd1);
    end
    // helper invariants (inductive strengthening): hold in every cycle after the first reset
    always @(*) if (!init_q) begin
        assert(tap_carry_q == (tap_lo_q == 32'hFFFF_FFFF));
        assert(tap_c16_q == (tap_lo_q[15:0] == 16'hFFFF));
        assert((&tap_nib_q) == (tap_lo_q == 32'hFFFF_FFFD));
        assert(tap_pre_q == (tap_lo_q == 32'hFFFF_FFFE));
        assert(tap_carry_hi_q == (tap_lo_q == 32'hFFFF_FFFF && tap_md_q == 16'hFFFF));
        if (tap_lo_q != 32'd0) assert(tap_mff_q == (tap_md_q == 16'hFFFF));
        // dut1 (FAST = 1): the same state, but mff_q (from nibble flags) lags one cycle more
        if (ok2_q) begin
            assert(ts1 == ts);
            assert(tap1_lo_q == tap_lo_q && tap1_md_q == tap_md_q && tap1_carry_q == tap_carry_q
                   && tap1_carry_hi_q == tap_carry_hi_q && tap1_c16_q == tap_c16_q
                   && tap1_pre_q == tap_pre_q && tap1_nib_q == tap_nib_q);
            if (tap_lo_q > 32'd1) assert(tap1_mff_q == (tap_md_q == 16'hFFFF));
        end
    end
    // dut1's contract is met in the runs the proof considers (not vacuous: loads happen)
    always @(posedge clk_i) if (!init_q && ok2_q && past_load_q && !past_rst_q)
        cover(ts1 == $past(val_i) && $past(val_i[31:0]) == 32'hFFFF_FFFF);
    // both upper halves really count (not vacuous): reached within the bound from INIT near 2^48
    always @(posedge clk_i) if (!init_q && !past_rst_q && !past_load_q) begin
        cover(ts[47:32] != $past(ts[47:32]));
        cover(ts[63:48] != $past(ts[63:48]));
    end
endmodule
`default_nettype wire

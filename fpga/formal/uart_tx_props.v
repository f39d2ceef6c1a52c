// Formal harness for uart_tx (fpga/rtl/uart_tx.v): the transmitter of the herald lines (herald_tx,
// test_gen; BIT_CYCLES 4, B2B = 1) and of the host link (CLKS_PER_BIT 33, B2B = 0). With the
// frame harnesses (crc8_frame_tx_props.v, herald_tx_props.v, which use the abstract UART
// uart_tx_free.v: any ready_o) it makes the herald line's frames the bytes proven there.
//
// Reference, from the ports: a byte is taken in a cycle with valid_i && ready_o (out of reset);
// from the next cycle the line carries its 10 bits, CLKS_PER_BIT cycles each: the start bit (0),
// the 8 data bits LSB first, the stop bit (1); idle high. Asserted in every cycle:
//  - tx_o is exactly that waveform of the taken bytes (no byte lost, repeated, cut or reordered,
//    no glitch);
//  - ready_o = not sending, or (B2B = 1) the stop bit's last cycle: with B2B = 1 a byte waiting
//    then starts right after the stop bit (10 bit periods a byte, back to back: a herald frame
//    11 x 10 bit periods); with B2B = 0 the line stays idle one cycle more (10 bit periods +
//    1 cycle).
// data_i and valid_i free every cycle (the line samples data_i only when it takes a byte).
// dut1 (FAST = 1, the ECP5 station's enables) runs beside dut on the same inputs: its line and
// ready_o equal dut's in every cycle (with INDUCT: its registers equal dut's too).
// INDUCT (task prove*): invariants on taps (busy, bit and cycle counters, their flags, the shift
// register) as functions of the reference: k-induction.
`default_nettype none
module uart_tx_props #(
    parameter BC  = 4,      // CLKS_PER_BIT
    parameter B2B = 1
) (
    input wire       clk_i,
    input wire       rst_i,
    input wire [7:0] data_i,
    input wire       valid_i
);
    wire ready, tx;
    uart_tx #(.CLKS_PER_BIT(BC), .B2B(B2B)) dut (
        .clk_i(clk_i), .rst_i(rst_i), .data_i(data_i), .valid_i(valid_i), .ready_o(ready),
        .tx_o(tx)
    );
    // FAST = 1 (the ECP5 station's variant) beside it on the same inputs: the same ready_o and
    // line in every cycle (and, for the induction, the same registers)
    wire ready1, tx1;
    uart_tx #(.CLKS_PER_BIT(BC), .B2B(B2B), .FAST(1)) dut1 (
        .clk_i(clk_i), .rst_i(rst_i), .data_i(data_i), .valid_i(valid_i), .ready_o(ready1),
        .tx_o(tx1)
    );

    reg init_q = 1'b1;
    always @(posedge clk_i) init_q <= 1'b0;
    always @(*) if (init_q) assume(rst_i);

    localparam CW = (BC > 1) ? $clog2(BC) : 1;
    wire       take = valid_i && ready && !rst_i;
    reg        act_q;           // a byte is on the line
    reg [3:0]  rb_q;            // its bit: 0 start, 1..8 data, 9 stop
    reg [5:0]  rc_q;            // cycle within the bit, 0 .. BC-1
    reg [7:0]  by_q;            // the byte
    wire       last = (rc_q == BC - 1);
    always @(posedge clk_i) begin
        if (rst_i) begin
            act_q <= 1'b0;
            rb_q <= 4'd0;
            rc_q <= 6'd0;
        end else if (take) begin
            act_q <= 1'b1;
            rb_q <= 4'd0;
            rc_q <= 6'd0;
            by_q <= data_i;
        end else if (act_q) begin
            rc_q <= last ? 6'd0 : rc_q + 6'd1;
            if (last) begin
                if (rb_q == 4'd9) begin
                    act_q <= 1'b0;
                    rb_q <= 4'd0;
                end else begin
                    rb_q <= rb_q + 4'd1;
                end
            end
        end
    end
    wire [8:0] full = {1'b1, by_q};
    wire       exp_tx = !act_q ? 1'b1 : (rb_q == 4'd0) ? 1'b0 : full[rb_q - 4'd1];
    always @(*) if (!init_q) assert(tx1 == tx && ready1 == ready);
    always @(*) if (!init_q && !rst_i) begin
        assert(tx == exp_tx);
        assert(ready == (!act_q || (B2B != 0 && rb_q == 4'd9 && last)));
        assert(rb_q <= 4'd9 && rc_q < BC);
        if (!act_q) assert(rb_q == 4'd0 && rc_q == 6'd0);
    end

`ifdef INDUCT
    wire          tap_busy, tap_z, tap_b9, tap_se;
    wire [CW-1:0] tap_cnt;
    wire [3:0]    tap_bit;
    wire [8:0]    tap_shift;
    wire          tap1_busy, tap1_z, tap1_b9, tap1_se;     // the same of dut1
    wire [CW-1:0] tap1_cnt;
    wire [3:0]    tap1_bit;
    wire [8:0]    tap1_shift;
    wire [17:0]   ones_full = {9'h1FF, full};
    always @(*) if (!init_q)
        assert(tap1_busy == tap_busy && tap1_z == tap_z && tap1_b9 == tap_b9 && tap1_se == tap_se
               && tap1_cnt == tap_cnt && tap1_bit == tap_bit && tap1_shift == tap_shift);
    always @(*) if (!init_q) begin
        assert(tap_busy == act_q);
        assert(tap_b9 == (tap_bit == 4'd9));
        if (act_q) begin
            assert(tap_bit == rb_q);
            assert(tap_cnt == BC - 1 - rc_q);
            assert(tap_z == last);
            assert(tap_se == (rb_q == 4'd9 && last));
            assert(tap_shift == ones_full[rb_q +: 9]);
        end else begin
            assert(tap_z && tap_cnt == 0);
            assert(tap_se == tap_b9);
            assert(tap_bit == 4'd0 || tap_bit == 4'd9);
            assert(tap_shift == 9'h1FF);
        end
    end
`endif

    // not vacuous: a second byte, taken in the stop bit's last cycle (B2B = 1: back to back)
    reg one_q;
    always @(posedge clk_i) one_q <= !rst_i && (one_q || take);
    always @(*) if (!init_q) cover(one_q && take && (B2B == 0 || act_q));
endmodule
`default_nettype wire

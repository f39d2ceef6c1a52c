// LED meanings shared by the board tops (docs/wiring.md): each activity is stretched to ~80 ms
// (15 ticks of 2^(STRETCH_W-4) cycles: 2^23 * 15/16 cycles at 100 MHz) so a single event is
// visible. The stretchers count the heartbeat counter's ticks (4 bits each instead of a
// STRETCH_W-bit counter each: ~200 LC less on the HX8K, whose esp build is at 75 %).
//   led 0: heartbeat (toggles every 2^26 cycles, 0.67 s at 100 MHz: the device clock runs)
//   led 1: PLL locked
//   led 2: host link receive activity      led 3: host link transmit activity
//   led 4: detector 0 click                led 5: detector 1 click
//   led 6: header line activity            led 7: trigger fired
// Inputs are synchronized here (they are asynchronous pins); no effect on top's logic.
`default_nettype none
module board_leds #(
    parameter STRETCH_W = 23            // 5 .. 30
) (
    input  wire       clk_i,
    input  wire       locked_i,
    input  wire       uart_rx_i,
    input  wire       uart_tx_i,
    input  wire [1:0] det_i,
    input  wire       hdr_i,
    input  wire       trig_i,
    output wire [7:0] led_o
);
    reg [25:0] beat_q = 26'd0;
    always @(posedge clk_i) beat_q <= beat_q + 26'd1;
    // activity: a low (UART / header start bit) or high (click, trigger) level, synchronized
    wire [5:0] act_d = {trig_i, !hdr_i, det_i[1], det_i[0], !uart_tx_i, !uart_rx_i};
    reg  [5:0] s1_q = 6'd0, s2_q = 6'd0;
    reg  [3:0] cnt_q [0:5];             // ticks left to show the activity
    reg  [5:0] on_q = 6'd0;
    reg        tb_q = 1'b0;             // heartbeat bit STRETCH_W-5, last cycle
    reg        tick_q = 1'b0;           // it rose: one tick every 2^(STRETCH_W-4) cycles
    integer k;
    initial for (k = 0; k < 6; k = k + 1) cnt_q[k] = 4'd0;
    always @(posedge clk_i) begin
        s1_q <= act_d;
        s2_q <= s1_q;
        tb_q <= beat_q[STRETCH_W-5];
        tick_q <= beat_q[STRETCH_W-5] && !tb_q;
        for (k = 0; k < 6; k = k + 1) begin
            if (s2_q[k]) cnt_q[k] <= 4'd15;
            else if (tick_q && cnt_q[k] != 4'd0) cnt_q[k] <= cnt_q[k] - 4'd1;
            on_q[k] <= (cnt_q[k] != 4'd0);
        end
    end
    assign led_o = {on_q[5:2], on_q[1:0], locked_i, beat_q[25]};
endmodule
`default_nettype wire

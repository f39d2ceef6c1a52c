// Board top for the Lattice iCE40-HX8K breakout board (ICE40HX8K-B-EVN, iCE40HX8K-CT256).
//
// Clock: the 12 MHz oscillator (J3) through the PLL to 100.5 MHz (icepll -i 12 -o 100: DIVR 0,
// DIVF 66, DIVQ 3, VCO 804 MHz; 100 MHz exactly is not reachable from 12 MHz with this PLL).
// The device clock is therefore 100.5 MHz: timestamps count 100.5 MHz cycles (9.950 ns), the
// UART runs at 100.5 MHz / 33 = 3.045 Mbaud (+1.5 % from the host's 3 Mbaud, inside the 8N1
// tolerance) and a header bit is 16 cycles (159 ns). The host learns the clock from the board
// table (`hwctl fpga boards`, hwctl/fpga/boards.py: clock_hz) and `hwctl fpga selftest`
// measures the timestamp rate against the host clock.
// Host link: channel B of the on-board FT2232H (B10 = FPGA RX, B12 = FPGA TX).
// Header J2 (LVCMOS33, bank 1): det_i[0] C16 (J2 pin 37), det_i[1] D16 (pin 35), hdr_i E16
// (pin 33), trig_o F16 (pin 29), win_o H16 (pin 25). LEDs D9..D2 (B5 B4 A2 A1 C5 C4 B3 C3):
// see docs/wiring.md. Reset: until the PLL locks (and top's own power-on counter).
// Vendor primitive (SB_PLL40_CORE) only here, never in the shared RTL.
`default_nettype none
module board_top #(
    parameter V2 = 0, parameter PAIRS = 1, parameter BLOCKS = 0, parameter HEADERS = 0   // esp
) (
    input  wire       clk12_i,
    input  wire       uart_rx_i,
    output wire       uart_tx_o,
    input  wire [1:0] det_i,
    input  wire       hdr_i,
    input  wire [1:0] hl_i,
    input  wire       sync_i,
    output wire [1:0] trig_o,
    output wire       win_o,
    output wire [7:0] led_o
);
    wire clk, locked;
    SB_PLL40_CORE #(
        .FEEDBACK_PATH("SIMPLE"),
        .DIVR(4'd0), .DIVF(7'd66), .DIVQ(3'd3), .FILTER_RANGE(3'd1)
    ) u_pll (
        .REFERENCECLK(clk12_i), .PLLOUTCORE(clk), .PLLOUTGLOBAL(), .LOCK(locked),
        .RESETB(1'b1), .BYPASS(1'b0), .EXTFEEDBACK(1'b0), .DYNAMICDELAY(8'd0),
        .LATCHINPUTVALUE(1'b0), .SCLK(1'b0), .SDI(1'b0), .SDO()
    );
    wire [1:0] trig;
    wire       win;
    // build profile (fpga/README.md, "Build profiles"): the HX8K holds one lab role per
    // bitstream, esp by default (`hwctl fpga build --board hx8k_breakout --profile verify`).
    // No device late join on the HX8K (its JOIN datapath is ~1080 LC, the esp build did not
    // place with it): CONTROL.LATE_JOIN reads back 0 and the node service joins by margin
    // (hwctl/pljoin.py), as with any device without the bit
    localparam LATE_JOIN = 0;
    top #(.CLKS_PER_BIT(33), .FIFO_LUTRAM(0), .V2(V2), .PAIRS(PAIRS), .BLOCKS(BLOCKS),
          .HEADERS(HEADERS), .LATE_JOIN(LATE_JOIN)) u_top (
        .clk_i(clk), .rst_i(!locked), .uart_rx_i(uart_rx_i), .uart_tx_o(uart_tx_o),
        .hdr_i(hdr_i), .det_i(det_i), .hl_i(hl_i), .sync_i(sync_i), .trig_o(trig), .win_o(win)
    );
    assign trig_o = trig;
    assign win_o = win;
    board_leds u_leds (
        .clk_i(clk), .locked_i(locked), .uart_rx_i(uart_rx_i), .uart_tx_i(uart_tx_o),
        .det_i(det_i), .hdr_i(hdr_i), .trig_i(|trig), .led_o(led_o)
    );
endmodule
`default_nettype wire

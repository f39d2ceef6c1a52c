// Board top for the Radiona ULX3S (ECP5 LFE5U-12F/25F/45F/85F, CABGA381; built for the 85F by
// default, `hwctl fpga build --board ulx3s --device 25k` for others).
//
// Clock: the 25 MHz oscillator (G2) through EHXPLLL to 100 MHz exactly (ecppll -i 25 -o 100:
// CLKI_DIV 1, CLKFB_DIV 4, CLKOP_DIV 6, VCO 600 MHz), the wire spec's clock_hz: timestamps are
// 10 ns cycles and no host-side scaling is needed. UART 100 MHz / 33 = 3.03 Mbaud (FT231X: 3 Mbaud
// max; +1 %).
// Host link: the on-board FT231X (M1 = FPGA RX, L4 = FPGA TX; USB1 / "US1" connector).
// Header J1 (LVCMOS33): det_i[0] gp[0] B11, det_i[1] gp[1] A10, hdr_i gp[2] A9 (inputs),
// trig_o gn[0] C11, win_o gn[1] A11. LEDs D0..D7 (B2 C2 C1 D2 D1 E2 E1 H3): docs/wiring.md.
// Reset: until the PLL locks (and top's own power-on counter).
// Vendor primitive (EHXPLLL) only here, never in the shared RTL.
`default_nettype none
module board_top #(
    parameter V2 = 1, parameter PAIRS = 1, parameter BLOCKS = 1, parameter HEADERS = 1   // full
) (
    input  wire       clk25_i,
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
    (* FREQUENCY_PIN_CLKI = "25" *)
    (* FREQUENCY_PIN_CLKOP = "100" *)
    (* ICP_CURRENT = "12" *) (* LPF_RESISTOR = "8" *) (* MFG_ENABLE_FILTEROPAMP = "1" *)
    (* MFG_GMCREF_SEL = "2" *)
    EHXPLLL #(
        .PLLRST_ENA("DISABLED"), .INTFB_WAKE("DISABLED"), .STDBY_ENABLE("DISABLED"),
        .DPHASE_SOURCE("DISABLED"), .OUTDIVIDER_MUXA("DIVA"), .OUTDIVIDER_MUXB("DIVB"),
        .OUTDIVIDER_MUXC("DIVC"), .OUTDIVIDER_MUXD("DIVD"),
        .CLKI_DIV(1), .CLKOP_ENABLE("ENABLED"), .CLKOP_DIV(6), .CLKOP_CPHASE(2),
        .CLKOP_FPHASE(0), .FEEDBK_PATH("CLKOP"), .CLKFB_DIV(4)
    ) u_pll (
        .RST(1'b0), .STDBY(1'b0), .CLKI(clk25_i), .CLKOP(clk), .CLKFB(clk), .CLKINTFB(),
        .PHASESEL0(1'b0), .PHASESEL1(1'b0), .PHASEDIR(1'b1), .PHASESTEP(1'b1),
        .PHASELOADREG(1'b1), .PLLWAKESYNC(1'b0), .ENCLKOP(1'b0), .LOCK(locked)
    );
    wire [1:0] trig;
    wire       win;
    // build profile (fpga/README.md, "Build profiles"): every mode by default (full)
    top #(.CLKS_PER_BIT(33), .FIFO_LUTRAM(1), .V2(V2), .PAIRS(PAIRS), .BLOCKS(BLOCKS),
          .HEADERS(HEADERS)) u_top (
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

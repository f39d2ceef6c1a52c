// Abstract UART transmitter for the frame harnesses (crc8_frame_tx, herald_tx): the same module
// name and ports as fpga/rtl/uart_tx.v, read instead of it. ready_o is free in every cycle (any
// back-pressure: a byte may wait any number of cycles, or be taken at once), a byte is taken when
// valid_i && ready_o, and tx_o is idle. Every ready_o sequence of the real uart_tx is one of
// these, so what a harness proves with this model holds with the real transmitter; that the real
// one takes a byte exactly on valid_i && ready_o and puts exactly the taken bytes on its line
// (8N1, LSB first, CLKS_PER_BIT cycles a bit, back to back with B2B = 1) is uart_tx_props.v's
// proof (assume-guarantee, as ts_counter_ideal.v for the timestamp counters).
`default_nettype none
module uart_tx #(
    parameter CLKS_PER_BIT = 33,
    parameter B2B = 0,
    parameter FAST = 0      // (uart_tx's; the same ports and handshake for both values)
) (
    input  wire       clk_i,
    input  wire       rst_i,
    input  wire [7:0] data_i,
    input  wire       valid_i,
    output wire       ready_o,
    output reg        tx_o
);
    (* anyseq *) wire rdy;
    assign ready_o = rdy;
    always @(posedge clk_i) tx_o <= 1'b1;
    wire unused = &{1'b0, rst_i, data_i, valid_i};
endmodule
`default_nettype wire

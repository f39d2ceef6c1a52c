// CRC update by one byte, MSB first, no reflection; init and xorout are the caller's. Combinational.
// WIDTH=16, POLY=16'h1021: CRC-16/CCITT-FALSE of the host link (frame_rx, frame_tx); over a frame
// followed by its big-endian CRC the result is 0, which is how frame_rx checks frames.
// WIDTH=8, POLY=8'h07: CRC-8/SMBUS of the midpoint header (spec [header], header_decoder).
`default_nettype none
module crc_byte #(
    parameter WIDTH = 16,
    parameter [WIDTH-1:0] POLY = 16'h1021
) (
    input  wire [WIDTH-1:0] crc_i,
    input  wire [7:0]       data_i,
    output wire [WIDTH-1:0] crc_o
);
    function [WIDTH-1:0] step;
        input [WIDTH-1:0] c;
        input [7:0]       d;
        integer i;
        reg [WIDTH-1:0] r;
        reg [WIDTH-1:0] dx;
        begin
            dx = {WIDTH{1'b0}};  // zero-extended byte, then aligned to the MSB
            dx[7:0] = d;
            r = c ^ (dx << (WIDTH - 8));
            for (i = 0; i < 8; i = i + 1)
                r = r[WIDTH-1] ? ((r << 1) ^ POLY) : (r << 1);
            step = r;
        end
    endfunction
    assign crc_o = step(crc_i, data_i);
endmodule
`default_nettype wire

// CRC-8/SMBUS update by one byte (poly 0x07, init 0x00 by the caller, MSB first, no reflection).
// Combinational; used by the midpoint header decoder (spec [header]).
`default_nettype none
module crc8_byte (
    input  wire [7:0] crc_i,
    input  wire [7:0] data_i,
    output wire [7:0] crc_o
);
    function [7:0] step;
        input [7:0] c;
        input [7:0] d;
        integer i;
        reg [7:0] r;
        begin
            r = c ^ d;
            for (i = 0; i < 8; i = i + 1)
                r = r[7] ? ((r << 1) ^ 8'h07) : (r << 1);
            step = r;
        end
    endfunction
    assign crc_o = step(crc_i, data_i);
endmodule
`default_nettype wire

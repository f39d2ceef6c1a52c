// CRC-16/CCITT-FALSE update by one byte (poly 0x1021, MSB first, no reflection; init 0xFFFF and
// xorout 0 are the caller's). Combinational. Over a frame followed by its big-endian CRC the
// result is 0, which is how frame_rx checks frames.
`default_nettype none
module crc16_byte (
    input  wire [15:0] crc_i,
    input  wire [7:0]  data_i,
    output wire [15:0] crc_o
);
    function [15:0] step;
        input [15:0] c;
        input [7:0]  d;
        integer i;
        reg [15:0] r;
        begin
            r = c ^ {d, 8'h00};
            for (i = 0; i < 8; i = i + 1)
                r = r[15] ? ((r << 1) ^ 16'h1021) : (r << 1);
            step = r;
        end
    endfunction
    assign crc_o = step(crc_i, data_i);
endmodule
`default_nettype wire

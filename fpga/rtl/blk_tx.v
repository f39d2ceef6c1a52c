// HDR_BLOCK frame transmitter (wire v4, docs/header-path.md section 2): the one 67-byte event,
// streamed from hdr_block's buffer instead of a 536-bit payload register.
//
// Frame: seq | 0xA6 | 67 payload bytes (buffer offsets 0..66; entry bytes at offsets >= 19 + used
// are sent as 0) | CRC-16/CCITT-FALSE (big-endian), COBS-encoded, then 0x00 (like frame_tx). The
// bytes are read one at a time from the buffer (registered read, then a registered select: three
// cycles per byte): a CRC pass over seq..payload, then per COBS block a scan to the next zero (or
// the end) for the code byte and a second read of the block's bytes as they are sent. A UART byte
// is 10 * CLKS_PER_BIT cycles, so the line has no gaps beyond the first block's scan (the frame is
// 71 bytes < 254: no 0xFF code). valid_i / ready_o as frame_tx; ready_o also waits for the last
// byte to be taken, and the first byte waits for other_busy_i (frame_tx's last byte), so the two
// transmitters share uart_tx without overlap. rel_o: the block has been sent (release its buffer).
`default_nettype none
`include "wire_spec.vh"
module blk_tx #(
    parameter PL = `HW_LEN_HDR_BLOCK    // payload bytes (67)
) (
    input  wire        clk_i,
    input  wire        rst_i,
    input  wire        valid_i,
    output wire        ready_o,
    input  wire [7:0]  seq_i,
    output reg  [6:0]  rd_off_o,
    input  wire [7:0]  rd_byte_i,      // buffer byte at rd_off_o of the last cycle
    output reg         rel_o,
    input  wire        other_busy_i,
    output reg  [7:0]  byte_o,
    output reg         byte_valid_o,
    input  wire        byte_ready_i
);
    localparam L = PL + 4;             // frame bytes with the CRC
    localparam [3:0] T_IDLE = 4'd0, T_FA = 4'd1, T_FB = 4'd2, T_FC = 4'd3, T_SCAN0 = 4'd4,
                     T_CODE = 4'd5, T_AFTER = 4'd6, T_DELIM = 4'd7,
                     T_USE = 4'd8;
    localparam [1:0] P_CRC = 2'd0, P_SCAN = 2'd1, P_DATA = 2'd2;
    reg [3:0]  st_q;
    reg [1:0]  ph_q;
    reg        idle_q;
    reg [7:0]  seq_q;
    reg [6:0]  p_q;                    // frame position being fetched
    reg [6:0]  k_q;                    // bytes in the COBS block
    reg [6:0]  j_q;                    // block bytes sent
    reg        zend_q;                 // the block ends at a zero (else at the frame end)
    reg [7:0]  val_q;
    reg [6:0]  lim_q;                  // positions >= lim_q are unused entry bytes (0)
    reg [15:0] crc_q;
    wire [15:0] crc_nx;
    crc_byte #(.WIDTH(16), .POLY(16'h1021)) u_crc (.crc_i(crc_q), .data_i(val_q), .crc_o(crc_nx));

    assign ready_o = idle_q && !byte_valid_o;
    wire out_free = !byte_valid_o && !other_busy_i;

    // byte at frame position p (rd_byte_i: the buffer byte at p - 2)
    wire [7:0] sel = (p_q == 7'd0) ? seq_q
                   : (p_q == 7'd1) ? `HW_OP_HDR_BLOCK
                   : (p_q == 7'(L - 2)) ? crc_q[15:8]
                   : (p_q == 7'(L - 1)) ? crc_q[7:0]
                   : (p_q >= lim_q) ? 8'h00 : rd_byte_i;

    always @(posedge clk_i) begin
        rel_o <= 1'b0;
        if (byte_valid_o && byte_ready_i) byte_valid_o <= 1'b0;
        if (rst_i) begin
            st_q <= T_IDLE;
            idle_q <= 1'b1;
            byte_valid_o <= 1'b0;
            byte_o <= 8'd0;
            rd_off_o <= 7'd0;
            lim_q <= 7'd127;
        end else begin
            case (st_q)
                T_IDLE: if (valid_i && ready_o) begin
                    seq_q <= seq_i;
                    idle_q <= 1'b0;
                    crc_q <= 16'hFFFF;
                    lim_q <= 7'd127;
                    p_q <= 7'd0;
                    ph_q <= P_CRC;
                    st_q <= T_FA;
                end
                T_FA: begin                 // fetch p_q: address
                    rd_off_o <= p_q - 7'd2;
                    st_q <= T_FB;
                end
                T_FB: st_q <= T_FC;          // (the buffer reads rd_off_o)
                T_FC: begin                 // rd_byte_i is the byte: select, then use it
                    val_q <= sel;
                    if (p_q == 7'd19) begin  // payload offset 17: used
                        lim_q <= 7'd21 + rd_byte_i[6:0];
                    end
                    st_q <= T_USE;
                end
                T_USE: begin        // use val_q
                    case (ph_q)
                        P_CRC: begin
                            crc_q <= crc_nx;
                            p_q <= p_q + 7'd1;
                            st_q <= T_FA;
                            if (p_q == 7'(L - 3)) begin
                                p_q <= 7'd0;
                                st_q <= T_SCAN0;
                            end
                        end
                        P_SCAN: begin
                            if (val_q == 8'h00) begin
                                zend_q <= 1'b1;
                                st_q <= T_CODE;
                            end else begin
                                k_q <= k_q + 7'd1;
                                p_q <= p_q + 7'd1;
                                st_q <= T_FA;
                                if (p_q == 7'(L - 1)) begin
                                    zend_q <= 1'b0;
                                    st_q <= T_CODE;
                                end
                            end
                        end
                        default: if (out_free) begin    // P_DATA
                            byte_o <= val_q;
                            byte_valid_o <= 1'b1;
                            p_q <= p_q + 7'd1;
                            j_q <= j_q + 7'd1;
                            st_q <= (j_q + 7'd1 == k_q) ? T_AFTER : T_FA;
                        end
                    endcase
                end
                T_SCAN0: begin              // a COBS block starts at p_q
                    k_q <= 7'd0;
                    ph_q <= P_SCAN;
                    if (p_q == 7'(L)) begin
                        zend_q <= 1'b0;
                        st_q <= T_CODE;
                    end else begin
                        st_q <= T_FA;
                    end
                end
                T_CODE: if (out_free) begin
                    byte_o <= {1'b0, k_q} + 8'd1;
                    byte_valid_o <= 1'b1;
                    j_q <= 7'd0;
                    p_q <= p_q - k_q;       // back to the block's first byte
                    ph_q <= P_DATA;
                    st_q <= (k_q == 7'd0) ? T_AFTER : T_FA;
                end
                T_AFTER: begin              // p_q: the zero ending the block, or the frame end
                    if (zend_q) begin
                        p_q <= p_q + 7'd1;
                        st_q <= T_SCAN0;
                    end else begin
                        st_q <= T_DELIM;
                    end
                end
                T_DELIM: if (out_free) begin
                    byte_o <= 8'h00;
                    byte_valid_o <= 1'b1;
                    rel_o <= 1'b1;
                    idle_q <= 1'b1;
                    st_q <= T_IDLE;
                end
                default: st_q <= T_IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire

// Frame receiver: COBS decoding on the fly, CRC-16/CCITT-FALSE check, frame buffer.
//
// Input: bytes from uart_rx (byte_valid_i) plus UART framing errors (byte_err_i).
// A 0x00 byte ends a frame. A decoded frame is seq | opcode | payload | crc16 (big-endian), 4..
// MAX_FRAME bytes. Good frames are presented on frame_valid_o (held until frame_ready_i) with
// seq_o, op_o, plen_o and payload_o (payload byte i at payload_o[8*(PMAX-i)-1 -: 8]). Bad frames
// give one err_valid_o pulse with err_code_o = CRC or FRAMING, never a frame. Empty frames (idle
// delimiters) are ignored. Bytes that arrive while a frame is still held make the new frame bad
// (FRAMING) instead of overwriting the held one.
// Timing: decoded bytes are written to the buffer/CRC one cycle after their input byte, and the
// "frame held" flag and "CRC is zero" are registered; all rely on input bytes being >= 3 cycles
// apart (interface rule; a UART byte takes 10 bit times), and the buffer (payload_o) is final at
// least two cycles before frame_valid_o rises (cmd_decoder relies on it). The input byte is
// registered first, with its compares (== 0x00, 0x01, 0xFF, byte - 1) and "block ends" / "buffer
// full" flags are kept as registers, so no path runs from the UART byte through the COBS state
// into the buffer write enables (timing; one cycle of latency).
`default_nettype none
`include "wire_spec.vh"
module frame_rx #(
    parameter PMAX = `HW_MAX_PAYLOAD,
    parameter WPOS = 1     // 1: per-position write flags wpos_q (ECP5 timing, FMAX more flip-flops);
                           // 0: the position decoded at the write (the HX8K builds: 80 % full,
                           // the verify profile stopped placing with the flags, eleventh session)
) (
    input  wire            clk_i,
    input  wire            rst_i,
    input  wire [7:0]      byte_i,
    input  wire            byte_valid_i,
    input  wire            byte_err_i,
    output reg             frame_valid_o,
    input  wire            frame_ready_i,
    output wire [7:0]      seq_o,
    output wire [7:0]      op_o,
    output reg  [5:0]      plen_o,
    output wire [8*PMAX-1:0] payload_o,
    output reg             err_valid_o,
    output reg  [7:0]      err_code_o
);
    localparam FMAX = PMAX + 4;

    reg [7:0]  buf_q [0:FMAX-1];
    reg [5:0]  len_q;        // decoded bytes so far
    reg [7:0]  rem_q;        // bytes left in the current COBS block
    reg        first_q;      // next byte is the first code byte of a frame
    reg        ff_q;         // current block code was 0xFF (no implicit zero after it)
    reg        bad_q;        // UART error, overlong, or arrived while a frame was held
    reg        any_q;        // at least one byte since the last delimiter
    reg [15:0] crc_q;
    reg        blocked_q;    // a frame was held (not taken) last cycle
    reg        wr_q;         // write dbyte_q to the buffer and CRC this cycle
    reg [7:0]  dbyte_q;
    // write position: len_q (the bytes written so far) decoded as two one-hot halves (octet
    // and byte in it); a one-hot position register moved by each write was 36 flip-flops
    // without a LUT of their own (HX8K area). At a write, len_q is the new byte's index.
    wire [7:0] pos_hi = 8'd1 << len_q[5:3];
    wire [7:0] pos_lo = 8'd1 << len_q[2:0];
    reg [FMAX-1:0] wbe_q;    // per-byte write enable, wen at position i registered: the buffer
                             // bytes sit near their readers, far apart, so their enables come
                             // straight from flip-flops (a LUT there had a 3.6 ns route after it)
    // wpos_q[i]: wok_q's terms and "len_q == i", registered like wok_q (they change only when a
    // byte is processed, and bytes are >= 3 cycles apart), so wbe_q[i] is one LUT of three
    // flip-flops (timing: wen and the position decode were 3 LUT levels from blocked_q into
    // wbe_q, station_top's ECP5 HeAP path at seed 3, 5.6 ns)
    reg [FMAX-1:0] wpos_q;
    reg        rem0_q;       // rem_q == 0
    reg        full_q;       // len_q == FMAX
    reg        short_q;      // len_q < 4
    reg [5:0]  lm4_q;        // len_q - 4 (registered flags: timing)
    reg        framing_q;    // bad_q || !rem0_q || short_q, registered (the delimiter is judged
                             // from flip-flops: timing)
    reg        crc0_q;       // crc_q == 0, registered (the CRC is final >= 2 cycles before the
                             // delimiter is evaluated: input bytes are >= 3 cycles apart)
    // input stage
    reg [7:0]  in_q, in_m1_q;                 // byte, byte - 1
    reg        in_v_q, in_err_q;              // valid, UART error
    reg        in_one_q, in_ff_q;             // byte == 0x01 / 0xFF
    reg        in_d_q;                        // valid nonzero byte, no UART error
    reg        in_dl_q;                       // valid 0x00 byte (delimiter), no UART error

    always @(posedge clk_i) begin
        in_q     <= byte_i;
        in_m1_q  <= byte_i - 8'd1;
        in_v_q   <= byte_valid_i && !rst_i;
        in_err_q <= byte_err_i && !rst_i;
        in_one_q <= (byte_i == 8'h01);
        in_ff_q  <= (byte_i == 8'hFF);
        in_d_q   <= byte_valid_i && !byte_err_i && (byte_i != 8'h00) && !rst_i;
        in_dl_q  <= byte_valid_i && !byte_err_i && (byte_i == 8'h00) && !rst_i;
    end

    // Decoded byte produced by this input byte (if any).
    wire       is_code  = first_q || rem0_q;
    wire       emit     = !first_q && !(rem0_q && ff_q);   // for a valid nonzero byte
    wire [7:0] dbyte    = is_code ? 8'h00 : in_q;
    // wok_q: emit && !bad_q && !full_q, registered (these change only when a byte is processed,
    // and bytes are >= 3 cycles apart); blocked_q can change any cycle and stays direct (timing)
    reg        wok_q;
    wire       wen      = in_d_q && wok_q && !blocked_q;
    wire [15:0] crc_nx;
    crc_byte #(.WIDTH(16), .POLY(16'h1021)) u_crc (.crc_i(crc_q), .data_i(dbyte_q), .crc_o(crc_nx));

    assign seq_o = buf_q[0];
    assign op_o  = buf_q[1];
    genvar g;
    generate
        for (g = 0; g < PMAX; g = g + 1) begin : g_pl
            assign payload_o[8*(PMAX-g)-1 -: 8] = buf_q[g+2];
        end
    endgenerate

    integer i;
    always @(posedge clk_i) begin
        crc0_q <= (crc_q == 16'h0000);
        framing_q <= bad_q || !rem0_q || short_q;
        wok_q <= emit && !bad_q && !full_q;
        for (i = 0; i < FMAX; i = i + 1)
            wpos_q[i] <= emit && !bad_q && !full_q && pos_hi[i / 8] && pos_lo[i % 8];
        err_valid_o <= 1'b0;
        wr_q <= 1'b0;
        blocked_q <= frame_valid_o && !frame_ready_i;
        if (rst_i) begin
            blocked_q <= 1'b0;
            dbyte_q <= 8'd0;
            wbe_q <= {FMAX{1'b0}};
            for (i = 0; i < FMAX; i = i + 1) buf_q[i] <= 8'd0;
            len_q  <= 6'd0;
            full_q <= 1'b0;
            short_q <= 1'b1;
            lm4_q  <= 6'd0 - 6'd4;
            rem_q  <= 8'd0;
            rem0_q <= 1'b1;
            first_q <= 1'b1;
            ff_q   <= 1'b0;
            bad_q  <= 1'b0;
            any_q  <= 1'b0;
            crc_q  <= 16'hFFFF;
            frame_valid_o <= 1'b0;
            plen_o <= 6'd0;
            err_code_o <= 8'd0;
        end else begin
            if (frame_valid_o && frame_ready_i) frame_valid_o <= 1'b0;
            if (in_err_q) begin
                bad_q <= 1'b1;
                any_q <= 1'b1;
            end else if (in_dl_q) begin
                // End of frame: evaluate, then reset the decoder.
                if (any_q) begin
                    if (framing_q) begin
                        err_valid_o <= 1'b1;
                        err_code_o  <= `HW_ERR_FRAMING;
                    end else if (!crc0_q) begin
                        err_valid_o <= 1'b1;
                        err_code_o  <= `HW_ERR_CRC;
                    end else begin
                        frame_valid_o <= 1'b1;
                        plen_o <= lm4_q;
                    end
                end
                len_q  <= 6'd0;
                full_q <= 1'b0;
                short_q <= 1'b1;
                lm4_q  <= 6'd0 - 6'd4;
                rem_q  <= 8'd0;
                rem0_q <= 1'b1;
                first_q <= 1'b1;
                ff_q   <= 1'b0;
                bad_q  <= 1'b0;
                any_q  <= 1'b0;
                crc_q  <= 16'hFFFF;
            end else if (in_v_q) begin
                any_q <= 1'b1;
                if (blocked_q) bad_q <= 1'b1;
                if (is_code) begin
                    rem_q   <= in_m1_q;
                    rem0_q  <= in_one_q;
                    ff_q    <= in_ff_q;
                    first_q <= 1'b0;
                end else begin
                    rem_q <= rem_q - 8'd1;
                    rem0_q <= (rem_q == 8'd1);
                end
                if (emit && !bad_q && !blocked_q && full_q) bad_q <= 1'b1;  // overlong
            end
            // buffer write, apart from the branches above (in_d_q excludes delimiter and error),
            // so its enable is a few registered flags (timing)
            if (wen) begin
                wr_q <= 1'b1;
                dbyte_q <= dbyte;
                len_q <= len_q + 6'd1;
                full_q <= (len_q == FMAX - 1);
                short_q <= (len_q < 6'd3);
                lm4_q <= len_q - 6'd3;
            end
            for (i = 0; i < FMAX; i = i + 1) begin
                wbe_q[i] <= WPOS ? in_d_q && wpos_q[i] && !blocked_q    // wen at position i
                                 : wen && pos_hi[i / 8] && pos_lo[i % 8];
                if (wbe_q[i]) buf_q[i] <= dbyte_q;
            end
            if (wr_q) begin
                crc_q <= crc_nx;
            end
        end
    end
`ifndef SYNTHESIS
`ifndef FORMAL
    // (simulation only: at each byte the position flags equal the logic they replace)
    integer j;
    always @(posedge clk_i)
        if (!rst_i && in_d_q)
            for (j = 0; j < FMAX; j = j + 1)
                if (wpos_q[j] != (wok_q && pos_hi[j / 8] && pos_lo[j % 8]))
                    $fatal(1, "frame_rx: wpos_q[%0d] != wok_q && len_q == %0d", j, j);
`endif
`endif
endmodule
`default_nettype wire

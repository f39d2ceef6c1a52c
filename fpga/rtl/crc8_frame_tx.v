// One CRC-8 framed message on a UART-like line, no queue: MARKER, N payload bytes (data_i, most
// significant byte first), CRC-8/SMBUS (poly 0x07, init 0) over the N payload bytes
// (docs/physical-layer.md sections 2 and 6: the herald frame has N = 9, t big-endian and bell;
// the midpoint header N = 4, seq big-endian). The line is uart_tx (8N1, LSB first, BIT_CYCLES
// cycles per bit; B2B = 1: the bytes follow each other without idle time, as herald_tx sends).
// Used by the station's herald_tx (behind its queue) and by the node's test_gen (herald loop and
// header stream).
//
// go_i starts the frame (ignored while busy_o is high): the marker is handed to the UART in the
// next cycle. load_i takes data_i into the shift register; it may come before go_i (the caller
// then need not hold the payload: test_gen's herald loop loads the attempt's timestamp in the
// fire cycle and starts two cycles later), with it, or in the cycle after it (herald_tx loads
// from its queue's registered read a cycle after the pop): the first payload byte is read two
// cycles after go_i at the earliest (marker handed to an idle UART in go + 1, first payload byte
// loaded in go + 2). bad_i, sampled when the CRC byte is formed, sends the complement of the CRC
// (a malformed frame). done_o is high in the last cycle of busy_o.
//
// Timing (ECP5 200 MHz): go_i drives only send_q and bv_q; the frame's other state (byte index,
// CRC, the marker in byte_q) is preset when the previous frame ends (and at reset). What the next
// load is (payload byte, CRC, end) is decoded when the UART takes a byte, into one-cycle flags:
// the load follows the take in the next cycle, so each register's enable is one flag flip-flop.
`default_nettype none
module crc8_frame_tx #(
    parameter       N          = 9,     // payload bytes (1 .. 13)
    parameter       BIT_CYCLES = 4,
    parameter       B2B        = 1,
    parameter [7:0] MARKER     = 8'hA5,
    parameter       FAST       = 0      // uart_tx's FAST (1: the ECP5 station's herald lines)
) (
    input  wire         clk_i,
    input  wire         rst_i,
    input  wire         load_i,
    input  wire [8*N-1:0] data_i,
    input  wire         go_i,
    input  wire         bad_i,
    output wire         busy_o,
    output wire         done_o,
    output wire         line_o
);
    localparam IW = $clog2(N + 3);
    reg  [IW-1:0]  idx_q;               // bytes handed to the UART so far
    reg  [8*N-1:0] sr_q;                // payload bytes still to send, MSB first
    reg  [7:0]     crc_q;
    reg  [7:0]     byte_q;
    reg            bv_q;                // byte_q waits for the UART
    reg            send_q;
    reg            ld_dat_q;            // this cycle: load the next payload byte (one cycle)
    reg            ld_crc_q;            // this cycle: load the CRC byte (one cycle)
    reg            ld_q;                // ld_dat_q || ld_crc_q (bv_q's set term: timing)
    reg            end_q;               // this cycle: the frame is out (one cycle)
    wire           tx_ready;
    wire           take = bv_q && tx_ready;
    wire [7:0]     crc_nx;
    crc_byte #(.WIDTH(8), .POLY(8'h07)) u_crc (.crc_i(crc_q), .data_i(sr_q[8*N-1 -: 8]),
                                             .crc_o(crc_nx));
    assign busy_o = send_q;
    assign done_o = end_q;

    always @(posedge clk_i) begin
        if (rst_i) begin
            send_q <= 1'b0;
            idx_q <= {IW{1'b0}};
            sr_q <= {8*N{1'b0}};
            crc_q <= 8'd0;
            byte_q <= MARKER;
            bv_q <= 1'b0;
            ld_dat_q <= 1'b0;
            ld_crc_q <= 1'b0;
            ld_q <= 1'b0;
            end_q <= 1'b0;
        end else begin
            // the UART took byte idx_q: the next one is payload (idx_q 0 .. N-1), the CRC
            // (idx_q N) or none (idx_q N+1: the frame is out in the next cycle)
            ld_dat_q <= take && (idx_q < IW'(N));
            ld_crc_q <= take && (idx_q == IW'(N));
            ld_q <= take && (idx_q <= IW'(N));
            end_q <= take && (idx_q == IW'(N + 1));
            // byte_q waits: a load (ld_q), the start (the marker), or not yet taken; as one
            // expression (timing: one LUT level less than the take / start / load enables)
            bv_q <= ld_q || (go_i && !send_q) || (bv_q && !tx_ready);
            if (take) idx_q <= idx_q + 1'b1;
            if (go_i && !send_q)        // byte_q holds the marker since the last frame's end
                send_q <= 1'b1;
            if (load_i) sr_q <= data_i;
            if (ld_dat_q) begin
                byte_q <= sr_q[8*N-1 -: 8];
                sr_q <= {sr_q[8*N-9:0], 8'd0};
                crc_q <= crc_nx;
            end
            if (ld_crc_q) byte_q <= bad_i ? ~crc_q : crc_q;
            if (end_q) begin            // preset the next frame: index, CRC init, marker
                send_q <= 1'b0;
                idx_q <= {IW{1'b0}};
                crc_q <= 8'd0;
                byte_q <= MARKER;
            end
        end
    end

    uart_tx #(.CLKS_PER_BIT(BIT_CYCLES), .B2B(B2B), .FAST(FAST)) u_tx (
        .clk_i(clk_i), .rst_i(rst_i), .data_i(byte_q), .valid_i(bv_q), .ready_o(tx_ready),
        .tx_o(line_o)
    );
endmodule
`default_nettype wire

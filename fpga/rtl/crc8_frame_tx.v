// One CRC-8 framed message on a UART-like line, no queue: MARKER, N payload bytes (data_i, most
// significant byte first), CRC-8/SMBUS (poly 0x07, init 0) over the N payload bytes
// (docs/physical-layer.md sections 2 and 6: the herald frame has N = 9, t big-endian and bell;
// the midpoint header N = 4, seq big-endian). The line is uart_tx (8N1, LSB first, BIT_CYCLES
// cycles per bit; B2B = 1: the bytes follow each other without idle time, as herald_tx sends).
//
// load_i takes data_i into the shift register (only while idle: busy_o low); go_i starts the
// frame: the marker is handed to the UART in the next cycle. load_i and go_i may come in the
// same cycle or load_i earlier (the caller then need not hold the payload: the test pattern
// generator's herald loop loads the attempt's timestamp in the fire cycle and starts two cycles
// later, the latency of herald_tx's queue). bad_i, sampled when the CRC byte is formed, sends
// the complement of the CRC (a malformed frame). done_o is high in the last cycle of busy_o.
// The sequencer is the one of herald_tx (station), without its 2-deep queue: a caller that
// never starts a frame while one is being sent needs no queue (test_gen.v).
`default_nettype none
module crc8_frame_tx #(
    parameter       N          = 9,     // payload bytes (1 .. 13)
    parameter       BIT_CYCLES = 4,
    parameter       B2B        = 1,
    parameter [7:0] MARKER     = 8'hA5
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
    wire           tx_ready;
    wire [7:0]     crc_nx;
    crc_byte #(.WIDTH(8), .POLY(8'h07)) u_crc (.crc_i(crc_q), .data_i(sr_q[8*N-1 -: 8]),
                                             .crc_o(crc_nx));
    assign busy_o = send_q;
    assign done_o = send_q && !bv_q && (idx_q == IW'(N + 2));

    always @(posedge clk_i) begin
        if (rst_i) begin
            send_q <= 1'b0;
            idx_q <= {IW{1'b0}};
            sr_q <= {8*N{1'b0}};
            crc_q <= 8'd0;
            byte_q <= 8'hFF;
            bv_q <= 1'b0;
        end else begin
            if (load_i) sr_q <= data_i;
            if (go_i && !send_q) begin
                send_q <= 1'b1;
                idx_q <= {IW{1'b0}};
                crc_q <= 8'd0;
                byte_q <= MARKER;
                bv_q <= 1'b1;
            end else if (send_q) begin
                if (bv_q) begin
                    if (tx_ready) begin
                        bv_q <= 1'b0;
                        idx_q <= idx_q + 1'b1;
                    end
                end else if (idx_q == IW'(N + 2)) begin
                    send_q <= 1'b0;
                end else if (idx_q == IW'(N + 1)) begin
                    byte_q <= bad_i ? ~crc_q : crc_q;
                    bv_q <= 1'b1;
                end else begin
                    byte_q <= sr_q[8*N-1 -: 8];
                    sr_q <= {sr_q[8*N-9:0], 8'd0};
                    crc_q <= crc_nx;
                    bv_q <= 1'b1;
                end
            end
        end
    end

    uart_tx #(.CLKS_PER_BIT(BIT_CYCLES), .B2B(B2B)) u_tx (
        .clk_i(clk_i), .rst_i(rst_i), .data_i(byte_q), .valid_i(bv_q), .ready_o(tx_ready),
        .tx_o(line_o)
    );
endmodule
`default_nettype wire

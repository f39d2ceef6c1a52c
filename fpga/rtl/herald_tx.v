// Herald line transmitter of the station, one per line (docs/physical-layer.md section 2).
//
// A herald (t, bell) becomes an 11-byte frame on line_o: marker byte MARKER, t (8 bytes,
// big-endian), bell (1 byte), CRC-8/SMBUS (poly 0x07, init 0) over the 9 bytes of t and bell.
// The line is UART-like (idle high, 8N1, LSB first, BIT_CYCLES cycles per bit: uart_tx with
// CLKS_PER_BIT = BIT_CYCLES, B2B = 1); the bytes of a frame follow each other without idle time
// (a start bit right after the previous stop bit): a frame takes 11 x 10 bit periods, as the
// contract and the twin's station (frame_cycles) have it.
// Heralds decided while a frame is being sent wait in a 2-deep queue (besides the frame being
// sent); a herald that finds the queue full is dropped and drop_o pulses (CNT_HL_DROP).
// A queued herald's frame starts right after the previous frame's last stop bit (back to back).
`default_nettype none
module herald_tx #(
    parameter       BIT_CYCLES = 4,     // >= 4
    parameter [7:0] MARKER     = 8'hA5
) (
    input  wire        clk_i,
    input  wire        rst_i,
    input  wire        push_i,
    input  wire [63:0] t_i,
    input  wire        bell_i,
    output reg         drop_o,
    output wire        busy_o,          // a frame is being sent or waits
    output wire        line_o
);
    // ---------------------------------------------------------------- queue (2 entries)
    reg        v0_q, v1_q;
    reg [64:0] q0_q, q1_q;             // {t, bell}
    reg        send_q;                 // a frame is being handed to the UART
    wire       pop = !send_q && v0_q;
    // occupancy after this cycle's pop
    wire       v0_a = pop ? v1_q : v0_q;
    wire       v1_a = pop ? 1'b0 : v1_q;

    // ---------------------------------------------------------------- frame sequencer
    reg  [3:0]  idx_q;                 // bytes handed to the UART so far
    reg  [71:0] sr_q;                  // t and bell bytes still to send, MSB first
    reg  [7:0]  crc_q;
    reg  [7:0]  byte_q;
    reg         bv_q;                  // byte_q waits for the UART
    // what the next load (the cycle after the UART took byte_q) is, decoded from idx_q when the
    // UART takes a byte instead of from idx_q at the load (timing: the compares fanned out into
    // the enables of sr_q / crc_q / byte_q); cycle for cycle the same sequence
    reg         ld_dat_q;              // next: a t / bell byte (idx_q 1..9)
    reg         ld_crc_q;              // next: the CRC byte (idx_q 10)
    wire        tx_ready;
    wire [7:0]  crc_nx;
    crc_byte #(.WIDTH(8), .POLY(8'h07)) u_crc (.crc_i(crc_q), .data_i(sr_q[71:64]), .crc_o(crc_nx));
    assign busy_o = send_q || v0_q;

    always @(posedge clk_i) begin
        if (rst_i) begin
            v0_q <= 1'b0;
            v1_q <= 1'b0;
            q0_q <= 65'd0;
            q1_q <= 65'd0;
            drop_o <= 1'b0;
            send_q <= 1'b0;
            idx_q <= 4'd0;
            sr_q <= 72'd0;
            crc_q <= 8'd0;
            byte_q <= 8'hFF;
            bv_q <= 1'b0;
            ld_dat_q <= 1'b0;
            ld_crc_q <= 1'b0;
        end else begin
            drop_o <= push_i && v0_a && v1_a;
            if (pop) begin
                q0_q <= q1_q;
                v0_q <= v1_q;
                v1_q <= 1'b0;
            end
            if (push_i) begin
                if (!v0_a) begin
                    q0_q <= {t_i, bell_i};
                    v0_q <= 1'b1;
                end else if (!v1_a) begin
                    q1_q <= {t_i, bell_i};
                    v1_q <= 1'b1;
                end
            end
            if (pop) begin
                send_q <= 1'b1;
                idx_q <= 4'd0;
                sr_q <= {q0_q[64:1], 7'd0, q0_q[0]};
                crc_q <= 8'd0;
                byte_q <= MARKER;
                bv_q <= 1'b1;
            end else if (send_q) begin
                if (bv_q) begin
                    if (tx_ready) begin
                        bv_q <= 1'b0;
                        idx_q <= idx_q + 4'd1;
                        ld_dat_q <= (idx_q <= 4'd8);
                        ld_crc_q <= (idx_q == 4'd9);
                    end
                end else if (ld_dat_q) begin
                    byte_q <= sr_q[71:64];
                    sr_q <= {sr_q[63:0], 8'd0};
                    crc_q <= crc_nx;
                    bv_q <= 1'b1;
                end else if (ld_crc_q) begin
                    byte_q <= crc_q;
                    bv_q <= 1'b1;
                end else begin              // idx_q == 11: the frame is out
                    send_q <= 1'b0;
                end
            end
        end
    end

    uart_tx #(.CLKS_PER_BIT(BIT_CYCLES), .B2B(1)) u_tx (
        .clk_i(clk_i), .rst_i(rst_i), .data_i(byte_q), .valid_i(bv_q), .ready_o(tx_ready),
        .tx_o(line_o)
    );
endmodule
`default_nettype wire

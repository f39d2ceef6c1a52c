// Frame transmitter: builds seq | opcode | payload | CRC-16/CCITT-FALSE (big-endian), COBS-encodes
// it and ends it with 0x00. One frame at a time (valid/ready); output is a valid/ready byte stream
// for uart_tx. Frames are at most 4 + PMAX bytes (< 254, one COBS block size).
// Payload byte i is payload_i[8*(PMAX-i)-1 -: 8].
//
// Timing: no indexed reads. The frame bytes sit in a ring of shift registers whose head (ring_q[0])
// is the next byte: the CRC pass rotates the ring once round (BMAX steps, the head feeds the CRC
// for the n = len + 2 frame bytes) and so leaves it as loaded; the COBS pass shifts it one byte per
// byte sent or zero skipped. Per-position flags (zero byte / CRC high / CRC low / frame end) are
// built once, from a registered thermometer code of n, and shift along with the head. A block's
// length is found by shifting a copy of the zero-or-end flags until its bit 0 is set. Every
// decision is a registered flag, every shift enable a flip-flop. Each data byte takes two cycles
// (send, then shift) and the scan one per byte: far faster than the UART (10 bit times per byte).
`default_nettype none
module frame_tx #(
    parameter PMAX = 16
) (
    input  wire              clk_i,
    input  wire              rst_i,
    input  wire              valid_i,
    output wire              ready_o,
    input  wire [7:0]        seq_i,
    input  wire [7:0]        op_i,
    input  wire [5:0]        len_i,
    input  wire [8*PMAX-1:0] payload_i,
    output reg  [7:0]        byte_o,
    output reg               byte_valid_o,
    input  wire              byte_ready_i
);
    localparam BMAX = PMAX + 2;              // ring bytes: seq, op, payload
    localparam L    = BMAX + 3;              // stream positions: frame, 2 CRC bytes, end marker
    localparam CW   = $clog2(L + 1);         // block length / step counter width
    localparam [2:0] S_IDLE = 3'd0, S_CRC = 3'd1, S_FIN = 3'd2, S_SETUP = 3'd3, S_SCAN = 3'd4,
                     S_CODE = 3'd5, S_DATA = 3'd6, S_DELIM = 3'd7;

    reg [2:0]      state_q;
    reg            idle_q;          // state_q == S_IDLE (registered copy: ready_o)
    reg [7:0]      ring_q [0:BMAX-1];
    reg            shift_q;         // rotate the ring (and the stream flags) this cycle
    reg [L-1:0]    th_q;            // th_q[i]: i < n (position i is a frame byte), from len_i
    reg [BMAX-1:0] crcen_q;         // CRC pass: the head is a frame byte (rotates with the ring)
    reg            crc1_q;          // first CRC step: crcen_q is taken from th_q now
    reg [CW-1:0]   cnt_q;           // CRC pass steps left / block bytes left to send
    reg            cnt1_q;          // CRC pass: cnt_q == 1; COBS pass: no block byte left
    reg [15:0]     crc_q;
    reg [7:0]      rd_q;            // head byte of the last CRC step
    reg            crc_en_q;        // ... a frame byte: add it to the CRC
    reg [1:0]      fin_q;           // S_FIN cycles left (CRC pipeline, zero flags)
    reg            hz_q, lz_q;      // CRC high / low byte is zero
    reg [BMAX-1:0] zero_q;          // zero_q[i]: ring_q[i] == 0 (registered)
    /* verilator lint_off UNUSEDSIGNAL */
    reg [L-1:0]    zr_q;            // stream position i (from the head) ends a block: 0x00 or end
    /* verilator lint_on UNUSEDSIGNAL */                // (bit 0 is scan_q's job)
    reg [L-1:0]    er_q;            // ... is the frame end
    reg [L-1:0]    hr_q, lr_q;      // ... is the CRC high / low byte
    reg [L-1:0]    scan_q;          // copy of zr_q shifted by the scan
    reg [CW-1:0]   blk_q;           // bytes before the block's end (scan count)
    reg            ph_q;            // S_DATA: 0 = send the head byte, 1 = shift (timing)

    wire [15:0] crc_nx;
    crc_byte #(.WIDTH(16), .POLY(16'h1021)) u_crc (.crc_i(crc_q), .data_i(rd_q), .crc_o(crc_nx));

    assign ready_o = idle_q;
    // The output register is free once its byte has been taken (a cycle after the handshake).
    // Not "|| byte_ready_i": the UART's ready is a far flip-flop and fed every enable of this
    // block through three LUTs (ECP5 critical path). No gap on the line: the next byte is
    // written while the UART sends this one (10 * CLKS_PER_BIT cycles).
    wire out_free = !byte_valid_o;

    integer i;
    always @(posedge clk_i) begin
        for (i = 0; i < BMAX; i = i + 1) zero_q[i] <= (ring_q[i] == 8'h00);
        // ring: loaded in every idle cycle (the last one is the load: idle_q falls after it) or
        // rotated (enables from flip-flops only: timing)
        if (idle_q) begin
            ring_q[0] <= seq_i;
            ring_q[1] <= op_i;
            for (i = 0; i < PMAX; i = i + 1) ring_q[i+2] <= payload_i[8*(PMAX-i)-1 -: 8];
        end else if (shift_q) begin
            for (i = 0; i < BMAX - 1; i = i + 1) ring_q[i] <= ring_q[i+1];
            ring_q[BMAX-1] <= ring_q[0];
        end
    end

    // stream flags of position p from th_q (p < n), the CRC zero flags and the byte zero flags
    reg [L-1:0] z_init, e_init, h_init, l_init;
    integer p;
    always @* begin
        for (p = 0; p < L; p = p + 1) begin
            h_init[p] = !th_q[p] && (p >= 1 && th_q[(p >= 1) ? p - 1 : 0]);              // p == n
            l_init[p] = !th_q[p] && (p >= 2 && th_q[(p >= 2) ? p - 2 : 0])              // p == n + 1
                        && !(p >= 1 && th_q[(p >= 1) ? p - 1 : 0]);
            e_init[p] = !th_q[p] && !(p >= 1 && th_q[(p >= 1) ? p - 1 : 0])             // p >= n + 2
                        && !(p >= 2 && th_q[(p >= 2) ? p - 2 : 0]);
            z_init[p] = th_q[p] ? ((p < BMAX) ? zero_q[(p < BMAX) ? p : 0] : 1'b1)
                      : h_init[p] ? hz_q : l_init[p] ? lz_q : 1'b1;
        end
    end

    // the same, registered every cycle (S_SETUP loads these: timing, the flags are three LUT
    // levels from th_q / the CRC zero flags). They are final in the last S_FIN cycle (the CRC
    // zero flags are set in the one before), so the registered copy is final in S_SETUP.
    reg [L-1:0] zi_q, ei_q, hi_q, li_q;
    always @(posedge clk_i) begin
        zi_q <= z_init;
        ei_q <= e_init;
        hi_q <= h_init;
        li_q <= l_init;
    end

    integer k;
    always @(posedge clk_i) begin
        if (byte_valid_o && byte_ready_i) byte_valid_o <= 1'b0;
        shift_q <= 1'b0;
        crc_en_q <= 1'b0;
        if (crc_en_q) crc_q <= crc_nx;
        // k < len + 2: a compare of len_i with a constant per bit, taken in every idle cycle (the
        // last one is the load; enable from a flip-flop: timing). No reset: the state is idle
        // after reset, so they are loaded before any frame starts (a reset term had put one more
        // LUT level behind the compare).
        // crcen_q is not compared here as well: it is th_q's first BMAX bits, taken by the first
        // CRC step (the compare into crcen's rotate mux had been 3 levels after a carry chain).
        if (idle_q) begin
            for (k = 0; k < L; k = k + 1) th_q[k] <= (k < 2) || ({26'd0, len_i} > k - 2);
        end
        if (rst_i) begin
            state_q <= S_IDLE;
            idle_q <= 1'b1;
            cnt_q <= {CW{1'b0}};
            cnt1_q <= 1'b0;
            crc1_q <= 1'b0;
            crc_q <= 16'hFFFF;
            rd_q <= 8'd0;
            fin_q <= 2'd0;
            hz_q <= 1'b0;
            lz_q <= 1'b0;
            zr_q <= {L{1'b0}};
            er_q <= {L{1'b0}};
            hr_q <= {L{1'b0}};
            lr_q <= {L{1'b0}};
            scan_q <= {L{1'b0}};
            blk_q <= {CW{1'b0}};
            ph_q <= 1'b0;
            byte_o <= 8'd0;
            byte_valid_o <= 1'b0;
        end else begin
            case (state_q)
                S_IDLE: if (valid_i) begin
                    crc_q <= 16'hFFFF;
                    cnt_q <= CW'(BMAX);
                    cnt1_q <= 1'b0;
                    crc1_q <= 1'b1;
                    shift_q <= 1'b1;        // the first rotation step reads the loaded head
                    idle_q <= 1'b0;
                    state_q <= S_CRC;
                end
                S_CRC: begin                // one rotation step per cycle (shift_q)
                    rd_q <= ring_q[0];
                    // step 0: position 0 (seq) is always a frame byte; crcen = th_q rotated once
                    crc1_q <= 1'b0;
                    crc_en_q <= crc1_q || crcen_q[0];
                    crcen_q <= crc1_q ? {th_q[0], th_q[BMAX-1:1]} : {crcen_q[0], crcen_q[BMAX-1:1]};
                    cnt_q <= cnt_q - 1'b1;
                    cnt1_q <= (cnt_q == CW'(2));
                    if (cnt1_q) begin
                        fin_q <= 2'd3;
                        state_q <= S_FIN;
                    end else begin
                        shift_q <= 1'b1;
                    end
                end
                S_FIN: begin                // last CRC step, then its zero flags
                    fin_q <= fin_q - 2'd1;
                    hz_q <= (crc_q[15:8] == 8'h00);
                    lz_q <= (crc_q[7:0] == 8'h00);
                    if (fin_q == 2'd1) state_q <= S_SETUP;
                end
                S_SETUP: begin
                    zr_q <= zi_q;
                    scan_q <= zi_q;
                    er_q <= ei_q;
                    hr_q <= hi_q;
                    lr_q <= li_q;
                    blk_q <= {CW{1'b0}};
                    state_q <= S_SCAN;
                end
                S_SCAN: begin               // scan_q[0]: the block ends blk_q bytes after the head
                    if (scan_q[0]) begin
                        state_q <= S_CODE;
                    end else begin
                        scan_q <= {1'b1, scan_q[L-1:1]};
                        blk_q <= blk_q + 1'b1;
                    end
                end
                S_CODE: if (out_free) begin
                    byte_o <= 8'(blk_q) + 8'd1;
                    byte_valid_o <= 1'b1;
                    cnt_q <= blk_q;
                    cnt1_q <= (blk_q == {CW{1'b0}});   // from here: no block byte left
                    ph_q <= 1'b0;
                    state_q <= S_DATA;
                end
                S_DATA: if (!ph_q) begin
                    if (cnt1_q) begin       // block sent: the head is the frame end or a zero
                        if (er_q[0]) begin
                            state_q <= S_DELIM;
                        end else begin      // skip the zero
                            shift_q <= 1'b1;
                            ph_q <= 1'b1;
                        end
                    end else if (out_free) begin
                        byte_o <= hr_q[0] ? crc_q[15:8] : lr_q[0] ? crc_q[7:0] : ring_q[0];
                        byte_valid_o <= 1'b1;
                        shift_q <= 1'b1;
                        cnt_q <= cnt_q - 1'b1;
                        ph_q <= 1'b1;
                    end
                end else begin              // the ring shifts now; shift the flags with it
                    ph_q <= 1'b0;
                    zr_q <= {1'b1, zr_q[L-1:1]};
                    er_q <= {1'b1, er_q[L-1:1]};
                    hr_q <= {1'b0, hr_q[L-1:1]};
                    lr_q <= {1'b0, lr_q[L-1:1]};
                    if (cnt1_q) begin       // that was the skipped zero: next block
                        scan_q <= {1'b1, zr_q[L-1:1]};
                        blk_q <= {CW{1'b0}};
                        state_q <= S_SCAN;
                    end else begin
                        cnt1_q <= (cnt_q == {CW{1'b0}});
                    end
                end
                S_DELIM: if (out_free) begin
                    byte_o <= 8'h00;
                    byte_valid_o <= 1'b1;
                    idle_q <= 1'b1;
                    state_q <= S_IDLE;
                end
                default: state_q <= S_IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire

// Frame transmitter: builds seq | opcode | payload | CRC-16/CCITT-FALSE (big-endian), COBS-encodes
// it and ends it with 0x00. One frame at a time (valid/ready); output is a valid/ready byte stream
// for uart_tx. The encoder scans for the next zero one byte per cycle: far faster than the UART,
// so it never starves the line. Frames are at most 4 + PMAX bytes (< 254, one COBS block size).
// Payload byte i is payload_i[8*(PMAX-i)-1 -: 8].
// The two CRC bytes are not copied into the buffer: positions n and n+1 of the frame read crc_q
// directly (saves a dynamically indexed write). Zero flags are registered for the scan (timing).
// Scan and data bytes take two cycles each: the first registers the index compares and the byte at
// idx_q, the second acts on them (timing; the UART takes a byte every 10 bit times anyway).
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
    localparam BMAX = PMAX + 2;              // seq, op, payload
    localparam IW = $clog2(BMAX + 3);        // indices up to n + 2
    localparam [2:0] S_IDLE = 3'd0, S_CRC = 3'd1, S_SCAN = 3'd2, S_CODE = 3'd3, S_DATA = 3'd4,
                     S_DELIM = 3'd5, S_APPEND = 3'd6;
    localparam [IW-1:0] ONE = {{(IW-1){1'b0}}, 1'b1};

    reg [2:0]    state_q;
    reg [7:0]    buf_q [0:BMAX-1];
    reg [BMAX-1:0] zero_q;   // zero_q[i]: buf_q[i] == 0 (registered)
    reg [IW-1:0] n_q;        // bytes in buf_q (seq, op, payload); the frame has n_q + 2
    reg [IW-1:0] j_q;        // scan / CRC index
    reg [IW-1:0] idx_q;      // next byte to send of the current COBS block
    reg [15:0]   crc_q;
    reg [7:0]    rd_q;       // buf_q[j_q] of the previous cycle (CRC input)
    reg          crc_en_q;   // rd_q holds a byte to add to the CRC
    reg          hz_q, lz_q; // CRC high / low byte is zero
    reg          ph_q;       // scan phase: 0 = look at byte j_q, 1 = act on it (timing)
    // registered every cycle from the indices of this cycle; used in the second phase, when
    // j_q / idx_q still hold the values they had in the first (timing)
    reg          jend_q;     // j_q == n_end
    reg          zj_q;       // frame byte j_q is zero
    reg          last_q;     // idx_q == j_q
    reg          ib_q;       // idx_q < n_q: frame byte idx_q is in buf_q ...
    reg          ihi_q;      // ... else idx_q == n_q: CRC high byte, else low byte
    reg  [7:0]   bbuf_q;     // buf_q[idx_q]
    reg  [7:0]   code_q;     // COBS code byte: j_q - idx_q + 1

    wire [15:0] crc_nx;
    crc_byte #(.WIDTH(16), .POLY(16'h1021)) u_crc (.crc_i(crc_q), .data_i(rd_q), .crc_o(crc_nx));

    wire [IW-1:0] n_end = n_q + IW'(2);          // frame length
    wire [IW-1:0] blk_len = j_q - idx_q;
    // frame byte k: buffer below n, then the CRC (big-endian)
    wire in_buf_j   = (j_q < n_q);
    wire in_buf_idx = (idx_q < n_q);
    wire zero_j = in_buf_j ? zero_q[j_q[$clog2(BMAX)-1:0]] : ((j_q == n_q) ? hz_q : lz_q);
    wire [7:0] byte_idx = ib_q ? bbuf_q : (ihi_q ? crc_q[15:8] : crc_q[7:0]);  // from registers

    assign ready_o = (state_q == S_IDLE);
    wire out_free = !byte_valid_o || byte_ready_i;

    integer z;
    always @(posedge clk_i)
        for (z = 0; z < BMAX; z = z + 1) zero_q[z] <= (buf_q[z] == 8'h00);

    always @(posedge clk_i) begin
        jend_q <= (j_q == n_end);
        zj_q   <= zero_j;
        last_q <= (idx_q == j_q);
        ib_q   <= in_buf_idx;
        ihi_q  <= (idx_q == n_q);
        bbuf_q <= buf_q[idx_q[$clog2(BMAX)-1:0]];
        code_q <= {{(8-IW){1'b0}}, blk_len} + 8'd1;
    end

    integer i;
    always @(posedge clk_i) begin
        if (byte_valid_o && byte_ready_i) byte_valid_o <= 1'b0;
        if (rst_i) begin
            state_q <= S_IDLE;
            for (i = 0; i < BMAX; i = i + 1) buf_q[i] <= 8'd0;
            n_q <= {IW{1'b0}};
            j_q <= {IW{1'b0}};
            idx_q <= {IW{1'b0}};
            crc_q <= 16'hFFFF;
            rd_q <= 8'd0;
            crc_en_q <= 1'b0;
            hz_q <= 1'b0;
            lz_q <= 1'b0;
            ph_q <= 1'b0;
            byte_o <= 8'd0;
            byte_valid_o <= 1'b0;
        end else begin
            case (state_q)
                S_IDLE: if (valid_i) begin
                    buf_q[0] <= seq_i;
                    buf_q[1] <= op_i;
                    for (i = 0; i < PMAX; i = i + 1) buf_q[i+2] <= payload_i[8*(PMAX-i)-1 -: 8];
                    n_q   <= IW'(len_i + 6'd2);
                    j_q   <= {IW{1'b0}};
                    crc_q <= 16'hFFFF;
                    crc_en_q <= 1'b0;
                    state_q <= S_CRC;
                end
                S_CRC: begin
                    if (crc_en_q) crc_q <= crc_nx;
                    if (j_q == n_q) begin
                        crc_en_q <= 1'b0;
                        state_q <= S_APPEND;
                    end else begin
                        rd_q <= buf_q[j_q[$clog2(BMAX)-1:0]];
                        crc_en_q <= 1'b1;
                        j_q <= j_q + ONE;
                    end
                end
                S_APPEND: begin            // crc_q is final; zero_q is current by now
                    hz_q  <= (crc_q[15:8] == 8'h00);
                    lz_q  <= (crc_q[7:0] == 8'h00);
                    j_q   <= {IW{1'b0}};
                    idx_q <= {IW{1'b0}};
                    state_q <= S_SCAN;
                end
                S_SCAN: begin          // two cycles per byte: the UART is far slower anyway
                    ph_q <= !ph_q;
                    if (ph_q) begin
                        if (jend_q || zj_q) state_q <= S_CODE;  // byte j_q ends the block
                        else j_q <= j_q + ONE;
                    end
                end
                S_CODE: if (out_free) begin    // j_q, idx_q unchanged since the last scan cycle
                    byte_o <= code_q;
                    byte_valid_o <= 1'b1;
                    state_q <= S_DATA;
                end
                S_DATA: if (!ph_q) begin
                    ph_q <= 1'b1;              // last_q, jend_q, ib_q, ihi_q, bbuf_q load
                end else if (out_free) begin
                    ph_q <= 1'b0;
                    if (last_q) begin
                        if (jend_q) begin
                            state_q <= S_DELIM;
                        end else begin
                            // skip the zero; the next block starts after it
                            idx_q <= j_q + ONE;
                            j_q   <= j_q + ONE;
                            state_q <= S_SCAN;
                        end
                    end else begin
                        byte_o <= byte_idx;
                        byte_valid_o <= 1'b1;
                        idx_q <= idx_q + ONE;
                    end
                end
                S_DELIM: if (out_free) begin
                    byte_o <= 8'h00;
                    byte_valid_o <= 1'b1;
                    state_q <= S_IDLE;
                end
                default: state_q <= S_IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire

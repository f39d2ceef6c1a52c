// HDR_BLOCK frame transmitter (wire v4, docs/header-path.md section 2): the one 67-byte event,
// streamed from hdr_block's buffer instead of a 536-bit payload register.
//
// Frame: seq | 0xA6 | 67 payload bytes (buffer offsets 0..66; entry bytes at offsets >= 19 + used
// are sent as 0) | CRC-16/CCITT-FALSE (big-endian), COBS-encoded, then 0x00 (like frame_tx). The
// buffer read is pipelined: rd_byte_i is the byte at the rd_off_o of RL cycles before (hdr_block's
// read latency, RL >= 1: 3 in the top, a registered address copy per buffer, the buffer's read and
// a registered 8:1 buffer select), and a byte is selected into val_q (seq, opcode, CRC or 0 for
// unused entries by its frame position) the cycle it arrives. The CRC pass and each COBS block's
// scan (to the next zero or the frame end, for the code byte) issue one read per cycle (a scan
// drops the reads beyond its end); the block's bytes are then re-read one at a time as the UART
// takes them (RL + 3 cycles a byte, far below a UART byte). Token to first byte: 69 + RL + 3
// (CRC) + 2 + k0 + RL + 2 (first scan, k0 its bytes: 2 unless seq = 0 or blk >= 256) + 1 cycles
// (BLK_TX_LEAD of sim/twin/model.py). A UART byte is 10 * CLKS_PER_BIT cycles, so the line has no
// gaps beyond the first block's scan (the frame is 71 bytes < 254: no 0xFF code). valid_i /
// ready_o as frame_tx; ready_o also waits for the last byte to be taken, and the first byte waits
// for other_busy_i (frame_tx's last byte), so the two transmitters share uart_tx without overlap.
// rel_o: the block has been sent (release its buffer).
`default_nettype none
`include "wire_spec.vh"
module blk_tx #(
    parameter PL = `HW_LEN_HDR_BLOCK,   // payload bytes (67)
    parameter RL = 3,                   // buffer read latency (rd_off_o -> rd_byte_i), >= 1
    parameter LUTRAM = 0                // != 0: the ECP5 builds (the tops' FIFO_LUTRAM): the
                                        // register g_fast below; 0 (iCE40): without it
) (
    input  wire        clk_i,
    input  wire        rst_i,
    input  wire        valid_i,
    output wire        ready_o,
    input  wire [7:0]  seq_i,
    output reg  [6:0]  rd_off_o,
    input  wire [7:0]  rd_byte_i,      // buffer byte at rd_off_o of RL cycles before
    output reg         rel_o,
    input  wire        other_busy_i,
    output reg  [7:0]  byte_o,
    output reg         byte_valid_o,
    input  wire        byte_ready_i
);
    localparam L = PL + 4;             // frame bytes with the CRC
    localparam [3:0] T_IDLE = 4'd0, T_CRC = 4'd1, T_SCAN0 = 4'd2, T_SCAN = 4'd3, T_CODE = 4'd4,
                     T_DFETCH = 4'd5, T_DWAIT = 4'd6, T_AFTER = 4'd7, T_DELIM = 4'd8;
    reg [3:0]  st_q;
    reg        idle_q;
    reg [7:0]  seq_q;
    reg [6:0]  f_q;                    // next frame position to read (CRC pass, scan)
    reg        fon_q;                  // reads are issued from f_q
    reg [6:0]  fend_q;                 // the last position to read in this pass
    reg [6:0]  p_q;                    // data: frame position being sent
    reg [6:0]  ps_q;                   // the COBS block's first position
    reg [6:0]  k_q;                    // bytes in the COBS block
    reg [6:0]  j_q;                    // block bytes sent
    reg        zend_q;                 // the block ends at a zero (else at the frame end)
    reg [RL:0] tv_q;                   // reads in flight: valid
    reg [6:0]  tp_q [0:RL];            // and frame position
    // and its kind, decoded from the position at the issue (the compares at the byte's arrival
    // into val_q were an ECP5 path at 155 MHz): seq, opcode, CRC high / low, the last CRC'd byte
    localparam K_SEQ = 0, K_OP = 1, K_CH = 2, K_CL = 3, K_L3 = 4;
    reg [4:0]  tk_q [0:RL];
    reg        tge_q;                  // tp >= lim_q (registered a stage early, see below)
    reg [4:0]  vk_q;                   // kind of val_q
    reg        vz_q;                   // val_q == 0
    reg        seqz_q, chz_q, clz_q;   // seq_q / crc_q's bytes == 0 (a cycle late: both are
                                       // stable while reads are in flight)
    reg        jl_q;                   // T_DWAIT: j_q + 1 == k_q (the block's last byte)
    reg [6:0]  jr_q;                   // T_DWAIT: k_q - 1 - j_q (bytes after this one)
    reg [7:0]  kc_q;                   // the block's code byte, k_q + 1 (set with k_q)
    reg        pl_q;                   // T_SCAN0: p_q == L (set by the two states before it:
                                       // the compare into k_q / kc_q / zend_q / f_q was an
                                       // ECP5 path at 5.4 ns, eleventh session)
    // The UART handshake (byte_valid_o, other_busy_i) enables only byte_valid_o, byte_o and
    // st_q: p_q / jl_q / jr_q step when a byte's read is issued (T_DFETCH), byte_o loads in
    // every cycle no byte is held (it is used only with byte_valid_o) and the code byte is
    // registered with k_q (the handshake into ~30 enables and k_q + 1 into byte_o were the
    // block path's ECP5 paths at 5.7-6.1 ns, tenth session); same bytes in the same cycles
    reg [7:0]  val_q;                  // the byte of frame position vp_q
    reg [6:0]  vp_q;
    wire [6:0] dq_f;                   // LUTRAM != 0: vp_q - ps_q, registered (g_fast)
    reg        vv_q;
    reg [6:0]  lim_q;                  // positions >= lim_q are unused entry bytes (0)
    reg [15:0] crc_q;
    wire [15:0] crc_nx;
    crc_byte #(.WIDTH(16), .POLY(16'h1021)) u_crc (.crc_i(crc_q), .data_i(val_q), .crc_o(crc_nx));

    assign ready_o = idle_q && !byte_valid_o;
    wire out_free = !byte_valid_o && !other_busy_i;

    // the byte at frame position tp (rd_byte_i: the buffer byte at tp - 2). tp >= lim_q is
    // compared a stage early (tge_q): lim_q changes value only in the CRC pass when position 19
    // arrives (from 127 to 21 + used >= 21), and the read behind it there is position 20, below
    // both; later passes write the same value
    wire [6:0] tp = tp_q[RL];
    wire [4:0] tk = tk_q[RL];
    wire [7:0] sel = tk[K_SEQ] ? seq_q
                   : tk[K_OP] ? `HW_OP_HDR_BLOCK
                   : tk[K_CH] ? crc_q[15:8]
                   : tk[K_CL] ? crc_q[7:0]
                   : tge_q ? 8'h00 : rd_byte_i;
    wire       selz = tk[K_SEQ] ? seqz_q
                    : tk[K_OP] ? (`HW_OP_HDR_BLOCK == 8'h00)
                    : tk[K_CH] ? chz_q
                    : tk[K_CL] ? clz_q
                    : tge_q || rd_byte_i == 8'h00;
    // a read is issued this cycle: the pass's next position, or one data byte
    // (LUTRAM != 0: fon_q alone; it is set only in T_CRC / T_SCAN, a simulation check says so)
    wire iss_pass = (LUTRAM != 0) ? fon_q : fon_q && (st_q == T_CRC || st_q == T_SCAN);
    wire iss_data = (st_q == T_DFETCH);
    wire [6:0] ipos = iss_data ? p_q : f_q;
    // val_q is used this cycle
    wire use_v = vv_q && (st_q == T_CRC || st_q == T_SCAN || (st_q == T_DWAIT && out_free));
    // a scan ends at val_q (a zero, or the frame's last byte): the reads beyond it are dropped
    wire scan_end = vv_q && st_q == T_SCAN && (vz_q || vk_q[K_CL]);  // (K_CL: vp_q == L - 1)

    integer i;
    always @(posedge clk_i) begin
        rel_o <= 1'b0;
        if (byte_valid_o && byte_ready_i) byte_valid_o <= 1'b0;
        // read pipeline
        if (iss_pass || iss_data) rd_off_o <= ipos - 7'd2;
        tv_q <= {tv_q[RL-1:0], iss_pass || iss_data};
        tp_q[0] <= ipos;
        tk_q[0] <= {ipos == 7'(L - 3), ipos == 7'(L - 1), ipos == 7'(L - 2), ipos == 7'd1,
                    ipos == 7'd0};
        for (i = 1; i <= RL; i = i + 1) begin
            tp_q[i] <= tp_q[i - 1];
            tk_q[i] <= tk_q[i - 1];
        end
        tge_q <= (tp_q[RL - 1] >= lim_q);
        seqz_q <= (seq_q == 8'h00);
        chz_q <= (crc_q[15:8] == 8'h00);
        clz_q <= (crc_q[7:0] == 8'h00);
        if (iss_pass) begin
            if (LUTRAM == 0) f_q <= f_q + 7'd1;
            if (f_q == fend_q) fon_q <= 1'b0;
        end
        if (tv_q[RL]) begin
            val_q <= sel;
            vz_q <= selz;
            vk_q <= tk;
            vp_q <= tp;
            if (tp == 7'd19) lim_q <= 7'd21 + rd_byte_i[6:0];   // payload offset 17: used
        end
        vv_q <= tv_q[RL] || (vv_q && !use_v);
        if (scan_end) begin
            tv_q <= {(RL+1){1'b0}};
            vv_q <= 1'b0;
            fon_q <= 1'b0;
        end
        if (!byte_valid_o)
            byte_o <= (st_q == T_CODE) ? kc_q : (st_q == T_DWAIT) ? val_q : 8'h00;
        // LUTRAM != 0 (ECP5 timing, thirteenth session): p_q is cleared in every idle cycle
        // (idle_q: st_q == T_IDLE, a flip-flop) and in the reset instead of T_CRC's state decode
        // (st_q -> p_q's LSR, an ECP5 path at 5.2-5.4 ns), and f_q steps while reads are issued
        // and is p_q otherwise (f_q is used only while fon_q: it rises in T_IDLE's last cycle,
        // when p_q is 0 (a frame's T_DELIM leaves byte_valid_o set: ready_o waits a cycle), and
        // in T_SCAN0, which reads f_q from p_q in either form), instead of the increment's carry
        // chain, then the states' mux in two LUTs (5.3-5.6 ns at seeds 1-3)
        if (LUTRAM != 0) begin
            f_q <= fon_q ? f_q + 7'd1 : p_q;
            if (idle_q || rst_i) p_q <= 7'd0;
        end
        if (rst_i) begin
            st_q <= T_IDLE;
            idle_q <= 1'b1;
            byte_valid_o <= 1'b0;
            byte_o <= 8'd0;
            rd_off_o <= 7'd0;
            lim_q <= 7'd127;
            fon_q <= 1'b0;
            tv_q <= {(RL+1){1'b0}};
            vv_q <= 1'b0;
        end else begin
            case (st_q)
                T_IDLE: begin
                    // (crc_q, lim_q, f_q and fend_q are set in every idle cycle, out of the
                    // token's handshake: none is used before the frame starts)
                    crc_q <= 16'hFFFF;
                    lim_q <= 7'd127;
                    if (LUTRAM == 0) f_q <= 7'd0;   // (LUTRAM != 0: f_q is p_q, 0 here)
                    fend_q <= 7'(L - 3);
                    if (valid_i && ready_o) begin
                        seq_q <= seq_i;
                        idle_q <= 1'b0;
                        fon_q <= 1'b1;
                        st_q <= T_CRC;
                    end
                end
                T_CRC: begin                // CRC over positions 0 .. L - 3
                    if (LUTRAM == 0) p_q <= 7'd0;   // (p_q is first used in T_SCAN0)
                    pl_q <= 1'b0;
                    if (vv_q) begin
                        crc_q <= crc_nx;
                        if (vk_q[K_L3]) st_q <= T_SCAN0;    // (vp_q == L - 3)
                    end
                end
                T_SCAN0: begin              // a COBS block starts at p_q
                    ps_q <= p_q;
                    if (pl_q) begin         // (p_q == L)
                        k_q <= 7'd0;
                        kc_q <= 8'd1;
                        zend_q <= 1'b0;
                        st_q <= T_CODE;
                    end else begin
                        if (LUTRAM == 0) f_q <= p_q;
                        fend_q <= 7'(L - 1);
                        fon_q <= 1'b1;
                        st_q <= T_SCAN;
                    end
                end
                T_SCAN: begin
                    // (zend_q / k_q / kc_q in every scan cycle: the last one, scan_end's, is
                    // what T_CODE sees; scan_end in their enables was an ECP5 path at 5.4 ns)
                    zend_q <= vz_q;
                    k_q <= ((LUTRAM != 0) ? dq_f : vp_q - ps_q) + (vz_q ? 7'd0 : 7'd1);
                    kc_q <= {1'b0, (LUTRAM != 0) ? dq_f : vp_q - ps_q} + (vz_q ? 8'd1 : 8'd2);
                    if (scan_end) st_q <= T_CODE;
                end
                T_CODE: begin
                    j_q <= 7'd0;
                    jr_q <= k_q;            // (one step back: T_DFETCH steps it first)
                    p_q <= ps_q;            // back to the block's first byte
                    if (out_free) begin
                        byte_valid_o <= 1'b1;
                        st_q <= (k_q == 7'd0) ? T_AFTER : T_DFETCH;
                    end
                end
                T_DFETCH: begin             // one read of p_q issued
                    p_q <= p_q + 7'd1;
                    jl_q <= (jr_q == 7'd1); // (j_q + 1 == k_q in the T_DWAIT after)
                    jr_q <= jr_q - 7'd1;
                    st_q <= T_DWAIT;
                end
                T_DWAIT: if (use_v) begin
                    byte_valid_o <= 1'b1;
                    j_q <= j_q + 7'd1;
                    st_q <= jl_q ? T_AFTER : T_DFETCH;     // (j_q + 1 == k_q)
                end
                T_AFTER: begin              // p_q: the zero ending the block, or the frame end
                                            // (ps_q + k_q: stepped once per byte in T_DFETCH)
                    if (zend_q) begin
                        p_q <= p_q + 7'd1;
                        pl_q <= (p_q == 7'(L - 1));
                        st_q <= T_SCAN0;
                    end else begin
                        st_q <= T_DELIM;
                    end
                end
                T_DELIM: if (out_free) begin
                    byte_valid_o <= 1'b1;
                    rel_o <= 1'b1;
                    idle_q <= 1'b1;
                    st_q <= T_IDLE;
                end
                default: st_q <= T_IDLE;
            endcase
        end
    end
    // LUTRAM != 0 (ECP5 timing, twelfth session): dq_q = vp_q - ps_q, registered with vp_q from
    // the read's position, so k_q / kc_q are one carry chain from flip-flops (the difference and
    // the + 1 / + 2 after it were two carry chains in a row, ECP5 paths at 5.0-5.2 ns). In a
    // generate block, so the iCE40 netlist (LUTRAM 0) does not change: even a register yosys
    // removes as unused changed ABC's LUT count there.
    generate
        if (LUTRAM != 0) begin : g_fast
            reg [6:0] dq_q;
            always @(posedge clk_i) if (tv_q[RL]) dq_q <= tp - ps_q;     // (with vp_q)
            assign dq_f = dq_q;
`ifndef SYNTHESIS
            always @(posedge clk_i)
                if (!rst_i && st_q == T_SCAN && vv_q && dq_q != vp_q - ps_q)
                    $fatal(1, "blk_tx: dq_q differs from vp_q - ps_q");
            always @(posedge clk_i)
                if (!rst_i && ((fon_q && st_q != T_CRC && st_q != T_SCAN)
                               || idle_q != (st_q == T_IDLE)))
                    $fatal(1, "blk_tx: fon_q outside T_CRC / T_SCAN, or idle_q differs from T_IDLE");
            always @(posedge clk_i)
                if (!rst_i && st_q == T_IDLE && valid_i && ready_o && p_q != 7'd0)
                    $fatal(1, "blk_tx: a frame starts with p_q != 0 (f_q's first read)");
`endif
        end else begin : g_slow
            assign dq_f = 7'd0;
        end
    endgenerate

`ifndef SYNTHESIS
    // (simulation only) the registered kinds and flags are the compares they replace
    always @(posedge clk_i)
        if (!rst_i) begin
            if (vv_q && (vz_q != (val_q == 8'h00) || vk_q[K_CL] != (vp_q == 7'(L - 1))
                         || vk_q[K_L3] != (vp_q == 7'(L - 3))))
                $fatal(1, "blk_tx: vz_q / vk_q differ from val_q / vp_q");
            if (tv_q[RL] && (tk[K_SEQ] != (tp == 7'd0) || tk[K_OP] != (tp == 7'd1)
                             || tk[K_CH] != (tp == 7'(L - 2)) || tk[K_CL] != (tp == 7'(L - 1))
                             || tge_q != (tp >= lim_q)))
                $fatal(1, "blk_tx: the read's kind differs from its position");
            if (st_q == T_DWAIT && (jl_q != (j_q + 7'd1 == k_q) || jr_q != k_q - 7'd1 - j_q))
                $fatal(1, "blk_tx: jl_q differs from j_q + 1 == k_q");
            if (st_q == T_SCAN0 && pl_q != (p_q == 7'(L)))
                $fatal(1, "blk_tx: pl_q differs from p_q == L");
            if (st_q == T_CODE && kc_q != {1'b0, k_q} + 8'd1)
                $fatal(1, "blk_tx: kc_q differs from k_q + 1");
        end
`endif
endmodule
`default_nettype wire

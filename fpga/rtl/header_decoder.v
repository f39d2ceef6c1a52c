// Midpoint-source header decoder (spec [header]; pair-verification paper Sec. II-B).
//
// hdr_i is a UART-like line (idle high, start bit, 8 data bits LSB first, stop bit, BIT_CYCLES
// cycles per bit), synchronized by 2 FF. BIT_CYCLES = 1 (the spec, docs/header-path.md section 2):
// the line is synchronous to the device clock (the source's header transmitter counts the shared
// clock) and every bit is sampled once, in its own cycle: a low sample in idle is the start bit,
// the next 8 samples are the data bits, the 10th is the stop bit. BIT_CYCLES >= 4: an
// asynchronous line sampled mid-bit (2, 3 are not supported). A header is marker, seq (4 bytes,
// big-endian), CRC-8/SMBUS over the seq bytes. A good header takes the lowest free memory slot
// and gives HEADER(seq, ts, slot), ts = the cycle the CRC byte's stop bit is sampled (on the
// synchronized line, 2 cycles after the pin); with no free slot it gives ERROR(NO_SLOT, info=seq).
// Anything else is malformed: ERROR(BAD_HEADER, info = ERR_BAD_HEADER after the increment), never
// a HEADER. Malformed = wrong marker, wrong CRC, stop bit 0 (framing), or more than 2 byte times
// (20 bit periods) between the stop bit of one byte and the start bit of the next inside a header.
// After a framing error the decoder waits for the line to go high again. FREE / FREE_MASK: the
// command decoder presents the named slots (chk_*) while the frame waits, free_ok_o answers whether
// all are allocated (registered), and free_i then returns them (all or nothing). N_SLOTS <= 240:
// the slot index is 8 bits here (the wire field is u16; a pool of thousands would need a free
// list in block RAM instead of this bit vector). en_i = CONTROL.HEADER_EN: while 0, headers
// are still received (to stay in sync) but produce no event and no count.
// Timing: each byte is judged in registered stages after its stop-bit sample (the event leaves 3
// cycles after it; HEADER.ts is the sample cycle), and the lowest free slot is registered too: a
// slot freed in the 2 cycles just before a header's verdict is only seen by the next header.
// Event payloads are 16 bytes, byte 0 in bits [127:120], valid in the ev_valid_o cycle only.
// Block mode (blk_i = CONTROL.HDR_BLOCK, wire v4, docs/header-path.md): a good header is an
// arrival (arr_o with arr_seq_o / arr_ts_o, for hdr_block; CNT_HEADERS counts it) instead of a
// HEADER event or a pool slot; a malformed one counts in ERR_BAD_HEADER without an ERROR event.
`default_nettype none
`include "wire_spec.vh"
module header_decoder #(
    parameter BIT_CYCLES = `HW_HEADER_BIT_CYCLES,    // 1 or >= 4
    parameter N_SLOTS    = 8,
    parameter MW         = 8 * (`HW_LEN_FREE_MASK - 2),  // FREE_MASK mask bits
    parameter FAST       = 0     // 1: the byte index from flags registered a cycle ahead (the
                                 // node top's ECP5 builds, FIFO_LUTRAM; same cycles, 1
                                 // flip-flop more); 0: the smaller logic (iCE40)
) (
    input  wire         clk_i,
    input  wire         rst_i,
    input  wire         hdr_i,
    input  wire         en_i,
    input  wire         blk_i,
    input  wire [63:0]  ts_i,
    input  wire [31:0]  bad_cnt_i,       // ERR_BAD_HEADER (register file)
    // FREE / FREE_MASK: check the slots the command in the frame buffer names (base + i for each
    // set bit i of mask; registered answer one cycle later), then free them on free_i
    input  wire [15:0]  chk_base_i,
    input  wire [MW-1:0] chk_mask_i,
    output reg          free_ok_o,       // every named slot is allocated (none beyond the pool);
                                         // 5 cycles after chk_*
    input  wire         free_i,
    input  wire [15:0]  free_base_i,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire [MW-1:0] free_mask_i,    // only bits < N_SLOTS can name a slot
    /* verilator lint_on UNUSEDSIGNAL */
    output reg  [7:0]   slots_free_o,
    output reg          cnt_good_o,      // CNT_HEADERS += 1
    output reg          cnt_bad_o,       // ERR_BAD_HEADER += 1
    output reg          ev_valid_o,
    output reg  [7:0]   ev_op_o,
    output wire [127:0] ev_payload_o,    // valid with ev_valid_o (not held after it)
    output reg          arr_o,           // block mode: an arrival (seq_q / ts_stop_q, held until
    output wire [31:0]  arr_seq_o,       // the next header's bytes)
    output wire [63:0]  arr_ts_o
);
    assign arr_seq_o = seq_q;
    assign arr_ts_o = ts_stop_q;
    // BIT_CYCLES = 1: every cycle is a bit (no bit timer); >= 4: mid-bit sampling by the timer
    localparam ONE = (BIT_CYCLES == 1);
    localparam CW = ONE ? 1 : $clog2(BIT_CYCLES);  // bit timer
    localparam [CW-1:0] BIT_M1 = ONE ? {CW{1'b0}} : CW'(BIT_CYCLES - 1);
    localparam [CW-1:0] HALF_M1 = ONE ? {CW{1'b0}} : CW'(BIT_CYCLES / 2 - 1);
    localparam GW = $clog2(20 * BIT_CYCLES + 1);   // inter-byte gap timer
    localparam [GW-1:0] GAP_MAX = 20 * BIT_CYCLES;
    localparam [2:0] S_IDLE = 3'd0, S_START = 3'd1, S_DATA = 3'd2, S_STOP = 3'd3, S_HIGH = 3'd4;

    wire line;
    sync2 #(.RESET_VAL(1'b1)) u_sync (.clk_i(clk_i), .rst_i(rst_i), .d_i(hdr_i), .q_o(line));

    reg [2:0]    state_q;
    reg [CW-1:0] cnt_q;
    reg [GW-1:0] gap_q;
    reg [2:0]    bit_q;
    reg [7:0]    shift_q;
    reg [7:0]    byte_q;         // the byte whose stop bit was sampled (shift_q goes on with the
                                 // next byte's bits 2 cycles later at BIT_CYCLES = 1)
    reg [2:0]    idx_q;          // header byte index expected next (0 = marker)
    reg [31:0]   seq_q;
    reg [7:0]    crc_q;
    reg [N_SLOTS-1:0] used_q;
    reg          done_q;         // a byte's stop bit was sampled last cycle: judge it now
    reg          stop_ok_q;      // ... and it was 1
    reg [63:0]   ts_stop_q;      // timestamp of that sample (loaded at the sample: a copy of
                                 // ts_i delayed one cycle to load it with done_q's flip-flop
                                 // as enable was 64 flip-flops, 64 HX8K logic cells)
    reg          cz_q;           // cnt_q == 0, registered (every reload value is >= 1: timing)
    reg          have_free_q;
    reg [7:0]    free_idx_q;
    // byte verdict inputs, registered at the stop-bit sample (timing)
    reg          idx0_q, idx5_q, marker_q, crc_ok_q;
    reg          done2_q;        // second verdict stage: apply the category
    reg          cat_marker_q, cat_seq_q, cat_good_q;
    reg [N_SLOTS-1:0] free_oh_q; // lowest free slot, one-hot
    reg          gap_hit_q;      // the inter-byte gap limit was reached last cycle
    // FAST: the byte index is idx_f_q (g_idx_f below; idx_q and its logic are then unused),
    // whose next value comes from three flags registered a cycle ahead, each with done_q in it
    // (the three cases exclude one another): to 0 (a bad byte, the gap limit or the good CRC
    // byte), to 1 (the marker), + 1 (a seq byte), instead of done2_q, the category flags (which
    // also enable seq_q / crc_q) and idx_rst_q (timing: 3 LUT levels in front of idx_q; node
    // ECP5 HeAP, cat_seq_q -> idx_q 7.4 ns). The reset clears only the bad-byte / gap part, as
    // it clears idx_rst_q; the rest is not reset, like done2_q and the category flags. (The
    // readers take `(FAST != 0) ? g_idx_f.idx_f_q : idx_q`, folded, so with FAST = 0 the logic
    // and the names are main's, and so are the iCE40 netlists; a wire declared here, even
    // undriven and unused, changed their mapping. For simulators and linters, which resolve
    // the name in the dead branch too, the 0 side declares it as a constant, not in synthesis.)
    generate if (FAST != 0) begin : g_idx_f
        reg [2:0] idx_f_q;
        reg ix0_q, ix1_q, ixi_q;
        always @(posedge clk_i) begin
            ix0_q <= (!rst_i && ((done_q && (!stop_ok_q || (idx0_q && !marker_q) ||
                                             (idx5_q && !crc_ok_q))) || (gap_hit_q && !done_q)))
                     || (done_q && stop_ok_q && idx5_q && crc_ok_q);
            ix1_q <= done_q && stop_ok_q && idx0_q && marker_q;
            ixi_q <= done_q && stop_ok_q && !idx0_q && !idx5_q;
            if (rst_i) idx_f_q <= 3'd0;
            else if (ix0_q) idx_f_q <= 3'd0;
            else if (ix1_q) idx_f_q <= 3'd1;
            else if (ixi_q) idx_f_q <= idx_f_q + 3'd1;
        end
    end
`ifndef SYNTHESIS
    else begin : g_idx_f
        wire [2:0] idx_f_q = 3'd0;
    end
`endif
    endgenerate
`ifndef SYNTHESIS
    /* verilator lint_off UNUSEDSIGNAL */
    wire [2:0]   idx = (FAST != 0) ? g_idx_f.idx_f_q : idx_q;   // (simulation: the byte index)
    /* verilator lint_on UNUSEDSIGNAL */
`endif
    // ERROR(BAD_HEADER)'s info, ERR_BAD_HEADER + 1, is taken from bad_cnt_i in the event's
    // cycle (yosys shares the + 1 with the register file's counter): no 32-bit copy. The
    // counter moves 4 cycles after a malformed header's act_bad_q, and malformed headers are
    // >= a byte time (10 bit periods) apart, so it is the value a register of the cycle before
    // held (it differs only if CLEAR_COUNTERS lands in exactly that cycle)
    wire [31:0]  bad_info = bad_cnt_i + 32'd1;
    // The event payload is formed in the event's cycle (ev_valid_o) from registers that hold
    // still then, not registered (area: 122 flip-flop-only HX8K logic cells; event_arb takes
    // the payload in the valid cycle): seq_q and ts_stop_q change only with the next header's
    // bytes (>= 7 cycles later at one cycle per bit), bad_info as above; only the slot number
    // is kept (ev_slot_q: free_idx_q can move in the cycle after the allocation)
    reg          ev_hdr_q, ev_ns_q, ev_bad_q;     // the event's kind (act_*_q of the cycle before)
    reg  [7:0]   ev_slot_q;
    assign ev_payload_o = ({128{ev_hdr_q}} & {seq_q, ts_stop_q, 8'd0, ev_slot_q, 16'd0})
                        | ({128{ev_ns_q}}  & {`HW_ERR_NO_SLOT, seq_q, 88'd0})
                        | ({128{ev_bad_q}} & {`HW_ERR_BAD_HEADER, bad_info, 88'd0});

    wire [7:0] crc_nx;
    crc_byte #(.WIDTH(8), .POLY(8'h07)) u_crc (.crc_i(crc_q), .data_i(byte_q), .crc_o(crc_nx));

    // lowest free slot
    reg             have_free;
    reg [7:0]       free_idx;
    integer i;
    always @* begin
        have_free = 1'b0;
        free_idx  = 8'd0;
        for (i = N_SLOTS - 1; i >= 0; i = i - 1)
            if (!used_q[i]) begin
                have_free = 1'b1;
                free_idx  = i[7:0];
            end
    end

    // SLOTS_FREE: free slots counted in groups of 4 (registered), then summed (timing)
    localparam NG = (N_SLOTS + 3) / 4;
    wire [4*NG-1:0] unused_pad = {{(4*NG-N_SLOTS){1'b0}}, ~used_q};
    reg [3*NG-1:0] gcnt_q;
    reg [7:0] nfree;
    integer j;
    always @* begin
        nfree = 8'd0;
        for (j = 0; j < NG; j = j + 1) nfree = nfree + {5'd0, gcnt_q[3*j +: 3]};
    end
    // population count of 4 bits as plain logic, one LUT per output bit (written as a sum,
    // synthesis had built it from carry chains, shared with the free-slot search's)
    function automatic [2:0] pop4(input [3:0] v);
        pop4[2] = &v;
        pop4[1] = !(&v) && ((v[0] && v[1]) || (v[0] && v[2]) || (v[0] && v[3]) || (v[1] && v[2])
                            || (v[1] && v[3]) || (v[2] && v[3]));
        pop4[0] = ^v;
    endfunction
    integer jg;
    always @(posedge clk_i)
        for (jg = 0; jg < NG; jg = jg + 1) gcnt_q[3*jg +: 3] <= pop4(unused_pad[4*jg +: 4]);

    // FREE check in two registered steps (timing): (1) slot base + i allocated, for i < N_SLOTS,
    // the low mask bits, and 16-bit group ORs of the mask bits >= N_SLOTS (which name no slot);
    // (2) all named slots allocated and no bit beyond the pool. Allocation in between only sets
    // bits, and the host frees only slots it was told of, so the check cannot go stale.
    // A base >= N_SLOTS names no slot; below it only its low SW bits matter, so the base compare
    // is registered first and the shifts are by SW bits only (timing: a shift by the 16-bit base
    // was the critical path); the mask ORs and the final AND take registered steps as well.
    // chk_* / free_* hold still for many cycles (see cmd_decoder), so the extra stages only delay
    // free_ok_o (5 cycles after chk_*); the used_q -> free_ok_o path is 3 cycles, which the
    // decoder's hold after a free (3 cycles, then a registered ready) covers.
    localparam G = (MW + 15) / 16;
    localparam SW = (N_SLOTS > 1) ? $clog2(N_SLOTS) : 1;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [16*G-1:0] mask_hi = {{(16*G-MW){1'b0}}, chk_mask_i & ~{{(MW-N_SLOTS){1'b0}}, {N_SLOTS{1'b1}}}};
    /* verilator lint_on UNUSEDSIGNAL */
    reg               cbok_q, fbok_q;      // chk / free base < N_SLOTS
    reg [SW-1:0]      cbl_q, fbl_q;        // ... its low bits
    reg [N_SLOTS-1:0] mlo_q, mlo2_q, fml_q; // mask bits that can name a slot
    reg [N_SLOTS-1:0] avail_q, clr_q;
    reg [4*G-1:0]     hq4_q;               // 4-bit groups of the mask above the pool, set bit
    reg [G-1:0]       hi_nz_q;             // 16-bit groups
    localparam G4 = (G + 3) / 4;
    reg [G4-1:0]      hi_nz4_q;            // 64-bit groups
    wire [4*G4-1:0]   hnz_pad = {{(4*G4-G){1'b0}}, hi_nz_q};
    reg               hz_q, okl_q;         // no mask bit above the pool / every named slot used
    integer g;
    always @(posedge clk_i) begin
        cbok_q <= ({16'd0, chk_base_i} < 32'(N_SLOTS));
        cbl_q <= chk_base_i[SW-1:0];
        mlo_q <= chk_mask_i[N_SLOTS-1:0];
        for (g = 0; g < 4 * G; g = g + 1) hq4_q[g] <= |mask_hi[4*g +: 4];
        for (g = 0; g < G; g = g + 1) hi_nz_q[g] <= |hq4_q[4*g +: 4];
        avail_q <= cbok_q ? (used_q >> cbl_q) : {N_SLOTS{1'b0}};
        mlo2_q <= mlo_q;
        for (g = 0; g < G4; g = g + 1) hi_nz4_q[g] <= |hnz_pad[4*g +: 4];
        hz_q  <= (hi_nz4_q == {G4{1'b0}});
        okl_q <= ((mlo2_q & ~avail_q) == {N_SLOTS{1'b0}});
        free_ok_o <= hz_q && okl_q;
        // slots to free: mask << base, in the same two steps
        fbok_q <= ({16'd0, free_base_i} < 32'(N_SLOTS));
        fbl_q <= free_base_i[SW-1:0];
        fml_q <= free_mask_i[N_SLOTS-1:0];
        clr_q <= fbok_q ? (fml_q << fbl_q) : {N_SLOTS{1'b0}};
    end

    // bit sample strobe: every cycle at BIT_CYCLES = 1, else the timer's expiry
    wire tick = ONE || cz_q;
    // byte-level outcome, evaluated in S_STOP at the stop-bit sample
    wire stop_now = (state_q == S_STOP) && tick;

    // Actions, decided one cycle ahead from registered flags so the event registers need no
    // enable and only a 2-level AND-OR mux (timing). At most one is set per cycle.
    reg act_bad_q, act_hdr_q, act_ns_q, idx_rst_q;
    reg act_arr_q, act_bb_q;            // block mode: arrival / malformed
    wire alloc = act_hdr_q;
    wire [N_SLOTS-1:0] free_clr = free_i ? clr_q : {N_SLOTS{1'b0}};


    always @(posedge clk_i) begin
        slots_free_o <= nfree;
        have_free_q <= have_free;       // (no reset: recomputed every cycle; timing)
        free_idx_q <= free_idx;
        free_oh_q <= ~used_q & (used_q + {{(N_SLOTS-1){1'b0}}, 1'b1});
        done2_q <= done_q;
        cat_marker_q <= stop_ok_q && idx0_q && marker_q;
        cat_seq_q    <= stop_ok_q && !idx0_q && !idx5_q;
        cat_good_q   <= stop_ok_q && idx5_q && crc_ok_q;
        // bad byte, or more than 2 byte times of silence inside a header
        idx_rst_q <= (done_q && (!stop_ok_q || (idx0_q && !marker_q) || (idx5_q && !crc_ok_q)))
                     || (gap_hit_q && !done_q);
        act_bb_q  <= en_i && blk_i && ((done_q && (!stop_ok_q || (idx0_q && !marker_q) ||
                                          (idx5_q && !crc_ok_q))) || (gap_hit_q && !done_q));
        act_arr_q <= en_i && blk_i && done_q && stop_ok_q && idx5_q && crc_ok_q;
        act_bad_q <= en_i && !blk_i && ((done_q && (!stop_ok_q || (idx0_q && !marker_q) ||
                                          (idx5_q && !crc_ok_q))) || (gap_hit_q && !done_q));
        act_hdr_q <= en_i && !blk_i && done_q && stop_ok_q && idx5_q && crc_ok_q && have_free_q;
        act_ns_q  <= en_i && !blk_i && done_q && stop_ok_q && idx5_q && crc_ok_q && !have_free_q;
        ev_valid_o <= act_bad_q || act_hdr_q || act_ns_q;
        cnt_bad_o  <= act_bad_q || act_bb_q;
        cnt_good_o <= act_hdr_q || act_ns_q || act_arr_q;
        arr_o      <= act_arr_q;
        ev_op_o    <= act_hdr_q ? `HW_OP_HEADER : `HW_OP_ERROR;
        {ev_hdr_q, ev_ns_q, ev_bad_q} <= {act_hdr_q, act_ns_q, act_bad_q};
        ev_slot_q  <= free_idx_q;
        gap_hit_q <= (state_q == S_IDLE) && line && (((FAST != 0) ? g_idx_f.idx_f_q : idx_q) != 3'd0)
                     && (gap_q == GAP_MAX);
        done_q <= 1'b0;
        if (rst_i) begin
            stop_ok_q <= 1'b0;
            ts_stop_q <= 64'd0;
            cz_q <= 1'b0;
            {idx0_q, idx5_q, marker_q, crc_ok_q} <= 4'd0;
            state_q <= S_HIGH;
            cnt_q   <= {CW{1'b0}};
            gap_q   <= {GW{1'b0}};
            bit_q   <= 3'd0;
            shift_q <= 8'd0;
            byte_q  <= 8'd0;
            idx_q   <= 3'd0;
            seq_q   <= 32'd0;
            crc_q   <= 8'd0;
            used_q  <= {N_SLOTS{1'b0}};
            {act_bad_q, act_hdr_q, act_ns_q, idx_rst_q, act_arr_q, act_bb_q} <= 6'd0;
            {ev_valid_o, cnt_bad_o, cnt_good_o, arr_o} <= 4'd0;
            {ev_hdr_q, ev_ns_q, ev_bad_q} <= 3'd0;
        end else begin
            used_q <= (used_q & ~free_clr) | (alloc ? free_oh_q : {N_SLOTS{1'b0}});
            if (stop_now) ts_stop_q <= ts_i;
            cz_q <= (cnt_q == {{(CW-1){1'b0}}, 1'b1});
            case (state_q)
                S_HIGH: if (line) state_q <= S_IDLE;
                S_IDLE: begin
                    if (!line) begin
                        // at one cycle per bit this sample is the start bit: data next
                        state_q <= ONE ? S_DATA : S_START;
                        cnt_q   <= HALF_M1;
                        cz_q    <= 1'b0;
                        bit_q   <= 3'd0;
                    end else if (((FAST != 0) ? g_idx_f.idx_f_q : idx_q) != 3'd0) begin
                        gap_q <= gap_q + 1'b1;
                    end
                end
                S_START: if (tick) begin
                    if (!line) begin
                        state_q <= S_DATA;
                        cnt_q   <= BIT_M1;
                        cz_q    <= 1'b0;
                        bit_q   <= 3'd0;
                    end else begin
                        state_q <= S_IDLE;          // glitch
                    end
                end else cnt_q <= cnt_q - 1'b1;
                S_DATA: if (tick) begin
                    shift_q <= {line, shift_q[7:1]};
                    cnt_q   <= BIT_M1;
                    cz_q    <= 1'b0;
                    bit_q   <= bit_q + 3'd1;
                    if (bit_q == 3'd7) state_q <= S_STOP;
                end else cnt_q <= cnt_q - 1'b1;
                S_STOP: if (stop_now) begin
                    gap_q <= {GW{1'b0}};
                    done_q <= 1'b1;
                    stop_ok_q <= line;
                    byte_q <= shift_q;
                    idx0_q <= (((FAST != 0) ? g_idx_f.idx_f_q : idx_q) == 3'd0);
                    idx5_q <= (((FAST != 0) ? g_idx_f.idx_f_q : idx_q) == 3'd5);
                    marker_q <= (shift_q == `HW_HEADER_MARKER);
                    crc_ok_q <= (shift_q == crc_q);
                    state_q <= line ? S_IDLE : S_HIGH;
                end else cnt_q <= cnt_q - 1'b1;
                default: state_q <= S_IDLE;
            endcase
            if (idx_rst_q) idx_q <= 3'd0;
            // verdict on the byte whose stop bit was sampled two cycles ago
            if (done2_q) begin
                if (cat_marker_q) begin
                    idx_q <= 3'd1;
                    crc_q <= 8'd0;
                end
                if (cat_seq_q) begin
                    seq_q <= {seq_q[23:0], byte_q};
                    crc_q <= crc_nx;
                    idx_q <= idx_q + 3'd1;
                end
                if (cat_good_q) idx_q <= 3'd0;
            end
        end
    end
endmodule
`default_nettype wire

// Block encoder of the block-mode header path (wire v4, docs/header-path.md section 2).
//
// Arrivals (well-formed headers: seq, ts from header_decoder) are recorded in the open block:
// the first one opens it (seq0, ts0, slot0 = the ring slot it takes, n = 1, used = 0); each later
// one with d = (seq - last_seq - 1) mod 2^32 appends floor(d / 31) skip bytes 0xF8 and one entry
// byte (d mod 31) << 3 | (ts & 7), unless d > 124, its bytes do not fit in the 48 entry bytes or
// ts - ts0 >= BLOCK_FLUSH: then the block is closed first and a new one opens at this arrival.
// The open block is also closed by the flush timer, a down-counter loaded with BLOCK_FLUSH when
// the block opens here (>= 7 cycles after ts0) that closes it BLOCK_FLUSH + 2 cycles later: an
// arrival whose header ended before ts0 + BLOCK_FLUSH is still in the header decoder for a few
// cycles and must join the block, as in the twin; it does, because a waiting arrival goes before
// the timer and the comparison above uses the arrival's ts), when
// close_i asks (PIN_MASK / UNPIN_MASK, before the change) and when en_i (CONTROL.HDR_BLOCK &&
// HEADER_EN) falls. Malformed headers (bad_i) count in the next closed block's bad (saturating).
// An arrival when every ring slot is pinned takes no slot and is not recorded: ERROR(NO_SLOT,
// info = seq) on the ns_* event port.
//
// Blocks are written into NB buffers of 128 bytes in block RAM, the 67 HDR_BLOCK payload bytes at
// offsets 0..66 (blk, seq0, ts0, slot0, n, used, bad, entries; unused entry bytes are not
// written: blk_tx sends them as 0): seq0 / ts0 / slot0 when the block opens, each entry byte at
// its arrival, blk / n / used / bad at the close. A closed block pulses tok_o (event_arb queues
// one HDR_BLOCK token per pulse into the event FIFO, never dropping it) and stays in its buffer
// until blk_tx has sent it (rel_i); buffers are used and released in order, so the token needs no
// index. A block that opens while every buffer still holds an unsent block is lost (whole: its
// bytes are not stored), counted at its close by lost_o (EVT_LOST, an event seq, the EVENT_OVERFLOW
// report) and by the gap in blk, which every closed block consumes (cnt_blk_o: CNT_BLOCKS).
//
// Pin changes: close_i (the ring has checked a PIN_MASK / UNPIN_MASK: it will be applied) -> the
// arrivals already held (pending or queued) are recorded first, then the open block is closed
// (its token goes to event_arb), then pin_go_o starts the ring's change; later arrivals wait in
// the queue until pin_done_i. No wait for the event path: the command's response is ordered in
// the event FIFO behind the block's token by a marker (event_arb mrk_i at pin_done, tx_arb), so
// the UART backlog never stalls the encoder.
//
// Arrival queue: the arrival being encoded waits in the pending register (p_seq_q / p_ts_q), the
// later ones in a FIFO of QD = 2^QAW entries behind it (an arrival goes straight to the pending
// register when it and the FIFO are free, else into the FIFO; a queued one is read in the cycle
// the previous one is consumed and is pending two cycles later). Worst case at the spec's rate:
// a pin change holds the encoder for at most the close (6), the change (<= MW + 4 * (MW / 16 + 2)
// = 308), a search (6 with no pinned word ahead) and the pending arrival's encoding (~25): 345
// cycles, in which at most ceil(345 / 60) + 1 = 7 headers reach the decoder (60 cycles each, one
// cycle per bit), 5 at the paper's 77-cycle pulse period; between pin changes the encoder takes
// an arrival in <= 25 + 6 cycles, faster than the line brings them, so the queue drains. QD = 8
// behind the pending register holds 9: 1.3x the line's worst case, 1.8x the source's. An arrival
// that finds the FIFO full (only with pin changes back to back faster than the command link
// can carry them, or a search across hundreds of pinned words per arrival: nearly the whole ring
// pinned) is not stored and is reported as ERROR(NO_SLOT, info = its seq) (drop_o pulses), like
// an arrival without a slot: never a silent loss. The twin's ArrivalQueue
// (sim/twin/hdrblock.py) computes the same consumption cycles and drops (fpga/tests/
// test_hdl_hdr_block.py compares them cycle by cycle).
`default_nettype none
`include "wire_spec.vh"
module hdr_block #(
    parameter NB  = 8,              // block buffers (power of 2), 128 bytes each
    parameter LUTRAM = 0,           // 1: ECP5 (buffers in ram_sdp_oreg), 2: LUT RAM (below)
    parameter QAW = 3,              // arrival queue: 2^QAW arrivals behind the pending one
    parameter RL = 3                // buffer read latency (2 or 3; blk_tx's RL)
) (
    input  wire          clk_i,
    input  wire          rst_i,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire [63:0]   ts_i,          // (unused: the flush timer counts cycles)
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire          en_i,
    input  wire [31:0]   flush_i,       // BLOCK_FLUSH
    input  wire          clr_i,         // CLEAR_COUNTERS: blk restarts at 0
    input  wire          arr_i,
    input  wire [31:0]   arr_seq_i,
    input  wire [63:0]   arr_ts_i,
    input  wire          bad_i,
    // pin changes
    input  wire          close_i,
    output reg           pin_go_o,
    input  wire          pin_done_i,
    // slot ring
    input  wire          nxt_rdy_i,
    input  wire          nxt_ok_i,
    input  wire [15:0]   nxt_slot_i,
    output reg           take_o,
    // events and counts
    output reg           tok_o,
    output reg           lost_o,
    output reg           cnt_blk_o,
    output reg           ns_valid_o,
    output reg  [31:0]   ns_seq_o,      // ERROR(NO_SLOT, info = ns_seq_o) with ns_valid_o
    output reg           drop_o,
    // buffer read port (blk_tx): the oldest unsent block
    input  wire [6:0]    rd_off_i,
    output reg  [7:0]    rd_byte_o,     // RL cycles after rd_off_i
    input  wire          rel_i
);
    localparam BW = (NB > 1) ? $clog2(NB) : 1;
    // FAST (LUTRAM != 0: the ECP5 builds): the twelfth session's registers for ECP5 timing, in
    // the generate block g_fast at the end (same cycles, checked by fpga/bench/hdrpath_equiv.py).
    // FAST = 0 (the iCE40 builds): the eleventh session's logic, and no register of g_fast, so
    // the HX8K netlists do not change (those boards are at 79-81 % of their LCs; even a register
    // that yosys removes as unused changed ABC's LUT count there, so g_fast holds them all).
    localparam FAST = (LUTRAM != 0);

    // ------------------------------------------------------------ block buffers
    // rd_byte_o is the byte at rd_off_i of RL cycles before (RL = 2 or 3; blk_tx's RL must be the
    // same). LUTRAM = 0: block RAM (iCE40 has no LUT RAM), its registered read then RL - 1
    // register stages. LUTRAM = 1 (ECP5): each buffer its own LUT RAM of 128 bytes (8 DPR16X4
    // deep); with RL = 3 a copy of the read offset per buffer is registered first (the offset's
    // fanout: 16 RAM blocks each instead of 128), then each buffer's read (16:1 in the RAM
    // block, 8:1 behind it) is registered, then the oldest unsent buffer's byte is selected (8:1,
    // rb_q) into rd_byte_o. One read through all 8 buffers (a 64-to-1 mux, 6 LUT levels) was
    // the ULX3S node's critical path (fpga/README.md). Same behaviour, cycle for cycle: rb_q
    // changes only at rel_i, when blk_tx has no read in flight.
    // LUTRAM = 1 with RL = 3 (the ECP5 node; eleventh session): the NB buffers are one
    // ram_sdp_oreg (block RAM with output register; ECP5: fpga/rtl/ecp5/ram_sdp_oreg.v, one
    // DP16KD, NB * 128 <= 1024 bytes): the
    // read address {rb_q, rd_off_i} is latched in the block RAM, the byte is in its output
    // register an edge later and in rd_byte_o the edge after that: RL = 3 cycles, as above, and
    // rb_q is sampled while no read is in flight as before. Writes go to the open block's buffer
    // (wb_q), never the one blk_tx reads (a block is read only once closed; with every buffer
    // full the open block is lost and not written), so the ports never collide on a word
    // that is used. The LUT RAM buffers' reads (16:1 in the RAM cells, 8:1 behind) and write
    // enables were ECP5 paths at 5.2-5.6 ns (fpga/README.md "ECP5 Fmax, eleventh session").
    // LUTRAM = 2 (or RL = 2): the LUT RAM buffers above (the tenth session's ECP5 build).
    // The arrival queue below is LUT RAM for any LUTRAM != 0.
    reg          we_q;
    reg [6:0]    wo_a_q;                // write offset
    reg [7:0]    wd_q;
    reg [BW-1:0] wb_q, rb_q;            // buffer being written / oldest unsent
    reg [BW:0]   nfull_q;               // closed blocks not yet sent
    genvar gb;
    generate
        if (LUTRAM == 1 && RL == 3) begin : g_oreg
            if (NB > 8) begin : g_too_big
                hdr_block_LUTRAM_1_needs_NB_le_8 u_err ();
            end
            wire [7:0] dob;
            ram_sdp_oreg #(.DW(8), .DEPTH(128 << BW)) u_ram (
                .clk_i(clk_i), .we_i(we_q), .wa_i({wb_q, wo_a_q}), .wd_i(wd_q),
                .ra_i({rb_q, rd_off_i}), .rd_o(dob));
            always @(posedge clk_i) rd_byte_o <= dob;
        end else if (LUTRAM != 0) begin : g_lut
            wire [7:0] bq [0:NB-1];
            for (gb = 0; gb < NB; gb = gb + 1) begin : g_buf
                (* ram_style = "distributed", no_rw_check *)
                reg [7:0] mem_q [0:127];
                reg [6:0] ra_q;
                reg [7:0] rd_q;
                // (keep on the process: without it yosys merged the NB equal copies into one,
                // so the eighth session's copies were one register driving every buffer)
                (* keep *) always @(posedge clk_i) ra_q <= rd_off_i;
                always @(posedge clk_i) begin
                    if (we_q && wb_q == BW'(gb)) mem_q[wo_a_q] <= wd_q;
                    rd_q <= mem_q[(RL >= 3) ? ra_q : rd_off_i];
                end
                assign bq[gb] = rd_q;
            end
            always @(posedge clk_i) rd_byte_o <= bq[rb_q];
        end else begin : g_block
            (* ram_style = "block", no_rw_check *)
            reg [7:0] mem_q [0:NB*128-1];
            reg [7:0] rd_q [0:RL-2];
            integer i;
            always @(posedge clk_i) begin
                if (we_q) mem_q[{wb_q, wo_a_q}] <= wd_q;
                rd_q[0] <= mem_q[{rb_q, rd_off_i}];
                for (i = 1; i < RL - 1; i = i + 1) rd_q[i] <= rd_q[i - 1];
                rd_byte_o <= rd_q[RL - 2];
            end
        end
    endgenerate

    // ------------------------------------------------------------ state
    localparam [3:0] S_IDLE = 4'd0, S_A1 = 4'd1, S_A2 = 4'd2, S_A3 = 4'd3, S_OPEN = 4'd4,
                     S_OW = 4'd5, S_APP = 4'd6, S_CLOSE = 4'd7, S_PIN = 4'd9;
    reg [3:0]   st_q;
    reg         pend_q;                 // an arrival waits in p_seq_q / p_ts_q
    reg         ld_q;                   // a queued arrival is read into p_seq_q / p_ts_q
    reg [QAW+1:0] pre_q;                // arrivals held when close_i came, not yet consumed
    reg         ov_q;                   // an overflow report waits for the ns_* port
    reg [31:0]  ov_seq_q;
    reg [31:0]  p_seq_q;
    reg [63:0]  p_ts_q;
    reg         creq_q;                 // a close for a pin change is asked for
    reg         open_q, lost_q;
    reg [31:0]  ts0_lo_q, last_q;
    reg [7:0]   n_q;
    reg [5:0]   used_q;
    reg [7:0]   bad_q;
    reg [15:0]  blk_q;
    reg [15:0]  slot_q;                 // slot0 (seq0 / ts0: p_seq_q / p_ts_q, held until
                                        // the header bytes are written)
    reg [3:0]   k_q;                    // bytes left to write
    reg         then_open_q;
    reg [31:0]  d_q, el_q;              // (every cycle: valid from S_A1 on, see S_A1)
    reg  [3:0]  dge_q;                  // S_A1 -> S_A2: d_q[6:0] >= 31, 62, 93, 124
    reg         big_q, fl_q;
    // el_q >= flush_i in two cycles: the halves' compares registered in every cycle (valid in
    // S_A2: el_q holds from S_A1 on), combined in S_A2 (one 33-bit carry chain from the register
    // file into fl_q was the HX8K verify build's path at 97-98 MHz, tenth session)
    reg         fhg_q, fhe_q, flg_q;    // el_q[31:16] > / == flush_i[31:16]; [15:0] >=
    // FAST: the three compares' next values from g_fast (as subtraction borrows and an XOR tree)
    wire        fhg_f, fhe_f, flg_f;
    // FAST: g_fast's registers where this block's logic reads them
    wire [7:0]  hs_f;                   // the next header byte (hs_q's top byte)
    wire [7:0]  cb_f;                   // the close byte of the next S_CLOSE cycle (cb_q)
    wire [7:0]  bpl_f;                  // bad_q + 1, saturating (bpl_q)
    wire [6:0]  ua_f;                   // 19 + used_q (ua_q)
    reg         cl5_q;                  // S_CLOSE with k_q == 5 (its last cycle)
    reg [2:0]   q_q;                    // skip bytes
    reg [6:0]   m31_q;                  // 31 * q_q
    reg [4:0]   r_q;                    // d mod 31
    // flush timer: BLOCK_FLUSH down to -1 (bit 32: expired, a flip-flop)
    reg [32:0]  tmr_q;

    // the pending arrival is consumed this cycle (its last byte written, or NO_SLOT):
    //   pend_q && ((st_q == S_A3 && !nxt_ok_i) || (st_q == S_OW && k_q == 0)
    //              || (st_q == S_APP && k_q == 0)),
    // registered a cycle ahead (cons_q; nxt_ok_i cannot change between S_A2 and S_A3: the ring
    // waits for a take or a pin change, both of which come from here later): it enables the
    // arrival queue's write, and its decode from k_q / st_q was the ECP5 path at 140 MHz
    reg  cons_q;
    wire cons = pend_q && cons_q;
    // pre_q != 0, registered with pre_q (its compare in S_IDLE's priority chain into st_q /
    // pin_go_o was an ECP5 path at 5.4-5.7 ns, eleventh session): a close sets pre_q to held,
    // which is 0 unless an arrival is being read, queued, or pending and not consumed now
    reg  pany_q;
    wire pre_any = pany_q;
    wire pend_ok = pend_q && (!creq_q || pre_any) && (st_q != S_PIN);

    // ------------------------------------------------------------ arrival queue
    // A FIFO of QD entries (as sync_fifo with registered full / empty / count), written and read
    // for timing: the entry at the write pointer is written in every cycle the FIFO is not full
    // (that entry is free; q_wr only advances the pointer), so the memory's write enable is the
    // full flag, and the entry at the read pointer is read into q_dout in every cycle (q_dout is
    // used only the cycle after q_rd, by ld_q); the pending register's free flag is registered
    // (fr_q: no arrival pending nor being read), so hd_free, q_rd and q_wr are one LUT of
    // flip-flops (their decode from cons_q with the FIFO's flags into the 96-bit enables was the
    // ECP5 path at 155 MHz, eighth session). Same cycles as the sync_fifo it replaces.
    localparam QD = 1 << QAW;
    reg             fr_q;                   // !pend_q && !ld_q
    reg             q_full, q_empty;
    reg [QAW:0]     q_cnt;
    reg [QD:1]      qth_q;                  // qth_q[k] = (q_cnt >= k)
    reg [QAW-1:0]   qw_q, qr_q;
    reg [95:0]      q_dout;
    wire            hd_free = fr_q || cons_q;   // pending register free next (cons_q: pend_q)
    wire            q_rd = hd_free && !q_empty;
    wire            q_wr = arr_i && !(hd_free && q_empty) && !q_full;
    wire            ovf = arr_i && q_full;      // (full: not empty, so not a direct load)
    generate
        if (LUTRAM != 0) begin : g_qlut
            (* ram_style = "distributed", no_rw_check *)
            reg [95:0] qm_q [0:QD-1];
            always @(posedge clk_i) begin
                if (!q_full) qm_q[qw_q] <= {arr_seq_i, arr_ts_i};
                q_dout <= qm_q[qr_q];
            end
        end else begin : g_qblk
            (* ram_style = "block", no_rw_check *)
            reg [95:0] qm_q [0:QD-1];
            always @(posedge clk_i) begin
                if (!q_full) qm_q[qw_q] <= {arr_seq_i, arr_ts_i};
                q_dout <= qm_q[qr_q];
            end
        end
    endgenerate
    always @(posedge clk_i) begin
        if (rst_i) begin
            fr_q <= 1'b1;
            qw_q <= {QAW{1'b0}};
            qr_q <= {QAW{1'b0}};
            q_cnt <= {(QAW+1){1'b0}};
            qth_q <= {QD{1'b0}};
            q_full <= 1'b0;
            q_empty <= 1'b1;
        end else begin
            fr_q <= hd_free && q_empty && !arr_i;
            if (q_wr) qw_q <= qw_q + 1'b1;
            if (q_rd) qr_q <= qr_q + 1'b1;
            // (q_cnt +- 1 from the register, chosen by q_wr / q_rd: their decode into the sum's
            // carry chain was an ECP5 path at 5.6 ns, eleventh session)
            if (q_wr && !q_rd) begin
                q_cnt <= q_cnt + 1'b1;
                qth_q <= {qth_q[QD-1:1], 1'b1};
                q_full <= qth_q[QD-1];
                q_empty <= 1'b0;
            end else if (q_rd && !q_wr) begin
                q_cnt <= q_cnt - 1'b1;
                qth_q <= {1'b0, qth_q[QD:2]};
                q_full <= 1'b0;
                q_empty <= !qth_q[2];
            end
        end
    end
    // arrivals held (pending, being read, queued) minus the one consumed this cycle
    // (written as the sum, then - 1 chosen by cons, yosys chained the two: 6.2-6.6 ns into
    // pre_q instead of 5.7, eleventh session; a running count of the held arrivals is the fix)
    // FAST: from two running counts in g_fast (held_f)
    wire [QAW+1:0]  held_f;
    wire [QAW+1:0]  held = FAST ? held_f : (QAW+2)'(pend_q) + (QAW+2)'(ld_q) + (QAW+2)'(q_cnt)
                                          - (QAW+2)'(cons);
    wire [7:0] entry = {r_q, p_ts_q[2:0]};
    // header byte 13 - k of the block (payload offset 15 - k): seq0, ts0, slot0, big-endian,
    // i.e. hdr_all[8k +: 8]; S_OW writes hb_q, the byte of its k registered the cycle before
    // from a one-hot copy of k (kh_q) as an AND-OR (a 14:1 mux on k_q into wd_q, 5 levels, was
    // an ECP5 path at 155 MHz); FAST: from g_fast's shift register (hs_f)
    wire [111:0] hdr_all = {p_seq_q, p_ts_q, slot_q};
    reg  [13:0]  kh_q;                  // S_OW: one-hot k_q
    reg  [7:0]   hb_q;
    reg  [7:0]   hb_nx;                 // the byte of k_q - 1
    integer hi;
    always @* begin
        hb_nx = 8'd0;
        for (hi = 1; hi < 14; hi = hi + 1)
            hb_nx = hb_nx | ({8{kh_q[hi]}} & hdr_all[8*(hi-1) +: 8]);
    end
    // the arrival's q skip bytes and its entry do not fit in the block's 48 entry bytes:
    // used + q + 1 > 48, i.e. used >= 48 - q, registered from d_q's thresholds (the sum
    // and compare in S_A3's decision was the ECP5 path at 155 MHz)
    reg nofit_q;
    // S_A3's close decision as one flip-flop, set in S_A2 (big_q || fl_q || nofit_q; three
    // flip-flops with cons_q / open_q into st_q / k_q were ECP5 paths at 5.2-5.4 ns, eleventh
    // session), with used_q's thresholds registered in every cycle (ug_q: used_q changes only
    // in S_OPEN / S_APP, two cycles or more before S_A2)
    reg       cls_q;
    reg [4:0] ug_q;                     // used_q >= 44, 45, 46, 47, 48
    wire nofit_nx = ug_q[4] || (dge_q[0] && ug_q[3]) || (dge_q[1] && ug_q[2])
                  || (dge_q[2] && ug_q[1]) || (dge_q[3] && ug_q[0]);
    // S_A1..S_A3's data registers and the header-byte registers: no reset (each is set by the
    // state before the one that uses it), so the reset is not an input of their enables
    always @(posedge clk_i) begin
        ug_q <= {used_q >= 6'd48, used_q >= 6'd47, used_q >= 6'd46, used_q >= 6'd45,
                 used_q >= 6'd44};
        kh_q <= kh_q >> 1;
        hb_q <= FAST ? hs_f : hb_nx;
        case (st_q)
            S_A1: begin
                big_q <= (d_q > 32'd124);
                dge_q <= {d_q[6:0] >= 7'd124, d_q[6:0] >= 7'd93, d_q[6:0] >= 7'd62,
                          d_q[6:0] >= 7'd31};
            end
            S_A2: begin
                q_q <= {2'd0, dge_q[0]} + {2'd0, dge_q[1]} + {2'd0, dge_q[2]}
                     + {2'd0, dge_q[3]};
                // 31 * q as a choice of constants (a product here became a DSP multiply
                // on ECP5: 3.9 ns, the node's critical path at 92 MHz)
                m31_q <= dge_q[3] ? 7'd124 : dge_q[2] ? 7'd93 : dge_q[1] ? 7'd62
                       : dge_q[0] ? 7'd31 : 7'd0;
                nofit_q <= nofit_nx;
                // (el_q and flush_i of S_A1: flush_i is BLOCK_FLUSH, read a cycle earlier
                // than before; the twin reads it at the arrival, before either)
                fl_q <= fhg_q || (fhe_q && flg_q);
                cls_q <= big_q || fhg_q || (fhe_q && flg_q) || nofit_nx;
            end
            S_A3: r_q <= 5'(d_q[6:0] - m31_q);
            S_OPEN: begin
                kh_q <= 14'h2000;
                hb_q <= p_seq_q[31:24];
            end
            default: ;
        endcase
    end

    always @(posedge clk_i) begin
        we_q <= 1'b0;
        take_o <= 1'b0;
        tok_o <= 1'b0;
        lost_o <= 1'b0;
        cnt_blk_o <= 1'b0;
        ns_valid_o <= 1'b0;
        drop_o <= 1'b0;
        pin_go_o <= 1'b0;
        cons_q <= 1'b0;
        cl5_q <= 1'b0;
        if (!tmr_q[32]) tmr_q <= tmr_q - 33'd1;
        // FAST: wd_q (used only with we_q) loads in every cycle: S_OW's header byte hb_q, S_APP's
        // skip byte or entry (cons_q: k_q == 0), else the close byte cb_f (see g_fast)
        if (FAST)
            wd_q <= (st_q == S_OW) ? hb_q : (st_q == S_APP) ? (cons_q ? entry : 8'hF8) : cb_f;
        // FAST: wo_a_q (used only with we_q) loads in every cycle too: S_OW's increment, S_APP's
        // ua_f, S_CLOSE's offset by k_q (0, 1, 16, 17, 18), else 1 (S_OPEN's: S_OW's base); its
        // enable, the state decode in three LUTs, was an ECP5 path at 5.2 ns (thirteenth session)
        if (FAST)
            wo_a_q <= (st_q == S_OW) ? wo_a_q + 7'd1 : (st_q == S_APP) ? ua_f
                    : (st_q == S_CLOSE) ? (k_q[2] ? 7'd18 : k_q[1] ? {6'd8, k_q[0]} : {6'd0, k_q[0]})
                    : 7'd1;
        // the pending arrival's distance and age, in every cycle: p_seq_q / p_ts_q are loaded
        // before S_IDLE sees the arrival and last_q / ts0_lo_q change only in S_OPEN / S_APP,
        // so in S_A1 (after an S_IDLE cycle) they hold what S_A1 computed them from before
        d_q <= p_seq_q - last_q - 32'd1;
        el_q <= p_ts_q[31:0] - ts0_lo_q;
        fhg_q <= FAST ? fhg_f : (el_q[31:16] > flush_i[31:16]);
        fhe_q <= FAST ? fhe_f : (el_q[31:16] == flush_i[31:16]);
        flg_q <= FAST ? flg_f : (el_q[15:0] >= flush_i[15:0]);
        if (rst_i) begin
            st_q <= S_IDLE;
            {pend_q, ld_q, ov_q, creq_q, open_q, lost_q, then_open_q} <= 7'd0;
            pre_q <= {(QAW+2){1'b0}};
            pany_q <= 1'b0;
            tmr_q <= {33{1'b1}};
            wb_q <= {BW{1'b0}};
            rb_q <= {BW{1'b0}};
            nfull_q <= {(BW+1){1'b0}};
            bad_q <= 8'd0;
            blk_q <= 16'd0;
            n_q <= 8'd0;
            used_q <= 6'd0;
            last_q <= 32'd0;
            ts0_lo_q <= 32'd0;
            ns_seq_o <= 32'd0;
        end else begin
            if (clr_i) blk_q <= 16'd0;
            if (FAST) begin
                if (bad_i) bad_q <= bpl_f;          // (bad_q + 1, saturating)
            end else begin
                if (bad_i && bad_q != 8'hFF) bad_q <= bad_q + 8'd1;
            end
            if (close_i) begin
                creq_q <= 1'b1;
                pre_q <= held;
                pany_q <= ld_q || !q_empty || (pend_q && !cons);   // (held != 0)
            end else if (cons && pre_any) begin
                pre_q <= pre_q - 1'b1;
                pany_q <= (pre_q != (QAW+2)'(1));
            end
            nfull_q <= nfull_q + {{BW{1'b0}}, tok_o} - {{BW{1'b0}}, rel_i};
            if (rel_i) rb_q <= rb_q + 1'b1;
            case (st_q)
                S_IDLE: begin
                    // (k_q and then_open_q are not used in S_IDLE and set before S_CLOSE / S_A3
                    // uses them: cleared here in every cycle, out of the decision below)
                    then_open_q <= 1'b0;
                    k_q <= 4'd0;
                    if (pend_ok) begin
                        if (nxt_rdy_i) st_q <= S_A1;
                    end else if ((ld_q || !q_empty) && (!creq_q || pre_any)) begin
                        // a queued arrival goes first (wait for it)
                    end else if (open_q && (creq_q || !en_i || tmr_q[32])) begin
                        st_q <= S_CLOSE;
                    end else if (creq_q) begin
                        pin_go_o <= 1'b1;
                        creq_q <= 1'b0;
                        st_q <= S_PIN;
                    end
                end
                S_A1: st_q <= S_A2;         // (d_q, el_q: this arrival's; S_A1 / S_A2's
                                            // data registers: below)
                S_A2: begin
                    cons_q <= !nxt_ok_i;    // S_A3: NO_SLOT
                    st_q <= S_A3;
                end
                S_A3: begin
                    k_q <= {1'b0, q_q};
                    if (cons_q) begin       // (!nxt_ok_i)
                        ns_valid_o <= 1'b1;
                        ns_seq_o <= p_seq_q;
                        pend_q <= 1'b0;
                        st_q <= S_IDLE;
                    end else if (!open_q) begin
                        st_q <= S_OPEN;
                    end else if (cls_q) begin   // (big_q || fl_q || nofit_q)
                        then_open_q <= 1'b1;
                        k_q <= 4'd0;
                        st_q <= S_CLOSE;
                    end else begin
                        cons_q <= (q_q == 3'd0);
                        st_q <= S_APP;
                    end
                end
                S_OPEN: begin
                    take_o <= 1'b1;
                    open_q <= 1'b1;
                    // (a block closed last cycle is counted by tok_o: nfull_q counts it next cycle)
                    lost_q <= (nfull_q + {{BW{1'b0}}, tok_o} >= (BW+1)'(NB));
                    slot_q <= nxt_slot_i;
                    ts0_lo_q <= p_ts_q[31:0];
                    tmr_q <= {1'b0, flush_i};
                    last_q <= p_seq_q;
                    n_q <= 8'd1;
                    used_q <= 6'd0;
                    if (!FAST) wo_a_q <= 7'd1;  // first write: offset 2
                    k_q <= 4'd13;
                    st_q <= S_OW;           // (kh_q / hb_q: below)
                end
                S_OW: begin                 // (the arrival stays pending until its bytes are out)
                    we_q <= !lost_q;
                    cons_q <= (k_q == 4'd1);
                    if (!FAST) wo_a_q <= wo_a_q + 7'd1;
                    if (!FAST) wd_q <= hb_q;
                    k_q <= k_q - 4'd1;
                    if (cons_q) begin       // (k_q == 0)
                        pend_q <= 1'b0;
                        st_q <= S_IDLE;
                    end
                end
                S_APP: begin
                    we_q <= !lost_q;
                    if (!FAST) wo_a_q <= 7'd19 + {1'b0, used_q};
                    if (!FAST) wd_q <= cons_q ? entry : 8'hF8;  // (cons_q: k_q == 0)
                    used_q <= used_q + 6'd1;
                    k_q <= k_q - 4'd1;
                    cons_q <= (k_q == 4'd1);
                    if (cons_q) begin
                        n_q <= n_q + 8'd1;
                        last_q <= p_seq_q;
                        take_o <= 1'b1;
                        pend_q <= 1'b0;
                        st_q <= S_IDLE;
                    end
                end
                S_CLOSE: begin              // blk (0, 1), n, used, bad (16..18)
                    we_q <= !lost_q;
                    k_q <= k_q + 4'd1;
                    cl5_q <= (k_q == 4'd4);
                    case (k_q[2:0])         // (FAST: wd_q from cb_f, above)
                        3'd0: if (!FAST) begin wo_a_q <= 7'd0;  wd_q <= blk_q[15:8]; end
                        3'd1: if (!FAST) begin wo_a_q <= 7'd1;  wd_q <= blk_q[7:0]; end
                        3'd2: if (!FAST) begin wo_a_q <= 7'd16; wd_q <= n_q; end
                        3'd3: if (!FAST) begin wo_a_q <= 7'd17; wd_q <= {2'd0, used_q}; end
                        3'd4: begin
                            if (!FAST) wo_a_q <= 7'd18;
                            if (!FAST) wd_q <= bad_q;
                            bad_q <= bad_i ? 8'd1 : 8'd0;
                        end
                        default: ;
                    endcase
                    if (cl5_q) begin        // (k_q == 5: the last write was issued a cycle ago)
                        we_q <= 1'b0;
                        open_q <= 1'b0;
                        cnt_blk_o <= 1'b1;
                        blk_q <= clr_i ? 16'd0 : blk_q + 16'd1;
                        if (lost_q) lost_o <= 1'b1;
                        else tok_o <= 1'b1;
                        st_q <= then_open_q ? S_OPEN : S_IDLE;
                    end
                end
                S_PIN: if (pin_done_i) st_q <= S_IDLE;
                default: st_q <= S_IDLE;
            endcase
            // the buffer of a block written by a close is the next one (after its last write)
            if (st_q == S_CLOSE && cl5_q && !lost_q) wb_q <= wb_q + 1'b1;
            // arrivals: straight into the pending register when it (after this cycle's
            // consumption) and the queue are free, else into the queue; a full queue drops it
            // (p_seq_q / p_ts_q are loaded whenever the pending register is free: the enable is
            // then one LUT of flip-flops; an unused load leaves pend_q at 0)
            if (ld_q) pend_q <= 1'b1;
            if (ld_q || hd_free) begin
                p_seq_q <= ld_q ? q_dout[95:64] : arr_seq_i;
                p_ts_q <= ld_q ? q_dout[63:0] : arr_ts_i;
            end
            ld_q <= q_rd;
            if (arr_i && hd_free && q_empty) pend_q <= 1'b1;
            // NO_SLOT reports: the consumed arrival's (S_A3) first, an overflow's in the first
            // cycle the port is free (arrivals are >= 60 cycles apart: one waits at most)
            if (ovf) begin
                drop_o <= 1'b1;
                ov_q <= 1'b1;
                ov_seq_q <= arr_seq_i;
            end
            if (ov_q && !(st_q == S_A3 && cons_q)) begin
                ns_valid_o <= 1'b1;
                ns_seq_o <= ov_seq_q;
                ov_q <= ovf;
            end
        end
    end

    // ------------------------------------------------------------ FAST: ECP5 timing registers
    // (twelfth session, fpga/README.md "ECP5 Fmax, twelfth session"; each one the expression it
    // replaces, a simulation check below says so):
    //  - hc_q / hcm_q: running counts of the held arrivals (pend_q + ld_q + q_cnt: + 1 for an
    //    arrival stored, - 1 for one consumed) and the same - 1, so held is a 2:1 by cons (the
    //    sum of the three and - cons was the block path's ECP5 path at 5.5-5.8 ns, cons_q -> a
    //    carry chain -> pre_q);
    //  - hs_q: the header bytes after hb_q's (bytes 12..0 of seq0 / ts0 / slot0, loaded in
    //    S_OPEN, shifted by a byte in every cycle; 104 flip-flops instead of the 13-term AND-OR
    //    from kh_q, an ECP5 path at 5.0-5.3 ns);
    //  - cb_q: the close byte registered a cycle ahead (blk high byte outside S_CLOSE, then blk
    //    low, n, used, bad by k_q), from the next values of blk_q / bad_q (CLEAR_COUNTERS and a
    //    malformed header in that cycle), so S_CLOSE writes what it read before (the 5:1 on k_q
    //    after the state decode into wd_q was an ECP5 path at 5.1 ns); bpl_q = bad_q + 1
    //    saturating, kept with bad_q (its increment and compare into cb_q: 5.5 ns);
    //  - ua_q = 19 + used_q, kept with used_q (the sum into wo_a_q's mux: 5.3-5.6 ns);
    //  - the flush compares as the borrow of one subtraction each and == as an XOR tree (as
    //    $gt / $eq / $ge yosys shared one carry chain with two LUT levels after it, 5.1-5.9 ns
    //    into fhg_q / fhe_q).
    generate
        if (FAST) begin : g_fast
            reg  [QAW+1:0]  hc_q, hcm_q;
            wire            acc = arr_i && !q_full;     // an arrival stored (pending or queued)
            always @(posedge clk_i)
                if (rst_i) begin
                    hc_q <= {(QAW+2){1'b0}};
                    hcm_q <= {(QAW+2){1'b1}};
                end else if (acc && !cons) begin
                    hc_q <= hc_q + 1'b1;
                    hcm_q <= hcm_q + 1'b1;
                end else if (cons && !acc) begin
                    hc_q <= hc_q - 1'b1;
                    hcm_q <= hcm_q - 1'b1;
                end
            assign held_f = cons ? hcm_q : hc_q;

            reg  [103:0]    hs_q;
            always @(posedge clk_i)
                if (st_q == S_OPEN) hs_q <= {p_seq_q[23:0], p_ts_q, nxt_slot_i};
                else hs_q <= {hs_q[95:0], 8'd0};
            assign hs_f = hs_q[103:96];

            reg  [7:0]      bpl_q, cb_q;
            reg  [6:0]      ua_q;
            wire [15:0]     blk_nx = clr_i ? 16'd0 : blk_q;     // (S_CLOSE before its k = 5)
            wire [7:0]      bad_nx = bad_i ? bpl_q : bad_q;
            // S_CLOSE's k_q (0, 1, 2; 3 and on: none) as a one-hot shift register, set to k = 0
            // outside S_CLOSE (S_CLOSE starts at k_q = 0), so cb_q's select has no decode of
            // k_q (k_q -> cb_q 5.1-5.2 ns, thirteenth session)
            reg  [2:0]      cs_q;
            always @(posedge clk_i) begin
                cs_q <= (st_q != S_CLOSE) ? 3'b001 : {cs_q[1:0], 1'b0};
                if (st_q != S_CLOSE) cb_q <= blk_nx[15:8];
                else cb_q <= cs_q[0] ? blk_nx[7:0] : cs_q[1] ? n_q : cs_q[2] ? {2'd0, used_q}
                           : bad_nx;
                // (bad_q's and used_q's changes, above)
                if (rst_i) begin
                    bpl_q <= 8'd1;
                    ua_q <= 7'd19;
                end else begin
                    if (st_q == S_CLOSE && k_q[2:0] == 3'd4) bpl_q <= bad_i ? 8'd2 : 8'd1;
                    else if (bad_i) bpl_q <= (bpl_q == 8'hFF) ? 8'hFF : bpl_q + 8'd1;
                    if (st_q == S_OPEN) ua_q <= 7'd19;
                    else if (st_q == S_APP) ua_q <= ua_q + 7'd1;
                end
            end
            assign cb_f = cb_q;
            assign bpl_f = bpl_q;
            assign ua_f = ua_q;

            wire [16:0] fh_d = {1'b0, flush_i[31:16]} - {1'b0, el_q[31:16]};   // [16]: el > flush
            wire [16:0] fl_d = {1'b0, el_q[15:0]} - {1'b0, flush_i[15:0]};     // [16]: el < flush
            assign fhg_f = fh_d[16];                    // (el_q[31:16] > flush_i[31:16])
            assign fhe_f = ~|(el_q[31:16] ^ flush_i[31:16]);
            assign flg_f = !fl_d[16];                   // (el_q[15:0] >= flush_i[15:0])
            wire unused_f = &{1'b0, fh_d[15:0], fl_d[15:0]};
`ifndef SYNTHESIS
            // (simulation only) each register is the expression it replaces
            always @(posedge clk_i)
                if (!rst_i) begin
                    if (hc_q != (QAW+2)'(pend_q) + (QAW+2)'(ld_q) + (QAW+2)'(q_cnt)
                        || hcm_q != hc_q - 1'b1)
                        $fatal(1, "hdr_block: hc_q / hcm_q differ from pend_q + ld_q + q_cnt (- 1)");
                    if (bpl_q != ((bad_q == 8'hFF) ? 8'hFF : bad_q + 8'd1))
                        $fatal(1, "hdr_block: bpl_q differs from bad_q + 1 (saturating)");
                    if (ua_q != 7'd19 + {1'b0, used_q})
                        $fatal(1, "hdr_block: ua_q differs from 19 + used_q");
                    if (st_q == S_CLOSE && k_q < 4'd5
                        && cb_q != ((k_q == 4'd0) ? blk_q[15:8] : (k_q == 4'd1) ? blk_q[7:0]
                                    : (k_q == 4'd2) ? n_q : (k_q == 4'd3) ? {2'd0, used_q}
                                    : bad_q))
                        $fatal(1, "hdr_block: cb_q differs from the close byte");
                    if (st_q == S_CLOSE && cs_q != ((k_q < 4'd3) ? 3'(1 << k_q) : 3'd0))
                        $fatal(1, "hdr_block: cs_q differs from k_q");
                    if (st_q == S_OW && hs_q[103:96] != ((k_q == 4'd0) ? 8'd0
                                                         : hdr_all[8*(k_q-4'd1) +: 8]))
                        $fatal(1, "hdr_block: hs_q differs from the next header byte");
                end
`endif
        end else begin : g_slow
            assign {held_f, hs_f, cb_f, bpl_f, ua_f, fhg_f, fhe_f, flg_f} = {(QAW+2+8+8+8+7+3){1'b0}};
        end
    endgenerate

`ifndef SYNTHESIS
    // (simulation only) nofit_q and cons_q are the logic they replace, in every cycle they count
    always @(posedge clk_i)
        if (!rst_i && st_q == S_A3 && !big_q
            && nofit_q != ({1'b0, used_q} + {4'd0, q_q} + 7'd1 > 7'd48))
            $fatal(1, "hdr_block: nofit_q differs from used + q + 1 > 48");
    always @(posedge clk_i)
        if (!rst_i && cons != (pend_q && ((st_q == S_A3 && !nxt_ok_i)
                                          || (st_q == S_OW && k_q == 4'd0)
                                          || (st_q == S_APP && k_q == 4'd0))))
            $fatal(1, "hdr_block: cons_q differs from its decode");
    // the registered flags of the ninth session are the expressions they replace
    reg [31:0] fl_prev_q, fl_prev2_q;   // flush_i one / two cycles ago
    always @(posedge clk_i) begin
        fl_prev_q <= flush_i;
        fl_prev2_q <= fl_prev_q;
    end
    always @(posedge clk_i)
        if (!rst_i) begin
            if (cons_q && !pend_q) $fatal(1, "hdr_block: cons_q without a pending arrival");
            if (fr_q != (!pend_q && !ld_q)) $fatal(1, "hdr_block: fr_q differs");
            if (st_q == S_A3 && cons_q != !nxt_ok_i) $fatal(1, "hdr_block: nxt_ok_i moved");
            if ((st_q == S_A2 || st_q == S_A3) && (big_q != (d_q[31:7] != 25'd0 || d_q[6:0] > 7'd124)
                                                 || dge_q != {d_q[6:0] >= 7'd124, d_q[6:0] >= 7'd93,
                                                              d_q[6:0] >= 7'd62, d_q[6:0] >= 7'd31}
                                                 || d_q != p_seq_q - last_q - 32'd1
                                                 || el_q != p_ts_q[31:0] - ts0_lo_q))
                $fatal(1, "hdr_block: d_q / el_q / big_q / dge_q differ");
            if (pany_q != (pre_q != {(QAW+2){1'b0}}))
                $fatal(1, "hdr_block: pany_q differs from pre_q != 0");
            if (st_q == S_A3 && cls_q != (big_q || fl_q || nofit_q))
                $fatal(1, "hdr_block: cls_q differs from big_q || fl_q || nofit_q");
            if (st_q == S_A3 && fl_q != (el_q >= fl_prev2_q))
                $fatal(1, "hdr_block: fl_q differs from el_q >= flush_i (of S_A1)");
            if (st_q == S_OW && (hb_q != hdr_all[8*k_q +: 8] || (!FAST && kh_q != 14'(1 << k_q))))
                $fatal(1, "hdr_block: hb_q differs from the header byte");
            if (st_q == S_CLOSE && cl5_q != (k_q == 4'd5)) $fatal(1, "hdr_block: cl5_q differs");
            if (q_cnt > (QAW+1)'(QD) || q_empty != (q_cnt == 0) || q_full != (q_cnt == (QAW+1)'(QD)))
                $fatal(1, "hdr_block: arrival queue flags differ");
        end
`endif
endmodule
`default_nettype wire

// Slot ring of the block-mode header path (wire v4, docs/header-path.md section 3).
//
// N_SLOTS memory slots form a ring; one pinned bit per slot, kept in a block RAM of N_SLOTS / W
// words of W bits (a plain synchronous-read array: yosys maps it to SB_RAM40_4K / DP16KD).
// Arrival k takes the next slot after arrival k-1's slot (mod N_SLOTS) that is not pinned; after
// reset the first arrival takes slot 0 (or the first unpinned one). Slots are never freed: they
// expire when the ring comes round; the host pins the ones it still needs (PIN_MASK) and unpins
// them later (UNPIN_MASK).
//
// Allocation: the next slot is searched ahead, right after each take (and after reset or a pin
// change), so a take is immediate: nxt_rdy_o says the search is done, nxt_ok_o that an unpinned
// slot exists (0: every slot pinned -> the caller drops the arrival, NO_SLOT) and nxt_slot_o is
// it. take_i (only while nxt_rdy_o && nxt_ok_o) makes nxt_slot_o the current slot and starts the
// next search. The search reads one word per cycle (pipelined: read, mask, 4-bit groups, pick),
// starting at the word after the current slot and ending at the first word with an unpinned
// slot; worst case (every word between pinned) N_SLOTS / W + 1 words: 2048 / 16 -> 129 reads,
// 135 cycles from the take to nxt_rdy_o. With no pin the next slot is known 6 cycles after a take.
//
// Pin changes: load_i takes set_i (1 pin, 0 unpin), base_i and mask_i (the command's frame
// buffer, which may change later) and checks them while the ring keeps serving takes: a copy of
// the mask rotates once (MW cycles); mask == 0 -> pin_done_o with pin_err_o = 1 (BAD_ARG), a
// named slot >= N_SLOTS -> pin_done_o with 2 (BAD_SLOT), nothing changes; else chk_ok_o pulses
// (the caller closes the open block) and pin_i (one-cycle pulse) applies the change word by word
// (read, modify bit by bit, write back: <= MW + 4 * (MW / W + 1) cycles), then pin_done_o with
// pin_err_o = 0. A running search is abandoned at pin_i and restarted after the change (pins do
// not move the current slot). From pin_i: <= MW + 4 * (MW / W + 2) + 135 cycles (443 for the
// defaults) to nxt_rdy_o.
// Reset clears every pinned bit (N_SLOTS / W write cycles, busy_o high), then searches.
// pinned_o = CNT_PINNED, free_o = N_SLOTS - pinned_o (SLOTS_FREE in block mode).
`default_nettype none
module slot_ring #(
    parameter N_SLOTS = 2048,      // multiple of W, <= 65536
    parameter W       = 16,        // pinned bits per memory word (iCE40 RAM40: 16)
    parameter MW      = 240,       // PIN_MASK / UNPIN_MASK mask bits
    parameter LUTRAM  = 0          // 1: block RAM with output register (ram_sdp_oreg: ECP5
                                   // DP16KD), 2: LUT RAM (below)
) (
    input  wire          clk_i,
    input  wire          rst_i,
    // allocation
    input  wire          take_i,
    output reg           nxt_rdy_o,
    output reg           nxt_ok_o,
    output reg  [15:0]   nxt_slot_o,
    // pin changes
    input  wire          load_i,
    input  wire          pin_i,
    input  wire          set_i,
    input  wire [15:0]   base_i,
    input  wire [MW-1:0] mask_i,
    output reg           chk_ok_o,
    output reg           pin_done_o,
    output reg  [1:0]    pin_err_o,     // 0 applied, 1 mask == 0, 2 a slot >= N_SLOTS
    output wire          busy_o,        // clearing after reset or changing pins
    output reg  [16:0]   pinned_o,
    output reg  [16:0]   free_o
);
    localparam NW  = N_SLOTS / W;                  // memory words
    localparam AW  = (NW > 1) ? $clog2(NW) : 1;    // word address
    localparam BW  = (W > 1) ? $clog2(W) : 1;      // bit in a word
    localparam NG  = W / 4;                        // 4-bit groups per word
    localparam GW  = (NG > 1) ? $clog2(NG) : 1;
    localparam IW  = $clog2(MW + 1);               // mask bit counter
    localparam [AW-1:0] LASTW = AW'(NW - 1);
    localparam POW2 = (NW == (1 << AW));           // the word address wraps by itself
    // FAST (LUTRAM != 0: the ECP5 builds): the twelfth session's registers for ECP5 timing, in
    // the generate block g_fast below the control (same cycles, checked by
    // fpga/bench/hdrpath_equiv.py). FAST = 0 (the iCE40 builds): the eleventh session's logic,
    // and no register of g_fast, so the HX8K netlists do not change (those boards are at
    // 79-81 % of their LCs; even a register that yosys removes as unused changed ABC's LUT
    // count there, so g_fast holds them all).
    localparam FAST = (LUTRAM != 0);
    // g_fast's registers where the control reads them (FAST)
    wire          wnl_f;        // M_CLR: wa_q != LASTW
    wire          rwf_f;        // mode_q is M_RD or M_W1
    wire          d3_f;         // M_SRCH: decide in this cycle (s3_v && (pick_nz || s3_last))
    /* verilator lint_off UNUSEDSIGNAL */
    wire [AW-1:0] wa_f;         // (LUTRAM = 1) the DP16KD's write address (see g_oreg)
    /* verilator lint_on UNUSEDSIGNAL */

    // ------------------------------------------------------------ pinned bits (block RAM)
    // LUTRAM = 0: inferred block RAM (iCE40 SB_RAM40_4K), read into rd_q.
    // LUTRAM = 1 (the tops' FIFO_LUTRAM: the ECP5 builds): ram_sdp_oreg, a block RAM read
    // through an output register (ECP5: fpga/rtl/ecp5/ram_sdp_oreg.v, one DP16KD with REGMODE
    // OUTREG; yosys infers a DP16KD only without it, and that one has a 5.8 ns clock-to-out,
    // the node's critical path in the fifth round). Its address is the
    // next read address ra_d (latched in the block RAM at the edge that sets ra_q) and the word
    // is in the output register an edge later, so rd is the word at ra_q of the cycle before,
    // as in the other two: same cycles (eleventh session; replaced the LUT RAM banks below,
    // fpga/README.md "ECP5 Fmax, eleventh session"). The write port takes the next values
    // (we_d, wa_d): a word written back by the apply pass is in the array at the edge that ends
    // M_WR, before M_FIN's read of it (the two ports' same-edge collision is undefined;
    // ram_sdp_oreg and the DP16KD model read X there in simulation). Its data is wd_q, 0 during the
    // reset (whose cycles write word 0 before wd_q is cleared). NW <= 1024 words of W <= 18 bits
    // (16384 slots).
    // LUTRAM = 2: LUT RAM (the tenth session's ECP5 ring, kept for comparison: no top builds it)
    // in NBK banks of NW / NBK words: each
    // bank's read is registered (bq_q; a bank other than the read word's is 0, the flip-flops'
    // synchronous reset from a registered per-bank flag rs_k) and the read word is the OR of the
    // banks. 8192 slots: 8 banks of 64 words, a 4:1 before the register (the 32-to-1 read mux
    // was the ECP5 path at 141 MHz in the eighth session, its 8:1 in 4 banks at 154 MHz in the
    // ninth, the 8:1 on bs_q after the registers into wd_q / fr_q 6.1-6.4 ns in the tenth).
    // Same behaviour, cycle for cycle: rd is the word at ra_q of the cycle before. Each
    // bank has its own copy of the read address and of the write address and enable, registered
    // from their next values (ra_d, wa_d, we_d; a kept process: yosys merges equal flip-flops),
    // so no address drives more than one bank's RAM cells (one read address for 128 cells was
    // an ECP5 path at 153 MHz, ninth session).
    localparam NBK = (NW >= 128) ? 8 : (NW >= 64) ? 4 : 1;     // LUT RAM banks
    localparam KW  = (NBK > 1) ? $clog2(NBK) : 1;
    localparam BKW = (NW / NBK > 1) ? $clog2(NW / NBK) : 1;
    reg [AW-1:0] ra_q, wa_q;
    reg [W-1:0]  wd_q;
    reg          we_q;
    reg [AW-1:0] ra_d, wa_d;            // their next values (the control block below)
    reg [AW-1:0] rai_q;                 // ra_q + 1 where the search uses it (M_SRCH): no
                                        // carry chain into the memory's address
    reg          we_d;
    reg [AW-1:0] wai_q;                 // M_CLR: wa_q + 1 (1 from the reset, then counting: the
                                        // increment into the DP16KD's write address was the
                                        // block path's ECP5 path at 6.0 ns, eleventh session)
    wire [W-1:0] rd;
    genvar gk;
    generate
        if (LUTRAM == 1) begin : g_oreg      // (see above)
            if (NW > 1024 || W > 18) begin : g_too_big
                slot_ring_LUTRAM_1_needs_NW_le_1024_and_W_le_18 u_err ();
            end
            wire [W-1:0] wdz = wd_q & {W{!rst_i}};
            // the write address is wa_f (g_fast): wa_d where a write is issued, one LUT of
            // flip-flops (wa_d's mux with M_RD's word into the DP16KD's address pins was the
            // block path's ECP5 path at 5.3-5.5 ns, twelfth session)
            ram_sdp_oreg #(.DW(W), .DEPTH(NW)) u_ram (
                .clk_i(clk_i), .we_i(we_d), .wa_i(wa_f), .wd_i(wdz), .ra_i(ra_d), .rd_o(rd));
            wire unused_we = we_q;      // (the others' write)
        end else if (LUTRAM != 0) begin : g_lut
            wire [W-1:0] bq [0:NBK-1];
            reg [KW-1:0] bs_q;          // the read word's bank
            for (gk = 0; gk < NBK; gk = gk + 1) begin : g_bank
                (* ram_style = "distributed", no_rw_check *)
                reg [W-1:0] mem_q [0:NW/NBK-1];
                reg [W-1:0] bq_q;
                reg [BKW-1:0] ra_k, wa_k;
                reg we_k;
                reg rs_k;               // this bank is the read word's (ra_q's) bank
                (* keep *) always @(posedge clk_i) begin
                    ra_k <= BKW'(ra_d);
                    wa_k <= BKW'(wa_d);
                    we_k <= we_d && ((NBK == 1) || (wa_d >> BKW) == gk);
                    rs_k <= (NBK == 1) || (ra_d >> BKW) == gk;
                end
                // a bank not read is 0 (the flip-flops' synchronous reset), so the read word
                // is the OR of the banks (no bank select on bs_q after the registers)
                always @(posedge clk_i) begin
                    if (we_k) mem_q[wa_k] <= wd_q;
                    bq_q <= rs_k ? mem_q[ra_k] : {W{1'b0}};
                end
`ifndef SYNTHESIS
`ifndef FORMAL   // (simulation only: yosys -formal has no $fatal)
                always @(posedge clk_i)
                    if (ra_k != BKW'(ra_q) || wa_k != BKW'(wa_q)
                        || we_k != (we_q && ((NBK == 1) || (wa_q >> BKW) == gk))
                        || rs_k != ((NBK == 1) || (ra_q >> BKW) == gk))
                        $fatal(1, "slot_ring: a bank's address copy differs");
`endif
`endif
                assign bq[gk] = bq_q;
            end
            always @(posedge clk_i) bs_q <= KW'(ra_q >> BKW);
            reg [W-1:0] rd_or;
            integer ko;
            always @* begin
                rd_or = {W{1'b0}};
                for (ko = 0; ko < NBK; ko = ko + 1) rd_or = rd_or | bq[ko];
            end
            assign rd = rd_or;
`ifndef SYNTHESIS
`ifndef FORMAL
            // (simulation only) the OR of the banks is the read word's bank, as the select was
            always @(posedge clk_i)
                if (!rst_i && rd_or !== bq[(NBK > 1) ? bs_q : 0])
                    $fatal(1, "slot_ring: the banks' OR differs from the read word's bank");
`endif
`endif
        end else begin : g_block
            (* ram_style = "block", no_rw_check *)
            reg [W-1:0] mem_q [0:NW-1];
            reg [W-1:0] rd_q;
            always @(posedge clk_i) begin
                if (we_q) mem_q[wa_q] <= wd_q;
                rd_q <= mem_q[ra_q];
            end
            assign rd = rd_q;
        end
    endgenerate

    // ------------------------------------------------------------ control
    localparam [3:0] M_CLR = 4'd0, M_SRCH = 4'd1, M_IDLE = 4'd2, M_RD = 4'd4,
                     M_W1 = 4'd5, M_W2 = 4'd6, M_BIT = 4'd7, M_WR = 4'd8, M_FIN = 4'd9;
    reg [3:0]     mode_q;
    // (FAST: every mode but the two of the search, 3 is not used; two state bits of yosys's
    // one-hot encoding instead of seven)
    assign busy_o = FAST ? (mode_q != M_SRCH) && (mode_q != M_IDLE)
                         : (mode_q == M_CLR) || (mode_q >= M_RD);
    reg [15:0]    cur_q;          // current slot (the last one taken); reset: N_SLOTS - 1

    // search pipeline: stage 0 address (ra_q, s0_*), 1 memory word (rd, s1_*, m1_q), 2 unpinned
    // bits (fr_q), 3 4-bit groups (gnz_q, glo_q), 4 decision
    reg [AW:0]    left_q;         // words still to issue
    reg           s0_v, s1_v, s2_v, s3_v;
    reg           s0_f;           // first word: mask the bits up to the current slot
    reg [AW-1:0]  s1_w, s2_w, s3_w;
    reg           s1_last, s2_last, s3_last;
    reg [BW-1:0]  start_b_q;      // first bit of the first word
    reg [W-1:0]   m1_q;           // stage 1: the bits of the word that count
    reg [W-1:0]   fr_q;
    reg [NG-1:0]  gnz_q;
    reg [2*NG-1:0] glo_q;
    reg           hit_q;          // stop issuing: a word with an unpinned slot has been seen
                                  // (FAST: the search has decided)

    // bits >= b of a word
    function automatic [W-1:0] upmask(input [BW-1:0] b);
        integer k;
        for (k = 0; k < W; k = k + 1) upmask[k] = (k >= b);
    endfunction
    /* verilator lint_off UNUSEDSIGNAL */
    function automatic [1:0] lo4(input [3:0] v);    // lowest set bit (v != 0; v[3] implied)
        lo4 = v[0] ? 2'd0 : v[1] ? 2'd1 : v[2] ? 2'd2 : 2'd3;
    endfunction
    /* verilator lint_on UNUSEDSIGNAL */
    reg           pick_nz;
    reg [BW-1:0]  pick_b;
    integer g;
    always @* begin
        pick_nz = 1'b0;
        pick_b  = {BW{1'b0}};
        for (g = NG - 1; g >= 0; g = g - 1)
            if (gnz_q[g]) begin
                pick_nz = 1'b1;
                pick_b  = BW'({g[GW-1:0], glo_q[2*g +: 2]});
            end
    end

    // pin pass state
    reg [MW-1:0]  msk_q;          // mask copy, rotated (check) / shifted (apply)
    reg [IW-1:0]  i_q;            // mask bit index
    reg [16:0]    s_q;            // slot base + i (FAST: the check pass's)
    // FAST: the apply pass's word (sw_f, g_fast's sw_q: slot base + i's, counted at each word's
    // last bit) and bit (sbh_q, from the load); the check pass does not move them (it reloads
    // s_q / sbh_q from base_q at its end: that mux and the apply's increment into s_q were ECP5
    // paths at 5.0-5.4 ns, twelfth session)
    wire [AW-1:0] sw_f;
    reg           ge_q;           // s_q >= N_SLOTS
    reg           set_q, any_q, bad_q, lastw_q, chk_q;
    // the apply pass ends a word early when the rest of the mask is 0: instead of a MW-bit zero
    // compare of msk_q (7 LUT levels into mode_q: the node's ECP5 critical path at 106 MHz), the
    // check pass records the index of the last set mask bit (hi_q) and the apply pass flags,
    // registered, that it has consumed it (mz_q: msk_q == 0 after this bit); same cycles
    reg [IW-1:0]  hi_q;           // index of the last set mask bit (check pass)
    reg           mz_q;           // apply: the bits left in msk_q are all 0
    reg           pinc_q, pdec_q; // apply: the last bit pinned / unpinned a slot
    reg [15:0]    base_q;
    // s_q's bit in its word as a one-hot copy (sbh_q) and i_q == MW - 1 as a flag (li_q), both
    // set with s_q / i_q: the apply pass's bit select and its word end were a 16:1 decode of
    // s_q into wd_q and the pinned count (ECP5 paths at 153 MHz, ninth session)
    reg  [W-1:0]  sbh_q;          // 1 << s_q[BW-1:0] (FAST: 1 << (base_q + i_q)[BW-1:0], apply)
    reg           li_q;           // i_q == MW - 1
    wire          last_i = li_q;
    wire          bit_v = |(wd_q & sbh_q);      // wd_q[s_q[BW-1:0]]

    // the slot after the current one, registered with cur_q (M_FIN follows every change of
    // cur_q; its compare and increment into the address was an ECP5 path at 154 MHz)
    /* verilator lint_off UNUSEDSIGNAL */
    reg  [15:0]   start_q;
    wire [15:0]   start = (cur_q == 16'(N_SLOTS - 1)) ? 16'd0 : cur_q + 16'd1;
    /* verilator lint_on UNUSEDSIGNAL */

    // next values of the memory's read / write address and write enable. A read is used only
    // when issued by the search (M_SRCH while s0_v && !hit_q; once it stops issuing it does not
    // again before M_FIN) or by the apply pass (M_RD's address, held in M_W1); in every other
    // cycle the read address steps as a search issue would (a read nobody uses), so s0_v /
    // hit_q are not inputs of the address (they were, into the DP16KD's address pins, an ECP5
    // path at 5.65 ns, eleventh session), nor is the reset
    always @* begin
        wa_d = wa_q;
        we_d = 1'b0;
        if (FAST)
            case (mode_q)
                M_FIN: ra_d = start_q[AW+BW-1:BW];
                // (M_RD, M_W1: rwf_f selects the apply's word, no decode of mode_q)
                default: ra_d = rwf_f ? sw_f : (!POW2 && ra_q == LASTW) ? {AW{1'b0}} : rai_q;
            endcase
        else
        case (mode_q)
            M_FIN: ra_d = start_q[AW+BW-1:BW];      // a search after the current slot
            // apply: the word's address, in M_RD and M_W1 (read in M_W2; s_q holds from M_RD
            // to M_BIT)
            M_RD, M_W1: ra_d = s_q[AW+BW-1:BW];
            default: ra_d = (!POW2 && ra_q == LASTW) ? {AW{1'b0}} : rai_q;
        endcase
        if (rst_i) begin
            wa_d = {AW{1'b0}};
            we_d = 1'b1;
        end else begin
            case (mode_q)
                M_CLR: begin
                    we_d = FAST ? wnl_f : (wa_q != LASTW);
                    wa_d = wai_q;                   // (wa_q + 1)
                end
                M_RD: wa_d = FAST ? sw_f : s_q[AW+BW-1:BW];   // apply: the word's address
                M_WR: we_d = 1'b1;                  // apply: the word written back
                default: ;
            endcase
        end
    end

    integer k;
    always @(posedge clk_i) begin
        pin_done_o <= 1'b0;
        chk_ok_o <= 1'b0;
        ra_q <= ra_d;
        // rai_q: M_FIN sets it to start_q's word + 1, every other cycle steps it (past the
        // search's last issue it is not used until the next M_FIN); ra_d + 1 with M_RD's s_q
        // word in the mux before the increment was the ECP5 path at 163 MHz (tenth session)
        rai_q <= (mode_q == M_FIN) ? start_q[AW+BW-1:BW] + 1'b1
               : ((!POW2 && ra_q == LASTW) ? {AW{1'b0}} : rai_q) + 1'b1;
        wa_q <= wa_d;
        we_q <= we_d;
        wai_q <= rst_i ? AW'(1) : wai_q + 1'b1;
        // search pipeline, free-running (valid flags say what counts)
        s1_v <= s0_v && !hit_q;  s1_w <= ra_q;  s1_last <= (left_q == {(AW+1){1'b0}});
        m1_q <= s0_f ? upmask(start_b_q) : {W{1'b1}};
        s2_v <= s1_v;  s2_w <= s1_w;  s2_last <= s1_last;
        fr_q <= ~rd & m1_q;
        s3_v <= s2_v;  s3_w <= s2_w;  s3_last <= s2_last;
        for (k = 0; k < NG; k = k + 1) begin
            gnz_q[k] <= |fr_q[4*k +: 4];
            glo_q[2*k +: 2] <= lo4(fr_q[4*k +: 4]);
        end
        free_o <= 17'(N_SLOTS) - pinned_o;
        // the pinned count follows the apply pass's bits a cycle later (the bit's 16:1 select
        // and the +-1 in one cycle were the ECP5 path at 145 MHz); it is exact from the
        // cycle pin_done_o is seen on
        pinc_q <= 1'b0;
        pdec_q <= 1'b0;
        if (pinc_q) pinned_o <= pinned_o + 17'd1;
        if (pdec_q) pinned_o <= pinned_o - 17'd1;
        if (rst_i) begin
            mode_q <= M_CLR;
            wd_q <= {W{1'b0}};
            cur_q <= 16'(N_SLOTS - 1);
            start_q <= 16'd0;
            pinned_o <= 17'd0;
            nxt_rdy_o <= 1'b0;
            nxt_ok_o <= 1'b0;
            nxt_slot_o <= 16'd0;
            pin_err_o <= 2'd0;
            {s0_v, s1_v, s2_v, s3_v, hit_q, chk_q, pinc_q, pdec_q} <= 8'd0;
        end else begin
            case (mode_q)
                M_CLR: if (FAST ? !wnl_f : (wa_q == LASTW)) mode_q <= M_FIN;
                M_FIN: begin                // start a search after the current slot
                    start_b_q <= start_q[BW-1:0];
                    s0_v <= 1'b1;
                    s0_f <= 1'b1;
                    left_q <= (AW+1)'(NW);
                    hit_q <= 1'b0;
                    {s1_v, s2_v, s3_v} <= 3'd0;
                    nxt_rdy_o <= 1'b0;
                    mode_q <= M_SRCH;
                end
                M_SRCH: begin
                    // issue the next word
                    s0_f <= 1'b0;
                    if (s0_v && !hit_q) begin
                        left_q <= left_q - 1'b1;
                        if (left_q == {(AW+1){1'b0}}) s0_v <= 1'b0;
                    end
                    if (!FAST) begin
                        if (s2_v && |fr_q) hit_q <= 1'b1;
                    end
                    // decide (FAST: and stop issuing: a word after the one decided on may have
                    // been issued, its read is not used)
                    if (FAST ? d3_f : (s3_v && (pick_nz || s3_last))) begin
                        nxt_rdy_o <= 1'b1;
                        nxt_ok_o <= pick_nz;
                        nxt_slot_o <= 16'({s3_w, pick_b});
                        s0_v <= 1'b0;
                        hit_q <= 1'b1;
                        mode_q <= M_IDLE;
                    end
                end
                M_IDLE: if (take_i) begin
                    cur_q <= nxt_slot_o;
                    start_q <= (nxt_slot_o == 16'(N_SLOTS - 1)) ? 16'd0 : nxt_slot_o + 16'd1;
                    nxt_rdy_o <= 1'b0;
                    mode_q <= M_FIN;
                end
                default: ;
            endcase
            // ---- pin changes (pass 1: check; the mask, index and slot registers: below)
            if (load_i) chk_q <= 1'b1;
            if (pin_i && !busy_o) begin
                nxt_rdy_o <= 1'b0;
                s0_v <= 1'b0;
                mode_q <= M_RD;
            end
            if (chk_q) begin
                if (last_i) begin
                    chk_q <= 1'b0;
                    if (!any_q && !msk_q[0]) begin
                        pin_err_o <= 2'd1;
                        pin_done_o <= 1'b1;
                    end else if (bad_q || (msk_q[0] && ge_q)) begin
                        pin_err_o <= 2'd2;
                        pin_done_o <= 1'b1;
                    end else begin
                        chk_ok_o <= 1'b1;
                    end
                end
            end
            // ---- pass 2: apply, word by word
            if (mode_q == M_RD) mode_q <= M_W1;
            if (mode_q == M_W1) mode_q <= M_W2;
            if (mode_q == M_W2) begin
                wd_q <= rd;
                mode_q <= M_BIT;
            end
            if (mode_q == M_BIT) begin
                for (k = 0; k < W; k = k + 1)
                    if (msk_q[0] && sbh_q[k]) wd_q[k] <= set_q;
                pinc_q <= msk_q[0] && set_q && !bit_v;
                pdec_q <= msk_q[0] && !set_q && bit_v;
                if (last_i || sbh_q[W-1]) mode_q <= M_WR;     // (the word's last bit)
            end
            if (mode_q == M_WR) begin
                // (FAST: on mz_q alone: at the mask's last bit mz_q is set too, a simulation
                // check says so; the last-bit flag ORed in was a LUT more into mode_q)
                if (FAST ? mz_q : (lastw_q || mz_q)) begin
                    pin_err_o <= 2'd0;
                    pin_done_o <= 1'b1;
                    mode_q <= M_FIN;
                end else begin
                    mode_q <= M_RD;
                end
            end
        end
    end
    // The pin passes' mask, index and slot registers: not reset (each pass starts with load_i,
    // which sets them; chk_q and mode_q, reset, say when they count), so the reset is not an
    // input of their enables (the block's reset flip-flop feeds several hundred of them).
    always @(posedge clk_i) begin
        if (load_i) begin
            msk_q <= mask_i;
            set_q <= set_i;
            base_q <= base_i;
            i_q <= {IW{1'b0}};
            li_q <= (MW == 1);
            s_q <= {1'b0, base_i};
            sbh_q <= W'(1) << base_i[BW-1:0];
            ge_q <= ({1'b0, base_i} >= 17'(N_SLOTS));
            any_q <= 1'b0;
            bad_q <= 1'b0;
        end
        if (chk_q) begin
            msk_q <= {msk_q[0], msk_q[MW-1:1]};
            any_q <= any_q || msk_q[0];
            if (msk_q[0]) hi_q <= i_q;
            bad_q <= bad_q || (msk_q[0] && ge_q);
            ge_q <= ge_q || (s_q == 17'(N_SLOTS - 1));
            s_q <= s_q + 17'd1;
            if (!FAST) sbh_q <= {sbh_q[W-2:0], sbh_q[W-1]};
            i_q <= i_q + 1'b1;
            li_q <= (i_q == IW'(MW - 2));
            if (last_i) begin
                if (!FAST) begin
                    s_q <= {1'b0, base_q};
                    sbh_q <= W'(1) << base_q[BW-1:0];
                end
                i_q <= {IW{1'b0}};
                li_q <= (MW == 1);
            end
        end
        if (mode_q == M_BIT) begin
            msk_q <= {1'b0, msk_q[MW-1:1]};
            if (!FAST) s_q <= s_q + 17'd1;
            sbh_q <= {sbh_q[W-2:0], sbh_q[W-1]};
            i_q <= i_q + 1'b1;
            li_q <= (i_q == IW'(MW - 2));
            lastw_q <= last_i;
            mz_q <= (i_q >= hi_q);
        end
    end

    // ------------------------------------------------------------ FAST: ECP5 timing registers
    // (twelfth session, fpga/README.md "ECP5 Fmax, twelfth session"; each one the expression it
    // replaces, a simulation check below says so):
    //  - wnl_q: wa_q != LASTW in M_CLR, registered from wai_q (the compare into the write
    //    enable was a 6.4 ns ECP5 path in the eleventh session);
    //  - d3_q: the search's decision registered from stage 2 (s2_v && (|fr_q || s2_last),
    //    cleared with s3_v), so the 16-bit OR of fr_q into hit_q (5.2 ns) and the decode from
    //    gnz_q into nxt_rdy_o's enable (5.3 ns) are gone; hit_q then stops the issue at the
    //    decision, a word later (that word's read is not used);
    //  - sw_q: the apply pass's word (see sw_f);
    //  - rwf_q: mode_q is M_RD or M_W1 (the read address's select; mode_q's next value);
    //  - wa_f (LUTRAM = 1): the DP16KD's write address as wa_d where a write is issued (the
    //    reset: 0, M_CLR: wai_q, M_WR: wa_q; not M_RD's word, which is not written).
    generate
        if (FAST) begin : g_fast
            reg wnl_q, rwf_q, d3_q;
            reg [AW-1:0] sw_q;
            always @(posedge clk_i) begin
                wnl_q <= rst_i ? (NW > 1) : (wai_q != LASTW);  // (wa_q's next value in M_CLR)
                rwf_q <= !rst_i && ((pin_i && !busy_o) || mode_q == M_RD
                                    || (mode_q == M_WR && !mz_q));
                d3_q <= (rst_i || mode_q == M_FIN) ? 1'b0 : s2_v && (|fr_q || s2_last);
                if (load_i) sw_q <= base_i[AW+BW-1:BW];
                if (mode_q == M_BIT && sbh_q[W-1]) sw_q <= sw_q + 1'b1;   // (the word's last bit)
            end
            assign {wnl_f, rwf_f, d3_f, sw_f} = {wnl_q, rwf_q, d3_q, sw_q};
            assign wa_f = rst_i ? {AW{1'b0}} : (mode_q == M_CLR) ? wai_q : wa_q;
`ifndef SYNTHESIS
`ifndef FORMAL
            // (simulation only) each register is the expression it replaces
            /* verilator lint_off UNUSEDSIGNAL */
            wire [16:0] sa = {1'b0, base_q} + 17'(i_q);     // the apply pass's slot
            /* verilator lint_on UNUSEDSIGNAL */
            always @(posedge clk_i)
                if (!rst_i && (mode_q == M_RD || mode_q == M_W1 || mode_q == M_W2 || mode_q == M_BIT)
                    && (sbh_q != W'(1) << sa[BW-1:0] || sw_q != sa[AW+BW-1:BW]))
                    $fatal(1, "slot_ring: sbh_q / sw_q differ from base_q + i_q");
            always @(posedge clk_i)
                if (!rst_i && (rwf_q != (mode_q == M_RD || mode_q == M_W1)
                               || (mode_q == M_BIT && last_i && !(i_q >= hi_q))))
                    $fatal(1, "slot_ring: rwf_q differs from its modes, or mz_q is not set at the last bit");
            always @(posedge clk_i)
                if (!rst_i && mode_q == M_W1 && sw_q != ra_q)
                    $fatal(1, "slot_ring: sw_q moved between M_RD and M_W1");
            always @(posedge clk_i)
                if (!rst_i && mode_q == M_SRCH && d3_q != (s3_v && (pick_nz || s3_last)))
                    $fatal(1, "slot_ring: d3_q differs from s3_v && (pick_nz || s3_last)");
            always @(posedge clk_i)
                if (!rst_i && mode_q == M_CLR && wnl_q != (wa_q != LASTW))
                    $fatal(1, "slot_ring: wnl_q differs from wa_q != LASTW in M_CLR");
`endif
`endif
        end else begin : g_slow
            assign {wnl_f, rwf_f, d3_f, sw_f, wa_f} = {(3+2*AW){1'b0}};
        end
    endgenerate

`ifndef SYNTHESIS
`ifndef FORMAL   // (simulation only: yosys -formal has no $fatal)
    // (simulation only) the flags are the compares they replace, where they are used
    always @(posedge clk_i)
        if (!rst_i && (chk_q || mode_q == M_BIT)
            && ((!FAST && sbh_q != W'(1) << s_q[BW-1:0]) || li_q != (i_q == IW'(MW - 1))))
            $fatal(1, "slot_ring: sbh_q / li_q differ from s_q / i_q");
    always @(posedge clk_i)
        if (!rst_i && !FAST && mode_q == M_W1 && s_q[AW+BW-1:BW] != ra_q)
            $fatal(1, "slot_ring: s_q moved between M_RD and M_W1");
    always @(posedge clk_i)
        if (!rst_i && mode_q == M_CLR && wai_q != wa_q + 1'b1)
            $fatal(1, "slot_ring: wai_q differs from wa_q + 1 in M_CLR");
    always @(posedge clk_i)
        if (!rst_i && mode_q == M_SRCH && s0_v && !hit_q && rai_q != ra_q + 1'b1)
            $fatal(1, "slot_ring: rai_q differs from ra_q + 1 in a search issue");
    always @(posedge clk_i)
        if (!rst_i && mode_q == M_FIN && start_q != start)
            $fatal(1, "slot_ring: start_q differs from the slot after cur_q");
`endif
`endif
endmodule
`default_nettype wire

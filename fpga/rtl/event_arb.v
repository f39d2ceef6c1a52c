// Event arbitration and event FIFO.
//
// NS sources (top: 0 scheduler, 1 header decoder, 2 link errors, 3 herald matcher, 4 pair
// scheduler; NS <= 6) each give one-cycle event pulses
// (opcode + 16-byte payload) into a one-deep holding register; each cycle the lowest-numbered
// pending source is pushed into the event FIFO (2^AW entries) with the next 8-bit event seq.
// Nothing is ever dropped quietly: when the FIFO is full (or a source pulses while its holding
// register still holds an older event, which is then overwritten) an event is lost, its seq is
// consumed (the host sees a gap), lost_o gives the number lost per cycle (EVT_LOST), and as soon
// as the FIFO has room ERROR(EVENT_OVERFLOW, info = events lost since the last report) is pushed
// ahead of other events.
// Read side: rd_en_i (only while empty_o is low), then {seq, op, payload} on dout_o the next
// cycle.
// For timing, losses enter the pending count and the seq counter two cycles late (via lost_o), so
// a lost event's seq can land after events pushed in the next two cycles; every loss still
// consumes exactly one seq and is reported once.
// The pending count is two halves (LPW low bits) with a registered carry; the report adds a
// pending carry by choosing a precomputed high half + 1.
// Block tokens (wire v4, TOK = 1): tok_i pulses once per HDR_BLOCK closed by hdr_block; each is
// pushed as an HDR_BLOCK event (payload 0: blk_tx streams the block from hdr_block's buffer) when
// no holding register is pending, no report is due and the FIFO has room, so a token is never
// dropped (tokens wait; they are counted in tokc_q). lost_i: a block hdr_block lost (no buffer),
// accounted like an event lost here (EVT_LOST, a seq, the EVENT_OVERFLOW report).
// Ordered responses (TOK = 1): mrk_i pulses when a PIN_MASK / UNPIN_MASK has executed; a marker
// entry (opcode MRK_OP, no event seq consumed, never lost) is pushed in the token order, after
// every token counted so far (tok_i of the same cycle included) and before every later one, with
// the tokens' priority. tx_arb sends the command's response when it reads the marker, so the
// response leaves after every event that entered the FIFO before it and before every later one
// (docs/header-path.md section 3).
`default_nettype none
`include "wire_spec.vh"
module event_arb #(
    parameter AW = 4,
    parameter LUTRAM = 0,           // FIFO storage in LUT RAM (see sync_fifo)
    parameter LPW = 16,             // low half of the lost-event count (>= 3; tests use 3)
    parameter NS = 3,               // sources (<= 5 with TOK)
    parameter TOK = 0,              // 1: HDR_BLOCK tokens (tok_i, lost_i)
    parameter TW = 4,               // token counter bits (> log2 of hdr_block's NB)
    parameter SELTREE = 1,          // 1: din's choice of a holding register as a mux tree
                                    // with a kept first level (sel_mux2); 0: hold[pick] (same
                                    // cycles; 0 is the smaller one, the iCE40 builds')
    parameter FAST = 0,             // 1: pick_q's cone from registered one-hot / per-source
                                    // flags (same cycles, ~25 flip-flops more); 0: the smaller
                                    // logic (the iCE40 builds', the station's)
    parameter INSTAGE = 0,          // 1: every input through one register stage here, valid in
                                    // two copies (each event one cycle later, all alike; the
                                    // node top's ECP5 builds, with FAST)
    parameter [7:0] MRK_OP = 8'h00  // marker entry opcode (no frame has it; see tx_arb)
) (
    input  wire         clk_i,
    input  wire         rst_i,
    input  wire [NS-1:0]     valid_i,
    input  wire [8*NS-1:0]   op_i,          // source s at [8*s +: 8]
    input  wire [128*NS-1:0] payload_i,     // source s at [128*s +: 128]
    input  wire         tok_i,
    input  wire         lost_i,
    input  wire         mrk_i,
    input  wire         rd_en_i,
    output wire [143:0] dout_o,
    output wire         empty_o,
    output wire         pending_o,
    output reg  [2:0]   lost_o         // events lost (EVT_LOST += lost_o)
);
    // The ECP5 timing variants (FAST, INSTAGE: same cycles) are written as `(FAST != 0) ? new
    // : old` with the old (0) side as before, and their registers in generate blocks, so the
    // iCE40 netlists (0) do not change.
    // INSTAGE: the inputs as the logic below sees them one cycle later, through a register
    // stage with valid in two copies: vc for the control logic (reg_copy: not merged), ve for
    // the holding registers' enables (timing: one valid flip-flop enabling 136 holding
    // flip-flops was placed by them, 3.5-4.3 ns of route from the pick logic, the node's ECP5
    // HeAP path in the eleventh and twelfth sessions, when the stage was in top.v). The logic
    // takes them through the macros below (the ports themselves when INSTAGE = 0: no wire
    // aliases the ports there, which changed the iCE40 netlists' mapping).
`define EA_VC  ((INSTAGE != 0) ? g_in.vc : valid_i)
`define EA_VC_B(k) ((INSTAGE != 0) ? g_in.vc[k] : valid_i[k])
`define EA_VE_B(k) ((INSTAGE != 0) ? g_in.v_q[k] : valid_i[k])
`define EA_OP_B(s) ((INSTAGE != 0) ? g_in.op_q[8*(s) +: 8] : op_i[8*(s) +: 8])
`define EA_PL_B(s) ((INSTAGE != 0) ? g_in.pl_q[128*(s) +: 128] : payload_i[128*(s) +: 128])
`define EA_TOK ((INSTAGE != 0) ? g_in.tok_q : tok_i)
`define EA_LOST ((INSTAGE != 0) ? g_in.lost_q : lost_i)
`define EA_MRK ((INSTAGE != 0) ? g_in.mrk_q : mrk_i)
    // The names of the 1 sides live only in their generate blocks (g_in, g_fast), read by
    // hierarchical names in the folded-away branches: a wire declared here, even undriven and
    // unused, changed the iCE40 netlists' mapping. For simulators and linters, which resolve
    // the names in the dead branch too, the 0 sides declare them as constants (not in
    // synthesis: `ifndef SYNTHESIS`).
    generate if (INSTAGE != 0) begin : g_in
        reg [NS-1:0]     v_q;
        reg [8*NS-1:0]   op_q;
        reg [128*NS-1:0] pl_q;
        reg              tok_q, lost_q, mrk_q;
        always @(posedge clk_i) begin
            op_q <= op_i;
            pl_q <= payload_i;
            if (rst_i) {v_q, tok_q, lost_q, mrk_q} <= {(NS+3){1'b0}};
            else {v_q, tok_q, lost_q, mrk_q} <= {valid_i, tok_i, lost_i, mrk_i};
        end
        wire [NS-1:0]    vc;
        reg_copy #(.W(NS)) u_vc (.clk_i(clk_i), .d_i(rst_i ? {NS{1'b0}} : valid_i), .q_o(vc));
        wire stage_v = (|v_q) || tok_q || lost_q || mrk_q;
    end
`ifndef SYNTHESIS
    else begin : g_in
        /* verilator lint_off UNUSEDSIGNAL */
        wire [NS-1:0]     v_q = {NS{1'b0}}, vc = {NS{1'b0}};
        wire [8*NS-1:0]   op_q = {(8*NS){1'b0}};
        wire [128*NS-1:0] pl_q = {(128*NS){1'b0}};
        wire              tok_q = 1'b0, lost_q = 1'b0, mrk_q = 1'b0, stage_v = 1'b0;
        /* verilator lint_on UNUSEDSIGNAL */
    end
`endif
    endgenerate
    // FAST: pick_q as a one-hot flag per source (oh_q[s] = hv[s] && lowest(hv) == s; 0 when hv
    // is 0), registered from the same next values: source s is served this cycle iff oh_q[s] &&
    // !report, one LUT of flip-flops (timing: `any && !report && pick == s` was |hv and pick_q's
    // decode in front of the hold flags' next values and so of pick_q's own next value, the
    // node's ECP5 HeAP path, eleventh session); two / any / hv & (hv - 1) from oh_q (no pairwise
    // terms of hv, no carry chain); mk0_q = mpend_q && mk_q == 0 registered from their next
    // values; hp_q = hv, ap_q = hv & ~oh_q, a_q = hold_v_q & ~oh_q per source (g_fast below)
    reg [NS-1:0] hold_v_q;
    // Ordered responses: an event that comes while a marker waits (post_q) stays hidden from the
    // arbitration until the marker has been pushed, so it leaves after the response; events
    // held before (and those of the marker's cycle) go before it, as do the tokens ahead of it.
    reg [NS-1:0] post_q;
    reg          mpend_q;
    wire [NS-1:0] hv = hold_v_q & ~post_q;          // holding registers the arbiter serves
    reg [7:0]   hold_op_q [0:NS-1];
    reg [127:0] hold_pl_q [0:NS-1];
    reg [7:0]   seq_q, seq_p1_q;
    reg [31:0]  lost_pend_q;       // events lost since the last report: low half + pending carry
    reg         lp_c_q;            // into the high half (timing: two 16-bit adders)
    reg [31-LPW:0] hi_p1_q;        // high half + 1: the reported value is {hi + lp_c_q, low}

    // The event pushed is registered (wr_q, din_q) and written to the FIFO a cycle later (timing:
    // no path from the holding registers through the choice into the FIFO's flags and pointers).
    // room: that write will fit, counting the write of this cycle and ignoring its read (like
    // the FIFO's room_o), kept here as a count of the FIFO's entries plus the write in din_q
    // (occ_q, a thermometer code: occ_q[k] = at least k+1), so room is a flip-flop (timing: no
    // path wr_q -> room -> choice -> enables, and no carry chain after the push decision).
    localparam DEPTH = 1 << AW;
    reg [DEPTH-1:0] occ_q;
    wire room = !occ_q[DEPTH-1];
    // next occupancy with / without a push this cycle
    (* keep *) wire [DEPTH-1:0] occ_up = rd_en_i ? occ_q : {occ_q[DEPTH-2:0], 1'b1};
    (* keep *) wire [DEPTH-1:0] occ_dn = rd_en_i ? {1'b0, occ_q[DEPTH-1:1]} : occ_q;
    reg          wr_q;
    reg  [143:0] din_q;
    reg         pend_nz_q;     // lost_pend_q != 0, kept as a flag (timing)
    // A report restarts the count a cycle later (rep_q, from the registered lost_o of the report
    // cycle), so report has no 32-bit fanout; no second report in that cycle (timing).
    reg         rep_q;
    reg  [2:0]  lost_prev_q;
    reg  ovf_sel_q;                 // pend_nz_q && !rep_q (registered: timing)
    wire report = ovf_sel_q && room;
    wire [31:0] lost_rep = {lp_c_q ? hi_p1_q : lost_pend_q[31:LPW], lost_pend_q[LPW-1:0]};
    // lowest pending source (when no overflow report this cycle). Registered (pick_q) from the
    // next values of the holding flags (hold_v_d, post_d below), so pick_q equals the lowest set
    // bit of hv in every cycle and selects the 136 bits of din straight from flip-flops (timing:
    // hv -> pick -> the din mux was 2 LUTs + a fanout of 136 behind a LUT, the station's ECP5
    // HeAP path).
    localparam PW = (NS > 1) ? $clog2(NS) : 1;
    function automatic [PW-1:0] lowest(input [NS-1:0] v);
        integer pi;
        begin
            lowest = PW'(NS - 1);
            for (pi = NS - 2; pi >= 0; pi = pi - 1)
                if (v[pi]) lowest = pi[PW-1:0];
        end
    endfunction
    // the lowest set bit as a one-hot vector (FAST)
    function automatic [NS-1:0] first(input [NS-1:0] v);
        integer fi;
        reg seen;
        begin
            first = {NS{1'b0}};
            seen = 1'b0;
            for (fi = 0; fi < NS; fi = fi + 1) begin
                first[fi] = v[fi] && !seen;
                seen = seen || v[fi];
            end
        end
    endfunction
    reg  [PW-1:0] pick_q;
    reg  [NS-1:0] hold_v_d, post_d;     // the holding flags' next values (below)
    wire [PW-1:0] pick = pick_q;
    // two or more sources held
    reg        two;
    integer ti, tj;
    always @* begin
        two = 1'b0;
        for (ti = 0; ti < NS; ti = ti + 1)
            for (tj = ti + 1; tj < NS; tj = tj + 1)
                two = two || (hv[ti] && hv[tj]);
    end
    wire       any  = (FAST != 0) ? |g_fast.oh_q : |hv;
    reg        any_q;              // |hv, registered from hold_v_q's own inputs (timing)
    wire       serve = any && !report;             // push or drop hold[pick] this cycle
    // block tokens waiting (tokc_q, tok_nz_q = tokc_q != 0 registered); a token is pushed when
    // nothing else is (tok_take); the marker of an ordered response waits (mpend_q) behind mk_q
    // tokens and is pushed in their place once none is ahead (mrk_take)
    reg [TW-1:0] tokc_q, mk_q;
    reg          tok_nz_q;
    wire         mk0 = (FAST != 0) ? g_fast.mk0_q : mpend_q && (mk_q == {TW{1'b0}});
    wire         tok_sel = (TOK != 0) && !ovf_sel_q && !any_q;
    wire         tok_take = tok_sel && tok_nz_q && room && !mk0;
    wire         mrk_take = tok_sel && mk0 && room;
    // (keep: a LUT output of its own, so synthesis does not fold the choice into each user,
    // which made 4 LUT levels to the occupancy count)
    (* keep *) wire push = room && (ovf_sel_q || any_q || ((TOK != 0) && (tok_nz_q || mpend_q)));
                                                // = report || (serve && room) || tok / mrk_take
    wire       push_ev = push && !mrk_take;     // an event (consumes an event seq)
    reg        wr_ev_q;                         // push_ev of the last cycle
    // The next event seq is seq_q + wr_q: the push of the last cycle (wr_q) is added a cycle
    // late, so push only drives wr_q and the hold flags (timing); seq_p1_q = seq_q + 1.
    wire [7:0] seq_cur = wr_ev_q ? seq_p1_q : seq_q;
    // lw_q = lost_o + wr_q, registered from their own inputs (timing: lost_o's fanout)
    reg  [3:0] lw_q;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [8:0] seq_p1c = {seq_q, 1'b1} + {4'd0, lw_q, 1'b1};   // one carry chain, carry-in 1
    /* verilator lint_on UNUSEDSIGNAL */
    // selected by pend_nz_q && !rep_q, not report: they differ only without room, when nothing is
    // pushed (keeps room out of the FIFO data path: timing)
    // (ovf_sel_q, registered: it selects 144 bits)
    // SELTREE: the holding registers are chosen by a mux tree on pick_q's bits whose first level
    // is sel_mux2 (a module synthesis keeps), so each bit's first level is one LUT of flip-flops
    // and the report is chosen after the tree; the select is 4 copies of pick_q (reg_copy), each
    // for 34 of the 136 bits (a single pick_q[0] driving every first-level LUT was a 2.1 ns
    // route: station HeAP, tenth session) (timing: as one mux of pick_q, yosys shared a
    // decode of pick_q among all 136 bits, and the decode LUT with its fanout plus 2 LUTs into
    // din_q was the station's ECP5 HeAP path, 5.1-6.0 ns; a registered select that also chose
    // the report (branch formal, 8e84d6a) put the report's next-value logic in front of it)
    generate if (FAST != 0) begin : g_fast
        reg  [NS-1:0] oh_q, hp_q, ap_q, a_q;
        reg           mk0_q;
        wire [NS-1:0] oh_n, vis_n;
        wire [PW-1:0] pick_n;
        // pick_q's and oh_q's next values, lowest / first of the next hv (hold_v_d & ~post_d),
        // formed for each case of mrk_take / report from flip-flops and vc and chosen last
        // (timing: mrk_take and report, LUTs of 2-4 flip-flops, were the first of 4 LUT levels
        // in front of pick_q's copies, event_arb alone). post_q is 0 while no marker waits
        // (!mpend_q), so in every case the next hv of a source is a LUT of vc, one of hp_q /
        // ap_q / a_q and mpend_q (timing: 2-3 inputs a source instead of 4-5)
        // mrk_take (post_d 0; nothing visible, so nothing served)
        wire [NS-1:0] vis_m  = `EA_VC | a_q;
        // no report: oh_q served (post_d = post_q | vc while a marker waits)
        wire [NS-1:0] vis_r0 = mpend_q ? (ap_q & ~`EA_VC) : (`EA_VC | ap_q);
        // report: none served
        wire [NS-1:0] vis_r1 = mpend_q ? (hp_q & ~`EA_VC) : (`EA_VC | hp_q);
        assign vis_n = mrk_take ? vis_m : report ? vis_r1 : vis_r0;    // = hold_v_d & ~post_d
        assign oh_n = mrk_take ? first(vis_m) : report ? first(vis_r1) : first(vis_r0);
        assign pick_n = mrk_take ? lowest(vis_m) : report ? lowest(vis_r1) : lowest(vis_r0);
        // the token count's next value (a marker's mk_q), for mk0_q
        wire [TW-1:0] tokc_d = tokc_q + {{(TW-1){1'b0}}, `EA_TOK} - {{(TW-1){1'b0}}, tok_take};
        always @(posedge clk_i) begin
            if (rst_i) begin
                {oh_q, hp_q, ap_q, a_q} <= {(4*NS){1'b0}};
                mk0_q <= 1'b0;
            end else begin
                oh_q <= oh_n;
                hp_q <= vis_n;
                ap_q <= vis_n & ~oh_n;
                a_q <= hold_v_d & ~oh_n;
                // = mpend_d && mk_d == 0, in terms of flip-flops (timing: as the compare of
                // mk_d, 5 LUT levels from any_q through tok_take and tokc_d, module alone):
                // mrk_take needs mk0_q and tok_take !mk0_q, and mk_q != 0 when mpend_q && !mk0_q
                if (TOK != 0) begin
                    if (`EA_MRK) mk0_q <= tokc_d == {TW{1'b0}};
                    else if (mk0_q) mk0_q <= !mrk_take;
                    else mk0_q <= tok_take && mpend_q && (mk_q == {{(TW-1){1'b0}}, 1'b1});
                end
            end
        end
`ifndef SYNTHESIS
`ifndef FORMAL
        // (simulation only: the registered flags equal what they stand for in every cycle)
        always @(posedge clk_i)
            if (!rst_i && (oh_q != first(hv) || mk0_q != (mpend_q && (mk_q == {TW{1'b0}}))
                           || vis_n != (hold_v_d & ~post_d) || hp_q != hv
                           || ap_q != (hv & ~oh_q) || a_q != (hold_v_q & ~oh_q)
                           || (!mpend_q && post_q != {NS{1'b0}})))
                $fatal(1, "event_arb: a FAST flag differs from what it stands for");
`endif
`endif
    end
`ifndef SYNTHESIS
    else begin : g_fast
        /* verilator lint_off UNUSEDSIGNAL */
        wire [NS-1:0] oh_q = {NS{1'b0}};
        wire          mk0_q = 1'b0;
        wire [PW-1:0] pick_n = {PW{1'b0}};
        /* verilator lint_on UNUSEDSIGNAL */
    end
`endif
    endgenerate

    wire [135:0] hsel;
    genvar gm, gc;
    generate if (SELTREE != 0 && NS > 1) begin : g_tree
        // pick_q in NC copies (reg_copy: not merged), copy c selecting bits [CW*c +: CW]
        localparam NC = 4, CW = 34;
        localparam NP = (NS + 1) / 2;    // first-level outputs (pairs; an odd last source alone)
        wire [PW*NC-1:0] pk;            // copy c at [PW*c +: PW]
        wire [PW-1:0] pick_d = rst_i ? lowest({NS{1'b0}})
                             : (FAST != 0) ? g_fast.pick_n : lowest(hold_v_d & ~post_d);
        for (gc = 0; gc < NC; gc = gc + 1) begin : g_cp
            reg_copy #(.W(PW)) u_pk (.clk_i(clk_i), .d_i(pick_d), .q_o(pk[PW*gc +: PW]));
            wire [CW*NP-1:0] a2;        // pair p at [CW*p +: CW]
            for (gm = 0; gm < NP; gm = gm + 1) begin : g_a2
                /* verilator lint_off UNUSEDSIGNAL */    // (copy gc uses bits [CW*gc +: CW])
                wire [135:0] h0 = {hold_op_q[2*gm], hold_pl_q[2*gm]};
                /* verilator lint_on UNUSEDSIGNAL */
                if (2 * gm + 1 < NS) begin : g_pair
                    /* verilator lint_off UNUSEDSIGNAL */
                    wire [135:0] h1 = {hold_op_q[2*gm+1], hold_pl_q[2*gm+1]};
                    /* verilator lint_on UNUSEDSIGNAL */
                    sel_mux2 #(.W(CW)) u_m (
                        .s_i(pk[PW*gc]), .a_i(h0[CW*gc +: CW]), .b_i(h1[CW*gc +: CW]),
                        .o_o(a2[CW*gm +: CW])
                    );
                end else begin : g_last
                    assign a2[CW*gm +: CW] = h0[CW*gc +: CW];
                end
            end
            if (NP == 1) begin : g_one
                assign hsel[CW*gc +: CW] = a2;
            end else begin : g_rest
                wire [PW-2:0] sh = pk[PW*gc+1 +: PW-1];
                assign hsel[CW*gc +: CW] = a2[CW*sh +: CW];
            end
        end
`ifndef SYNTHESIS
`ifndef FORMAL
        // (simulation only: every copy equals pick_q in every cycle)
        always @(posedge clk_i)
            if (!rst_i && pk != {NC{pick_q}}) $fatal(1, "event_arb: a pick_q copy differs");
`endif
`endif
    end else begin : g_pick
        assign hsel = {hold_op_q[pick], hold_pl_q[pick]};
    end endgenerate
    wire [143:0] din = ovf_sel_q
        ? {seq_cur, `HW_OP_ERROR, `HW_ERR_EVENT_OVERFLOW, lost_rep, 88'd0}
        : (tok_sel && mk0) ? {8'd0, MRK_OP, 128'd0}
        : tok_sel ? {seq_cur, `HW_OP_HDR_BLOCK, 128'd0}
        : {seq_cur, hsel};

    /* verilator lint_off PINCONNECTEMPTY */
    // CHECKED: writes only with room (room_o), and tx_arb, the only reader, reads only when it saw
    // the FIFO non-empty the cycle before
    sync_fifo #(.WIDTH(144), .AW(AW), .LUTRAM(LUTRAM), .CHECKED(1)) u_fifo (
        .clk_i(clk_i), .rst_i(rst_i), .flush_i(1'b0), .wr_en_i(wr_q), .din_i(din_q),
        .rd_en_i(rd_en_i), .dout_o(dout_o), .full_o(), .empty_o(empty_o), .count_o(),
        .room_o()
    );
    /* verilator lint_on PINCONNECTEMPTY */

    assign pending_o = (INSTAGE != 0)
        ? g_in.stage_v || !empty_o || wr_q || pend_nz_q || (lost_o != 3'd0) || (lost_f_q != {(NS+2){1'b0}})
          || tok_nz_q || mpend_q
        : !empty_o || wr_q || pend_nz_q || (lost_o != 3'd0) || (lost_f_q != {(NS+2){1'b0}})
          || tok_nz_q || mpend_q;

    // events lost this cycle, one flag per cause (registered, then counted: timing)
    integer k;
    reg [NS+1:0] lost_now;
    reg [NS+1:0] lost_f_q;
    always @* begin
        lost_now[NS+1] = (TOK != 0) && `EA_LOST;
        lost_now[NS] = serve && !room;
        for (k = 0; k < NS; k = k + 1)
            lost_now[k] = `EA_VC_B(k) && hold_v_q[k]
                          && !((FAST != 0) ? g_fast.oh_q[k] && !report : serve && pick == k[PW-1:0]);
    end
    function automatic [3:0] popc(input [NS+1:0] v);
        integer n;
        begin
            popc = 4'd0;
            for (n = 0; n <= NS + 1; n = n + 1) popc = popc + {3'd0, v[n]};
        end
    endfunction
    /* verilator lint_off UNUSEDSIGNAL */
    wire [3:0] lost_n = popc(lost_f_q);     // <= NS + 2 <= 7
    /* verilator lint_on UNUSEDSIGNAL */


    wire [LPW-1:0] lo_op = rep_q ? {{(LPW-3){1'b0}}, lost_prev_q} : lost_pend_q[LPW-1:0];
    // high half + carry + 1, one carry chain (carry-in 1)
    /* verilator lint_off UNUSEDSIGNAL */
    wire [32-LPW:0] hi_p1c = {lost_pend_q[31:LPW], 1'b1} + {{(31-LPW){1'b0}}, lp_c_q, 1'b1};
    /* verilator lint_on UNUSEDSIGNAL */

    // the holding flags' next values (out of reset; the register updates below are these)
    integer hs;
    always @* begin
        for (hs = 0; hs < NS; hs = hs + 1)
            hold_v_d[hs] = `EA_VC_B(hs) || (hold_v_q[hs]
                           && !((FAST != 0) ? g_fast.oh_q[hs] && !report : serve && pick == hs[PW-1:0]));
        if (mrk_take) post_d = {NS{1'b0}};
        else if (mpend_q) post_d = post_q | `EA_VC;
        else post_d = post_q;
    end


    integer s;

    always @(posedge clk_i) begin
        wr_q  <= !rst_i && push;
        wr_ev_q <= !rst_i && push_ev;
        din_q <= din;
        // entries in the FIFO + the one in din_q: + this cycle's push - this cycle's read
        // (the two outcomes of the read are formed from flip-flops first, so push is one LUT
        // before the occupancy flip-flops: timing)
        if (rst_i) occ_q <= {DEPTH{1'b0}};
        else occ_q <= push ? occ_up : occ_dn;
        if (rst_i) begin
            hold_v_q <= {NS{1'b0}};
            post_q <= {NS{1'b0}};
            pick_q <= lowest({NS{1'b0}});
            any_q <= 1'b0;
            seq_q <= 8'd0;
            seq_p1_q <= 8'd1;
            lost_pend_q <= 32'd0;
            lp_c_q <= 1'b0;
            hi_p1_q <= {{(31-LPW){1'b0}}, 1'b1};
            pend_nz_q <= 1'b0;
            ovf_sel_q <= 1'b0;
            rep_q <= 1'b0;
            lost_prev_q <= 3'd0;
            lost_o <= 3'd0;
            lw_q <= 4'd0;
            lost_f_q <= {(NS+2){1'b0}};
            tokc_q <= {TW{1'b0}};
            tok_nz_q <= 1'b0;
            mk_q <= {TW{1'b0}};
            mpend_q <= 1'b0;
            for (s = 0; s < NS; s = s + 1) begin
                hold_op_q[s] <= 8'd0;
                hold_pl_q[s] <= 128'd0;
            end
        end else begin
            lost_f_q <= lost_now;
            if (TOK != 0) begin
                tokc_q <= tokc_q + {{(TW-1){1'b0}}, `EA_TOK} - {{(TW-1){1'b0}}, tok_take};
                tok_nz_q <= (tokc_q + {{(TW-1){1'b0}}, `EA_TOK} - {{(TW-1){1'b0}}, tok_take})
                            != {TW{1'b0}};
                if (tok_take && mpend_q) mk_q <= mk_q - {{(TW-1){1'b0}}, 1'b1};
                if (mrk_take) mpend_q <= 1'b0;
                if (`EA_MRK) begin        // (one ordered command at a time: no marker waits)
                    mpend_q <= 1'b1;
                    mk_q <= tokc_q + {{(TW-1){1'b0}}, `EA_TOK} - {{(TW-1){1'b0}}, tok_take};
                end
            end
            lost_o <= lost_n[2:0];
            lw_q <= lost_n + {3'd0, push_ev};
            seq_q <= seq_q + {4'd0, lw_q};
            seq_p1_q <= seq_p1c[8:1];
            rep_q <= report;
            lost_prev_q <= lost_o;
            // the low half adds lost_o to the last report's two lost counts (rep_q) or to
            // itself: the choice is the adder's operand, so the chain's sum is the flip-flop's
            // input (timing: a select after the chain, station ECP5 HeAP 5.6 ns); after a report
            // a carry out of the low half is pending in lp_c_q like any other (hi 0, hi + 1 = 1)
            {lp_c_q, lost_pend_q[LPW-1:0]} <= {1'b0, lo_op} + {{(LPW-2){1'b0}}, lost_o};
            if (rep_q) begin
                lost_pend_q[31:LPW] <= {(32-LPW){1'b0}};
                hi_p1_q <= {{(31-LPW){1'b0}}, 1'b1};
            end else begin
                hi_p1_q <= hi_p1c[32-LPW:1];
                lost_pend_q[31:LPW] <= lost_pend_q[31:LPW] + {{(31-LPW){1'b0}}, lp_c_q};
            end
            pend_nz_q <= (lost_o != 3'd0) || (pend_nz_q && !report);
            ovf_sel_q <= ((lost_o != 3'd0) || pend_nz_q) && !report;
            hold_v_q <= hold_v_d;
            // the next |hv: a new event, a second one waiting, or none served now; while a marker
            // waits new events are hidden (post_q), and once it is pushed (then nothing is
            // served: tokens and the marker go only with no visible event) all of them show
            if (mrk_take) any_q <= (|`EA_VC) || (|hold_v_q);
            // (while a marker waits: the visible ones left after this cycle's serve, less those
            // a new pulse overwrites, which become hidden; `two` would count such a one and let
            // push take a hidden event ahead of the marker, and again after it: found by
            // fpga/formal/event_arb_props.v)
            else if (mpend_q)
                any_q <= |((report ? hv : (FAST != 0) ? hv & ~g_fast.oh_q : (hv & (hv - 1'b1))) & ~`EA_VC);
            else any_q <= (|`EA_VC) || ((FAST != 0) ? |(hv & ~g_fast.oh_q) : two) || (any && report);
            post_q <= post_d;
            pick_q <= (FAST != 0) ? g_fast.pick_n : lowest(hold_v_d & ~post_d);
            // A new event always enters its holding register (enable = the source's pulse only,
            // for timing); an older one still waiting there is the one lost (counted above).
            for (s = 0; s < NS; s = s + 1)
                if (`EA_VE_B(s)) begin
                    hold_op_q[s] <= `EA_OP_B(s);
                    hold_pl_q[s] <= `EA_PL_B(s);
                end
        end
    end
`undef EA_VC
`undef EA_VC_B
`undef EA_VE_B
`undef EA_OP_B
`undef EA_PL_B
`undef EA_TOK
`undef EA_LOST
`undef EA_MRK
endmodule
`default_nettype wire

// Formal harness for event_arb (fpga/rtl/event_arb.v): the event path never loses or duplicates
// an event without an OVERFLOW. The FIFO itself is proven an ideal queue (sync_fifo_props.v);
// this harness proves the accounting around it, ports only: every event a source offers leaves
// the FIFO exactly once with its opcode and payload, or is counted lost (lost_o, the EVT_LOST
// counter) and reported by ERROR(EVENT_OVERFLOW, info = events lost since the last report); a
// lost event consumes one event seq (the host sees the gap). With TOK = 1 (the node top):
// HDR_BLOCK tokens are never dropped, a block hdr_block lost (lost_i) is accounted like a lost
// event, and the marker of an ordered response (mrk_i) leaves after every token and event that
// came before it and before every later one, without an event seq.
//
// Data independence: event_arb never inspects an event, so each offered event carries its own
// number (id, the count of events offered before it) and its source in its payload and an
// opcode derived from
// it (0xC0 | id: no ERROR, HDR_BLOCK or marker opcode), which tells a lost, duplicated or
// swapped event apart.
// Asserted whenever an entry leaves the FIFO (the cycle after rd_en_i):
//  - an event: offered before, after every earlier event of its source that was delivered
//    (so none twice), its opcode and payload intact; while a
//    marker waits only events offered up to the marker's cycle, after it only later ones;
//  - seqs of events, reports and tokens strictly increase, and the seqs skipped so far are at most the
//    events counted lost (a gap is a loss);
//  - a report: info > 0, and all reports' infos together at most the events counted lost;
//  - a marker (TOK): exactly the tokens offered up to its cycle left before it;
//  - events delivered + events counted lost <= events offered (+ blocks lost): nothing counted
//    twice, nothing duplicated;
// and whenever the path is quiet (no input for 4 cycles, pending_o low): events delivered +
// counted lost == offered, reports' infos == counted lost, tokens delivered == offered, no
// marker outstanding, and last seq + 1 == entries delivered + lost (every lost event consumed
// exactly one seq). So an event that is neither delivered nor counted, or counted but not
// reported, fails a quiet point.
// Assumed: the reader reads only while empty_o is low (tx_arb); one marker at a time (the
// command decoder waits for the response); at most NB tokens outstanding (hdr_block's buffers).
// Ids, seqs and the reference counts are 8 bits and wrap: every order is stated modulo 256 in a
// window (win below), so no bound on the number of events offered is assumed (a k-induction
// needs that; the ids used to be bounded to 56 events without wrap).
// Bounded model check from reset (event_arb.sby): AW = 1 (2 entries, so the FIFO fills, loses
// and reports within a few cycles), LPW = 3 (the lost count's low half carries every 8 losses),
// NS = 2.
`default_nettype none
`include "wire_spec.vh"
module event_arb_props #(
    parameter AW = 1,
    parameter TOK = 0,
    parameter NS = 2,
    parameter FAST = 0,             // event_arb's timing variants (the node top's ECP5 builds:
    parameter INSTAGE = 0           // both 1; the station and the iCE40 builds: both 0)
) (
    input wire          clk_i,
    input wire          rst_i,
    input wire [NS-1:0] valid_i,
    input wire          tok_i,
    input wire          lost_i,
    input wire          mrk_i,
    input wire          rd_en_i
);
    localparam NB = 4;
    // ids and opcodes of this cycle's offers: source s gets the next id after lower sources'
    reg [7:0]       nid_q = 8'd0;              // events offered so far
    reg [8*NS-1:0]  op;
    reg [128*NS-1:0] pl;
    reg [7:0]       id_s [0:NS-1];
    integer s;
    always @* begin
        for (s = 0; s < NS; s = s + 1) begin
            id_s[s] = (s == 0) ? nid_q : id_s[s - 1] + {7'd0, valid_i[s - 1]};
            op[8*s +: 8] = {2'b11, id_s[s][5:0]};
            pl[128*s +: 128] = {112'd0, 8'(s), id_s[s]};
        end
    end
    reg [3:0] nv;
    always @* begin
        nv = 4'd0;
        for (s = 0; s < NS; s = s + 1) nv = nv + {3'd0, valid_i[s]};
    end

    wire [143:0] dout;
    wire         empty, pending;
    wire [2:0]   lost;
    event_arb #(.AW(AW), .LUTRAM(1), .LPW(3), .NS(NS), .TOK(TOK), .TW(4), .MRK_OP(8'h00),
                .FAST(FAST), .INSTAGE(INSTAGE)) dut (
        .clk_i(clk_i), .rst_i(rst_i), .valid_i(valid_i), .op_i(op), .payload_i(pl),
        .tok_i(tok_i), .lost_i(lost_i), .mrk_i(mrk_i), .rd_en_i(rd_en_i), .dout_o(dout),
        .empty_o(empty), .pending_o(pending), .lost_o(lost)
    );

    reg init_q = 1'b1;
    always @(posedge clk_i) init_q <= 1'b0;
    always @(*) assume(rst_i == init_q);

    // reference counts
    reg [7:0]  lsum_q = 8'd0;      // sum of lost_o (EVT_LOST)
    reg [7:0]  rsum_q = 8'd0;      // sum of the reports' infos
    reg [7:0]  nblk_q = 8'd0;      // blocks lost (lost_i)
    reg [7:0]  ndel_q = 8'd0;      // events delivered
    reg [7:0]  nitem_q = 8'd0;     // events + reports + tokens delivered (entries with a seq)
    reg [7:0]  ntok_q = 8'd0, ntokd_q = 8'd0;  // tokens offered / delivered
    reg [7:0]  seq_last_q = 8'd0;
    reg        ever_q = 1'b0;      // an entry with a seq delivered (nitem_q wraps)
    // Every count is modulo 256 (no bound on the history: ids, seqs and counts wrap), so
    // "a <= b" is stated as "b - a in the window" (b - a < 128 mod 256): with at most a few
    // entries in flight this is the ordinary order, and it needs no bound on the events offered.
    function automatic win(input [7:0] d);
        win = d < 8'd128;
    endfunction
    reg        mout_q = 1'b0;      // a marker offered, not yet delivered
    reg [7:0]  mev_q = 8'd0, mtok_q = 8'd0;    // events / tokens offered up to the marker
    reg [7:0]  mlast_q = 8'd0;     // mev_q of the last marker delivered
    reg [7:0]  last_q [0:NS-1];    // per source: 1 + the id last delivered (0: none yet)
    initial for (s = 0; s < NS; s = s + 1) last_q[s] = 8'd0;
    reg [2:0]  quiet_q = 3'd0;     // cycles without any input
    reg        rd_d_q = 1'b0;

    always @(*) if (!rst_i) begin
        if (rd_en_i) assume(!empty);
        if (mrk_i) assume(TOK != 0 && !mout_q);
        if (tok_i) assume(TOK != 0 && ntok_q - ntokd_q < NB);
        if (lost_i) assume(TOK != 0);
    end

    wire [7:0]   d_seq = dout[143:136];
    wire [7:0]   d_op  = dout[135:128];
    wire [127:0] d_pl  = dout[127:0];
    wire is_rep = rd_d_q && d_op == `HW_OP_ERROR && d_pl[127:120] == `HW_ERR_EVENT_OVERFLOW;
    wire is_tok = rd_d_q && TOK != 0 && d_op == `HW_OP_HDR_BLOCK;
    wire is_mrk = rd_d_q && TOK != 0 && d_op == 8'h00;
    wire is_ev  = rd_d_q && !is_rep && !is_tok && !is_mrk;
    wire [31:0] r_info = d_pl[119:88];
    wire [7:0]  d_id = d_pl[7:0];
    wire [7:0]  d_src = d_pl[15:8];
    wire quiet = quiet_q >= 3'd4 && !pending && !rd_d_q;

    always @(posedge clk_i) begin
        rd_d_q <= !rst_i && rd_en_i;
        if (rst_i) begin
            quiet_q <= 3'd0;
        end else begin
            nid_q <= nid_q + {4'd0, nv};
            lsum_q <= lsum_q + {5'd0, lost};
            nblk_q <= nblk_q + {7'd0, lost_i};
            ntok_q <= ntok_q + {7'd0, tok_i};
            if (valid_i != 0 || tok_i || lost_i || mrk_i) quiet_q <= 3'd0;
            else if (quiet_q != 3'd7) quiet_q <= quiet_q + 3'd1;
            if (mrk_i) begin
                mout_q <= 1'b1;
                mev_q <= nid_q + {4'd0, nv};
                mtok_q <= ntok_q + {7'd0, tok_i};
            end
            if (is_ev) begin
                ndel_q <= ndel_q + 8'd1;
                last_q[d_src] <= d_id + 8'd1;
            end
            if (is_ev || is_rep || is_tok) begin
                nitem_q <= nitem_q + 8'd1;
                ever_q <= 1'b1;
                seq_last_q <= d_seq;
            end
            if (is_rep) rsum_q <= rsum_q + r_info[7:0];
            if (is_tok) ntokd_q <= ntokd_q + 8'd1;
            if (is_mrk) begin
                mout_q <= 1'b0;
                mlast_q <= mev_q;
            end
        end
    end

    always @(*) if (!init_q) begin
        assert(lost <= 3'd4);
        // events delivered + counted lost never exceed those offered (+ blocks lost)
        assert(win(nid_q + nblk_q - ndel_q - lsum_q));
        assert(win(lsum_q - rsum_q));
        assert(win(ntok_q - ntokd_q));
        if (is_ev) begin
            assert(win(nid_q - d_id - 8'd1));      // offered before
            // a source's events leave in the order offered: none twice
            assert(d_src < NS && win(d_id - last_q[d_src]));
            assert(d_op == {2'b11, d_id[5:0]} && d_pl[127:16] == 112'd0);
            if (mout_q) assert(win(mev_q - d_id - 8'd1));   // offered before a waiting marker
            assert(win(d_id - mlast_q));                    // not before a marker it came after
        end
        if (is_ev || is_rep || is_tok) begin
            if (nitem_q != 8'd0 || ever_q) assert(win(d_seq - seq_last_q - 8'd1));
            // seqs skipped = losses: at most the events counted lost so far
            assert(win(lsum_q + {5'd0, lost} - (d_seq - nitem_q)));
        end
        if (is_rep) begin
            assert(r_info != 32'd0 && r_info[31:8] == 24'd0);
            assert(win(lsum_q - rsum_q - r_info[7:0]));
        end
        if (is_tok) assert(d_pl == 128'd0 && (!mout_q || win(mtok_q - ntokd_q - 8'd1)));
        if (is_mrk) assert(mout_q && ntokd_q == mtok_q);
        if (quiet) begin
            assert(ndel_q + lsum_q == nid_q + nblk_q);
            assert(rsum_q == lsum_q);
            assert(ntokd_q == ntok_q && !mout_q);
            if (nitem_q != 8'd0 || ever_q) assert(seq_last_q + 8'd1 == nitem_q + lsum_q);
        end
    end

    // First strengthening invariants for a k-induction (TOK = 0), checked here by the BMC only
    // (README: the rest of the plan). Taps: event_arb.sby connects them to the DUT's registers.
    wire [NS-1:0] tap_hold_v;
    wire          tap_any, tap_wr, tap_wr_ev, tap_rep, tap_pend_nz, tap_ovf_sel, tap_lp_c;
    wire [7:0]    tap_seq, tap_seq_p1;
    wire [3:0]    tap_lw;
    wire [1:0]    tap_occ, tap_th;
    wire          tap_empty, tap_fwr, tap_frd;
    wire [1:0]    tap_cnt = {tap_th[1], tap_th[0] && !tap_th[1]};   // the FIFO's entries
    wire [2:0]    tap_lost_prev;
    wire [31:0]   tap_lpend;
    wire [28:0]   tap_hi_p1;
    wire [31:0]   p_all = tap_lpend + {28'd0, tap_lp_c, 3'd0};   // losses not yet reported
    wire [31:0]   p_eff = tap_rep ? {29'd0, tap_lost_prev} : p_all;
    wire [1:0]    n_occ = tap_cnt + {1'b0, tap_wr};
    always @(*) if (!init_q && TOK == 0) begin
        assert(tap_any == |tap_hold_v);
        assert(tap_seq_p1 == tap_seq + 8'd1);
        assert(tap_wr_ev == tap_wr);
        assert(tap_lw == {1'b0, lost} + {3'd0, tap_wr_ev});
        assert(!tap_th[1] || tap_th[0]);        // a thermometer code
        assert(tap_occ == {n_occ >= 2'd2, n_occ >= 2'd1});
        assert(tap_empty == (tap_cnt == 2'd0) && tap_cnt[0] == (tap_fwr ^ tap_frd));
        assert(tap_hi_p1 == tap_lpend[31:3] + 29'd1);
        assert(tap_pend_nz == (p_eff != 32'd0));
        assert(tap_ovf_sel == (tap_pend_nz && !tap_rep));
    end

    // not vacuous: a loss reported, then a quiet point with every event accounted for
    reg rep_seen_q = 1'b0;
    always @(posedge clk_i) if (is_rep) rep_seen_q <= 1'b1;
    always @(*) cover(!init_q && quiet && rep_seen_q && ndel_q >= 8'd3);
    always @(*) if (TOK != 0) cover(!init_q && is_mrk && ntokd_q == 8'd1 && ndel_q >= 8'd1);
endmodule
`default_nettype wire

// Heralding station core (docs/physical-layer.md section 2; ESP paper Sec. II-B single-click
// scheme): the attempt markers of the two ends (mark_i) and the two detectors (det_i), each
// synchronized (2 FF) and rising-edge detected like herald.v, so every input is stamped with the
// cycle its synchronized edge is seen (2 cycles after the pin).
//
// Per attempt: a window opens on the first marker seen while no window is open, at stamped cycle
// o, and covers [o, o + window) (window_i, ST_WINDOW; 0 acts as 1). Markers and clicks inside it
// belong to the attempt. At the close:
//   both markers, exactly one detector -> herald: attempt cycle t = o - delay_i (ST_DELAY),
//     Bell state = the detector (0: Psi+, 1: Psi-); her_o pulses (to the herald line
//     transmitters) and a HERALD(ts = t, detector = bell, attempt = heralds before this one)
//     event is emitted; CNT_HERALD += 1
//   one end's marker only -> CNT_ONE_END += 1 (never a herald, whatever clicked)
//   both markers, both detectors -> CNT_BOTH += 1; both markers, no click -> failure.
// Markers are counted (CNT_MARKS += markers seen per cycle, 0-2); clicks with no window open
// (and none opening in that cycle) are dark: CNT_DARK += clicks (0-2).
// delay_i includes the node's trigger pin latency and this synchronizer: for t to be the cycle
// both nodes fired, ST_DELAY = fibre cycles + 1 (node trig_o is registered) + 2 (sync here).
//
// Timing: inputs, edge flags and the timestamp are registered twice before the window logic;
// t = ts - delay is computed alongside in two registered 32-bit halves (no 64-bit carry chain),
// so the window's opening loads t directly; the verdict is registered from the window's record
// a cycle after the close; the event leaves a cycle after the verdict.
`default_nettype none
module station_core #(
    parameter [7:0] OP_HERALD = 8'hA0,  // HERALD event opcode (spec)
    parameter       HC        = 0       // 1: her_c_o are two kept copies of her_o (reg_copy);
                                        // 0: her_c_o = {2{her_o}} (this file alone: formal)
) (
    input  wire         clk_i,
    input  wire         rst_i,
    input  wire [1:0]   mark_i,          // attempt markers, end A (0) and end B (1)
    input  wire [1:0]   det_i,           // detectors 0 and 1
    input  wire [63:0]  ts_i,
    input  wire [31:0]  delay_i,         // ST_DELAY
    input  wire [15:0]  window_i,        // ST_WINDOW (0 acts as 1)
    // herald decision (one-cycle pulse, to the herald line transmitters)
    output reg          her_o,
    output wire [1:0]   her_c_o,         // her_o for herald line 0 / 1 (see HC)
    output reg  [63:0]  her_t_o,
    output reg          her_bell_o,
    // counter strobes
    output reg          cnt_herald_o,
    output reg          cnt_one_end_o,
    output reg          cnt_both_o,
    output reg  [1:0]   cnt_dark_o,
    output reg  [1:0]   cnt_marks_o,
    // HERALD monitoring event
    output reg          ev_valid_o,
    output wire [7:0]   ev_op_o,
    output reg  [127:0] ev_payload_o
);
    assign ev_op_o = OP_HERALD;

    // ---------------------------------------------------------------- inputs
    wire [3:0] in_s;                 // {det, mark} synchronized
    reg  [3:0] prev_q, rise_q, rise2_q;
    genvar gi;
    generate
        for (gi = 0; gi < 4; gi = gi + 1) begin : g_sync
            sync2 u_s (.clk_i(clk_i), .rst_i(rst_i), .d_i(gi < 2 ? mark_i[gi % 2] : det_i[gi % 2]),
                       .q_o(in_s[gi]));
        end
    endgenerate
    // t = ts - delay for the cycle the edge is seen: rise_q / the first step are registered
    // from that cycle, rise2_q / tmd_q one cycle later (tmd_q = the stamped cycle - delay,
    // aligned with rise2_q). Carry select (timing: as a 33-bit ts - delay chain, then the borrow
    // into the high half's 32-bit decrement, they were station_top's ECP5 HeAP paths at 4.7 /
    // 4.9 ns, thirteenth session): the first step forms bits 15:0 with their borrow (p0_q),
    // bits 31:16 for both borrows in (p1_q: - delay, p1m_q: - delay - 1, each with its borrow
    // out) and bits 63:32 for both (th_q: as is, thm_q: - 1), each one carry chain of <= 32
    // bits from flip-flops; the second picks them by the borrows, so every bit of tmd_q is a
    // function of <= 5 flip-flops.
    reg [16:0] p0_q;                 // {borrow, ts[15:0] - delay[15:0]}
    reg [16:0] p1_q, p1m_q;          // {borrow, ts[31:16] - delay[31:16] (- 1 for p1m_q)}
    reg [31:0] th_q, thm_q;          // ts[63:32], ts[63:32] - 1
    reg [63:0] tmd_q;
    wire       b16 = p0_q[16];                           // borrow into bits 31:16
    wire       b32 = b16 ? p1m_q[16] : p1_q[16];         // ... into bits 63:32
    always @(posedge clk_i) begin
        p0_q  <= {1'b0, ts_i[15:0]} - {1'b0, delay_i[15:0]};
        p1_q  <= {1'b0, ts_i[31:16]} - {1'b0, delay_i[31:16]};
        p1m_q <= {1'b0, ts_i[31:16]} + {1'b1, ~delay_i[31:16]};      // - delay - 1 (mod 2^17)
        th_q  <= ts_i[63:32];
        thm_q <= ts_i[63:32] - 32'd1;
        tmd_q <= {b32 ? thm_q : th_q, b16 ? p1m_q[15:0] : p1_q[15:0], p0_q[15:0]};
    end

    // ---------------------------------------------------------------- window
    wire [1:0] mrk = rise2_q[1:0];
    wire [1:0] det = rise2_q[3:2];
    reg         open_q;              // the cycle processed now is inside the window
    reg         wl1_q;               // ... and it is the window's last cycle
    reg  [15:0] left_q;              // window cycles left after the current one
    reg  [15:0] wm1_q;               // window - 1 (free-running, per register write; 0xFFFF at 0)
    reg         w1_q, w2_q;          // window <= 1, window == 2
    reg         close_q;             // the window closed last cycle: its record is final
    reg  [1:0]  seen_q, clk_q;       // markers seen, detectors clicked in the window
    // the verdict's two terms registered with the record (from its next values): sb_q = both
    // markers seen (seen_q == 2'b11), cx_q = exactly one detector (clk_q[0] ^ clk_q[1]), so her_o
    // and its copies are one LUT of close_q, sb_q, cx_q and the reset (timing: seen_q / clk_q ->
    // the verdict's LUTs, shared by ABC, 3 levels with the reset -> a her_c_o copy was
    // station_top's ECP5 HeAP path at seed 1, 5.19 ns, eleventh session)
    reg         sb_q, cx_q;
    reg  [63:0] t_q;                 // attempt cycle of the window (o - delay)
    // opening = !open_q && (mrk != 0), a flip-flop registered from the next values of open_q
    // and rise2_q (timing: it enables ~70 flip-flops and selects left_q's load; as a LUT of
    // rise2_q / open_q it was one LUT level, with its fanout, ahead of left_q's and clk_q's
    // next-value LUTs, ECP5 HeAP 5.0 ns)
    reg         opening_q;
    wire        opening = opening_q;
    wire        open_d = opening ? !w1_q : (open_q && !wl1_q);   // open_q's next value
    wire [1:0]  seen_d = opening ? mrk : open_q ? (seen_q | mrk) : seen_q;
    wire [1:0]  clk_d  = opening ? det : open_q ? (clk_q | det) : clk_q;

    // ---------------------------------------------------------------- verdict
    reg [31:0] hcount_q;             // heralds so far (HERALD.attempt)

    always @(posedge clk_i) begin
        // window - 1, not saturated at window 0 (0 acts as 1: w1_q keeps the window shut, so
        // left_q and wl1_q, loaded from it, are reloaded by the next opening before they are
        // read; timing: the `window == 0` compare into wm1_q's reset was 3 LUTs, ECP5 HeAP)
        wm1_q <= window_i - 16'd1;
        w1_q  <= (window_i[15:1] == 15'd0);
        w2_q  <= (window_i == 16'd2);
        if (opening) t_q <= tmd_q;
        if (rst_i) begin
            prev_q <= 4'd0;
            rise_q <= 4'd0;
            rise2_q <= 4'd0;
            open_q <= 1'b0;
            opening_q <= 1'b0;
            wl1_q <= 1'b0;
            left_q <= 16'd0;
            close_q <= 1'b0;
            seen_q <= 2'b00;
            clk_q <= 2'b00;
            sb_q <= 1'b0;
            cx_q <= 1'b0;
            her_o <= 1'b0;
            her_t_o <= 64'd0;
            her_bell_o <= 1'b0;
            {cnt_herald_o, cnt_one_end_o, cnt_both_o} <= 3'd0;
            cnt_dark_o <= 2'd0;
            cnt_marks_o <= 2'd0;
            ev_valid_o <= 1'b0;
            ev_payload_o <= 128'd0;
            hcount_q <= 32'd0;
        end else begin
            prev_q <= in_s;
            rise_q <= in_s & ~prev_q;
            rise2_q <= rise_q;
            // window (as the scheduler's: counter of cycles left + registered last-cycle flag)
            open_q <= open_d;
            opening_q <= !open_d && (rise_q[1:0] != 2'b00);
            close_q <= opening ? w1_q : (open_q && wl1_q);
            left_q <= opening ? wm1_q : left_q - 16'd1;
            wl1_q <= opening ? w2_q : (left_q == 16'd2);
            seen_q <= seen_d;
            clk_q <= clk_d;
            sb_q <= &seen_d;
            cx_q <= ^clk_d;
            cnt_marks_o <= {1'b0, mrk[0]} + {1'b0, mrk[1]};
            cnt_dark_o <= (open_q || opening) ? 2'd0 : ({1'b0, det[0]} + {1'b0, det[1]});
            // verdict on the window that closed last cycle (its record is final now; a window
            // opening this cycle overwrites it only at the end of the cycle)
            her_o <= close_q && sb_q && cx_q;
            cnt_herald_o <= close_q && sb_q && cx_q;
            cnt_both_o <= close_q && sb_q && (clk_q == 2'b11);
            cnt_one_end_o <= close_q && (seen_q[0] ^ seen_q[1]);
            if (close_q) begin
                her_t_o <= t_q;
                her_bell_o <= clk_q[1];
            end
            // HERALD event, a cycle after the verdict
            ev_valid_o <= her_o;
            if (her_o) begin
                ev_payload_o <= {her_t_o, 7'd0, her_bell_o, hcount_q, 24'd0};
                hcount_q <= hcount_q + 32'd1;
            end
        end
    end
    // her_o once per herald line, each its own flip-flop (reg_copy: yosys would merge equal ones)
    // placed by its line's queue (timing: one her_o into both lines' queue flags and FIFO write
    // enables, placed apart, was a 2.8 ns route, station_top's ECP5 HeAP path at seed 2)
    /* verilator lint_off UNUSEDSIGNAL */    // (HC = 0: unused)
    wire her_d = !rst_i && close_q && sb_q && cx_q;
    /* verilator lint_on UNUSEDSIGNAL */
    genvar gh;
    generate
        if (HC != 0) begin : g_hc
            for (gh = 0; gh < 2; gh = gh + 1) begin : g_c
                reg_copy #(.W(1)) u_her (.clk_i(clk_i), .d_i(her_d), .q_o(her_c_o[gh]));
            end
        end else begin : g_hc0
            assign her_c_o = {2{her_o}};
        end
    endgenerate
`ifndef SYNTHESIS
`ifndef FORMAL
    // (simulation only: the flag equals the logic it replaces in every cycle; the copies her_o)
    always @(posedge clk_i)
        if (opening_q != (!open_q && (mrk != 2'b00)))
            $fatal(1, "station_core: opening_q != !open_q && mrk != 0");
    always @(posedge clk_i)
        if (her_c_o != {2{her_o}}) $fatal(1, "station_core: a her_o copy differs");
    // t = ts - delay of two cycles before, in every cycle
    reg [63:0] chk_ts_q, chk_ts2_q;
    reg [31:0] chk_d_q, chk_d2_q;
    reg [1:0]  chk_n_q = 2'd0;
    always @(posedge clk_i) begin
        {chk_ts2_q, chk_ts_q} <= {chk_ts_q, ts_i};
        {chk_d2_q, chk_d_q} <= {chk_d_q, delay_i};
        if (chk_n_q != 2'd2) chk_n_q <= chk_n_q + 2'd1;
        if (chk_n_q == 2'd2 && tmd_q != chk_ts2_q - {32'd0, chk_d2_q})
            $fatal(1, "station_core: tmd_q != ts - delay two cycles before");
    end
    always @(posedge clk_i)
        if (sb_q != (seen_q == 2'b11) || cx_q != (clk_q[0] ^ clk_q[1]))
            $fatal(1, "station_core: sb_q / cx_q differ from the record");
`endif
`endif
endmodule
`default_nettype wire

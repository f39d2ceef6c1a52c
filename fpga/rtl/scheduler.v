// Attempt scheduler (spec [commands.SCHEDULE] / [commands.ABORT]).
//
// SCHEDULE entries (t_start, count, period, window) wait in a FIFO of 2^AW entries; the running
// entry is not in the FIFO. When the scheduler is idle it pops the head and checks it against the
// timestamp: t_start < now -> LATE(t_start, now) event, nothing fires. Otherwise attempt k fires
// (fire_o high for one cycle, in the cycle whose timestamp is t_start + k*period) and the detection
// window is open (in_win_o) for `window` cycles from that cycle. Two cycles after the window
// closes (the herald record is pipelined) it decides: exactly one detector -> HERALD(ts, detector, k) and the entry
// ends; otherwise (none / both, both counted) the next attempt follows, and after `count`
// attempts DONE(ts, count, EXHAUSTED). ABORT ends a popped entry with DONE(ts, fired, ABORTED)
// and flushes the FIFO.
//
// Timing: no 64-bit arithmetic in one cycle. t_start - 4 is computed in two 32-bit halves, then a
// registered compare (16-bit quarters, combined, then the decision) watches the counter, so the
// first attempt fires exactly at t_start; later attempts use a 32-bit period down-counter. The
// LATE check is made 8 cycles after the entry is popped (refmodel.SCHED_CHECK_LAT), with
// now = the timestamp of that cycle: LATE iff t_start < now, exactly as the spec says.
// Event payloads are 16 bytes, byte 0 in bits [127:120].
`default_nettype none
`include "wire_spec.vh"
module scheduler #(
    parameter AW = 2,
    parameter LUTRAM = 0            // FIFO storage in LUT RAM (see sync_fifo)
) (
    input  wire         clk_i,
    input  wire         rst_i,
    input  wire [63:0]  ts_i,
    // command side
    input  wire         push_i,
    input  wire [63:0]  t_start_i,
    input  wire [31:0]  count_i,
    input  wire [31:0]  period_i,
    input  wire [15:0]  window_i,
    output wire         full_o,
    input  wire         abort_i,
    // herald side
    input  wire [1:0]   clicked_i,
    input  wire [63:0]  t0_i,
    input  wire [63:0]  t1_i,
    input  wire [63:0]  ts_d_i,     // ts_i - 1 (from herald): DONE is stamped at the window's end
    output wire         fire_o,
    output wire         in_win_o,
    // status, counters, events
    output wire         running_o,
    output wire         cnt_late_o,
    output wire         cnt_both_o,
    output wire         cnt_herald_o,
    output reg          ev_valid_o,
    output reg  [7:0]   ev_op_o,
    output reg  [127:0] ev_payload_o
);
    localparam [2:0] S_IDLE = 3'd0, S_LOAD = 3'd1, S_SUB1 = 3'd2, S_SUB2 = 3'd3, S_CMP1 = 3'd4,
                     S_CMP2 = 3'd5, S_WAIT = 3'd6, S_RUN = 3'd7;

    // ---------------------------------------------------------------- state
    reg [2:0]  state_q;
    reg        st_idle_q, st_wait_q, st_run_q;  // state_q == S_IDLE / S_WAIT / S_RUN (one-hot copies, timing)
    reg [63:0] t_start_q;
    reg [31:0] count_q, period_m1_q;
    reg [15:0] window_m1_q;
    reg [31:0] tp_lo_q, tp_hi_q;    // t_start - 4
    reg [63:0] ts_l_q;              // local copy of ts_i (timing: the counter's fanout), ts - 1
    reg        borrow_q, uf_q;      // uf: t_start < 4 (always late)
    reg        late_q, fire0_q;
    reg        act_late_q, act_her_q, act_done_q, act_abort_q, her_det_q;
    reg [63:0] ts_ev_q;
    reg [31:0] hi_m1_q;             // t_start[63:32] - 1
    reg        hi_zero_q;           // t_start[63:32] == 0     // decisions for this cycle, made last cycle in S_WAIT
    reg [3:0]  q_gt_q, q_eq_q;                       // compare stage 1 (16-bit quarters)
    reg        gt_q, eq_q;                           // compare stage 2 (64-bit result)
    reg [31:0] per_cnt_q;           // cycles to the next attempt
    reg [15:0] win_left_q;          // window cycles left after the current one
    reg        win_on_q;            // win_left_q != 0       (registered flags, timing)
    reg        wl1_q;               // win_left_q == 1
    reg        win1_q, wm1_is1_q;   // window == 1, window == 2 (per entry)
    reg        eval_q;              // the window closed last cycle
    reg        eval2_q;             // ... two cycles ago: the herald record is complete, decide now
    reg [31:0] rem_q;               // attempts not yet fired
    reg        rem0_q;              // rem_q == 0 (registered flag, timing)
    reg        rem_hz_q, rem_l1_q;  // rem_q[31:16] == 0, rem_q[15:0] == 1: rem_q == 1, from
                                    // registers (rem_q is stable >= 2 cycles before a fire)
    reg [31:0] att_q;               // index of the current attempt
    reg [31:0] nfired_q;            // attempts fired

    // ---------------------------------------------------------------- FIFO
    wire         fifo_empty;
    wire [143:0] fifo_dout;
    wire         pop = st_idle_q && !fifo_empty && !abort_i;
    /* verilator lint_off PINCONNECTEMPTY */
    sync_fifo #(.WIDTH(144), .AW(AW), .LUTRAM(LUTRAM)) u_fifo (
        .clk_i(clk_i), .rst_i(rst_i), .flush_i(abort_i),
        .wr_en_i(push_i), .din_i({t_start_i, count_i, period_i, window_i}),
        .rd_en_i(pop), .dout_o(fifo_dout), .full_o(full_o), .empty_o(fifo_empty), .count_o(),
        .room_o()
    );
    /* verilator lint_on PINCONNECTEMPTY */

    // gt_q / eq_q compare ts of three cycles ago (ts_l_q of two) with t_start - 4, i.e. the next
    // cycle's ts with t_start: registered, they say "the next cycle is t_start" (fire0_q) or "the
    // next cycle is past t_start" (late_q). So both decisions come straight from flip-flops.
    wire late  = st_wait_q && late_q;
    wire fire0 = st_wait_q && fire0_q;
    reg  fireN_q;                   // next attempt fires this cycle (decided last cycle)
    wire fireN = fireN_q && st_run_q;
    wire fire  = (fire0 || fireN) && !abort_i;
    wire win_on = win_on_q;
    wire single = (clicked_i == 2'b01) || (clicked_i == 2'b10);
    wire eval   = eval2_q && st_run_q && !abort_i;

    assign fire_o       = fire;
    assign in_win_o     = fire || win_on;
    assign running_o    = !st_idle_q;
    assign cnt_late_o   = late && !abort_i;
    assign cnt_both_o   = eval && (clicked_i == 2'b11);
    assign cnt_herald_o = eval && single;

    always @(posedge clk_i) begin
        ts_l_q <= ts_i;
        q_gt_q <= {ts_l_q[63:48] > tp_hi_q[31:16], ts_l_q[47:32] > tp_hi_q[15:0],
                   ts_l_q[31:16] > tp_lo_q[31:16], ts_l_q[15:0] > tp_lo_q[15:0]};
        q_eq_q <= {ts_l_q[63:48] == tp_hi_q[31:16], ts_l_q[47:32] == tp_hi_q[15:0],
                   ts_l_q[31:16] == tp_lo_q[31:16], ts_l_q[15:0] == tp_lo_q[15:0]};
        gt_q <= q_gt_q[3] || (q_eq_q[3] && q_gt_q[2]) || (&q_eq_q[3:2] && q_gt_q[1])
             || (&q_eq_q[3:1] && q_gt_q[0]);
        eq_q <= &q_eq_q;
        late_q  <= !rst_i && st_wait_q && (uf_q || gt_q);
        rem_hz_q <= (rem_q[31:16] == 16'd0);
        rem_l1_q <= (rem_q[15:0] == 16'd1);
        fire0_q <= !rst_i && st_wait_q && !uf_q && eq_q;
    end

    // every state change goes through go(), which also loads the one-hot copies
    task go(input [2:0] s);
        begin
            state_q <= s;
            st_idle_q <= (s == S_IDLE);
            st_wait_q <= (s == S_WAIT);
            st_run_q <= (s == S_RUN);
        end
    endtask

    always @(posedge clk_i) begin
        // Events leave one cycle after the decision, from registered one-hot flags through an
        // AND-OR mux (no wide enables: timing). ts_d_i = ts - 1 is the decision cycle's ts;
        // ts_ev_q = ts - 2 is the cycle before it (the window's end for DONE(EXHAUSTED)).
        {act_late_q, act_her_q, act_done_q, act_abort_q} <= 4'd0;
        ts_ev_q <= ts_d_i;
        ev_valid_o <= act_late_q || act_her_q || act_done_q || act_abort_q;
        ev_op_o <= (act_late_q ? `HW_OP_LATE : 8'd0) | (act_her_q ? `HW_OP_HERALD : 8'd0)
                 | ((act_done_q || act_abort_q) ? `HW_OP_DONE : 8'd0);
        ev_payload_o <= ({128{act_late_q}}  & {t_start_q, ts_d_i})
                      | ({128{act_her_q}}   & {her_det_q ? t1_i : t0_i, 7'd0, her_det_q, att_q, 24'd0})
                      | ({128{act_done_q}}  & {ts_ev_q, count_q, `HW_DONE_EXHAUSTED, 24'd0})
                      | ({128{act_abort_q}} & {ts_d_i, nfired_q, `HW_DONE_ABORTED, 24'd0});
        if (rst_i) begin
            go(S_IDLE);
            t_start_q <= 64'd0;
            count_q <= 32'd0;
            period_m1_q <= 32'd0;
            window_m1_q <= 16'd0;
            tp_lo_q <= 32'hFFFF_FFFF;
            tp_hi_q <= 32'hFFFF_FFFF;
            borrow_q <= 1'b0;
            uf_q <= 1'b0;
            per_cnt_q <= 32'd0;
            fireN_q <= 1'b0;
            win_left_q <= 16'd0;
            win_on_q <= 1'b0;
            wl1_q <= 1'b0;
            win1_q <= 1'b0;
            wm1_is1_q <= 1'b0;
            eval_q <= 1'b0;
            eval2_q <= 1'b0;
            rem_q <= 32'd0;
            rem0_q <= 1'b1;
            att_q <= 32'd0;
            nfired_q <= 32'd0;
            ev_valid_o <= 1'b0;
            her_det_q <= 1'b0;
        end else begin
            per_cnt_q <= per_cnt_q - 32'd1;
            eval_q <= 1'b0;
            eval2_q <= eval_q;
            // Next attempt: decided a cycle ahead, cancelled by the state leaving S_RUN (a herald
            // ends the entry in the same cycle at the latest, since period >= window + 2).
            fireN_q <= st_run_q && !rem0_q && (per_cnt_q == 32'd1);
            win_left_q <= win_left_q - 16'd1;
            win_on_q <= win_on_q && !wl1_q;
            wl1_q <= (win_left_q == 16'd2);
            eval_q <= win_on_q && wl1_q;                // last window cycle now: decide next
            if (fire) begin
                win_left_q <= window_m1_q;
                win_on_q <= !win1_q;
                wl1_q <= wm1_is1_q;
                eval_q <= win1_q;
                per_cnt_q <= period_m1_q;
                nfired_q <= nfired_q + 32'd1;
                rem_q <= rem_q - 32'd1;
                rem0_q <= rem_hz_q && rem_l1_q;
                if (fireN) att_q <= att_q + 32'd1;
            end

            if (abort_i) begin
                if (!st_idle_q) begin
                    act_abort_q <= 1'b1;
                end
                go(S_IDLE);
                win_left_q <= 16'd0;
                win_on_q <= 1'b0;
                eval_q <= 1'b0;
                eval2_q <= 1'b0;
                fireN_q <= 1'b0;
            end else begin
                case (state_q)
                    S_IDLE: if (pop) go(S_LOAD);
                    S_LOAD: begin               // block RAM output straight into registers
                        {t_start_q, count_q, period_m1_q, window_m1_q} <= fifo_dout;
                        rem_q <= fifo_dout[79:48];
                        rem0_q <= 1'b0;     // count >= 1 (BAD_ARG otherwise)
                        tp_hi_q <= fifo_dout[143:112];
                        att_q <= 32'd0;
                        nfired_q <= 32'd0;
                        go(S_SUB1);
                    end
                    S_SUB1: begin
                        period_m1_q <= period_m1_q - 32'd1;
                        window_m1_q <= window_m1_q - 16'd1;
                        tp_lo_q <= t_start_q[31:0] - 32'd4;
                        borrow_q <= (t_start_q[31:0] < 32'd4);
                        hi_m1_q <= t_start_q[63:32] - 32'd1;
                        hi_zero_q <= (t_start_q[63:32] == 32'd0);
                        go(S_SUB2);
                    end
                    S_SUB2: begin
                        win1_q <= (window_m1_q == 16'd0);
                        wm1_is1_q <= (window_m1_q == 16'd1);
                        if (borrow_q) tp_hi_q <= hi_m1_q;
                        uf_q <= borrow_q && hi_zero_q;
                        go(S_CMP1);
                    end
                    S_CMP1: go(S_CMP2);    // compare stages load the new t_start - 4
                    S_CMP2: go(S_WAIT);
                    S_WAIT: begin
                        if (late) begin
                            act_late_q <= 1'b1;
                            go(S_IDLE);
                        end else if (fire0) begin
                            go(S_RUN);
                        end
                    end
                    S_RUN: if (eval) begin
                        if (single) begin
                            act_her_q <= 1'b1;
                            her_det_q <= !clicked_i[0];
                            go(S_IDLE);
                        end else if (rem0_q) begin
                            act_done_q <= 1'b1;
                            go(S_IDLE);
                        end
                    end
                    default: go(S_IDLE);
                endcase
            end
        end
    end
endmodule
`default_nettype wire

// Shared reference model and properties of the attempt engines, included (inside the module) by
// attempt_core_props.v (the v2 scheduler in attempt_core) and pair_sched_props.v (SCHEDULE_PAIRS):
// no trigger outside a scheduled attempt; LATE fires nothing; a late-joined head starts on its
// commanded attempt grid.
//
// Reference: the queue of accepted entries (pushes while full_o is low; 2 entries: the FIFO's
// AW = 1, plus the running head), processed in order; the head runs until its final event
// (sp_ends). Per head: f_q attempts fired, k_q the grid index of its next attempt (t_start +
// k*period; k_q = f_q unless the head was late-joined), next_q that attempt's cycle.
// Asserted:
//  - a fire only for a head that exists and was not LATE, at ts == t_start + k*period with
//    k < count: the head's next grid point; the first attempt of a head is at t_start, or, for a
//    late-joined head (SP_JOIN and sp_jn: CONTROL.LATE_JOIN at its check), at a grid point
//    (t_start + k*period, k < count) in [sp_now2, sp_now2 + period): the first grid point at or
//    after the join's check cycle (docs/physical-layer.md section 5);
//  - a LATE event is for the head, before any attempt of it, with its t_start and t_start < now;
//    after a join (sp_jn) now = sp_now2 (the second check);
//  - DONE reports the attempts fired (f_q).
//
// The including module declares, before `include:
//   localparam SP_XW (bits of per-entry extras, >= 1), SP_JOIN (0 / 1)
//   wire [SP_XW-1:0] sp_x_in    extras of a push (pair_sched: pairs, port)
//   wire [63:0] sp_ts           this cycle's timestamp
//   wire sp_fire, sp_ends       an attempt fires / the head's final event is out this cycle
//   wire sp_jn, [63:0] sp_now2  the head's join is enabled / the cycle of its second check
//   and its ports clk_i, rst_i, init_q, push_i, t_start_i, count_i, period_i, ev_valid, ev_op,
//   ev_payload. With SP_JOIN the timestamp must stay below 256 (harness assumption): the join
//   arithmetic is 8 bits wide.
reg [63:0]      qt [0:1];
reg [31:0]      qc [0:1], qp [0:1];
reg [SP_XW-1:0] qx [0:1];
reg [1:0]       qn_q = 2'd0;
reg [31:0]      k_q = 32'd0, f_q = 32'd0;
reg [63:0]      next_q, tlast_q;
reg             late_q = 1'b0;
wire sp_late_ev = ev_valid && ev_op == `HW_OP_LATE;
wire sp_done_ev = ev_valid && ev_op == `HW_OP_DONE;
// first attempt of a late-joined head: its grid index, and the remainder (must be 0)
wire [7:0] sp_d  = sp_ts[7:0] - qt[0][7:0];
wire [7:0] sp_kj = (SP_JOIN != 0) ? sp_d / qp[0][7:0] : 8'd0;
wire [7:0] sp_rj = (SP_JOIN != 0) ? sp_d % qp[0][7:0] : 8'd0;
wire sp_joined = sp_fire && f_q == 32'd0 && sp_ts != qt[0];
always @(posedge clk_i) begin
    if (rst_i) begin
        qn_q <= 2'd0; k_q <= 32'd0; f_q <= 32'd0; late_q <= 1'b0;
    end else begin
        if (sp_fire) begin
            k_q <= sp_joined ? {24'd0, sp_kj} + 32'd1 : k_q + 32'd1;
            f_q <= f_q + 32'd1;
            next_q <= sp_ts + qp[0];
            tlast_q <= sp_ts;
        end
        if (sp_late_ev) late_q <= 1'b1;
        if (sp_ends) begin
            // pop the head; the next entry (if any) becomes the head
            qt[0] <= qt[1]; qc[0] <= qc[1]; qp[0] <= qp[1]; qx[0] <= qx[1];
            next_q <= qt[1];
            k_q <= 32'd0;
            f_q <= 32'd0;
            late_q <= 1'b0;
            if (push_i && qn_q == 2'd2) begin
                qt[1] <= t_start_i; qc[1] <= count_i; qp[1] <= period_i; qx[1] <= sp_x_in;
            end else if (push_i && qn_q == 2'd1) begin
                qt[0] <= t_start_i; qc[0] <= count_i; qp[0] <= period_i; qx[0] <= sp_x_in;
                next_q <= t_start_i;
            end
            qn_q <= qn_q - 2'd1 + {1'b0, push_i};
        end else if (push_i) begin
            if (qn_q == 2'd0) begin
                qt[0] <= t_start_i; qc[0] <= count_i; qp[0] <= period_i; qx[0] <= sp_x_in;
                next_q <= t_start_i;
            end else begin
                qt[1] <= t_start_i; qc[1] <= count_i; qp[1] <= period_i; qx[1] <= sp_x_in;
            end
            qn_q <= qn_q + 2'd1;
        end
    end
end
// the FIFO holds 2 entries besides the running one: the reference may hold 3
always @(*) if (push_i) assume(qn_q < 2'd2 || sp_ends);

always @(*) if (!init_q) begin
    // no trigger outside a scheduled attempt; LATE fires nothing
    if (sp_fire) begin
        assert(qn_q != 2'd0);
        assert(!late_q);
        if (sp_joined) begin
            // a late-joined head's first attempt: on its grid, the first point at or after the
            // join's check, one of its count attempts
            assert(SP_JOIN != 0 && sp_jn);
            assert(sp_rj == 8'd0);
            assert(sp_ts >= sp_now2 && sp_ts < sp_now2 + qp[0]);
            assert({24'd0, sp_kj} < qc[0]);
        end else begin
            assert(k_q < qc[0]);
            assert(sp_ts == next_q);
        end
    end
    if (sp_late_ev) begin
        assert(qn_q != 2'd0 && f_q == 32'd0);
        assert(ev_payload[127:64] == qt[0]);
        assert(ev_payload[127:64] < ev_payload[63:0]);
        if (SP_JOIN != 0 && sp_jn) assert(ev_payload[63:0] == sp_now2);
    end
    if (sp_done_ev) assert(ev_payload[63:32] == f_q);
end

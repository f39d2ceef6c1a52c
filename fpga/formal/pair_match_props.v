// Formal harness for pair_match (fpga/rtl/pair_match.v), the node's herald matcher
// (docs/physical-layer.md section 3): a PAIR is recorded only for an attempt this schedule fired.
//
// Port level, one herald port (NP = 1): every PAIR event names the decided frame's attempt cycle
// t and Bell state (as the frame brought them, although the port may have delivered the next
// frame meanwhile), its port, and an attempt index k with t == t_start + k * period (on the
// schedule's grid) and k < the attempts fired (nfired_i), for the running entry (acc_i) on that
// port; a frame marked bad never becomes a PAIR; every decision is of a frame that came (frames
// are decided once each, in order, none lost). (k counts from the commanded t_start: k - k0_i from
// the entry's joined t_start_i, CONTROL.LATE_JOIN.) The harness keeps its own copy of the frames
// not yet decided (t, bell, bad: a queue of at most 2, the one being decided and one waiting),
// so the event is compared with the frame it decides, not with the port's current output.
// Assumed (the contract of herald_rx and pair_sched): frames at least 60 cycles apart (a frame is
// 11 bytes on the line, > 400 cycles; 60 < the 73 cycles a frame occupies the matcher, so the next
// frame can arrive, and wait, while one is decided) with t / bell held until the next frame, and
// no frame while the port's previous one still waits to be taken (pend_q: the real spacing, 440
// cycles, is far above the longest wait, 79); the schedule inputs (acc_i, t_start_i,
// period_i >= 2, port_i, nfired_i, k0_i) hold still while a frame is waiting or being decided
// (the harness's simplification: a schedule that starts or fires during the 71-cycle decision is
// simulated only, test_hdl_node*.py).
// BMC from reset. Run by `hwctl fpga prove pair_match`.
`default_nettype none
`include "wire_spec.vh"
module pair_match_props (
    input wire        clk_i,
    input wire        rst_i,
    input wire        ok_i,
    input wire        bad_i,
    input wire [63:0] t_i,
    input wire        bell_i,
    input wire        acc_i,
    input wire [63:0] t_start_i,
    input wire [31:0] period_i,
    input wire [7:0]  port_i,
    input wire [31:0] nfired_i,
    input wire [31:0] k0_i,
    input wire [7:0]  qubit_i,
    input wire [31:0] err_herald_i
);
    wire          pair, bad, busy, ev_valid;
    wire [7:0]    ev_op;
    wire [127:0]  ev_pl;
    pair_match #(.NP(1)) dut (
        .clk_i(clk_i), .rst_i(rst_i), .ok_i(ok_i), .bad_i(bad_i), .t_i(t_i), .bell_i(bell_i),
        .acc_i(acc_i), .t_start_i(t_start_i), .period_i(period_i), .port_i(port_i),
        .nfired_i(nfired_i), .k0_i(k0_i), .qubit_i(qubit_i), .err_herald_i(err_herald_i), .pair_o(pair),
        .bad_o(bad), .busy_o(busy), .ev_valid_o(ev_valid), .ev_op_o(ev_op), .ev_payload_o(ev_pl)
    );

    reg init_q = 1'b1;
    always @(posedge clk_i) init_q <= 1'b0;
    always @(*) if (init_q) assume(rst_i);
    always @(*) if (!init_q) assume(!rst_i);

    // taps (connected by the .sby after flattening)
    wire        tap_pend_q;                         // the port's frame waits to be taken

    // frames: at most one of ok / bad, >= 60 cycles apart; t / bell held in between. The
    // reference queue: q0 = the oldest frame not yet decided, q1 = the one after it (nq_q of them)
    wire        frame = ok_i || bad_i;
    wire        decided = pair || bad;              // (pair_o / bad_o: the decision's cycle + 1)
    reg  [6:0]  gap_q;
    reg  [1:0]  nq_q;
    reg  [63:0] q0_t_q, q1_t_q;
    reg         q0_bell_q, q1_bell_q, q0_bad_q, q1_bad_q;
    reg  [63:0] d_t_q;                              // the frame of the last decision (its event
    reg         d_bell_q, d_bad_q;                  // leaves a cycle after pair_o / bad_o)
    always @(posedge clk_i) begin
        if (rst_i) begin
            gap_q <= 7'd0;
            nq_q <= 2'd0;
        end else begin
            if (frame) gap_q <= 7'd60;
            else if (gap_q != 7'd0) gap_q <= gap_q - 7'd1;
            if (decided) {d_t_q, d_bell_q, d_bad_q} <= {q0_t_q, q0_bell_q, q0_bad_q};
            case ({frame, decided})
            2'b10: begin
                if (nq_q == 2'd0) {q0_t_q, q0_bell_q, q0_bad_q} <= {t_i, bell_i, bad_i};
                else {q1_t_q, q1_bell_q, q1_bad_q} <= {t_i, bell_i, bad_i};
                nq_q <= nq_q + 2'd1;
            end
            2'b01: begin
                {q0_t_q, q0_bell_q, q0_bad_q} <= {q1_t_q, q1_bell_q, q1_bad_q};
                nq_q <= nq_q - 2'd1;
            end
            2'b11: begin
                if (nq_q == 2'd1) {q0_t_q, q0_bell_q, q0_bad_q} <= {t_i, bell_i, bad_i};
                else begin
                    {q0_t_q, q0_bell_q, q0_bad_q} <= {q1_t_q, q1_bell_q, q1_bad_q};
                    {q1_t_q, q1_bell_q, q1_bad_q} <= {t_i, bell_i, bad_i};
                end
            end
            default: ;
            endcase
        end
    end
    wire live = nq_q != 2'd0;                       // a frame is waiting or being decided
    always @(*) begin
        assume(!(ok_i && bad_i));
        if (gap_q != 7'd0 || init_q || tap_pend_q) assume(!ok_i && !bad_i);
        assume(period_i >= 32'd2);
        // abstraction (the divider is the same circuit for any values): period < 64 and a frame
        // at most 4095 cycles after t_start (or any time before it), so k < 2048 and the 64-bit
        // datapath's high bits are zero where it matters; the solver then needs minutes, not hours
        assume(period_i[31:6] == 26'd0);
        assume(t_i < t_start_i || (t_i - t_start_i) < 64'd4096);
    end
    always @(posedge clk_i) if (!init_q && !(ok_i || bad_i)) begin
        assume(t_i == $past(t_i));
        assume(bell_i == $past(bell_i));
    end
    always @(posedge clk_i) if (!init_q && live) begin
        assume(acc_i == $past(acc_i));
        assume(t_start_i == $past(t_start_i));
        assume(period_i == $past(period_i));
        assume(port_i == $past(port_i));
        assume(nfired_i == $past(nfired_i));
        assume(k0_i == $past(k0_i));
    end

    // ---------------------------------------------------------------- properties
    wire [63:0] ev_t    = ev_pl[127:64];
    wire [31:0] ev_k    = ev_pl[63:32];
    wire        ev_bell = ev_pl[24];
    wire [7:0]  ev_port = ev_pl[15:8];
    // the schedule inputs of the decision cycle (the event leaves a cycle later, when they may
    // already have moved on)
    reg        acc_d_q;
    reg [63:0] t_start_d_q;
    reg [31:0] period_d_q, nfired_d_q, k0_d_q;
    reg [7:0]  port_d_q;
    always @(posedge clk_i) begin
        acc_d_q <= acc_i;
        t_start_d_q <= t_start_i;
        period_d_q <= period_i;
        nfired_d_q <= nfired_i;
        k0_d_q <= k0_i;
        port_d_q <= port_i;
    end
    // k * period by shift-and-add over the quotient bits as the divider produces them (Horner:
    // m = sum b_j * period * 2^j = k * period exactly, no overflow in 64 bits for 32-bit k and
    // period): a 32 x 32 multiplier in the assertion made the passing run take > 15 min. kb_q
    // collects the same bits, and the event's k is checked to be kb_q. (Helper invariants per
    // division step, dividend bits brought down = m + r and r < period, were tried: ~100 s a
    // step, slower than the plain BMC.)
    wire [6:0]  tap_step_q;
    wire        tap_busy_q;
    wire        tap_dvb_q;                          // a division step's second (select) cycle
    wire        tap_qbit;                           // ... its quotient bit
    wire        divs = tap_dvb_q && !rst_i;       // (not a bare alias of a connect -set tap)
    reg  [63:0] m_q;
    reg  [31:0] kb_q;
    always @(posedge clk_i) begin
        if (tap_busy_q && tap_step_q == 7'd2) begin     // RANGE, the cycle before the division
            m_q <= 64'd0;
            kb_q <= 32'd0;
        end else if (divs) begin                        // a division step: quotient bit !sub[33]
            m_q <= {m_q[62:0], 1'b0} + (tap_qbit ? {32'd0, period_i} : 64'd0);
            kb_q <= {kb_q[30:0], tap_qbit};
        end
    end
    wire [63:0] k_per   = m_q;
    // PAIR attempts count from the commanded grid: k0 attempts before the (joined) t_start
    wire [31:0] ev_kr   = ev_k - k0_d_q;
    // a decision only of a frame that came, and a frame never lost (a third one while two are
    // undecided would be one the matcher dropped: the assumption above keeps a waiting frame)
    always @(*) if (!init_q && !rst_i) begin
        if (decided) assert(nq_q != 2'd0);
        if (frame && !decided) assert(nq_q != 2'd2);
    end
    always @(posedge clk_i) if (!init_q && ev_valid && ev_op == `HW_OP_PAIR) begin
        assert($past(pair));
        assert(!d_bad_q);                             // a bad frame never pairs
        assert(ev_t == d_t_q && ev_bell == d_bell_q); // the decided frame's attempt cycle, Bell state
        assert(acc_d_q && ev_port == 8'd0 && port_d_q == 8'd0);  // the running entry, its port
        assert(ev_kr < nfired_d_q);                   // an attempt it fired ...
        assert(ev_kr == kb_q);                        // (the divider's quotient)
        assert(ev_t == t_start_d_q + k_per);          // ... on its grid (k_per = ev_kr * period)
    end
    always @(posedge clk_i) if (!init_q) cover(ev_valid && ev_op == `HW_OP_PAIR && ev_k == 32'd2);
endmodule
`default_nettype wire

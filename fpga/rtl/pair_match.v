// Herald matcher of the node (docs/physical-layer.md section 3): decides, for each herald frame
// from a port's herald_rx, whether it heralds an attempt the running SCHEDULE_PAIRS entry fired.
//
// Frames are taken one at a time (lowest pending port first) and decided 71 cycles later (a
// fixed pipeline: 64-bit subtraction in two halves, a range check, a 32-step restoring division
// at two cycles a step, the checks in 16-bit halves; 37 cycles before the eighth session, which
// split every 33-bit chain for ECP5's 200 MHz: the twin's HL_LOOP_LAT and the tests' MATCH_LAT /
// HL_FIXED moved with it). A herald with attempt cycle t on port p is a pair iff, in the decision
// cycle, the engine accepts heralds (acc_i), runs on port p, has accepted them since the frame
// was taken (no other entry in between), and t = t_start + k*period with k < attempts fired
// before that cycle and k above the attempt of the entry's previous pair (heralds of one entry
// are recorded in attempt order, each attempt at most once: a repeated or older frame is refused,
// as in the twin). Then pair_o pulses and PAIR(ts = t, attempt = k + k0, bell, qubit, port) is
// emitted; anything else (also a malformed frame) is a bad herald: bad_o pulses (ERR_HERALD)
// and ERROR(BAD_HERALD, info = ERR_HERALD after the increment) is emitted. Events leave one
// cycle after the decision. k0_i: attempts of the commanded grid the entry skipped by a late join
// (pair_sched; t_start_i is then the joined grid point), so attempts count from the commanded
// t_start at both ends of a link whatever point each joined at.
// Throughput: a frame occupies the matcher 73 cycles (71 + the event cycle + the take); a port's
// frames are >= 11 bytes apart (440 cycles at the spec's 4 cycles a bit, the station's fastest
// herald rate per line), so every frame is decided and none is overwritten while it waits for
// N_PORTS <= 6 (440 / 73); top hands herald_rx's shift register over (HOLD = 0) only while a
// port waits at most (N_PORTS - 1) * 74 + 4 < 79 cycles, i.e. for 2 ports.
// Area (iCE40 fit): the division runs in place (the difference t - t_start is formed in the
// remainder / dividend registers, the quotient shifts into the dividend register as its bits
// leave), and the event payload is not a register of its own: it is built from the decided
// frame's registers, which hold still until the event has left (no take in the cycle after a
// decision), and event_arb's holding register is the only copy.
`default_nettype none
`include "wire_spec.vh"
module pair_match #(
    parameter NP = 2                // ports (herald inputs)
) (
    input  wire           clk_i,
    input  wire           rst_i,
    // herald receivers (one-cycle pulses; t / bell held until the port's next frame)
    input  wire [NP-1:0]  ok_i,
    input  wire [NP-1:0]  bad_i,
    input  wire [64*NP-1:0] t_i,
    input  wire [NP-1:0]  bell_i,
    // running entry (pair_sched)
    input  wire           acc_i,
    input  wire [63:0]    t_start_i,
    input  wire [31:0]    period_i,
    input  wire [7:0]     port_i,
    input  wire [31:0]    nfired_i,
    input  wire [31:0]    k0_i,
    input  wire [7:0]     qubit_i,
    input  wire [31:0]    err_herald_i,   // ERR_HERALD (register file)
    output reg            pair_o,
    output reg            bad_o,
    output wire           busy_o,
    output reg            ev_valid_o,
    output wire [7:0]     ev_op_o,
    output wire [127:0]   ev_payload_o
);
    // ---------------------------------------------------------------- pending frames
    reg  [NP-1:0] pend_q, pbad_q;
    localparam PW = (NP > 1) ? $clog2(NP) : 1;
    reg  [PW-1:0] pick;
    reg  [63:0]   t_pick;
    reg           bell_pick, bad_pick;
    integer i, j;
    always @* begin
        pick = {PW{1'b0}};
        for (i = NP - 1; i >= 0; i = i - 1)
            if (pend_q[i]) pick = i[PW-1:0];
        t_pick = 64'd0;
        bell_pick = 1'b0;
        bad_pick = 1'b0;
        for (i = 0; i < NP; i = i + 1)
            if (pick == i[PW-1:0]) begin
                t_pick = t_i[64*i +: 64];
                bell_pick = bell_i[i];
                bad_pick = pbad_q[i];
            end
    end

    // ---------------------------------------------------------------- pipeline
    // S_TAKE -> SUB_LO -> SUB_HI -> RANGE -> DIV (32 steps of 2 cycles) -> CHK -> CHKX -> CHK2 ->
    // decide: 71 cycles (34 more than the one-cycle division step's pipeline)
    reg         busy_q;
    reg  [6:0]  step_q;              // 0 sub lo, 1 sub hi, 2 range, 3..66 division, 67 chk, 68 chkx, 69 chk2, 70 decide
    reg  [63:0] t_q;
    reg         bell_q, bad_q;
    reg  [7:0]  port_q;
    reg         blo_q;               // borrow of the low half of t - t_start
    reg         neg_q;               // t < t_start
    reg         ovf_q;               // (t - t_start) >= period * 2^32 (no attempt index < 2^32)
    // in-place division: r_q = remainder (starts as the high half of t - t_start), dq_q = the
    // dividend bits still to bring down (starts as the low half) above the quotient bits so far;
    // after the 32 steps dq_q is the quotient k
    reg  [31:0] r_q, dq_q;
    reg  [31:0] dh_q;                // t_hi - t_start_hi (step 0); r_q's start (RANGE) with en_q
    reg         ev_pair_q;           // the event being sent is a PAIR (else BAD_HERALD)
    reg         stable_q;            // acc_i held since the take
    reg         rzl_q, rzh_q, pmatch_q, kgt_q, okc_q;
    reg         klo_q, khi0_q, khi1_q;   // k < nfired: borrows of the halves (CHK2; khi1_q inverted)
    reg         glo_q, ghi0_q, ghi1_q;   // k > last_k: the same for last_k - k (CHK)
    reg         kc_q;                // carry of the low half of k + k0 (CHK)
    reg  [31:0] ka_q;                // the PAIR attempt k + k0 (CHK, CHK2)
    reg  [31:0] last_k_q;            // attempt of the running entry's last pair
    reg         have_last_q;         // ... valid (cleared while no entry accepts heralds)
    reg  [31:0] info_q;
    reg  [7:0]  qubit_q;             // the qubit the engine assigns in the decision cycle
    // step decodes, registered a cycle ahead (no step_q compare in front of a wide enable)
    reg         s0_q, s1_q;          // steps 0 (SUB_LO), SUBHI
    reg         ldr_q;               // step RANGE: r_q <= the high half of t - t_start
    reg         f3_q;                // the first division cycle (r_q = the high half)
    reg         dva_q, dvb_q;        // a division step's first (subtract) / second (select) cycle
    reg         chk_q, chkx_q, chk2_q, dec_q;    // steps CHK, CHKX, CHK2, decide
    assign busy_o = busy_q;

    localparam [6:0] ST_DIVL = 7'd66;    // the last division cycle

    // Division step, two cycles (the ECP5 node's critical path at 105.7 MHz was the one-cycle
    // step: r_q -> the 17/17 carry select -> the quotient-bit LUT -> r_q / dq_q, 3.1 ns of logic
    // and 6.4 ns of routing). First cycle (dva_q): the subtraction {r_q, dq_q[31]} - period as
    // three 17-bit carry chains side by side (the low 17 bits, the high 17 bits for both carries
    // into them), each ending in its own flip-flops (lo_q, h0_q, h1_q: written every cycle, read
    // only in the second cycle, while r_q / dq_q hold). Second cycle (dvb_q): the low half's
    // carry picks the high half, the sign picks difference or shift: LUTs of flip-flops into
    // r_q / dq_q. Same quotient and remainder as the one-cycle step, 32 cycles later.
    // - pn_q: ~period_i, a local copy taken with the frame, so every chain that subtracts the
    //   period starts from flip-flops next to it with no inverter LUT in front (an iCE40 carry
    //   takes its operands as they are). period_i only matters while acc_i holds since the take
    //   (stable_q; pair_sched loads period_o only at an entry's start, with acc_o low), and then
    //   pn_q == ~period_i.
    reg  [31:0] pn_q;
    // ph1_q: the high operand with the low half's carry already added ({2'b11, pn_q[31:17]} + 1,
    // formed at step 0 from pn_q): sh0 is one 17-carry chain beside sh1 (written as sh1 + 1,
    // yosys shared sh1's chain and put a second chain behind it)
    reg  [16:0] ph1_q;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [32:0] sx  = {r_q, dq_q[31]};
    wire [17:0] slo = {1'b0, sx[16:0]} + {1'b0, pn_q[16:0]} + 18'd1;     // [17]: no borrow out
    wire [16:0] sh0 = {1'b0, sx[32:17]} + ph1_q;                          // no borrow in
    wire [16:0] sh1 = {1'b0, sx[32:17]} + {2'b11, pn_q[31:17]};          // a borrow in
    reg  [17:0] lo_q;
    reg  [16:0] h0_q, h1_q;
    wire [32:0] ovs = {1'b0, r_q} + {1'b0, pn_q} + 33'd1;                // [32]: r_q >= period
    wire [32:0] dl  = {1'b0, t_q[31:0]} - {1'b0, t_start_i[31:0]};
    // the high half t_hi - t_start_hi - blo as a carry select: t_hi - t_start_hi (dh) and
    // t_start_hi - t_hi (en) beside the low half at step 0, the low half's borrow blo_q picks at
    // SUBHI (a 32-bit "- blo_q" chain with blo_q's fanout of 32 in front was the module's ECP5
    // path): t_hi - t_start_hi - 1 = ~(t_start_hi - t_hi), negative iff t_hi <= t_start_hi, i.e.
    // iff en did not borrow (the inversions sit in the SUBHI mux, not beside the chains)
    wire [32:0] dh  = {1'b0, t_q[63:32]} - {1'b0, t_start_i[63:32]};
    wire [32:0] en  = {1'b0, t_start_i[63:32]} - {1'b0, t_q[63:32]};
    reg  [31:0] en_q;
    reg         enb_q;
    reg         nb_q;
    /* verilator lint_on UNUSEDSIGNAL */
    // second cycle: {r_q, dq_q[31]} - period = {c ? h0 : h1, lo} (c: the low half's carry); r_q's
    // next value is the difference if it did not borrow, else the shift {r_q[30:0], dq_q[31]};
    // at RANGE (ldr_q) the "shift" side is dh_q and chosen whatever lo_q / h0_q / h1_q hold
    wire        c_lo = lo_q[17];
    wire [31:0] ra = ldr_q ? (blo_q ? ~en_q : dh_q) : {r_q[30:0], dq_q[31]};
    wire        s0 = h0_q[16] || ldr_q;              // take ra if the low half does not borrow
    wire        s1 = h1_q[16] || ldr_q;              // ... if it does
    wire [31:17] e0 = s0 ? ra[31:17] : h0_q[14:0];
    wire [31:17] e1 = s1 ? ra[31:17] : h1_q[14:0];
    wire [16:0]  f0 = s0 ? ra[16:0] : lo_q[16:0];
    wire [16:0]  f1 = s1 ? ra[16:0] : lo_q[16:0];
    wire [31:0] r_d = c_lo ? {e0, f0} : {e1, f1};
    wire        qbit = c_lo ? !h0_q[16] : !h1_q[16];  // !borrow of {r_q, dq_q[31]} - period
    wire        dec = dec_q;
    // free_q: idle and not the cycle after a decision (= !busy_q && !pair_o && !bad_o, formed a
    // cycle ahead: the take's enable of ~110 flip-flops was 4 LUT levels from pair_o / bad_o)
    reg         free_q;
    wire        take = free_q && pend_q != {NP{1'b0}};
    // the checks (CHK, CHKX, CHK2): each 32-bit compare / add as 16-bit halves whose chains end
    // in flip-flops (no 32-bit chain); okc_q gathers the flags known at CHK. k < nfired from
    // nfired_i of one cycle, CHK2, the cycle before the decision (it counts attempts as they
    // fire): the high half for both borrows in, the low half's borrow picks at the decision;
    // k > last_k likewise at CHK, picked at CHKX
    /* verilator lint_off UNUSEDSIGNAL */
    wire [16:0] lt_lo = {1'b0, dq_q[15:0]} - {1'b0, nfired_i[15:0]};        // [16]: borrow
    wire [16:0] lt_h0 = {1'b0, dq_q[31:16]} - {1'b0, nfired_i[31:16]};
    // (k - nf - 1 borrows iff k <= nf iff nf - k does not borrow: one plain chain, the
    // inversion in the LUT that picks; "- 1" or "+ ~nf" put a second chain / LUTs around it)
    wire [16:0] lt_h1 = {1'b0, nfired_i[31:16]} - {1'b0, dq_q[31:16]};       // [16]: !borrow
    wire [16:0] gt_lo = {1'b0, last_k_q[15:0]} - {1'b0, dq_q[15:0]};
    wire [16:0] gt_h0 = {1'b0, last_k_q[31:16]} - {1'b0, dq_q[31:16]};
    wire [16:0] gt_h1 = {1'b0, dq_q[31:16]} - {1'b0, last_k_q[31:16]};      // [16]: !borrow
    /* verilator lint_on UNUSEDSIGNAL */
    wire [16:0] ka_lo = {1'b0, dq_q[15:0]} + {1'b0, k0_i[15:0]};
    wire        klt = klo_q ? !khi1_q : khi0_q;
    wire        good = okc_q && klt && kgt_q && stable_q && acc_i;
    always @(posedge clk_i) begin
        lo_q <= slo;
        h0_q <= sh0;
        h1_q <= sh1;
    end

    always @(posedge clk_i) begin
        info_q <= err_herald_i + 32'd1;
        pair_o <= 1'b0;
        bad_o <= 1'b0;
        if (rst_i) begin
            pend_q <= {NP{1'b0}};
            pbad_q <= {NP{1'b0}};
            busy_q <= 1'b0;
            step_q <= 7'd0;
            {s0_q, s1_q, ldr_q, f3_q, dva_q, dvb_q, chk_q, chkx_q, chk2_q, dec_q} <= 10'd0;
            free_q <= 1'b1;
            t_q <= 64'd0;
            bell_q <= 1'b0;
            bad_q <= 1'b0;
            port_q <= 8'd0;
            blo_q <= 1'b0;
            {neg_q, ovf_q, rzl_q, rzh_q, pmatch_q, stable_q, kgt_q, okc_q} <= 8'd0;
            {klo_q, khi0_q, khi1_q, glo_q, ghi0_q, ghi1_q} <= 6'd0;
            last_k_q <= 32'd0;
            have_last_q <= 1'b0;
            r_q <= 32'd0;
            dq_q <= 32'd0;
            ev_valid_o <= 1'b0;
            ev_pair_q <= 1'b0;
        end else begin
            // take the lowest pending port when idle, and not in the cycle after a decision:
            // the event leaves in the next cycle, built from t_q / dq_q / bell_q / port_q
            if (take) begin
                busy_q <= 1'b1;
                step_q <= 7'd0;
                for (j = 0; j < NP; j = j + 1)
                    if (pick == j[PW-1:0]) pend_q[j] <= 1'b0;
                t_q <= t_pick;
                bell_q <= bell_pick;
                bad_q <= bad_pick;
                port_q <= 8'(pick);
                stable_q <= acc_i;
                pn_q <= ~period_i;
            end
            // (not an else of the take: a take needs !busy_q, so the two never meet, but as an
            // else every enable of the pipeline's registers (dh_q, r_q, dq_q, ...) carried the
            // take's condition, pend_q / pair_o / bad_o: five LUT levels, the HX8K's path)
            if (busy_q) begin
                step_q <= step_q + 7'd1;
                stable_q <= stable_q && acc_i;
                if (s0_q) {blo_q, dq_q} <= dl;
                if (s0_q) {nb_q, dh_q} <= dh;
                if (s0_q) {enb_q, en_q} <= en;
                if (s0_q) ph1_q <= {2'b11, pn_q[31:17]} + 17'd1;
                if (s1_q) neg_q <= blo_q ? !enb_q : nb_q;
                if (ldr_q || dvb_q) r_q <= r_d;
                if (f3_q) ovf_q <= ovs[32];   // r_q (= the high half) >= period (read at CHK2)
                // restoring division step (r_q: r_d above): bring down the next bit, the
                // quotient bit !sub[33] in
                if (dvb_q) dq_q <= {dq_q[30:0], qbit};
                // dq_q = k from here on; k < nfired, k > last_k (or no pair yet), the PAIR's k + k0
                if (chk_q) begin
                    rzl_q <= (r_q[15:0] == 16'd0);
                    rzh_q <= (r_q[31:16] == 16'd0);
                    {glo_q, ghi0_q, ghi1_q} <= {gt_lo[16], gt_h0[16], gt_h1[16]};
                    {kc_q, ka_q[15:0]} <= ka_lo;
                    pmatch_q <= (port_q == port_i);
                end
                if (chkx_q) begin
                    okc_q <= !bad_q && !neg_q && !ovf_q && rzl_q && rzh_q && pmatch_q;
                    // (have_last_q holds from the take to the decision whenever the verdict
                    // depends on it: it changes only with acc_i low or at a decision)
                    kgt_q <= !have_last_q || (glo_q ? !ghi1_q : ghi0_q);
                    ka_q[31:16] <= dq_q[31:16] + k0_i[31:16] + {15'd0, kc_q};
                end
                if (chk2_q) {klo_q, khi0_q, khi1_q} <= {lt_lo[16], lt_h0[16], lt_h1[16]};
                if (dec) busy_q <= 1'b0;
            end
            free_q <= !busy_q && !take;
            // (all 0 while idle: the take starts them at step 0)
            s0_q <= take;
            s1_q <= busy_q && s0_q;
            ldr_q <= busy_q && s1_q;
            f3_q <= busy_q && ldr_q;
            dva_q <= busy_q && (ldr_q || (dvb_q && step_q != ST_DIVL));
            dvb_q <= busy_q && dva_q;
            chk_q <= busy_q && dvb_q && step_q == ST_DIVL;
            chkx_q <= busy_q && chk_q;
            chk2_q <= busy_q && chkx_q;
            dec_q <= busy_q && chk2_q;
            // new frames (after the take: a port cannot deliver twice within a frame time)
            for (j = 0; j < NP; j = j + 1)
                if (ok_i[j] || bad_i[j]) begin
                    pend_q[j] <= 1'b1;
                    pbad_q[j] <= bad_i[j];
                end
            // decision, event a cycle later
            if (!acc_i) have_last_q <= 1'b0;
            else if (dec && good) have_last_q <= 1'b1;
            // the pair's k, taken in the cycle after the decision (dq_q holds still until the
            // event left; read only with have_last_q, i.e. while acc_i holds, and only at a later
            // frame's CHK): the 32 enables hang on the registered pair_o, not on the decision
            if (pair_o) last_k_q <= dq_q;
            pair_o <= dec && good;
            bad_o <= dec && !good;
            ev_valid_o <= pair_o || bad_o;
            ev_pair_q <= pair_o;
        end
    end
    // (valid with ev_valid_o: the registers below hold still until then)
    assign ev_op_o = ev_pair_q ? `HW_OP_PAIR : `HW_OP_ERROR;
    assign ev_payload_o = ev_pair_q ? {t_q, ka_q, 7'd0, bell_q, qubit_q, port_q, 8'd0}
                                    : {`HW_ERR_BAD_HERALD, info_q, 88'd0};
    always @(posedge clk_i) if (dec) qubit_q <= qubit_i;
endmodule
`default_nettype wire

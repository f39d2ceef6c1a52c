// Herald matcher of the node (docs/physical-layer.md section 3): decides, for each herald frame
// from a port's herald_rx, whether it heralds an attempt the running SCHEDULE_PAIRS entry fired.
//
// Frames are taken one at a time (lowest pending port first) and decided MATCH_LAT cycles later
// (a fixed pipeline: 64-bit subtraction in two halves, a range check, a 32-step restoring
// division, the checks). A herald with attempt cycle t on port p is a pair iff, in the decision
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
// A port's frames are >= 11 bytes apart (~440 cycles at 4 cycles a bit), so with MATCH_LAT ~40
// cycles no port's result is overwritten while it waits, for N_PORTS <= 8.
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
    // S_TAKE -> SUB_LO -> SUB_HI -> RANGE -> DIV (32 cycles) -> CHK -> decide
    reg         busy_q;
    reg  [5:0]  step_q;              // 0 take/sub lo, 1 sub hi, 2 range, 3..34 division, 35 chk, 36 decide
    reg  [63:0] t_q;
    reg         bell_q, bad_q;
    reg  [7:0]  port_q;
    reg         blo_q;               // borrow of the low half of t - t_start
    reg         neg_q;               // t < t_start
    reg         ovf_q;               // (t - t_start) >= period * 2^32 (no attempt index < 2^32)
    reg         ovr_q;               // ... its compare, registered next to the carry chain (RANGE)
    // in-place division: r_q = remainder (starts as the high half of t - t_start), dq_q = the
    // dividend bits still to bring down (starts as the low half) above the quotient bits so far;
    // after the 32 steps dq_q is the quotient k
    reg  [31:0] r_q, dq_q;
    reg  [31:0] dh_q;                // the high half of t - t_start (SUBHI), r_q's start (RANGE)
    reg         ev_pair_q;           // the event being sent is a PAIR (else BAD_HERALD)
    reg         stable_q;            // acc_i held since the take
    reg         rz_q, klt_q, pmatch_q, kgt_q;
    reg  [31:0] last_k_q;            // attempt of the running entry's last pair
    reg         have_last_q;         // ... valid (cleared while no entry accepts heralds)
    reg  [31:0] info_q;
    reg  [7:0]  qubit_q;             // the qubit the engine assigns in the decision cycle
    assign busy_o = busy_q;

    localparam [5:0] ST_SUBHI = 6'd1, ST_RANGE = 6'd2, ST_DIV0 = 6'd3, ST_CHK = 6'd35,
                     ST_DEC = 6'd36;

    // The division step's subtraction {r_q, dq_q[31]} - period (34 bits; sub[33] = borrow = the
    // quotient bit's complement) was the HX8K's critical path (86 MHz): one 34-carry chain from
    // pair_sched's period register across the die, then the select (fanout 33) and the r_q mux.
    // Timing only, the same values in the same cycles:
    // - pn_q: ~period_i, a local copy taken with the frame, so every chain that subtracts the
    //   period starts from flip-flops next to it with no inverter LUT in front (an iCE40 carry
    //   takes its operands as they are). period_i only matters while acc_i holds since the take
    //   (stable_q; pair_sched loads period_o only at an entry's start, with acc_o low), and then
    //   pn_q == ~period_i.
    // - carry select: the low 17 bits and the high 17 bits (for both carries into them) are
    //   three 17-carry chains side by side; the low half's carry picks the high half.
    // - the r_q / dq_q update is written so that one LUT follows the low half's carry and two
    //   follow the high halves' sign bits (ra: the "restore" side, early; e0 / e1: each high
    //   candidate already resolved by its own sign; f0 / f1 likewise for the low bits).
    reg  [31:0] pn_q;
    // ph1_q: the high operand with the low half's carry already added ({2'b11, pn_q[31:17]} + 1,
    // formed at step 0 from pn_q). Written as sh1 + 1, yosys shared sh1's chain and put a second
    // 15-carry chain behind it (the HX8K's path: r_q -> 16 carries -> LUT -> 15 carries -> LUT
    // -> ... -> dq_q, 11.2 ns); from its own register sh0 is one 17-carry chain beside sh1
    reg  [16:0] ph1_q;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [32:0] sx  = {r_q, dq_q[31]};
    wire [17:0] slo = {1'b0, sx[16:0]} + {1'b0, pn_q[16:0]} + 18'd1;     // [17]: no borrow out
    wire [16:0] sh0 = {1'b0, sx[32:17]} + ph1_q;                          // no borrow in
    wire [16:0] sh1 = {1'b0, sx[32:17]} + {2'b11, pn_q[31:17]};          // a borrow in
    wire [33:0] sub = {slo[17] ? sh0 : sh1, slo[16:0]};   // {r_q, dq_q[31]} - period
    wire [32:0] ovs = {1'b0, dh_q} + {1'b0, pn_q} + 33'd1;               // [32]: dh_q >= period
    wire [32:0] dl  = {1'b0, t_q[31:0]} - {1'b0, t_start_i[31:0]};
    // the high half in two steps (the HX8K's next path was the one 33-carry chain from t_q and
    // t_start_i with the borrow merged in by a LUT): t_hi - t_start_hi beside the low half at
    // step 0 (nb_q: its borrow), then - blo_q at SUBHI from local flip-flops (adding blo_q
    // replicated, i.e. -1, needs no inverter); negative iff the first borrowed or it was 0 and
    // the low half borrowed
    wire [32:0] dh  = {1'b0, t_q[63:32]} - {1'b0, t_start_i[63:32]};
    reg         nb_q;
    /* verilator lint_on UNUSEDSIGNAL */
    // r_q's next value: the registered high half dh_q at RANGE (the 33-carry dh chain ends in
    // its own flip-flops), the division step at DIV (sub[31:0], or the shift when sub[33]),
    // i.e. if (!sub[33]) sub[31:0] else {r_q[30:0], dq_q[31]}, with RANGE folded into the
    // "shift" side
    wire        ld_r  = (step_q == ST_RANGE);
    wire        div_st = (step_q >= ST_DIV0 && step_q < ST_CHK);
    wire [31:0] ra = ld_r ? dh_q : {r_q[30:0], dq_q[31]};
    wire        s0 = sh0[16] || ld_r;               // take ra if the low half does not borrow
    wire        s1 = sh1[16] || ld_r;               // ... if it does
    wire [31:17] e0 = s0 ? ra[31:17] : sh0[14:0];
    wire [31:17] e1 = s1 ? ra[31:17] : sh1[14:0];
    wire [16:0]  f0 = s0 ? ra[16:0] : slo[16:0];
    wire [16:0]  f1 = s1 ? ra[16:0] : slo[16:0];
    wire [31:0] r_d = slo[17] ? {e0, f0} : {e1, f1};
    wire        qbit = slo[17] ? !sh0[16] : !sh1[16];  // = !sub[33]
    wire        dec = busy_q && (step_q == ST_DEC);
    wire        good = !bad_q && !neg_q && !ovf_q && rz_q && klt_q && kgt_q && pmatch_q && stable_q
                       && acc_i;

    always @(posedge clk_i) begin
        info_q <= err_herald_i + 32'd1;
        pair_o <= 1'b0;
        bad_o <= 1'b0;
        if (rst_i) begin
            pend_q <= {NP{1'b0}};
            pbad_q <= {NP{1'b0}};
            busy_q <= 1'b0;
            step_q <= 6'd0;
            t_q <= 64'd0;
            bell_q <= 1'b0;
            bad_q <= 1'b0;
            port_q <= 8'd0;
            blo_q <= 1'b0;
            {neg_q, ovf_q, ovr_q, rz_q, klt_q, pmatch_q, stable_q, kgt_q} <= 8'd0;
            last_k_q <= 32'd0;
            have_last_q <= 1'b0;
            r_q <= 32'd0;
            dq_q <= 32'd0;
            ev_valid_o <= 1'b0;
            ev_pair_q <= 1'b0;
        end else begin
            // take the lowest pending port when idle, and not in the cycle after a decision:
            // the event leaves in the next cycle, built from t_q / dq_q / bell_q / port_q
            if (!busy_q && pend_q != {NP{1'b0}} && !pair_o && !bad_o) begin
                busy_q <= 1'b1;
                step_q <= 6'd0;
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
                step_q <= step_q + 6'd1;
                stable_q <= stable_q && acc_i;
                if (step_q == 6'd0) {blo_q, dq_q} <= dl;
                if (step_q == 6'd0) {nb_q, dh_q} <= dh;
                if (step_q == 6'd0) ph1_q <= {2'b11, pn_q[31:17]} + 17'd1;
                if (step_q == ST_SUBHI) begin
                    dh_q <= dh_q + {32{blo_q}};
                    neg_q <= nb_q || (blo_q && dh_q == 32'd0);
                end
                if (ld_r || div_st) r_q <= r_d;
                // (two stages: the compare's flip-flop stays by its carry chain; ovf_q is read
                // only at the decision)
                if (step_q == ST_RANGE) ovr_q <= ovs[32];   // dh_q >= period
                if (step_q == ST_DIV0) ovf_q <= ovr_q;
                // restoring division step (r_q: r_d above): bring down the next bit, the
                // quotient bit !sub[33] in
                if (div_st) dq_q <= {dq_q[30:0], qbit};
                if (step_q == ST_CHK) begin
                    dq_q <= dq_q + k0_i;    // k -> the PAIR attempt k + k0 (checks use k)
                    rz_q <= (r_q == 32'd0);
                    klt_q <= (dq_q < nfired_i);
                    kgt_q <= !have_last_q || (dq_q > last_k_q);
                    pmatch_q <= (port_q == port_i);
                end
                if (dec) busy_q <= 1'b0;
            end
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
            if (pair_o) last_k_q <= dq_q - k0_i;    // k again (k0_i holds while heralds are accepted)
            pair_o <= dec && good;
            bad_o <= dec && !good;
            ev_valid_o <= pair_o || bad_o;
            ev_pair_q <= pair_o;
        end
    end
    // (valid with ev_valid_o: the registers below hold still until then)
    assign ev_op_o = ev_pair_q ? `HW_OP_PAIR : `HW_OP_ERROR;
    assign ev_payload_o = ev_pair_q ? {t_q, dq_q, 7'd0, bell_q, qubit_q, port_q, 8'd0}
                                    : {`HW_ERR_BAD_HERALD, info_q, 88'd0};
    always @(posedge clk_i) if (dec) qubit_q <= qubit_i;
endmodule
`default_nettype wire

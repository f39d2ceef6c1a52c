// Formal harness for station_core (fpga/rtl/station_core.v), the heralding station's verdict
// (docs/physical-layer.md section 2; ESP paper Sec. II-B single-click scheme):
//
//   - an attempt that only one end fired can never herald (her_o only for a window in which the
//     markers of both ends were seen);
//   - a herald names the detector that clicked alone in the window (her_bell_o), and no window
//     with exactly one click and both markers goes unheralded.
//
// Stated against a plain reference of the window written here from the contract, on the same
// synchronized edges (two flip-flops, then an edge register, then one more register, as every
// station input): a window opens on the first marker edge while none is open and covers
// `window` cycles (0 acts as 1); markers and clicks inside it belong to it; at its close the
// verdict is herald iff both markers and exactly one detector, one cycle later. her_o must equal
// the reference's herald in every cycle and carry its detector. Markers, clicks, ST_DELAY and
// the timestamp are unconstrained; ST_WINDOW is held constant in 1..4 (a window register write
// in the middle of a window is not covered). Proven by k-induction (unbounded: station_core.sby,
// prove) with the invariants at the end (DUT state = reference state, on taps). Run by
// `hwctl fpga prove station_core`.
`default_nettype none
module station_core_props (
    input wire        clk_i,
    input wire        rst_i,
    input wire [1:0]  mark_i,
    input wire [1:0]  det_i,
    input wire [63:0] ts_i,
    input wire [31:0] delay_i,
    input wire [15:0] window_i
);
    wire        her, her_bell;
    wire [63:0] her_t;
    /* verilator lint_off PINCONNECTEMPTY */
    station_core dut (
        .clk_i(clk_i), .rst_i(rst_i), .mark_i(mark_i), .det_i(det_i), .ts_i(ts_i),
        .delay_i(delay_i), .window_i(window_i), .her_o(her), .her_t_o(her_t),
        .her_bell_o(her_bell), .cnt_herald_o(), .cnt_one_end_o(), .cnt_both_o(),
        .cnt_dark_o(), .cnt_marks_o(), .ev_valid_o(), .ev_op_o(), .ev_payload_o()
    );
    /* verilator lint_on PINCONNECTEMPTY */

    reg init_q = 1'b1;
    always @(posedge clk_i) init_q <= 1'b0;
    always @(*) if (init_q) assume(rst_i);
    always @(*) if (!init_q) assume(!rst_i);
    always @(*) assume(window_i >= 16'd1 && window_i <= 16'd4);
    always @(posedge clk_i) if (!init_q) assume(window_i == $past(window_i));

    // ---------------------------------------------------------------- reference
    reg [3:0] s1_q, s2_q, p_q, r_q, r2_q;      // {det, mark}: sync, previous, edge, edge + 1
    reg       ropen_q, rclose_q, rher_q, rbell_q;
    reg [1:0] rseen_q, rclk_q;
    reg [15:0] rcnt_q;                          // window cycles done (the opening one is 1)
    wire [1:0] m = r2_q[1:0], d = r2_q[3:2];
    always @(posedge clk_i) begin
        if (rst_i) begin
            {s1_q, s2_q, p_q, r_q, r2_q} <= 20'd0;
            {ropen_q, rclose_q, rher_q, rbell_q} <= 4'd0;
            rseen_q <= 2'd0;
            rclk_q <= 2'd0;
            rcnt_q <= 16'd0;
        end else begin
            s1_q <= {det_i, mark_i};
            s2_q <= s1_q;
            p_q <= s2_q;
            r_q <= s2_q & ~p_q;
            r2_q <= r_q;
            // verdict of the window that closed last cycle
            rher_q <= rclose_q && rseen_q == 2'b11 && (rclk_q == 2'b01 || rclk_q == 2'b10);
            if (rclose_q) rbell_q <= rclk_q[1];
            if (!ropen_q) begin
                rclose_q <= 1'b0;
                if (m != 2'b00) begin               // opens
                    rseen_q <= m;
                    rclk_q <= d;
                    rcnt_q <= 16'd1;
                    ropen_q <= window_i > 16'd1;
                    rclose_q <= window_i == 16'd1;
                end
            end else begin
                rseen_q <= rseen_q | m;
                rclk_q <= rclk_q | d;
                rcnt_q <= rcnt_q + 16'd1;
                rclose_q <= rcnt_q + 16'd1 == window_i;
                if (rcnt_q + 16'd1 == window_i) ropen_q <= 1'b0;
            end
        end
    end

    // ---------------------------------------------------------------- properties
    always @(posedge clk_i) if (!init_q) begin
        assert(her == rher_q);                 // heralds exactly when the contract says
        if (her) assert(her_bell == rbell_q);  // ... naming the detector that clicked alone
    end
    // ---------------------------------------------------------------- induction invariants
    // (the prove task: k-induction) the DUT's pipeline and window state equal the reference's,
    // stated on taps (station_core.sby connects them to the DUT's registers): the synchronized
    // inputs, the edge registers, the window's open / close / marker / click records, the
    // registered window length, and the down-counter against the reference's up-counter
    wire [3:0]  tap_in_s, tap_prev_q, tap_rise_q, tap_rise2_q;
    wire        tap_open_q, tap_wl1_q, tap_close_q, tap_w1_q, tap_w2_q;
    wire [15:0] tap_left_q, tap_wm1_q;
    wire [1:0]  tap_seen_q, tap_clk_q;
    wire        tap_sb_q, tap_cx_q;
    always @(*) if (!init_q) begin
        assert(tap_in_s == s2_q && tap_prev_q == p_q && tap_rise_q == r_q
               && tap_rise2_q == r2_q);
        assert(tap_wm1_q == window_i - 16'd1 && tap_w1_q == (window_i == 16'd1)
               && tap_w2_q == (window_i == 16'd2));
        assert(tap_open_q == ropen_q && tap_close_q == rclose_q);
        assert(tap_seen_q == rseen_q && tap_clk_q == rclk_q);
        assert(tap_sb_q == (rseen_q == 2'b11) && tap_cx_q == (rclk_q[0] ^ rclk_q[1]));
        if (ropen_q) assert(rcnt_q >= 16'd1 && rcnt_q < window_i
                            && tap_left_q + rcnt_q == window_i
                            && tap_wl1_q == (rcnt_q + 16'd1 == window_i));
        assert(her_bell == rbell_q);
    end

    // not vacuous: a herald on detector 1 after a window with a one-end attempt before it
    reg one_end_q;
    always @(posedge clk_i)
        if (rst_i) one_end_q <= 1'b0;
        else if (rclose_q && (rseen_q == 2'b01 || rseen_q == 2'b10)) one_end_q <= 1'b1;
    always @(posedge clk_i) if (!init_q) cover(her && her_bell && one_end_q);
endmodule
`default_nettype wire

// Formal harness for the v2 herald logic (fpga/rtl/herald.v; ESP paper Sec. II-B, single-click
// scheme), ports only: the scheduler's verdict inputs clicked_o / single_o / tw_o say exactly
// what happened in the last detection window, so a HERALD (single_o at the verdict) comes only
// for exactly one detector clicking inside an open window.
//
// Reference, from the pins: a click of detector d is seen in cycle c when det_i[d] rose at the
// pin two cycles earlier (det_i[d] high in c - 2, low in c - 3: the 2-FF synchronizer), and it
// counts when the window is open in that cycle (in_win_i) and HERALD_EN is set a cycle later
// (en_i is sampled where the record is updated; it is a quasi-static register bit). fire_i in
// cycle c starts a new window: the record of the previous one is dropped, a click seen in c
// counts for the new one. Asserted (the record two cycles after the cycle it describes):
//  - clicked_o = the detectors with a counted click since the last fire_i (none before any);
//  - single_o = exactly one of them (the verdict: HERALD iff single_o, docs/fpga README);
//  - tw_o = ts_i of the cycle the window's first counted click was seen (three cycles later).
// det_i, en_i, fire_i, in_win_i and ts_i are unconstrained (any window pattern, clicks in any
// cycle, both detectors in the same cycle). k-induction (unbounded; depth in herald.sby).
`default_nettype none
module herald_props (
    input wire        clk_i,
    input wire        rst_i,
    input wire [1:0]  det_i,
    input wire        en_i,
    input wire [63:0] ts_i,
    input wire        fire_i,
    input wire        in_win_i
);
    wire [1:0]  clicked, rise;
    wire        single;
    wire [63:0] tw, ts_d;
    herald dut (
        .clk_i(clk_i), .rst_i(rst_i), .det_i(det_i), .en_i(en_i), .ts_i(ts_i), .fire_i(fire_i),
        .in_win_i(in_win_i), .clicked_o(clicked), .single_o(single), .tw_o(tw), .rise_o(rise),
        .ts_d_o(ts_d)
    );

    reg init_q = 1'b1;
    always @(posedge clk_i) init_q <= 1'b0;
    always @(*) assume(rst_i == init_q);

    // pin history (reset clears the synchronizer: 0 before reset ends)
    reg [1:0] p1_q, p2_q, p3_q;          // det_i one, two, three cycles ago
    always @(posedge clk_i) begin
        p1_q <= rst_i ? 2'b00 : det_i;
        p2_q <= rst_i ? 2'b00 : p1_q;
        p3_q <= rst_i ? 2'b00 : p2_q;
    end
    wire [1:0] seen = p2_q & ~p3_q;      // click edges seen this cycle

    // the record: r_q = state after the cycle before; the click of cycle c needs en_i of c + 1,
    // so cycle c's candidate (seen & window, fire) is held a cycle and resolved with en_i then
    reg [1:0]  c_q;                      // last cycle's candidate clicks
    reg        f_q;                      // last cycle started a window
    reg [63:0] t_q;                      // last cycle's ts_i
    reg [1:0]  r_q;                      // record up to (and including) the cycle before last
    reg [63:0] tw_q;                     // first counted click's ts_i
    reg        v_q;                      // the reference is valid (two cycles after reset)
    wire [1:0] base = f_q ? 2'b00 : r_q;
    wire [1:0] add  = c_q & {2{en_i}};
    wire [1:0] r_n  = base | add;
    always @(posedge clk_i) begin
        c_q <= seen & {2{in_win_i}};
        f_q <= fire_i;
        t_q <= ts_i;
        if (rst_i) begin
            r_q <= 2'b00;
            c_q <= 2'b00;
            f_q <= 1'b0;
            tw_q <= 64'd0;
            v_q <= 1'b0;
        end else begin
            r_q <= r_n;
            if (add != 2'b00 && base == 2'b00) tw_q <= t_q;
            v_q <= 1'b1;
        end
    end

    always @(*) if (!init_q && v_q) begin
        assert(clicked == r_q);
        assert(single == (r_q == 2'b01 || r_q == 2'b10));
    end
    // tw_o: the DUT captures a cycle after clicked_o changes (tw_o follows clicked_o by one)
    always @(posedge clk_i) if (!init_q && !rst_i && v_q && !$past(rst_i) && $past(v_q))
        assert(tw == $past(tw_q));

    // not vacuous: a herald verdict after a window with a click of detector 1 alone
    always @(*) cover(!init_q && v_q && single && clicked == 2'b10);
endmodule
`default_nettype wire

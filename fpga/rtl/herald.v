// Herald logic (single-click scheme, ESP paper Sec. II-B): two detector click inputs, each
// synchronized (2 FF) and rising-edge detected. While the scheduler holds the detection window
// open (in_win_i; fire_i marks its first cycle and clears the previous attempt's record), the first
// click of each detector is recorded (clicked_o), and the timestamp of the window's first click
// (tw_o: the cycle its synchronized edge is seen, i.e. 2 cycles after the pin). With exactly one
// detector, the only one a HERALD reports, that is its first click. clicked_o / tw_o hold the
// record for the scheduler's verdict two cycles after the window closes: exactly one detector =
// success, none or both = failure.
// en_i = CONTROL.HERALD_EN; clicks are ignored while it is 0.
// For timing, edge, window, fire and timestamp are registered once before the record is updated
// (no combinational path from the scheduler into the 130 capture flip-flops); ts_d_o is that
// delayed timestamp (ts_i - 1), which the scheduler uses to stamp DONE at the window's end.
// tw_o follows clicked_o one cycle later (registered capture enable: timing); the scheduler
// reads it for the HERALD payload a cycle after its verdict (one timestamp, not a choice of two
// by the detector: that select had fanned out to 64 payload bits). single_o (exactly one
// detector) is registered beside clicked_o, so the verdict is one flip-flop.
`default_nettype none
module herald (
    input  wire        clk_i,
    input  wire        rst_i,
    input  wire [1:0]  det_i,
    input  wire        en_i,
    input  wire [63:0] ts_i,
    input  wire        fire_i,
    input  wire        in_win_i,
    output reg  [1:0]  clicked_o,
    output reg         single_o,    // clicked_o is 01 or 10 (registered with it: timing)
    output reg  [63:0] tw_o,        // timestamp of the window's first click (either detector)
    output wire [1:0]  rise_o,
    output reg  [63:0] ts_d_o
);
    wire [1:0] det_s;
    reg  [1:0] det_prev_q;
    sync2 u_s0 (.clk_i(clk_i), .rst_i(rst_i), .d_i(det_i[0]), .q_o(det_s[0]));
    sync2 u_s1 (.clk_i(clk_i), .rst_i(rst_i), .d_i(det_i[1]), .q_o(det_s[1]));

    assign rise_o = det_s & ~det_prev_q;
    reg  [1:0] rise_d_q;
    reg        win_d_q, fire_d_q;
    reg        cap_q;               // record tw_o (first click of the window)
    reg [63:0] ts_dd_q;             // ts_d_o delayed (the capture cycle's ts_d_o)
    wire [1:0] hit  = rise_d_q & {2{win_d_q & en_i}};
    wire [1:0] prev = fire_d_q ? 2'b00 : clicked_o;

    always @(posedge clk_i) begin
        if (rst_i) begin
            det_prev_q <= 2'b00;
            rise_d_q   <= 2'b00;
            win_d_q    <= 1'b0;
            fire_d_q   <= 1'b0;
            ts_d_o     <= 64'd0;
            clicked_o  <= 2'b00;
            single_o   <= 1'b0;
            cap_q      <= 1'b0;
            ts_dd_q    <= 64'd0;
            tw_o <= 64'd0;
        end else begin
            det_prev_q <= det_s;
            rise_d_q   <= rise_o;
            win_d_q    <= in_win_i;
            fire_d_q   <= fire_i;
            ts_d_o     <= ts_i;
            clicked_o  <= prev | hit;
            single_o   <= (prev[0] | hit[0]) ^ (prev[1] | hit[1]);
            // the timestamps follow a cycle later, from flip-flop enables (timing: 64 enables
            // each; only HERALD payloads read them, a cycle after the verdict)
            cap_q      <= (hit != 2'b00) && (prev == 2'b00);
            ts_dd_q    <= ts_d_o;
            if (cap_q) tw_o <= ts_dd_q;
        end
    end
endmodule
`default_nettype wire

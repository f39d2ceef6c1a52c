// Timing wrapper (not part of any top): pair_sched alone with the ECP5 node's parameters (AW 2,
// LUTRAM 1, LATE_JOIN 1), every input from a shift register fed by one pin (so inputs come from
// flip-flops, as in top) and every output registered and folded into one pin by a pipelined XOR
// tree (so nothing is optimised away and every path of a report is the module's own). For
// nextpnr runs of the module alone (fpga/bench/mod_pnr.sh, fpga/README.md "ECP5 node Fmax,
// ninth session").
`default_nettype none
module psched_wrap (
    input  wire clk_i,
    input  wire si_i,
    output reg  so_o
);
    localparam NI = 1 + 64 + 64 + 1 + 64 + 32 + 32 + 8 + 8 + 1 + 32 + 1 + 1;
    reg [NI-1:0] sh_q;
    always @(posedge clk_i) sh_q <= {sh_q[NI-2:0], si_i};
    wire        rst = sh_q[0];
    wire [63:0] ts4 = sh_q[64:1];
    wire [63:0] ts = sh_q[128:65];
    wire        push = sh_q[129];
    wire [63:0] t_start = sh_q[193:130];
    wire [31:0] count = sh_q[225:194];
    wire [31:0] period = sh_q[257:226];
    wire [7:0]  pairs = sh_q[265:258];
    wire [7:0]  port = sh_q[273:266];
    wire        abort = sh_q[274];
    wire [31:0] hwait = sh_q[306:275];
    wire        lj = sh_q[307];
    wire        pair = sh_q[308];

    wire         full, acc, fire, running, cnt_late, ev_valid;
    wire [63:0]  t_start_o;
    wire [31:0]  period_o, nfired, k0;
    wire [7:0]   port_o, qubit, ev_op;
    wire [127:0] ev_payload;
    pair_sched #(.AW(2), .LUTRAM(1), .LATE_JOIN(1)) u_ps (
        .clk_i(clk_i), .rst_i(rst), .ts4_i(ts4), .ts_i(ts), .push_i(push), .t_start_i(t_start),
        .count_i(count), .period_i(period), .pairs_i(pairs), .port_i(port), .full_o(full),
        .abort_i(abort), .herald_wait_i(hwait), .late_join_i(lj), .pair_i(pair), .acc_o(acc),
        .t_start_o(t_start_o), .period_o(period_o), .port_o(port_o), .nfired_o(nfired),
        .qubit_o(qubit), .k0_o(k0), .fire_o(fire), .running_o(running), .cnt_late_o(cnt_late),
        .ev_valid_o(ev_valid), .ev_op_o(ev_op), .ev_payload_o(ev_payload)
    );
    localparam NO = 320;            // 314 output bits, padded
    reg [NO-1:0] o_q;
    reg [79:0] x_q;                 // a tree of 4-input XORs, one LUT a stage: 320 -> 80 -> 20 -> 5
    reg [19:0] y_q;
    reg [4:0]  z_q;
    always @(posedge clk_i) begin
        o_q <= {6'd0, full, acc, fire, running, cnt_late, ev_valid, t_start_o, period_o, nfired,
                k0, port_o, qubit, ev_op, ev_payload};
        so_o <= ^z_q;
    end
    genvar j;
    generate for (j = 0; j < 80; j = j + 1) begin : g_x
        always @(posedge clk_i) x_q[j] <= ^o_q[4*j +: 4];
    end
    for (j = 0; j < 20; j = j + 1) begin : g_y
        always @(posedge clk_i) y_q[j] <= ^x_q[4*j +: 4];
    end
    for (j = 0; j < 5; j = j + 1) begin : g_z
        always @(posedge clk_i) z_q[j] <= ^y_q[4*j +: 4];
    end endgenerate
endmodule
`default_nettype wire

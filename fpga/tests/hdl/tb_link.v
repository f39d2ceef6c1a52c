// Testbench (not synthesized): one heralding station and two node devices on one link, wired
// through fibre-delay models (shift registers of D cycles node -> station, DH cycles station ->
// node). Node A uses herald port PA (default 1), node B port 0. Detector clicks and the shared sync
// line come from the testbench; hl_flip_i[0] / [1] (when driven 1) inverts the herald line into
// node A / B after the fibre (a link error corrupting a frame).
`default_nettype none
module tb_link #(
    parameter        D        = 40,          // fibre delay, cycles, each half of the link
    parameter        DH       = D,           // ... of the herald lines (station -> node), >= 2
    parameter        PA       = 1,           // node A's port (0 or 1)
    parameter        CPB      = 4,
    parameter        HL       = 4,
    parameter [63:0] TS_INIT  = 64'd1000
) (
    input  wire       clk_i,
    input  wire       rst_i,
    input  wire       uart_rx_a,
    output wire       uart_tx_a,
    input  wire       uart_rx_b,
    output wire       uart_tx_b,
    input  wire       uart_rx_s,
    output wire       uart_tx_s,
    input  wire [1:0] det_i,
    input  wire       sync_i,
    input  wire [1:0] hl_flip_i
);
    wire [1:0] trig_a, trig_b, hl_s;
    wire       win_a, win_b;
    reg  [D-1:0] f_ma = {D{1'b0}}, f_mb = {D{1'b0}};   // markers, node -> station
    reg  [DH-1:0] f_ha = {DH{1'b1}}, f_hb = {DH{1'b1}}; // herald lines, station -> node
    wire       hl_a = f_ha[DH-1] ^ (hl_flip_i[0] === 1'b1);
    wire       hl_b = f_hb[DH-1] ^ (hl_flip_i[1] === 1'b1);
    // (the lines carry defined levels only: the devices' output registers are undefined in
    // simulation before their first clock edge, a fibre carries light or none)
    always @(posedge clk_i) begin
        f_ma <= {f_ma[D-2:0], trig_a[PA] === 1'b1};
        f_mb <= {f_mb[D-2:0], trig_b[0] === 1'b1};
        f_ha <= {f_ha[DH-2:0], hl_s[0] !== 1'b0};
        f_hb <= {f_hb[DH-2:0], hl_s[1] !== 1'b0};
    end
    top #(.CLKS_PER_BIT(CPB), .HDR_BIT_CYCLES(4), .HL_BIT_CYCLES(HL), .TS_INIT(TS_INIT)) u_a (
        .clk_i(clk_i), .rst_i(rst_i), .uart_rx_i(uart_rx_a), .uart_tx_o(uart_tx_a), .hdr_i(1'b1),
        .det_i(2'b00), .hl_i(PA == 1 ? {hl_a, 1'b1} : {1'b1, hl_a}), .sync_i(sync_i), .trig_o(trig_a), .win_o(win_a)
    );
    top #(.CLKS_PER_BIT(CPB), .HDR_BIT_CYCLES(4), .HL_BIT_CYCLES(HL), .TS_INIT(TS_INIT + 64'd777))
    u_b (
        .clk_i(clk_i), .rst_i(rst_i), .uart_rx_i(uart_rx_b), .uart_tx_o(uart_tx_b), .hdr_i(1'b1),
        .det_i(2'b00), .hl_i({1'b1, hl_b}), .sync_i(sync_i), .trig_o(trig_b), .win_o(win_b)
    );
    station_top #(.CLKS_PER_BIT(CPB), .HL_BIT_CYCLES(HL), .TS_INIT(TS_INIT + 64'd123456)) u_s (
        .clk_i(clk_i), .rst_i(rst_i), .uart_rx_i(uart_rx_s), .uart_tx_o(uart_tx_s),
        .mark_i({f_mb[D-1], f_ma[D-1]}), .det_i(det_i), .sync_i(sync_i), .hl_o(hl_s)
    );
endmodule
`default_nettype wire

// Heralding station top (docs/physical-layer.md section 2): its own device at the midpoint of a
// link. station_core decides each attempt from both ends' markers (mark_i) and the two detectors
// (det_i); a herald goes out as a frame on both herald lines (hl_o[0] to end A, hl_o[1] to end B,
// herald_tx each) and as a HERALD event on the host link (monitoring). The host link is the
// node's: UART 8N1 -> COBS/CRC-16 frames -> command decoder (NODE = 0: REG_READ, REG_WRITE,
// TIME, TIME_SET; every node command is an unknown opcode) / station_regs; responses and events
// -> frames -> UART. One timestamp counter (TIME_SET, sync_i) as every device of the network.
//
// All inputs pass a 2-FF synchronizer; all outputs are registered. CNT_HL_DROP counts heralds
// dropped by a full line queue (the two lines get the same heralds at the same cycles, so they
// drop together; counted once).
`default_nettype none
`include "wire_spec.vh"
module station_top #(
    parameter        CLKS_PER_BIT  = 33,                      // 100 MHz / 3 Mbaud
    parameter        HL_BIT_CYCLES = `HW_HERALD_BIT_CYCLES,   // herald line bit period (>= 4)
    parameter        EVT_AW        = 4,                       // 16 queued events
    parameter [63:0] TS_INIT       = 64'd0,
    parameter        FIFO_LUTRAM   = 0
) (
    input  wire       clk_i,
    input  wire       rst_i,
    input  wire       uart_rx_i,
    output wire       uart_tx_o,
    input  wire [1:0] mark_i,
    input  wire [1:0] det_i,
    input  wire       sync_i,
    output wire [1:0] hl_o
);
    // ---------------------------------------------------------------- reset (as top)
    reg [3:0] por_q = 4'd0;
    wire rst_s;
    sync2 #(.RESET_VAL(1'b1)) u_rst (.clk_i(clk_i), .rst_i(1'b0), .d_i(rst_i), .q_o(rst_s));
    always @(posedge clk_i) if (por_q != 4'hF) por_q <= por_q + 4'd1;
    reg por_done_q = 1'b0;
    always @(posedge clk_i) por_done_q <= (por_q == 4'hF);
    localparam NRST = 9;
    localparam R_CORE = 0, R_HL = 1, R_URX = 2, R_FRX = 3, R_DEC = 4, R_REGS = 5, R_EVT = 6,
               R_TXA = 7, R_TX = 8;
    wire [NRST-1:0] rst_q;
    wire            rst_d = rst_s || !por_done_q;
    genvar gr;
    generate
        for (gr = 0; gr < NRST; gr = gr + 1) begin : g_rst
            rst_copy u_rst_copy (.clk_i(clk_i), .d_i(rst_d), .q_o(rst_q[gr]));
        end
    endgenerate

    // ---------------------------------------------------------------- nets
    wire [63:0]  ts, tset_val, t_start;
    wire         tset, tset_mode, tset_load;
    wire [31:0]  delay, err_crc_p1;
    wire [15:0]  window;
    wire         her_bell;
    wire [1:0]   her_c;              // her for line 0 / 1 (copies)
    wire [63:0]  her_t;
    wire         c_herald, c_one, c_both;
    wire [1:0]   c_dark, c_marks, drop, hl_busy;
    wire [7:0]   rx_byte;
    wire         rx_valid, rx_err;
    wire         f_valid, f_ready;
    wire [7:0]   f_seq, f_op;
    wire [5:0]   f_plen;
    wire [255:0] f_payload;
    wire         f_err;
    wire [7:0]   f_err_code;
    wire [7:0]   reg_addr, reg_waddr;
    wire         reg_we, reg_rd_ok, reg_wr_ok;
    wire [31:0]  reg_wdata, reg_rdata;
    wire         inc_crc;
    wire [1:0]   ev_valid;           // event sources: 0 station_core (HERALD), 1 cmd_decoder
    wire [15:0]  ev_op;
    wire [255:0] ev_payload;
    wire         evq_empty, evq_pending, evq_rd;
    wire [2:0]   evq_lost;
    wire [143:0] evq_dout;
    wire         resp_valid, resp_ready;
    wire [7:0]   resp_seq, resp_op;
    wire [5:0]   resp_len;
    wire [63:0]  resp_pl;
    wire         tx_valid, tx_ready;
    wire [7:0]   tx_seq, tx_op;
    wire [5:0]   tx_len;
    wire [127:0] tx_pl;
    wire [7:0]   tx_byte;
    wire         tx_byte_valid, tx_byte_ready;

    // ---------------------------------------------------------------- time, station core, lines
    /* verilator lint_off PINCONNECTEMPTY */
    time_set u_tset (
        .clk_i(clk_i), .rst_i(rst_q[R_CORE]), .set_i(tset), .val_i(t_start), .mode_i(tset_mode),
        .sync_i(sync_i), .load_o(tset_load), .val_o(tset_val), .val4_o(), .armed_o()
    );
    /* verilator lint_on PINCONNECTEMPTY */
    ts_counter #(.INIT(TS_INIT), .FAST(FIFO_LUTRAM != 0)) u_ts (.clk_i(clk_i), .rst_i(rst_q[R_CORE]), .load_i(tset_load),
                                       .val_i(tset_val), .ts_o(ts));
    /* verilator lint_off PINCONNECTEMPTY */
    station_core #(.OP_HERALD(`HW_OP_HERALD), .HC(1)) u_core (
        .clk_i(clk_i), .rst_i(rst_q[R_CORE]), .mark_i(mark_i), .det_i(det_i), .ts_i(ts),
        .delay_i(delay), .window_i(window), .her_o(), .her_c_o(her_c), .her_t_o(her_t),
        .her_bell_o(her_bell),
        .cnt_herald_o(c_herald), .cnt_one_end_o(c_one), .cnt_both_o(c_both),
        .cnt_dark_o(c_dark), .cnt_marks_o(c_marks),
        .ev_valid_o(ev_valid[0]), .ev_op_o(ev_op[7:0]), .ev_payload_o(ev_payload[127:0])
    );
    /* verilator lint_on PINCONNECTEMPTY */
    genvar gl;
    generate
        for (gl = 0; gl < 2; gl = gl + 1) begin : g_hl
            herald_tx #(.BIT_CYCLES(HL_BIT_CYCLES), .MARKER(`HW_HERALD_MARKER),
                        .LUTRAM(FIFO_LUTRAM)) u_hl (
                .clk_i(clk_i), .rst_i(rst_q[R_HL]), .push_i(her_c[gl]), .t_i(her_t), .bell_i(her_bell),
                .drop_o(drop[gl]), .busy_o(hl_busy[gl]), .line_o(hl_o[gl])
            );
        end
    endgenerate

    // ---------------------------------------------------------------- host link: receive
    uart_rx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_urx (
        .clk_i(clk_i), .rst_i(rst_q[R_URX]), .rx_i(uart_rx_i), .data_o(rx_byte), .valid_o(rx_valid),
        .err_o(rx_err)
    );
    frame_rx #(.WPOS(FIFO_LUTRAM != 0)) u_frx (
        .clk_i(clk_i), .rst_i(rst_q[R_FRX]), .byte_i(rx_byte), .byte_valid_i(rx_valid),
        .byte_err_i(rx_err), .frame_valid_o(f_valid), .frame_ready_i(f_ready), .seq_o(f_seq),
        .op_o(f_op), .plen_o(f_plen), .payload_o(f_payload), .err_valid_o(f_err),
        .err_code_o(f_err_code)
    );
    /* verilator lint_off PINCONNECTEMPTY */
    cmd_decoder #(.NODE(0)) u_dec (
        .clk_i(clk_i), .rst_i(rst_q[R_DEC]), .ts_i(ts),
        .frame_valid_i(f_valid), .frame_ready_o(f_ready), .seq_i(f_seq), .op_i(f_op),
        .plen_i(f_plen), .payload_i(f_payload), .rx_err_i(f_err), .rx_err_code_i(f_err_code),
        .reg_addr_o(reg_addr), .reg_waddr_o(reg_waddr), .reg_we_o(reg_we),
        .reg_wdata_o(reg_wdata), .reg_rdata_i(reg_rdata),
        .reg_rd_ok_i(reg_rd_ok), .reg_wr_ok_i(reg_wr_ok), .err_crc_p1_i(err_crc_p1),
        .inc_crc_o(inc_crc), .inc_overflow_o(),
        .push_o(), .t_start_o(t_start), .count_o(), .period_o(), .window_o(),
        .sched_full_i(1'b0), .abort_o(),
        .ppush_o(), .pairs_o(), .port_o(), .psched_full_i(1'b0),
        .tset_o(tset), .tset_mode_o(tset_mode),
        .chk_base_o(), .chk_mask_o(), .free_ok_i(1'b0), .free_o(),
        .pin_go_o(), .pin_set_o(), .pin_mask_o(), .pin_done_i(1'b0), .pin_err_i(2'd0),
        .resp_valid_o(resp_valid), .resp_ord_o(), .resp_ready_i(resp_ready), .resp_seq_o(resp_seq),
        .resp_op_o(resp_op), .resp_len_o(resp_len), .resp_pl_o(resp_pl),
        .ev_valid_o(ev_valid[1]), .ev_op_o(ev_op[15:8]), .ev_payload_o(ev_payload[255:128])
    );
    /* verilator lint_on PINCONNECTEMPTY */
    station_regs u_regs (
        .clk_i(clk_i), .rst_i(rst_q[R_REGS]), .addr_i(reg_addr), .waddr_i(reg_waddr),
        .we_i(reg_we), .wdata_i(reg_wdata), .rdata_o(reg_rdata), .rd_ok_o(reg_rd_ok),
        .wr_ok_o(reg_wr_ok), .busy_i(|hl_busy), .evt_pending_i(evq_pending),
        .inc_crc_i(inc_crc), .inc_herald_i(c_herald), .inc_both_i(c_both),
        .inc_one_end_i(c_one), .add_dark_i(c_dark), .add_marks_i(c_marks),
        .inc_drop_i(|drop), .add_evt_lost_i(evq_lost), .err_crc_p1_o(err_crc_p1), .delay_o(delay),
        .window_o(window)
    );

    // ---------------------------------------------------------------- host link: transmit
    // (SELTREE: the ECP5 builds, FIFO_LUTRAM; the iCE40 keeps the smaller hold[pick] mux)
    // Two sources, station_core before cmd_decoder (the lower number goes first). NS = 2, not 3
    // with an idle middle source as before: the same events in the same cycles (the idle source
    // never held one), and the held event's choice is the mux tree's first level alone (the
    // second level and its LUT into din_q were station_top's ECP5 HeAP path at seed 1, 5.1 ns)
    // LPW = 8: the lost count's low half (its adder's chain into lp_c_q was the path at seed 3,
    // 5.0 ns; the count's value is the same for any LPW >= 3)
    event_arb #(.AW(EVT_AW), .LUTRAM(FIFO_LUTRAM), .NS(2), .SELTREE(FIFO_LUTRAM), .LPW(8)) u_evt (
        .clk_i(clk_i), .rst_i(rst_q[R_EVT]), .valid_i(ev_valid), .op_i(ev_op),
        .payload_i(ev_payload), .tok_i(1'b0), .lost_i(1'b0), .mrk_i(1'b0), .rd_en_i(evq_rd), .dout_o(evq_dout), .empty_o(evq_empty),
        .pending_o(evq_pending), .lost_o(evq_lost)
    );
    tx_arb u_txa (
        .clk_i(clk_i), .rst_i(rst_q[R_TXA]),
        .resp_valid_i(resp_valid), .resp_ord_i(1'b0), .resp_ready_o(resp_ready), .resp_seq_i(resp_seq),
        .resp_op_i(resp_op), .resp_len_i(resp_len), .resp_pl_i(resp_pl),
        .ev_empty_i(evq_empty), .ev_rd_o(evq_rd), .ev_dout_i(evq_dout),
        .tx_valid_o(tx_valid), .tx_ready_i(tx_ready), .tx_seq_o(tx_seq), .tx_op_o(tx_op),
        .tx_len_o(tx_len), .tx_pl_o(tx_pl)
    );
    frame_tx #(.PMAX(16)) u_ftx (
        .clk_i(clk_i), .rst_i(rst_q[R_TX]), .valid_i(tx_valid), .ready_o(tx_ready), .seq_i(tx_seq),
        .op_i(tx_op), .len_i(tx_len), .payload_i(tx_pl), .byte_o(tx_byte),
        .byte_valid_o(tx_byte_valid), .byte_ready_i(tx_byte_ready)
    );
    uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT), .FAST(FIFO_LUTRAM != 0)) u_utx (
        .clk_i(clk_i), .rst_i(rst_q[R_TX]), .data_i(tx_byte), .valid_i(tx_byte_valid),
        .ready_o(tx_byte_ready), .tx_o(uart_tx_o)
    );
endmodule
`default_nettype wire

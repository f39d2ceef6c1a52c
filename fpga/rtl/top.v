// hwctl FPGA top: 64-bit timestamp, attempt scheduler + herald, midpoint header decoder, and the
// host link (UART 8N1 -> COBS/CRC-16 frames -> command decoder / register file; responses and
// events -> frames -> UART). Wire format: hwctl/wire/spec.toml (wire_spec.vh is generated).
//
// Wire v3 (docs/physical-layer.md section 3): herald lines from the stations (hl_i, one per
// port: herald_rx), SCHEDULE_PAIRS (pair_sched, fires trig_o[port]; pair_match matches heralds to
// fired attempts), TIME_SET (time_set; sync_i for mode 1).
//
// Wire v4 (docs/header-path.md): block mode (CONTROL.HDR_BLOCK): header arrivals go to the slot
// ring (slot_ring, RING_SLOTS slots) and the block encoder (hdr_block), whose HDR_BLOCK frames
// blk_tx streams from its buffer; PIN_MASK / UNPIN_MASK (cmd_decoder -> slot_ring check ->
// hdr_block closes -> slot_ring applies), whose response is ordered among the events by a marker
// in the event FIFO (event_arb mrk_i = pin_done, tx_arb resp_ord_i).
//
// Pins: uart_rx_i / uart_tx_o (host link), hdr_i (midpoint header line), det_i[1:0] (detector
// clicks), hl_i[N_PORTS-1:0] (herald lines), sync_i (time sync pulse), trig_o[N_PORTS-1:0]
// (one-cycle excitation trigger per attempt; the v2 SCHEDULE fires trig_o[0]), win_o (v2
// detection window open).
// All inputs pass a 2-FF synchronizer; all outputs are registered, so trig_o/win_o are one cycle
// after the internal fire/window (the attempt's timestamp is the internal cycle).
// Reset: rst_i (synchronized) or the power-on counter.
//
// Build profiles (fpga/README.md, "Build profiles"; hwctl/wire/features.py): V2, PAIRS, BLOCKS and
// HEADERS choose which modes the bitstream carries (the iCE40 HX8K cannot hold pairs and block
// mode together). A mode left out is absent from the netlist, its commands are unknown opcodes
// (NAK(BAD_OPCODE)), and VERSION bits 31:16 (spec [feature_bits]) tell the host what is there.
`default_nettype none
`include "wire_spec.vh"
module top #(
    parameter        CLKS_PER_BIT   = 33,                      // 100 MHz / 3 Mbaud
    parameter        HDR_BIT_CYCLES = `HW_HEADER_BIT_CYCLES,
    parameter        N_SLOTS        = 8,                       // <= 240 (see header_decoder)
    parameter        SCHED_AW       = 2,                       // 4 queued schedules
    parameter        EVT_AW         = 4,                       // 16 queued events
    parameter [63:0] TS_INIT        = 64'd0,
    parameter        FIFO_LUTRAM    = 0,                       // 1: FIFOs, slot ring, block buffers in LUT RAM,
                                                               // and the modules' timing variants (FAST,
                                                               // SELTREE, INSTAGE: same cycles) (ECP5)
    parameter        N_PORTS        = 2,                       // herald inputs / triggers (<= 8)
    parameter        QUBITS         = 6,                       // memory qubits (SCHEDULE_PAIRS)
    parameter        HL_BIT_CYCLES  = `HW_HERALD_BIT_CYCLES,   // herald line bit period (>= 4)
    parameter        PSCHED_AW      = 1,                       // 2 queued SCHEDULE_PAIRS
    parameter        V2             = 1,                       // v2 SCHEDULE + det_i herald
    parameter        PAIRS          = 1,                       // v3 pairs: hl_i, SCHEDULE_PAIRS
    parameter        BLOCKS         = 1,                       // v4 block mode (slot ring, blocks)
    parameter        HEADERS        = 1,                       // per-photon HEADER + FREE pool
    parameter        RING_SLOTS     = 8192,                    // block-mode slot ring (N_SLOTS reg)
    parameter        NBLK           = 8,                       // block buffers (hdr_block)
    parameter        LATE_JOIN      = 1                        // 0: no CONTROL.LATE_JOIN (area)
) (
    input  wire       clk_i,
    input  wire       rst_i,
    input  wire       uart_rx_i,
    output wire       uart_tx_o,
    input  wire       hdr_i,
    input  wire [1:0] det_i,
    input  wire [N_PORTS-1:0] hl_i,
    input  wire       sync_i,
    output reg  [N_PORTS-1:0] trig_o,
    output reg        win_o
);
    // ---------------------------------------------------------------- reset
    reg [3:0] por_q = 4'd0;
    wire rst_s;
    sync2 #(.RESET_VAL(1'b1)) u_rst (.clk_i(clk_i), .rst_i(1'b0), .d_i(rst_i), .q_o(rst_s));
    always @(posedge clk_i) if (por_q != 4'hF) por_q <= por_q + 4'd1;
    reg por_done_q = 1'b0;          // por_q == 15, registered (timing)
    always @(posedge clk_i) por_done_q <= (por_q == 4'hF);
    // One reset flip-flop per block (rst_copy: timing, a single one fanned out to ~4000
    // flip-flops across the die was a 2+ ns route). All copies switch together.
    // (R_TG: test_gen's own copy; it shared the register file's, whose flip-flop and the
    // inverter after it (an initial value of 1 is an inverted flip-flop on the iCE40) sat by the
    // register file, 2.6 ns of routing away from test_gen's loop enables: the HX8K's path)
    localparam NRST = 15;
    localparam R_CORE = 0, R_HDR = 1, R_URX = 2, R_FRX = 3, R_DEC = 4, R_REGS = 5, R_EVT = 6,
               R_TXA = 7, R_FTX = 8, R_UTX = 9, R_PS = 10, R_PM = 11, R_HL = 12, R_BLK = 13,
               R_TG = 14;
    wire [NRST-1:0] rst_q;
    wire            rst_d = rst_s || !por_done_q;
    genvar gr;
    generate
        for (gr = 0; gr < NRST; gr = gr + 1) begin : g_rst
            rst_copy u_rst_copy (.clk_i(clk_i), .d_i(rst_d), .q_o(rst_q[gr]));
        end
    endgenerate

    // ---------------------------------------------------------------- nets
    wire [63:0]  ts;
    wire         herald_en, header_en;
    wire [31:0]  err_crc_p1, err_bad_header;
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
    wire         inc_crc, inc_overflow;
    wire         push, sched_full, abort;
    wire [63:0]  t_start;
    wire [31:0]  count, period;
    wire [15:0]  window;
    wire         free, free_ok;
    wire [15:0]  chk_base;
    wire [8*(`HW_LEN_FREE_MASK-2)-1:0] chk_mask;
    wire [7:0]   slots_free;
    wire         fire, in_win, running, cnt_late, cnt_both, cnt_herald;
    wire         hdr_good, hdr_bad;
    localparam NS = 5;           // event sources
    wire [NS-1:0]     ev_valid;
    wire [8*NS-1:0]   ev_op;
    wire [128*NS-1:0] ev_payload;
    // wire v3
    wire [63:0]  ts4, tset_val, tset_val4;
    wire         tset, tset_mode, tset_load;
    wire         ppush, psched_full, pfire, prunning, pcnt_late, pacc, pair, hbad;
    wire [7:0]   pairs, pport, pport_run, pqubit;
    wire [63:0]  pt_start;
    wire [31:0]  pperiod, pnfired, pk0, herald_wait, err_herald;
    wire         late_join;
    wire [N_PORTS-1:0] hl_ok, hl_bad, hl_bell;
    wire [64*N_PORTS-1:0] hl_t;
    wire         evq_empty, evq_pending, evq_rd;
    wire [2:0]   evq_lost;
    wire [143:0] evq_dout;
    wire         resp_valid, resp_ready, resp_ord;
    wire [7:0]   resp_seq, resp_op;
    wire [5:0]   resp_len;
    wire [63:0]  resp_pl;
    wire         tx_valid, tx_ready;
    wire [7:0]   tx_seq, tx_op;
    wire [5:0]   tx_len;
    wire [127:0] tx_pl;
    wire [7:0]   tx_byte;
    wire         tx_byte_valid, tx_byte_ready;
    // wire v4: block mode
    wire         hdr_blk, regs_clear, arr, blk_en, pin_go, pin_set, pin_start, pin_done;
    wire         take, nxt_rdy, nxt_ok, tok, blk_lost, cnt_blk, ns_valid, chk_ok;
    wire [1:0]   pin_err;
    wire [15:0]  nxt_slot;
    wire [16:0]  ring_free, ring_pinned;
    wire [31:0]  arr_seq, blk_flush;
    wire [63:0]  arr_ts;
    wire [31:0]  ns_seq;
    wire [8*(`HW_LEN_PIN_MASK-2)-1:0] pin_mask;
    wire         hdr_ev_valid;
    wire         hdr_blk_reg;                 // CONTROL.HDR_BLOCK as written
    wire [7:0]   hdr_ev_op;
    wire [127:0] hdr_ev_payload;
    wire [6:0]   brd_off;
    wire [7:0]   brd_byte;
    wire         brel;
    wire         ftx_valid, ftx_ready, btx_valid, btx_ready;
    wire [7:0]   ftx_byte, btx_byte;
    wire         ftx_byte_valid, btx_byte_valid;
    // test-pattern generators (wire v4 TEST): the inputs as the device sees them
    wire [23:0]  test;
    wire         test_we;
    wire [1:0]   det_in;
    wire [N_PORTS-1:0] hl_in;
    wire         hdr_in;

    localparam [15:0] FEATURES = (16'(V2 != 0) << `HW_FEAT_V2) | (16'(PAIRS != 0) << `HW_FEAT_PAIRS)
                               | (16'(BLOCKS != 0) << `HW_FEAT_BLOCKS)
                               | (16'(HEADERS != 0) << `HW_FEAT_HEADERS);
    localparam HDR_IN = (BLOCKS != 0) || (HEADERS != 0);     // the header line is used
    // herald_rx hands its shift register to pair_match (no 64-bit copy per port) when the matcher
    // takes every frame before the next frame's first t byte can arrive: a port waits for at most
    // N_PORTS - 1 other frames of 74 cycles (pair_match: 71 busy, the decision's event cycle, the
    // take), the register holds >= 20 bit periods - 1 (2 ports at 4 cycles a bit: 78 < 79)
    localparam HL_HOLD = ((N_PORTS - 1) * 74 + 4 >= 20 * HL_BIT_CYCLES - 1);

    // ---------------------------------------------------------------- timing core
    attempt_core #(.TS_INIT(TS_INIT), .AW(SCHED_AW), .LUTRAM(FIFO_LUTRAM), .V2(V2)) u_core (
        .clk_i(clk_i), .rst_i(rst_q[R_CORE]), .load_i(tset_load), .val_i(tset_val),
        .val4_i(tset_val4), .ts4_o(ts4), .det_i(det_in), .herald_en_i(herald_en),
        .push_i(push), .t_start_i(t_start), .count_i(count), .period_i(period), .window_i(window),
        .full_o(sched_full), .abort_i(abort), .ts_o(ts), .fire_o(fire), .in_win_o(in_win),
        .running_o(running), .cnt_late_o(cnt_late), .cnt_both_o(cnt_both),
        .cnt_herald_o(cnt_herald), .ev_valid_o(ev_valid[0]), .ev_op_o(ev_op[7:0]),
        .ev_payload_o(ev_payload[127:0])
    );

    // trigger pins: port p fires for the pair scheduler's attempts on p (and port 0 for v2)
    integer tp;
    // (reset: the pins drive other devices; no undefined level while the core comes up)
    always @(posedge clk_i) begin
        for (tp = 0; tp < N_PORTS; tp = tp + 1)
            trig_o[tp] <= !rst_q[R_CORE] && ((pfire && (pport_run == tp[7:0])) || (tp == 0 && fire));
        win_o  <= !rst_q[R_CORE] && in_win;
    end

    /* verilator lint_off PINCONNECTEMPTY */
    time_set u_tset (
        .clk_i(clk_i), .rst_i(rst_q[R_CORE]), .set_i(tset), .val_i(t_start), .mode_i(tset_mode),
        .sync_i(sync_i), .load_o(tset_load), .val_o(tset_val), .val4_o(tset_val4), .armed_o()
    );
    /* verilator lint_on PINCONNECTEMPTY */

    // ---------------------------------------------------------------- pairs (wire v3)
    genvar gp;
    generate if (PAIRS != 0) begin : g_pairs
        for (gp = 0; gp < N_PORTS; gp = gp + 1) begin : g_hl
            herald_rx #(.BIT_CYCLES(HL_BIT_CYCLES), .MARKER(`HW_HERALD_MARKER),
                        .HOLD(HL_HOLD), .FAST(FIFO_LUTRAM)) u_hl (
                .clk_i(clk_i), .rst_i(rst_q[R_HL]), .line_i(hl_in[gp]), .ok_o(hl_ok[gp]),
                .bad_o(hl_bad[gp]), .t_o(hl_t[64*gp +: 64]), .bell_o(hl_bell[gp])
            );
        end
        pair_sched #(.AW(PSCHED_AW), .LUTRAM(FIFO_LUTRAM), .LATE_JOIN(LATE_JOIN)) u_psched (
            .clk_i(clk_i), .rst_i(rst_q[R_PS]), .ts4_i(ts4), .ts_i(ts),
            .push_i(ppush), .t_start_i(t_start), .count_i(count), .period_i(period),
            .pairs_i(pairs), .port_i(pport), .full_o(psched_full), .abort_i(abort),
            .herald_wait_i(herald_wait), .late_join_i(late_join), .pair_i(pair), .acc_o(pacc),
            .t_start_o(pt_start), .period_o(pperiod), .port_o(pport_run), .nfired_o(pnfired),
            .qubit_o(pqubit), .k0_o(pk0),
            .fire_o(pfire), .running_o(prunning), .cnt_late_o(pcnt_late),
            .ev_valid_o(ev_valid[4]), .ev_op_o(ev_op[39:32]), .ev_payload_o(ev_payload[639:512])
        );
        /* verilator lint_off PINCONNECTEMPTY */
        pair_match #(.NP(N_PORTS)) u_pmatch (
            .clk_i(clk_i), .rst_i(rst_q[R_PM]), .ok_i(hl_ok), .bad_i(hl_bad), .t_i(hl_t),
            .bell_i(hl_bell), .acc_i(pacc), .t_start_i(pt_start), .period_i(pperiod),
            .port_i(pport_run), .nfired_i(pnfired), .k0_i(pk0), .qubit_i(pqubit),
            .err_herald_i(err_herald), .pair_o(pair), .bad_o(hbad), .busy_o(),
            .ev_valid_o(ev_valid[3]), .ev_op_o(ev_op[31:24]), .ev_payload_o(ev_payload[511:384])
        );
        /* verilator lint_on PINCONNECTEMPTY */
    end else begin : g_no_pairs
        // no herald lines / SCHEDULE_PAIRS (the command decoder refuses it as unknown)
        wire unused_pairs = &{1'b0, hl_in, ppush, pairs, pport, herald_wait, err_herald, ts4,
                              pacc, pqubit, pt_start, pperiod, pnfired, hl_ok, hl_bad, hl_bell,
                              hl_t, late_join, pk0};
        assign {hl_ok, hl_bad, hl_bell, hl_t} = {(3 + 64) * N_PORTS{1'b0}};
        assign {psched_full, pfire, prunning, pcnt_late, pacc, pair, hbad} = 7'd0;
        assign {pport_run, pqubit, pt_start, pperiod, pnfired} = {8'd0, 8'd0, 64'd0, 32'd0, 32'd0};
        assign pk0 = 32'd0;
        assign {ev_valid[4:3], ev_op[39:24], ev_payload[639:384]} = {2'b0, 16'd0, 256'd0};
    end endgenerate

    // ---------------------------------------------------------------- header line
    // HEADERS = 0: the decoder is always in block mode (no HEADER event or FREE pool in use) and
    // counts nothing while CONTROL.HDR_BLOCK is clear (as with HEADER_EN = 0: headers are received
    // and dropped); neither BLOCKS nor HEADERS: no header decoder at all
    assign hdr_blk = (BLOCKS != 0) && hdr_blk_reg;
    wire hdr_dec_blk = (HEADERS == 0) || hdr_blk;
    wire hdr_dec_en  = header_en && ((HEADERS != 0) || hdr_blk);
    generate if (HDR_IN) begin : g_hdr
        header_decoder #(.BIT_CYCLES(HDR_BIT_CYCLES), .N_SLOTS(N_SLOTS), .FAST(FIFO_LUTRAM)) u_hdr (
            .clk_i(clk_i), .rst_i(rst_q[R_HDR]), .hdr_i(hdr_in), .en_i(hdr_dec_en), .ts_i(ts),
            .bad_cnt_i(err_bad_header), .chk_base_i(chk_base), .chk_mask_i(chk_mask),
            .free_ok_o(free_ok), .free_i(free && (HEADERS != 0)), .free_base_i(chk_base),
            .free_mask_i(chk_mask),
            .slots_free_o(slots_free), .cnt_good_o(hdr_good), .cnt_bad_o(hdr_bad),
            .ev_valid_o(hdr_ev_valid), .ev_op_o(hdr_ev_op), .ev_payload_o(hdr_ev_payload),
            .blk_i(hdr_dec_blk), .arr_o(arr), .arr_seq_o(arr_seq), .arr_ts_o(arr_ts)
        );
    end else begin : g_no_hdr
        wire unused_hdr = &{1'b0, hdr_in, hdr_dec_en, hdr_dec_blk, err_bad_header, free,
                            chk_base, chk_mask};
        assign {free_ok, slots_free, hdr_good, hdr_bad, hdr_ev_valid, hdr_ev_op} = 20'd0;
        assign hdr_ev_payload = 128'd0;
        assign {arr, arr_seq, arr_ts} = 97'd0;
    end endgenerate
    // event source 1: the header decoder (legacy mode) or the block encoder's NO_SLOT (block mode)
    assign ev_valid[1] = hdr_ev_valid || ns_valid;
    assign ev_op[15:8] = hdr_ev_valid ? hdr_ev_op : `HW_OP_ERROR;
    assign ev_payload[255:128] = hdr_ev_valid ? hdr_ev_payload : {`HW_ERR_NO_SLOT, ns_seq, 88'd0};

    // ---------------------------------------------------------------- block mode (wire v4)
    assign blk_en = hdr_blk;     // (the twin's set_enabled: CONTROL.HDR_BLOCK)
    // hdr_block's buffer read latency, blk_tx's the same (3: two register stages behind the
    // LUT RAM read on ECP5, fpga/README.md "ECP5 Fmax, eighth session")
    localparam BLK_RL = 3;
    generate if (BLOCKS != 0) begin : g_blk
        /* verilator lint_off PINCONNECTEMPTY */
        hdr_block #(.NB(NBLK), .LUTRAM(FIFO_LUTRAM), .RL(BLK_RL)) u_blk (
            .clk_i(clk_i), .rst_i(rst_q[R_BLK]), .ts_i(ts), .en_i(blk_en), .flush_i(blk_flush),
            .clr_i(regs_clear), .arr_i(arr), .arr_seq_i(arr_seq), .arr_ts_i(arr_ts),
            .bad_i(hdr_bad && hdr_blk), .close_i(chk_ok),
            .pin_go_o(pin_start), .pin_done_i(pin_done), .nxt_rdy_i(nxt_rdy), .nxt_ok_i(nxt_ok),
            .nxt_slot_i(nxt_slot), .take_o(take), .tok_o(tok), .lost_o(blk_lost),
            .cnt_blk_o(cnt_blk), .ns_valid_o(ns_valid), .ns_seq_o(ns_seq), .drop_o(),
            .rd_off_i(brd_off), .rd_byte_o(brd_byte), .rel_i(brel)
        );
        slot_ring #(.N_SLOTS(RING_SLOTS), .LUTRAM(FIFO_LUTRAM)) u_ring (
            .clk_i(clk_i), .rst_i(rst_q[R_BLK]), .take_i(take), .nxt_rdy_o(nxt_rdy),
            .nxt_ok_o(nxt_ok), .nxt_slot_o(nxt_slot), .load_i(pin_go), .pin_i(pin_start),
            .set_i(pin_set), .base_i(chk_base), .mask_i(pin_mask), .pin_done_o(pin_done),
            .chk_ok_o(chk_ok),
            .pin_err_o(pin_err), .busy_o(), .pinned_o(ring_pinned), .free_o(ring_free)
        );
        /* verilator lint_on PINCONNECTEMPTY */
    end else begin : g_no_blk
        // no block mode (PIN_MASK / UNPIN_MASK are unknown opcodes, HDR_BLOCK has no effect)
        wire unused_blk = &{1'b0, blk_en, blk_flush, regs_clear, arr, arr_seq, arr_ts, brd_off,
                            brel, pin_go, pin_set, pin_mask, pin_start, take,
                            nxt_rdy, nxt_ok, chk_ok, nxt_slot};
        assign {pin_start, pin_done, nxt_rdy, nxt_ok, take, tok, blk_lost, cnt_blk, ns_valid,
                chk_ok} = 10'd0;
        assign {pin_err, nxt_slot, ring_pinned, ring_free} = 52'd0;
        assign ns_seq = 32'd0;
        assign brd_byte = 8'd0;
    end endgenerate

    // ---------------------------------------------------------------- host link: receive
    uart_rx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_urx (
        .clk_i(clk_i), .rst_i(rst_q[R_URX]), .rx_i(uart_rx_i), .data_o(rx_byte), .valid_o(rx_valid),
        .err_o(rx_err)
    );
    frame_rx #(.WPOS(FIFO_LUTRAM != 0)) u_frx (
        .clk_i(clk_i), .rst_i(rst_q[R_FRX]), .byte_i(rx_byte), .byte_valid_i(rx_valid), .byte_err_i(rx_err),
        .frame_valid_o(f_valid), .frame_ready_i(f_ready), .seq_o(f_seq), .op_o(f_op),
        .plen_o(f_plen), .payload_o(f_payload), .err_valid_o(f_err), .err_code_o(f_err_code)
    );
    cmd_decoder #(.NODE(1), .QUBITS(QUBITS), .N_PORTS(N_PORTS), .V2(V2), .PAIRS(PAIRS),
                  .BLOCKS(BLOCKS), .HEADERS(HEADERS)) u_dec (
        .clk_i(clk_i), .rst_i(rst_q[R_DEC]), .ts_i(ts),
        .frame_valid_i(f_valid), .frame_ready_o(f_ready), .seq_i(f_seq), .op_i(f_op),
        .plen_i(f_plen), .payload_i(f_payload), .rx_err_i(f_err), .rx_err_code_i(f_err_code),
        .reg_addr_o(reg_addr), .reg_waddr_o(reg_waddr), .reg_we_o(reg_we), .reg_wdata_o(reg_wdata), .reg_rdata_i(reg_rdata),
        .reg_rd_ok_i(reg_rd_ok), .reg_wr_ok_i(reg_wr_ok), .err_crc_p1_i(err_crc_p1),
        .inc_crc_o(inc_crc), .inc_overflow_o(inc_overflow),
        .push_o(push), .t_start_o(t_start), .count_o(count), .period_o(period), .window_o(window),
        .sched_full_i(sched_full), .abort_o(abort),
        .ppush_o(ppush), .pairs_o(pairs), .port_o(pport), .psched_full_i(psched_full),
        .tset_o(tset), .tset_mode_o(tset_mode),
        .chk_base_o(chk_base), .chk_mask_o(chk_mask), .free_ok_i(free_ok),
        .free_o(free),
        .pin_go_o(pin_go), .pin_set_o(pin_set), .pin_mask_o(pin_mask), .pin_done_i(pin_done),
        .pin_err_i(pin_err),
        .resp_valid_o(resp_valid), .resp_ord_o(resp_ord), .resp_ready_i(resp_ready), .resp_seq_o(resp_seq),
        .resp_op_o(resp_op), .resp_len_o(resp_len), .resp_pl_o(resp_pl),
        .ev_valid_o(ev_valid[2]), .ev_op_o(ev_op[23:16]), .ev_payload_o(ev_payload[383:256])
    );
    regfile #(.QUBITS(QUBITS), .N_PORTS(N_PORTS), .N_SLOTS(RING_SLOTS),
              .LATE_JOIN((LATE_JOIN != 0) && (PAIRS != 0)), .FEATURES(FEATURES),
              .V2(V2), .PAIRS(PAIRS)) u_regs (
        .clk_i(clk_i), .rst_i(rst_q[R_REGS]), .addr_i(reg_addr), .waddr_i(reg_waddr), .we_i(reg_we), .wdata_i(reg_wdata),
        .rdata_o(reg_rdata), .rd_ok_o(reg_rd_ok), .wr_ok_o(reg_wr_ok),
        .running_i(running || prunning), .sched_full_i(sched_full || psched_full),
        .evt_pending_i(evq_pending),
        .slots_free_i(slots_free),
        .inc_crc_i(inc_crc), .inc_late_i(cnt_late || pcnt_late), .inc_overflow_i(inc_overflow),
        .inc_bad_header_i(hdr_bad), .inc_herald_i(cnt_herald), .inc_both_i(cnt_both),
        .inc_attempts_i(fire || pfire), .inc_headers_i(hdr_good), .add_evt_lost_i(evq_lost),
        .inc_pairs_i(pair), .inc_err_herald_i(hbad), .err_herald_o(err_herald),
        .herald_wait_o(herald_wait), .test_o(test), .test_we_o(test_we),
        .herald_en_o(herald_en), .header_en_o(header_en), .err_crc_p1_o(err_crc_p1),
        .err_bad_header_o(err_bad_header),
        .inc_blocks_i(cnt_blk), .ring_free_i(ring_free), .pinned_i(ring_pinned),
        .hdr_block_o(hdr_blk_reg), .block_flush_o(blk_flush), .clear_o(regs_clear),
        .late_join_o(late_join)
    );

    // ---------------------------------------------------------------- test patterns (TEST)
    test_gen #(.NP(N_PORTS), .HL_BIT_CYCLES(HL_BIT_CYCLES), .HDR_BIT_CYCLES(HDR_BIT_CYCLES),
               .DET(V2), .HL(PAIRS), .HDR(HDR_IN), .FAST(FIFO_LUTRAM)) u_tgen (
        .clk_i(clk_i), .rst_i(rst_q[R_TG]), .test_i(test), .restart_i(test_we), .fire_i(fire),
        .pfire_i(pfire), .pport_i(pport_run), .ts_i(ts), .det_i(det_i), .hl_i(hl_i), .hdr_i(hdr_i),
        .det_o(det_in), .hl_o(hl_in), .hdr_o(hdr_in)
    );

    // ---------------------------------------------------------------- host link: transmit
    // The ECP5 builds (FIFO_LUTRAM) pass every event_arb input (the sources' valid / opcode /
    // payload, block tokens, lost blocks, the ordered response's marker) through one register
    // stage, inside event_arb (INSTAGE, with valid in two copies): each event enters the FIFO one
    // cycle later, all of them alike, so their order among themselves and against the marker is
    // as before (timing: the event sources sit across the die from event_arb, and header_decoder's
    // ev_valid_o -> source 1's OR -> event_arb's hold / pick logic -> pick_q was the node's ECP5
    // path, 8.0 ns with 6.0 of routing; ninth session). The iCE40 builds keep the direct
    // connection (area).
    // (SELTREE, FAST: the ECP5 builds' timing variants, same cycles; the iCE40 keeps the
    // smaller logic)
    event_arb #(.AW(EVT_AW), .LUTRAM(FIFO_LUTRAM), .NS(NS), .TOK(BLOCKS != 0),
                .SELTREE(FIFO_LUTRAM), .FAST(FIFO_LUTRAM), .INSTAGE(FIFO_LUTRAM)) u_evt (
        .clk_i(clk_i), .rst_i(rst_q[R_EVT]), .valid_i(ev_valid), .op_i(ev_op), .payload_i(ev_payload),
        .tok_i(tok), .lost_i(blk_lost), .mrk_i(pin_done),
        .rd_en_i(evq_rd), .dout_o(evq_dout), .empty_o(evq_empty), .pending_o(evq_pending),
        .lost_o(evq_lost)
    );
    tx_arb u_txa (
        .clk_i(clk_i), .rst_i(rst_q[R_TXA]),
        .resp_valid_i(resp_valid), .resp_ord_i(resp_ord), .resp_ready_o(resp_ready), .resp_seq_i(resp_seq),
        .resp_op_i(resp_op), .resp_len_i(resp_len), .resp_pl_i(resp_pl),
        .ev_empty_i(evq_empty), .ev_rd_o(evq_rd), .ev_dout_i(evq_dout),
        .tx_valid_o(tx_valid), .tx_ready_i(tx_ready), .tx_seq_o(tx_seq), .tx_op_o(tx_op),
        .tx_len_o(tx_len), .tx_pl_o(tx_pl)
    );
    // HDR_BLOCK frames go to blk_tx (streamed from hdr_block's buffer), all others to frame_tx;
    // a frame is taken when both are idle, and they share uart_tx (never both with a byte).
    // The opcode compare is registered (timing: it was the head of the HX8K verify build's
    // critical path, tx_op -> 6 LUTs -> frame_tx's enables): tx_arb loads an event's opcode a
    // cycle before it raises tx_valid, and a response's (never HDR_BLOCK) in the cycle after
    // resp_ready, which clears the flag; so the flag is the presented frame's whenever
    // tx_valid is high
    reg tx_blk_q;
    always @(posedge clk_i)
        tx_blk_q <= !rst_q[R_TXA] && !resp_ready && (tx_op == `HW_OP_HDR_BLOCK);
    wire tx_is_blk = (BLOCKS != 0) && tx_blk_q;
    assign ftx_valid = tx_valid && !tx_is_blk;
    assign btx_valid = tx_valid && tx_is_blk;
    assign tx_ready = ftx_ready && btx_ready;
    // frame_tx's largest payload: 16 bytes (LATE) with v2 or pairs; without them the largest
    // frame it sends is HEADER (14 bytes; HDR_BLOCK goes through blk_tx), so the verify
    // profile's ring is two bytes shorter (payload bytes 14 and 15 of tx_pl are never sent)
    localparam PMAX = ((V2 != 0) || (PAIRS != 0)) ? `HW_LEN_LATE : `HW_LEN_HEADER;
    generate if (PMAX < 16) begin : g_pl_short
        wire unused_pl = &{1'b0, tx_pl[127-8*PMAX:0]};
    end endgenerate
    frame_tx #(.PMAX(PMAX)) u_ftx (
        .clk_i(clk_i), .rst_i(rst_q[R_FTX]), .valid_i(ftx_valid), .ready_o(ftx_ready), .seq_i(tx_seq),
        .op_i(tx_op), .len_i(tx_len), .payload_i(tx_pl[127 -: 8*PMAX]), .byte_o(ftx_byte),
        .byte_valid_o(ftx_byte_valid), .byte_ready_i(tx_byte_ready)
    );
    generate if (BLOCKS != 0) begin : g_btx
        blk_tx #(.RL(BLK_RL), .LUTRAM(FIFO_LUTRAM)) u_btx (
            .clk_i(clk_i), .rst_i(rst_q[R_FTX]), .valid_i(btx_valid), .ready_o(btx_ready),
            .seq_i(tx_seq), .rd_off_o(brd_off), .rd_byte_i(brd_byte), .rel_o(brel),
            .other_busy_i(ftx_byte_valid), .byte_o(btx_byte), .byte_valid_o(btx_byte_valid),
            .byte_ready_i(tx_byte_ready)
        );
    end else begin : g_no_btx
        wire unused_btx = &{1'b0, btx_valid, brd_byte};
        assign {btx_ready, btx_byte_valid, btx_byte, brel, brd_off} = {1'b1, 1'b0, 8'd0, 1'b0, 7'd0};
    end endgenerate
    assign tx_byte = btx_byte_valid ? btx_byte : ftx_byte;
    assign tx_byte_valid = ftx_byte_valid || btx_byte_valid;
    uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_utx (
        .clk_i(clk_i), .rst_i(rst_q[R_UTX]), .data_i(tx_byte), .valid_i(tx_byte_valid),
        .ready_o(tx_byte_ready), .tx_o(uart_tx_o)
    );
endmodule
`default_nettype wire

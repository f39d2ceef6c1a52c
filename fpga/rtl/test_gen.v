// Test-pattern generators of the node (register TEST, docs/physical-layer.md section 6): bring-up
// with nothing attached. Each generator replaces one pin input while its TEST bit is set; the
// outputs go into the same synchronizers / receivers as the pins, so the self-test exercises the
// device's own window, herald receiver and header decoder.
//
// - DET_GEN: det_o = a one-cycle click on detector DET_SEL at every N-th v2 attempt (fire_i),
//   registered like the trig_o pin (the cycle after fire_i): as if trig_o[0] were cabled to it.
// - HL_GEN: at every N-th SCHEDULE_PAIRS attempt (pfire_i on port pport_i) a herald frame
//   (t = ts_i of the fire cycle, bell = DET_SEL) on hl_o[pport_i], sent as the station's
//   herald_tx sends it (crc8_frame_tx: herald_tx's sequencer without its queue); a qualifying
//   attempt less than LOOP_GAP cycles after the previous looped one gets no herald (one frame
//   at a time).
// - HDR_GEN: hdr_o = one header (marker, seq big-endian, CRC-8/SMBUS over seq; HDR_BAD: a wrong
//   CRC for seq % 4 == 3) every (TEST[23:16] + 1) * 1024 cycles, seq 0, 1, ...
// N = TEST[15:8] + 1. restart_i (a write of TEST) restarts the counts, seq and gap timer.
// DET / HL / HDR = 0 leave a generator out (build profiles, fpga/README.md: a device without the
// v2 SCHEDULE, the pairs or the header input); its output is then the pin.
`default_nettype none
`include "wire_spec.vh"
module test_gen #(
    parameter NP             = 2,                         // herald ports
    parameter HL_BIT_CYCLES  = `HW_HERALD_BIT_CYCLES,
    parameter HDR_BIT_CYCLES = `HW_HEADER_BIT_CYCLES,
    parameter DET            = 1,                         // detector loop (v2 SCHEDULE)
    parameter HL             = 1,                         // herald loop (SCHEDULE_PAIRS)
    parameter HDR            = 1,                         // header stream
    parameter FAST           = 0                          // 1: the herald loop's gap LFSR
                                                          // reseeded by a flip-flop (the node
                                                          // top's ECP5 builds, FIFO_LUTRAM;
                                                          // same cycles); 0: by hloop (iCE40)
) (
    input  wire          clk_i,
    input  wire          rst_i,
    input  wire [23:0]   test_i,
    input  wire          restart_i,
    input  wire          fire_i,          // v2 attempt (internal cycle)
    input  wire          pfire_i,         // SCHEDULE_PAIRS attempt (internal cycle)
    input  wire [7:0]    pport_i,
    input  wire [63:0]   ts_i,            // timestamp (the fire cycle's value with the strobes)
    input  wire [1:0]    det_i,           // pins
    input  wire [NP-1:0] hl_i,
    input  wire          hdr_i,
    output wire [1:0]    det_o,           // to the synchronizers / receivers
    output wire [NP-1:0] hl_o,
    output wire          hdr_o
);
    wire       det_gen = test_i[`HW_TEST_DET_GEN];
    wire       hl_gen  = test_i[`HW_TEST_HL_GEN];
    wire       hdr_gen = test_i[`HW_TEST_HDR_GEN];
    wire       hdr_bad = test_i[`HW_TEST_HDR_BAD];
    wire       sel     = test_i[`HW_TEST_DET_SEL];
    wire [7:0] n_m1    = test_i[`HW_TEST_N_LSB +: 8];
    wire       unused_ok = &{1'b0, test_i[7:5]};   // bits 7:5 are not defined (read 0)
    wire       unused_gen = &{1'b0, clk_i, rst_i, restart_i, sel};   // (generators left out)

    // ---------------------------------------------------------------- detector loop
    generate if (DET != 0) begin : g_det
    // v2 attempts still to go before the next click, and "== 0" registered with it (as the
    // herald loop's hleft_q / hz_q below: no compare with N between fire_i and click_q)
    reg [7:0] dleft_q;
    reg       dz_q;
    reg [1:0] click_q;
    always @(posedge clk_i) begin
        if (rst_i) begin                // (TEST resets to 0 with it: N = 1)
            dleft_q <= 8'd0;
            dz_q <= 1'b1;
            click_q <= 2'b00;
        end else if (restart_i) begin   // (test_i holds the written value in the strobe's cycle)
            dleft_q <= n_m1;
            dz_q <= (n_m1 == 8'd0);
            click_q <= 2'b00;
        end else begin
            click_q <= 2'b00;
            if (fire_i) begin
                dleft_q <= dz_q ? n_m1 : dleft_q - 8'd1;
                dz_q <= dz_q ? (n_m1 == 8'd0) : (dleft_q == 8'd1);
                if (dz_q) click_q <= sel ? 2'b10 : 2'b01;
            end
        end
    end
    assign det_o = det_gen ? click_q : det_i;
    end else begin : g_no_det
    wire unused_det = &{1'b0, det_gen, fire_i};
    assign det_o = det_i;
    end endgenerate

    // ---------------------------------------------------------------- herald loop
    // (module scope: a constant function may not sit under generate)
    localparam integer LOOP_GAP = 11 * (10 * HL_BIT_CYCLES + 2) + 8;
    localparam GW = $clog2(LOOP_GAP + 1);
    // The gap is counted by a maximal-length LFSR (period 2^GW - 1 > LOOP_GAP - 2, so the end
    // state comes exactly once per gap), not a binary down-counter: on the HX8K (77 % full)
    // nextpnr split the 9-bit decrement's carry chain at every bit, 11.3 ns, the worst path once
    // pair_match's divider was fixed. Taps: Xilinx XAPP052's table, GW 3..16 (LOOP_GAP < 65536,
    // HL_BIT_CYCLES <= 595).
    localparam [15:0] HG_TAPS = (GW == 3) ? 16'h0006 : (GW == 4) ? 16'h000C : (GW == 5) ? 16'h0014 :
                                (GW == 6) ? 16'h0030 : (GW == 7) ? 16'h0060 : (GW == 8) ? 16'h00B8 :
                                (GW == 9) ? 16'h0110 : (GW == 10) ? 16'h0240 : (GW == 11) ? 16'h0500 :
                                (GW == 12) ? 16'h0829 : (GW == 13) ? 16'h100D : (GW == 14) ? 16'h2015 :
                                (GW == 15) ? 16'h6000 : 16'hD008;
    localparam [GW-1:0] HG_MASK = HG_TAPS[GW-1:0];
    // the state n steps after the seed 1 (HG_END: the cycle in which a down-count from
    // LOOP_GAP - 1, loaded at the attempt, would read 1)
    function automatic [GW-1:0] hg_after(input integer n);
        integer k;
        reg [GW-1:0] st;
        begin
            st = {{(GW-1){1'b0}}, 1'b1};
            for (k = 0; k < n; k = k + 1) st = {st[GW-2:0], ^(st & HG_MASK)};
            hg_after = st;
        end
    endfunction
    // FAST: hgap_q is reseeded a cycle after the looped attempt (by hpush_q, a flip-flop, not
    // by `hloop`: timing, pair_sched's fire_q -> hloop -> hgap_q was a node ECP5 HeAP path), so
    // its end state is one step earlier, and the compare is ignored in the cycle of the reseed
    // (hgap_q then still holds the state from before the attempt): hfree_q rises in the same
    // cycle as with FAST = 0
    localparam [GW-1:0] HG_END = hg_after((FAST != 0) ? LOOP_GAP - 3 : LOOP_GAP - 2);
    generate if (HL != 0) begin : g_hl_loop
    // qualifying attempt: hleft_q counts the pair attempts still to go before it (N - 1 after a
    // restart or a qualifying one, down to 0) and hz_q = "hleft_q == 0" is registered with it, so
    // the loop's decision `hloop` is one LUT of flip-flops and the attempt strobe (it enables /
    // resets ~90 flip-flops across the die: an 8-bit compare with N in front of it was the node's
    // ECP5 critical path). Same sequence as counting up to N - 1: hleft_q = N - 1 - count (TEST,
    // hence N, changes only with a restart, which reloads hleft_q from the new value; after a
    // reset TEST is 0, N = 1)
    reg [7:0]  hleft_q;
    reg        hz_q;
    reg        hpush_q, hgo_q;         // the frame starts two cycles after its attempt
    reg [7:0]  hport_q;                // line of the frame being sent
    // one frame at a time: after a looped attempt the next may loop LOOP_GAP cycles later (the
    // frame, 11 bytes of 10 bits back to back, has left the sender by then, with margin); so
    // the sender needs no queue and takes the timestamp straight into its shift register
    // the frame's payload is loaded a cycle after the attempt (hpush_q, a flip-flop: the 73-bit
    // load enable no longer hangs behind `hloop`, whose `pfire_i` is pair_sched's fire gated by
    // cmd_decoder's abort, the HX8K esp build's path at seed 2), from a copy of the attempt
    // cycle's timestamp; go still comes a cycle later, so the line is unchanged
    reg [63:0]   hts_q;                // ts_i of the previous cycle (free-running)
    reg [GW-1:0] hgap_q;               // LFSR: steps since the last looped attempt (free-running)
    reg          hfree_q;              // the gap has run out (sticky until the next looped one)
    wire         hline;
    wire         hloop = pfire_i && hz_q && hl_gen && hfree_q;
    always @(posedge clk_i) begin
        if (rst_i) begin                // (TEST resets to 0 with it: N = 1)
            hleft_q <= 8'd0;
            hz_q <= 1'b1;
        end else if (restart_i) begin   // (test_i holds the written value in the strobe's cycle)
            hleft_q <= n_m1;
            hz_q <= (n_m1 == 8'd0);
        end else if (pfire_i) begin
            hleft_q <= hz_q ? n_m1 : hleft_q - 8'd1;
            hz_q <= hz_q ? (n_m1 == 8'd0) : (hleft_q == 8'd1);
        end
        hts_q <= ts_i;
        if (rst_i || restart_i) begin
            hpush_q <= 1'b0;
            hgo_q <= 1'b0;
            hport_q <= 8'd0;
            hgap_q <= {GW{1'b0}};
            hfree_q <= 1'b1;
        end else begin
            hpush_q <= hloop;
            hgo_q <= hpush_q;
            // (an equality with a constant and a sticky flag: a magnitude compare and a
            // saturating count had become one long carry chain, the HX8K's worst path)
            // (FAST: reseeded by hpush_q, whether or not hloop)
            hgap_q <= (FAST != 0) ? (hpush_q ? {{(GW-1){1'b0}}, 1'b1}
                                             : {hgap_q[GW-2:0], ^(hgap_q & HG_MASK)})
                                  : {hgap_q[GW-2:0], ^(hgap_q & HG_MASK)};
            hfree_q <= hfree_q || ((FAST != 0) ? (hgap_q == HG_END) && !hpush_q
                                               : (hgap_q == HG_END));
            if (hloop) begin
                hport_q <= pport_i;
                hgap_q <= (FAST != 0) ? (hpush_q ? {{(GW-1){1'b0}}, 1'b1}
                                                 : {hgap_q[GW-2:0], ^(hgap_q & HG_MASK)})
                                      : {{(GW-1){1'b0}}, 1'b1};
                hfree_q <= 1'b0;
            end
        end
    end
    // herald frame (t = the attempt's timestamp, bell = DET_SEL): the marker leaves three cycles
    // after the attempt, as from the station's herald_tx (push a cycle after the attempt, one
    // cycle in its queue)
    /* verilator lint_off PINCONNECTEMPTY */
    crc8_frame_tx #(.N(9), .BIT_CYCLES(HL_BIT_CYCLES), .B2B(1), .MARKER(`HW_HERALD_MARKER)) u_hl (
        .clk_i(clk_i), .rst_i(rst_i || restart_i), .load_i(hpush_q), .data_i({hts_q, 7'd0, sel}),
        .go_i(hgo_q), .bad_i(1'b0), .busy_o(), .done_o(), .line_o(hline)
    );
    /* verilator lint_on PINCONNECTEMPTY */
    genvar gp;
        for (gp = 0; gp < NP; gp = gp + 1) begin : g_hl
            assign hl_o[gp] = hl_gen ? (hport_q != gp[7:0] || hline) : hl_i[gp];
        end
    end else begin : g_no_hl
    wire unused_hl = &{1'b0, hl_gen, pfire_i, pport_i, ts_i, n_m1};
    assign hl_o = hl_i;
    end endgenerate

    // ---------------------------------------------------------------- header stream
    generate if (HDR != 0) begin : g_hdr
    reg [17:0] gap_q;                  // cycles to the next header
    reg        gz_q;                   // gap_q == 0 (registered)
    reg [31:0] seq_q;                  // seq of the next header
    wire       hbusy, hdone, hdr_line;
    wire       hstart = gz_q && !hbusy;
    wire [17:0] gap_load = {test_i[`HW_TEST_GAP_LSB +: 8], 10'h3FF};   // (gap + 1) * 1024 - 1
    always @(posedge clk_i) begin
        if (rst_i || restart_i) begin
            gap_q <= gap_load;
            gz_q <= 1'b0;
            seq_q <= 32'd0;
        end else begin
            gz_q <= (gap_q == 18'd1);
            gap_q <= gz_q ? gap_load : gap_q - 18'd1;
            if (hdone) seq_q <= seq_q + 32'd1;
        end
    end
    crc8_frame_tx #(.N(4), .BIT_CYCLES(HDR_BIT_CYCLES), .B2B(0), .MARKER(`HW_HEADER_MARKER)) u_hdr (
        .clk_i(clk_i), .rst_i(rst_i || restart_i), .load_i(hstart), .data_i(seq_q),
        .go_i(hstart), .bad_i(hdr_bad && seq_q[1:0] == 2'd3), .busy_o(hbusy), .done_o(hdone),
        .line_o(hdr_line)
    );
    assign hdr_o = hdr_gen ? hdr_line : hdr_i;
    end else begin : g_no_hdr
    wire unused_hdr = &{1'b0, hdr_gen, hdr_bad, test_i[23:16]};
    assign hdr_o = hdr_i;
    end endgenerate
endmodule
`default_nettype wire

// Register file (spec [registers]): ID, VERSION, CONTROL, STATUS, error and event counters,
// SLOTS_FREE, EVT_LOST, SCRATCH, and (wire v3) QUBITS, N_PORTS (parameters), HERALD_WAIT (rw),
// ERR_HERALD, CNT_PAIRS; (wire v4, block mode) N_SLOTS (parameter), BLOCK_FLUSH (rw, 100000),
// CNT_BLOCKS, CNT_PINNED, CONTROL bit 3 HDR_BLOCK; SLOTS_FREE is the ring's unpinned slots while
// HDR_BLOCK is set, the legacy pool's free slots otherwise; (wire v4) TEST (rw, the test-pattern
// generators' bits); CONTROL bit 4 LATE_JOIN (reset 0; reads back 0 when the parameter LATE_JOIN
// is 0, i.e. the pair scheduler was built without late join).
// Build profiles (V2 / PAIRS = 0): the counters of a mode left out read 0 through no read group,
// and HERALD_WAIT is no register without PAIRS (REG_READ / REG_WRITE: NAK(BAD_REG)).
// Counters are 32-bit, wrap, and count the inc_* strobes.
// CONTROL resets to HERALD_EN | HEADER_EN (0x3); writing it with bit CLEAR_COUNTERS set clears
// every counter (the bit itself reads back 0). Reads are registered: rdata_o, rd_ok_o (the address
// exists) and wr_ok_o (it is writable: CONTROL, SCRATCH, HERALD_WAIT) show, every cycle, the register at
// addr_i of four cycles earlier, read two cycles earlier (timing: nibble decode, select, AND-OR
// groups, OR; no read mux in front of the command decoder). The decoder's address is a
// frame-buffer byte that is final many cycles (>= 2 UART bytes) before the decoder samples
// rdata_o, so it sees the register it asked for, at most 3 cycles old. Writes use waddr_i with we_i and are ignored for read-only
// addresses.
`default_nettype none
`include "wire_spec.vh"
module regfile #(
    parameter QUBITS = 6,
    parameter N_PORTS = 2,
    parameter [31:0] HERALD_WAIT = 32'd4000,   // reset value of HERALD_WAIT
    parameter N_SLOTS = 2048,                  // ring slots (N_SLOTS register)
    parameter [31:0] BLOCK_FLUSH = 32'd100000, // reset value of BLOCK_FLUSH (1 ms)
    parameter        LATE_JOIN = 1,             // CONTROL.LATE_JOIN exists (pair_sched has it)
    // build profile (fpga/README.md, "Build profiles"): the counters of a mode left out never
    // count (their strobes are 0 in top) and read 0; they are left out of the read groups
    parameter        V2 = 1,                    // v2 SCHEDULE: CNT_HERALD, CNT_BOTH
    parameter        PAIRS = 1,                 // pairs: CNT_PAIRS, ERR_HERALD
    parameter [15:0] FEATURES = 16'd0          // VERSION bits 31:16 (spec [feature_bits])
) (
    input  wire        clk_i,
    input  wire        rst_i,
    input  wire [7:0]  addr_i,
    input  wire [7:0]  waddr_i,
    input  wire        we_i,
    input  wire [31:0] wdata_i,
    output reg  [31:0] rdata_o,
    output reg         rd_ok_o,
    output reg         wr_ok_o,
    // status
    input  wire        running_i,
    input  wire        sched_full_i,
    input  wire        evt_pending_i,
    input  wire [7:0]  slots_free_i,
    // counter strobes
    input  wire        inc_crc_i,
    input  wire        inc_late_i,
    input  wire        inc_overflow_i,
    input  wire        inc_bad_header_i,
    input  wire        inc_herald_i,
    input  wire        inc_both_i,
    input  wire        inc_attempts_i,
    input  wire        inc_headers_i,
    input  wire        inc_pairs_i,
    input  wire        inc_err_herald_i,
    input  wire [2:0]  add_evt_lost_i,
    input  wire        inc_blocks_i,
    input  wire [16:0] ring_free_i,
    input  wire [16:0] pinned_i,
    // to the rest of the design
    output wire        herald_en_o,
    output wire        header_en_o,
    output wire        hdr_block_o,
    output wire        late_join_o,
    output wire [31:0] block_flush_o,
    output wire        clear_o,
    output wire [31:0] err_crc_p1_o,     // ERR_CRC + 1 (cmd_decoder's ERROR(CRC) info)
    output wire [31:0] err_bad_header_o,
    output wire [31:0] err_herald_o,
    output wire [31:0] herald_wait_o,
    // TEST (wire v4, test-pattern generators): value and a one-cycle strobe per write
    output wire [23:0] test_o,
    output reg         test_we_o
);
    reg [4:0]  control_q;           // (bit 2 CLEAR_COUNTERS is not stored: always 0)
    reg [31:0] flush_q, cnt_blk_q;
    reg [31:0] scratch_q;
    reg [23:0] test_q;                  // bits 4:0 and 23:8 (7:5 read 0)
    reg        wa_test_q;
    assign test_o = test_q;
    reg [31:0] err_crc_q, err_late_q, err_ovf_q, err_hdr_q, cnt_herald_q, cnt_both_q,
               cnt_att_q, cnt_hdrs_q, evt_lost_q, cnt_pairs_q, err_her_q, hwait_q;
    assign err_herald_o = err_her_q;
    assign herald_wait_o = hwait_q;

    assign herald_en_o = control_q[`HW_CTRL_HERALD_EN];
    assign header_en_o = control_q[`HW_CTRL_HEADER_EN];
    assign hdr_block_o = control_q[`HW_CTRL_HDR_BLOCK];
    assign late_join_o = control_q[`HW_CTRL_LATE_JOIN];
    assign block_flush_o = flush_q;
    // ERR_CRC + 1 as a second counter kept with err_crc_q (cleared to 1, counts with it), so
    // cmd_decoder registers it without a 32-bit adder across the two blocks (timing: its
    // `err_crc + 1` was station_top's ECP5 SA path at 196 MHz)
    reg [31:0] crc_p1_q;
    assign err_crc_p1_o = crc_p1_q;
    assign err_bad_header_o = err_hdr_q;
    // CLEAR_COUNTERS is registered (clear_q) before it resets the 288 counter flip-flops, and the
    // strobes pass two registers before the 32-bit adders (timing): counters lag their events by
    // two cycles, and the clear keeps its place among the strobes (a strobe of the write's cycle
    // or earlier is cleared, a later one counts).
    // The write address compares are registered every cycle (timing): waddr_i / wdata_i must be
    // stable the cycle before we_i (the command decoder sets them in its stage A, we_i in C).
    reg wa_ctl_q, wa_scr_q, wa_clr_q, wa_hw_q, wa_fl_q;
    always @(posedge clk_i) begin
        wa_fl_q  <= (waddr_i == `HW_REG_BLOCK_FLUSH);
        wa_hw_q  <= (waddr_i == `HW_REG_HERALD_WAIT);
        wa_ctl_q <= (waddr_i == `HW_REG_CONTROL);
        wa_scr_q <= (waddr_i == `HW_REG_SCRATCH);
        wa_test_q <= (waddr_i == `HW_REG_TEST);
        wa_clr_q <= (waddr_i == `HW_REG_CONTROL) && wdata_i[`HW_CTRL_CLEAR_COUNTERS];
    end
    reg clear_q;
    always @(posedge clk_i)
        clear_q <= !rst_i && we_i && wa_clr_q;
    assign clear_o = clear_q;
    reg inc_blk_p, inc_blk_q;
    always @(posedge clk_i) begin
        inc_blk_p <= !rst_i && inc_blocks_i;
        inc_blk_q <= !rst_i && inc_blk_p;
    end

    reg inc_crc_p, inc_late_p, inc_ovf_p, inc_hdr_p, inc_herald_p, inc_both_p, inc_att_p,
        inc_hdrs_p, inc_pairs_p, inc_eh_p;
    reg inc_crc_q, inc_late_q, inc_ovf_q, inc_hdr_q, inc_herald_q, inc_both_q, inc_att_q,
        inc_hdrs_q, inc_pairs_q, inc_eh_q;
    reg [2:0] add_lost_p, add_lost_q;
    always @(posedge clk_i) begin
        {inc_crc_p, inc_late_p, inc_ovf_p, inc_hdr_p, inc_herald_p, inc_both_p, inc_att_p,
         inc_hdrs_p} <= rst_i ? 8'd0 : {inc_crc_i, inc_late_i, inc_overflow_i, inc_bad_header_i,
                                        inc_herald_i, inc_both_i, inc_attempts_i, inc_headers_i};
        add_lost_p <= rst_i ? 3'd0 : add_evt_lost_i;
        {inc_pairs_p, inc_eh_p} <= rst_i ? 2'd0 : {inc_pairs_i, inc_err_herald_i};
        {inc_pairs_q, inc_eh_q} <= rst_i ? 2'd0 : {inc_pairs_p, inc_eh_p};
        {inc_crc_q, inc_late_q, inc_ovf_q, inc_hdr_q, inc_herald_q, inc_both_q, inc_att_q,
         inc_hdrs_q} <= rst_i ? 8'd0 : {inc_crc_p, inc_late_p, inc_ovf_p, inc_hdr_p, inc_herald_p,
                                        inc_both_p, inc_att_p, inc_hdrs_p};
        add_lost_q <= rst_i ? 3'd0 : add_lost_p;
    end

    always @(posedge clk_i) begin
        if (rst_i || clear_q) begin
            err_crc_q <= 32'd0; crc_p1_q <= 32'd1; err_late_q <= 32'd0; err_ovf_q <= 32'd0; err_hdr_q <= 32'd0;
            cnt_herald_q <= 32'd0; cnt_both_q <= 32'd0; cnt_att_q <= 32'd0; cnt_hdrs_q <= 32'd0;
            evt_lost_q <= 32'd0;
            cnt_pairs_q <= 32'd0; err_her_q <= 32'd0;
            cnt_blk_q <= 32'd0;
        end else begin
            if (inc_blk_q)    cnt_blk_q    <= cnt_blk_q    + 32'd1;
            if (inc_pairs_q)  cnt_pairs_q  <= cnt_pairs_q  + 32'd1;
            if (inc_eh_q)     err_her_q    <= err_her_q    + 32'd1;
            // the strobe is the counter's enable, not an adder input (timing: the strobe
            // flip-flop then drives enable pins directly instead of the head of a carry chain)
            if (inc_crc_q)    err_crc_q    <= err_crc_q    + 32'd1;
            if (inc_crc_q)    crc_p1_q     <= crc_p1_q     + 32'd1;
            if (inc_late_q)   err_late_q   <= err_late_q   + 32'd1;
            if (inc_ovf_q)    err_ovf_q    <= err_ovf_q    + 32'd1;
            if (inc_hdr_q)    err_hdr_q    <= err_hdr_q    + 32'd1;
            if (inc_herald_q) cnt_herald_q <= cnt_herald_q + 32'd1;
            if (inc_both_q)   cnt_both_q   <= cnt_both_q   + 32'd1;
            if (inc_att_q)    cnt_att_q    <= cnt_att_q    + 32'd1;
            if (inc_hdrs_q)   cnt_hdrs_q   <= cnt_hdrs_q   + 32'd1;
            evt_lost_q   <= evt_lost_q   + {29'd0, add_lost_q};
        end
    end

    always @(posedge clk_i) begin
        if (rst_i) begin
            control_q <= 5'b00011;
            scratch_q <= 32'd0;
            hwait_q <= HERALD_WAIT;
            flush_q <= BLOCK_FLUSH;
            test_q <= 24'd0;
            test_we_o <= 1'b0;
        end else begin
            test_we_o <= we_i && wa_test_q;
            if (we_i) begin
                if (wa_hw_q) hwait_q <= wdata_i;
                if (wa_fl_q) flush_q <= wdata_i;
                if (wa_ctl_q)
                    control_q <= {wdata_i[4] && (LATE_JOIN != 0), wdata_i[3], 1'b0, wdata_i[1:0]};
                if (wa_scr_q) scratch_q <= wdata_i;
                if (wa_test_q) test_q <= {wdata_i[23:8], 3'd0, wdata_i[4:0]};
            end
        end
    end

    // Read path, four registered steps (timing): each address nibble decoded to one-hot, the
    // select (an AND of two of those flags), rd_ok and wr_ok, then four AND-OR groups of at most
    // four registers each, then their OR. (A direct 8-bit compare per
    // register had been mapped with shared terms: 3 LUT levels behind a high-fanout node.)
    localparam NR = 25;
    // SLOTS_FREE: the ring's (block mode) or the legacy pool's, chosen by a registered flag
    reg [16:0] sfree_q;
    always @(posedge clk_i)
        sfree_q <= control_q[`HW_CTRL_HDR_BLOCK] ? ring_free_i : {9'd0, slots_free_i};
    wire [32*NR-1:0] vals = {
        {8'd0, test_q}, {15'd0, pinned_i}, cnt_blk_q, flush_q, 32'(N_SLOTS),
        cnt_pairs_q, err_her_q, hwait_q, 32'(N_PORTS), 32'(QUBITS),
        scratch_q, evt_lost_q, {15'd0, sfree_q}, cnt_hdrs_q, cnt_att_q, cnt_both_q,
        cnt_herald_q, err_hdr_q, err_ovf_q, err_late_q, err_crc_q,
        {29'd0, evt_pending_i, sched_full_i, running_i}, {27'd0, control_q},
        {FEATURES, 16'(`HW_WIRE_VERSION)}, 32'(`HW_DEVICE_ID)};
    localparam [8*NR-1:0] ADDRS = {
        8'(`HW_REG_TEST), 8'(`HW_REG_CNT_PINNED), 8'(`HW_REG_CNT_BLOCKS),
        8'(`HW_REG_BLOCK_FLUSH), 8'(`HW_REG_N_SLOTS),
        8'(`HW_REG_CNT_PAIRS), 8'(`HW_REG_ERR_HERALD), 8'(`HW_REG_HERALD_WAIT),
        8'(`HW_REG_N_PORTS), 8'(`HW_REG_QUBITS),
        8'(`HW_REG_SCRATCH), 8'(`HW_REG_EVT_LOST), 8'(`HW_REG_SLOTS_FREE),
        8'(`HW_REG_CNT_HEADERS), 8'(`HW_REG_CNT_ATTEMPTS), 8'(`HW_REG_CNT_BOTH),
        8'(`HW_REG_CNT_HERALD), 8'(`HW_REG_ERR_BAD_HEADER), 8'(`HW_REG_ERR_OVERFLOW),
        8'(`HW_REG_ERR_LATE), 8'(`HW_REG_ERR_CRC), 8'(`HW_REG_STATUS), 8'(`HW_REG_CONTROL),
        8'(`HW_REG_VERSION), 8'(`HW_REG_ID)};

    reg [15:0]   ahi_q, alo_q;          // one-hot addr_i[7:4] / addr_i[3:0]
    reg [15:0]   lok_q;                 // lok_q[h]: a register has address {h, addr_i[3:0]}
    localparam [7:0] RA_CTL = 8'(`HW_REG_CONTROL), RA_SCR = 8'(`HW_REG_SCRATCH),
                     RA_HW = 8'(`HW_REG_HERALD_WAIT), RA_FL = 8'(`HW_REG_BLOCK_FLUSH),
                     RA_TEST = 8'(`HW_REG_TEST);
    // Registers that can be nonzero in this build (bit r: vals[32*r +: 32]); the others are
    // counters of modes the profile lacks (ERR_LATE, CNT_ATTEMPTS: v2 or pairs; CNT_HERALD,
    // CNT_BOTH: v2; ERR_HERALD, CNT_PAIRS: pairs), constant 0: they read 0 through no group
    // (rd_ok_o is unchanged: the address still exists). The live ones are packed into the
    // AND-OR groups in order (GIX: a register's group), so a profile needs fewer groups.
    // HERALD_WAIT (17), the pairs' one writable register, is no register at all without
    // PAIRS (REG_READ / REG_WRITE: NAK(BAD_REG), as the twin built with the same features)
    localparam ANY = (V2 != 0) || (PAIRS != 0);
    localparam [NR-1:0] HAS = ~(NR'(PAIRS == 0) << 17);
    localparam [NR-1:0] LIVE = HAS & ~(NR'(!ANY) << 5 | NR'(V2 == 0) << 8 | NR'(V2 == 0) << 9
                                       | NR'(!ANY) << 10 | NR'(PAIRS == 0) << 18
                                       | NR'(PAIRS == 0) << 19);
    function automatic integer nlive(input integer n);   // live registers below index n
        integer q;
        begin
            nlive = 0;
            for (q = 0; q < n; q = q + 1) nlive = nlive + (LIVE[q] ? 1 : 0);
        end
    endfunction
    localparam NG = (nlive(NR) + 3) / 4;  // AND-OR groups of 4 live registers
    reg [NR-1:0] sel_q;
    reg          rd_ok_q, wr_ok_q, rd_ok_q2, wr_ok_q2;
    reg [15:0]   lok;
    reg [32*NG-1:0] grp, grp_q;
    integer r, k, rr;
    always @* begin
        grp = {32*NG{1'b0}};
        for (r = 0; r < NR; r = r + 1)
            if (LIVE[r])
                grp[32*(nlive(r) / 4) +: 32] = grp[32*(nlive(r) / 4) +: 32]
                                             | ({32{sel_q[r]}} & vals[32*r +: 32]);
    end
    function automatic [31:0] rd_or(input [32*NG-1:0] v);
        integer n;
        begin
            rd_or = 32'd0;
            for (n = 0; n < NG; n = n + 1) rd_or = rd_or | v[32*n +: 32];
        end
    endfunction
    integer h;
    always @* begin
        for (h = 0; h < 16; h = h + 1) begin
            lok[h] = 1'b0;
            for (rr = 0; rr < NR; rr = rr + 1)
                lok[h] = lok[h] || (HAS[rr] && (ADDRS[8*rr+4 +: 4] == h[3:0])
                                    && (addr_i[3:0] == ADDRS[8*rr +: 4]));
        end
    end
    always @(posedge clk_i) begin
        for (k = 0; k < 16; k = k + 1) begin
            ahi_q[k] <= (addr_i[7:4] == k[3:0]);
            alo_q[k] <= (addr_i[3:0] == k[3:0]);
            lok_q[k] <= lok[k];
        end
        rd_ok_q <= |(ahi_q & lok_q);
        for (k = 0; k < NR; k = k + 1)
            sel_q[k] <= ahi_q[ADDRS[8*k+4 +: 4]] && alo_q[ADDRS[8*k +: 4]];
        wr_ok_q <= (ahi_q[RA_CTL[7:4]] && alo_q[RA_CTL[3:0]])
                || (ahi_q[RA_SCR[7:4]] && alo_q[RA_SCR[3:0]])
                || ((PAIRS != 0) && ahi_q[RA_HW[7:4]] && alo_q[RA_HW[3:0]])
                || (ahi_q[RA_FL[7:4]] && alo_q[RA_FL[3:0]])
                || (ahi_q[RA_TEST[7:4]] && alo_q[RA_TEST[3:0]]);
        grp_q <= grp;
        rd_ok_q2 <= rd_ok_q;
        wr_ok_q2 <= wr_ok_q;
        rdata_o <= rd_or(grp_q);
        {rd_ok_o, wr_ok_o} <= {rd_ok_q2, wr_ok_q2};
    end
endmodule
`default_nettype wire

// Register file of the heralding station (spec [registers], device "station" or "both"): ID
// (meta.station_id), VERSION, CONTROL, STATUS, ERR_CRC, CNT_HERALD, CNT_BOTH, EVT_LOST, SCRATCH,
// ST_DELAY (rw), ST_WINDOW (rw, reset 2 = 20 ns), CNT_ONE_END, CNT_DARK, CNT_MARKS, CNT_HL_DROP.
// Same interface rules and read pipeline as regfile.v (registered reads, four steps; counters
// count their strobes two cycles later; CONTROL.CLEAR_COUNTERS clears every counter and reads
// back 0), but the write address and data must be stable the two cycles before we_i (regfile:
// one; cmd_decoder keeps them >= 4). CONTROL keeps bits 1:0 (no
// function in the station); STATUS bit 0 = a herald frame is being sent or waits, bit 2 = event
// FIFO not empty.
`default_nettype none
`include "wire_spec.vh"
module station_regs #(
    parameter [31:0] ST_WINDOW = 32'd2
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
    input  wire        busy_i,
    input  wire        evt_pending_i,
    input  wire        inc_crc_i,
    input  wire        inc_herald_i,
    input  wire        inc_both_i,
    input  wire        inc_one_end_i,
    input  wire [1:0]  add_dark_i,
    input  wire [1:0]  add_marks_i,
    input  wire        inc_drop_i,
    input  wire [2:0]  add_evt_lost_i,
    output wire [31:0] err_crc_p1_o,     // ERR_CRC + 1 (as regfile.v)
    output wire [31:0] delay_o,
    output reg  [15:0] window_o
);
    reg [1:0]  control_q;
    reg [31:0] scratch_q, delay_q, window_q;
    reg [31:0] err_crc_q, cnt_herald_q, cnt_both_q, cnt_one_q, cnt_dark_q, cnt_marks_q,
               cnt_drop_q, evt_lost_q;
    reg [31:0] crc_p1_q;                    // ERR_CRC + 1, kept with err_crc_q (as regfile.v)
    assign err_crc_p1_o = crc_p1_q;
    assign delay_o = delay_q;
    // (the window counter is 16 bits; larger values saturate). Registered: the saturation fed
    // station_core's window - 1 carry chain, station_top's ECP5 critical path at 158 MHz; a
    // write reaches station_core's window registers 3 cycles later (it opens no window before)
    // (wbig_q = "window_q[31:16] != 0", kept with every write of window_q from wnz_q, the
    // compare of the write data registered the cycle before we_i as wa_*_q are, so window_o is
    // one LUT of flip-flops: the 16-bit compare into window_o's set input was station_top's ECP5
    // path at 201 MHz, HeAP seed 2)
    // The write address and data compares in two registered steps (bytes / nibbles, then their
    // AND): the address and data are stable >= 2 cycles before we_i (cmd_decoder presents them
    // from the frame buffer, which holds still from >= 2 cycles before frame_valid until the
    // command is done; we_i comes 2 cycles after the frame is accepted) (timing: the 8-bit
    // address compares from the buffer's far flip-flops into wa_*_q were a 4.9-5.2 ns path,
    // station_top ECP5 HeAP, thirteenth session)
    reg wbig_q, wnz_q;
    reg [1:0] wnzb_q;                        // wdata_i bytes 3 / 2 != 0
    always @(posedge clk_i) begin
        wnzb_q <= {wdata_i[31:24] != 8'd0, wdata_i[23:16] != 8'd0};
        wnz_q <= |wnzb_q;
    end
    always @(posedge clk_i) window_o <= wbig_q ? 16'hFFFF : window_q[15:0];

    localparam [31:0] WA = {8'(`HW_REG_CONTROL), 8'(`HW_REG_SCRATCH), 8'(`HW_REG_ST_DELAY),
                            8'(`HW_REG_ST_WINDOW)};
    reg [3:0] wah_q, wal_q;                  // per written register (3 CONTROL .. 0 ST_WINDOW):
                                             // waddr_i's high / low nibble matches
    reg       wclr_q;                        // the CLEAR_COUNTERS bit of wdata_i
    integer   wk;
    always @(posedge clk_i) begin
        for (wk = 0; wk < 4; wk = wk + 1) begin
            wah_q[wk] <= (waddr_i[7:4] == WA[8*wk+4 +: 4]);
            wal_q[wk] <= (waddr_i[3:0] == WA[8*wk +: 4]);
        end
        wclr_q <= wdata_i[`HW_CTRL_CLEAR_COUNTERS];
    end
    reg wa_ctl_q, wa_scr_q, wa_clr_q, wa_dly_q, wa_win_q;
    always @(posedge clk_i) begin
        wa_ctl_q <= wah_q[3] && wal_q[3];
        wa_scr_q <= wah_q[2] && wal_q[2];
        wa_dly_q <= wah_q[1] && wal_q[1];
        wa_win_q <= wah_q[0] && wal_q[0];
        wa_clr_q <= wah_q[3] && wal_q[3] && wclr_q;
    end
    reg clear_q;
    always @(posedge clk_i) clear_q <= !rst_i && we_i && wa_clr_q;

    // strobes two registers deep (timing, as regfile)
    reg [3:0] inc_p, inc_q;                 // crc, herald, both, one_end... + drop below
    reg       drop_p, drop_q;
    reg [1:0] dark_p, dark_q, marks_p, marks_q;
    reg [2:0] lost_p, lost_q;
    always @(posedge clk_i) begin
        inc_p <= rst_i ? 4'd0 : {inc_crc_i, inc_herald_i, inc_both_i, inc_one_end_i};
        inc_q <= rst_i ? 4'd0 : inc_p;
        drop_p <= !rst_i && inc_drop_i;
        drop_q <= !rst_i && drop_p;
        dark_p <= rst_i ? 2'd0 : add_dark_i;
        dark_q <= rst_i ? 2'd0 : dark_p;
        marks_p <= rst_i ? 2'd0 : add_marks_i;
        marks_q <= rst_i ? 2'd0 : marks_p;
        lost_p <= rst_i ? 3'd0 : add_evt_lost_i;
        lost_q <= rst_i ? 3'd0 : lost_p;
    end
    always @(posedge clk_i) begin
        if (rst_i || clear_q) begin
            err_crc_q <= 32'd0; crc_p1_q <= 32'd1; cnt_herald_q <= 32'd0; cnt_both_q <= 32'd0; cnt_one_q <= 32'd0;
            cnt_dark_q <= 32'd0; cnt_marks_q <= 32'd0; cnt_drop_q <= 32'd0; evt_lost_q <= 32'd0;
        end else begin
            if (inc_q[3]) err_crc_q <= err_crc_q + 32'd1;
            if (inc_q[3]) crc_p1_q <= crc_p1_q + 32'd1;
            if (inc_q[2]) cnt_herald_q <= cnt_herald_q + 32'd1;
            if (inc_q[1]) cnt_both_q <= cnt_both_q + 32'd1;
            if (inc_q[0]) cnt_one_q <= cnt_one_q + 32'd1;
            if (drop_q) cnt_drop_q <= cnt_drop_q + 32'd1;
            cnt_dark_q <= cnt_dark_q + {30'd0, dark_q};
            cnt_marks_q <= cnt_marks_q + {30'd0, marks_q};
            evt_lost_q <= evt_lost_q + {29'd0, lost_q};
        end
    end
    always @(posedge clk_i) begin
        if (rst_i) begin
            control_q <= 2'b11;
            scratch_q <= 32'd0;
            delay_q <= 32'd0;
            window_q <= ST_WINDOW;
            wbig_q <= (ST_WINDOW[31:16] != 16'd0);
        end else if (we_i) begin
            if (wa_ctl_q) control_q <= wdata_i[1:0];
            if (wa_scr_q) scratch_q <= wdata_i;
            if (wa_dly_q) delay_q <= wdata_i;
            if (wa_win_q) begin
                window_q <= wdata_i;
                wbig_q <= wnz_q;
            end
        end
    end

    // read path (as regfile.v)
    localparam NR = 15;
    wire [32*NR-1:0] vals = {
        cnt_drop_q, cnt_marks_q, cnt_dark_q, cnt_one_q, window_q, delay_q, scratch_q,
        evt_lost_q, cnt_both_q, cnt_herald_q, err_crc_q,
        32'd0 /* STATUS: st_q below */, {30'd0, control_q},
        {16'd0, `HW_WIRE_VERSION}, 32'(`HW_STATION_ID)};
    localparam [8*NR-1:0] ADDRS = {
        8'(`HW_REG_CNT_HL_DROP), 8'(`HW_REG_CNT_MARKS), 8'(`HW_REG_CNT_DARK),
        8'(`HW_REG_CNT_ONE_END), 8'(`HW_REG_ST_WINDOW), 8'(`HW_REG_ST_DELAY),
        8'(`HW_REG_SCRATCH), 8'(`HW_REG_EVT_LOST), 8'(`HW_REG_CNT_BOTH),
        8'(`HW_REG_CNT_HERALD), 8'(`HW_REG_ERR_CRC), 8'(`HW_REG_STATUS), 8'(`HW_REG_CONTROL),
        8'(`HW_REG_VERSION), 8'(`HW_REG_ID)};
    localparam [7:0] RA_CTL = 8'(`HW_REG_CONTROL), RA_SCR = 8'(`HW_REG_SCRATCH),
                     RA_DLY = 8'(`HW_REG_ST_DELAY), RA_WIN = 8'(`HW_REG_ST_WINDOW);
    localparam NG = (NR + 3) / 4;

    reg [15:0]   ahi_q, alo_q, lok_q;
    reg [NR-1:0] sel_q;
    reg          rd_ok_q, wr_ok_q, rd_ok_q2, wr_ok_q2;
    reg [15:0]   lok;
    reg [32*NG-1:0] grp, grp_q;
    integer r, g, k, rr, h, n;
    always @* begin
        for (g = 0; g < NG; g = g + 1) begin
            grp[32*g +: 32] = 32'd0;
            for (r = 4 * g; r < 4 * g + 4 && r < NR; r = r + 1)
                grp[32*g +: 32] = grp[32*g +: 32] | ({32{sel_q[r]}} & vals[32*r +: 32]);
        end
    end
    always @* begin
        for (h = 0; h < 16; h = h + 1) begin
            lok[h] = 1'b0;
            for (rr = 0; rr < NR; rr = rr + 1)
                lok[h] = lok[h] || ((ADDRS[8*rr+4 +: 4] == h[3:0]) && (addr_i[3:0] == ADDRS[8*rr +: 4]));
        end
    end
    // STATUS is not in the groups: its two live bits are registered on their own in the cycle
    // the groups are (the same sample cycle), so event_arb's pending_o (an OR of ten flags) is
    // one AND away from a flip-flop (timing: pending_o and a group's two OR levels into grp_q
    // were station_top's ECP5 HeAP path at seed 1, 4.8 ns)
    localparam ST_IDX = 3;                  // STATUS's place in vals / ADDRS
    reg [1:0] st_q;                         // {evt_pending, busy} while STATUS is read
    always @(posedge clk_i) st_q <= {2{sel_q[ST_IDX]}} & {evt_pending_i, busy_i};
`ifndef SYNTHESIS
    initial if (ADDRS[8*ST_IDX +: 8] != 8'(`HW_REG_STATUS)) $fatal(1, "station_regs: ST_IDX");
`endif
    reg [31:0] rd_or;
    always @* begin
        rd_or = {29'd0, st_q[1], 1'b0, st_q[0]};
        for (n = 0; n < NG; n = n + 1) rd_or = rd_or | grp_q[32*n +: 32];
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
                || (ahi_q[RA_DLY[7:4]] && alo_q[RA_DLY[3:0]])
                || (ahi_q[RA_WIN[7:4]] && alo_q[RA_WIN[3:0]]);
        grp_q <= grp;
        rd_ok_q2 <= rd_ok_q;
        wr_ok_q2 <= wr_ok_q;
        rdata_o <= rd_or;
        {rd_ok_o, wr_ok_o} <= {rd_ok_q2, wr_ok_q2};
    end
endmodule
`default_nettype wire

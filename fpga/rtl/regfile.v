// Register file (spec [registers]): ID, VERSION, CONTROL, STATUS, error and event counters,
// SLOTS_FREE, EVT_LOST, SCRATCH. Counters are 32-bit, wrap, and count the inc_* strobes.
// CONTROL resets to HERALD_EN | HEADER_EN (0x3); writing it with bit CLEAR_COUNTERS set clears
// every counter (the bit itself reads back 0). Reads are combinational on addr_i (rd_ok_o: the
// address exists; wr_ok_o: it is writable, CONTROL or SCRATCH); writes use waddr_i with we_i and
// are ignored for read-only addresses.
`default_nettype none
`include "wire_spec.vh"
module regfile (
    input  wire        clk_i,
    input  wire        rst_i,
    input  wire [7:0]  addr_i,
    input  wire [7:0]  waddr_i,
    input  wire        we_i,
    input  wire [31:0] wdata_i,
    output reg  [31:0] rdata_o,
    output reg         rd_ok_o,
    output wire        wr_ok_o,
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
    input  wire [2:0]  add_evt_lost_i,
    // to the rest of the design
    output wire        herald_en_o,
    output wire        header_en_o,
    output wire [31:0] err_crc_o,
    output wire [31:0] err_bad_header_o
);
    reg [1:0]  control_q;
    reg [31:0] scratch_q;
    reg [31:0] err_crc_q, err_late_q, err_ovf_q, err_hdr_q, cnt_herald_q, cnt_both_q,
               cnt_att_q, cnt_hdrs_q, evt_lost_q;

    assign herald_en_o = control_q[`HW_CTRL_HERALD_EN];
    assign header_en_o = control_q[`HW_CTRL_HEADER_EN];
    assign err_crc_o = err_crc_q;
    assign err_bad_header_o = err_hdr_q;
    assign wr_ok_o = (addr_i == `HW_REG_CONTROL) || (addr_i == `HW_REG_SCRATCH);

    wire clear = we_i && (waddr_i == `HW_REG_CONTROL) && wdata_i[`HW_CTRL_CLEAR_COUNTERS];

    // Strobes are registered before the 32-bit adders (timing): counters lag their events by one
    // cycle.
    reg inc_crc_q, inc_late_q, inc_ovf_q, inc_hdr_q, inc_herald_q, inc_both_q, inc_att_q,
        inc_hdrs_q;
    reg [2:0] add_lost_q;
    always @(posedge clk_i) begin
        {inc_crc_q, inc_late_q, inc_ovf_q, inc_hdr_q, inc_herald_q, inc_both_q, inc_att_q,
         inc_hdrs_q} <= rst_i ? 8'd0 : {inc_crc_i, inc_late_i, inc_overflow_i, inc_bad_header_i,
                                        inc_herald_i, inc_both_i, inc_attempts_i, inc_headers_i};
        add_lost_q <= rst_i ? 3'd0 : add_evt_lost_i;
    end

    always @(posedge clk_i) begin
        if (rst_i || clear) begin
            err_crc_q <= 32'd0; err_late_q <= 32'd0; err_ovf_q <= 32'd0; err_hdr_q <= 32'd0;
            cnt_herald_q <= 32'd0; cnt_both_q <= 32'd0; cnt_att_q <= 32'd0; cnt_hdrs_q <= 32'd0;
            evt_lost_q <= 32'd0;
        end else begin
            err_crc_q    <= err_crc_q    + {31'd0, inc_crc_q};
            err_late_q   <= err_late_q   + {31'd0, inc_late_q};
            err_ovf_q    <= err_ovf_q    + {31'd0, inc_ovf_q};
            err_hdr_q    <= err_hdr_q    + {31'd0, inc_hdr_q};
            cnt_herald_q <= cnt_herald_q + {31'd0, inc_herald_q};
            cnt_both_q   <= cnt_both_q   + {31'd0, inc_both_q};
            cnt_att_q    <= cnt_att_q    + {31'd0, inc_att_q};
            cnt_hdrs_q   <= cnt_hdrs_q   + {31'd0, inc_hdrs_q};
            evt_lost_q   <= evt_lost_q   + {29'd0, add_lost_q};
        end
    end

    always @(posedge clk_i) begin
        if (rst_i) begin
            control_q <= 2'b11;
            scratch_q <= 32'd0;
        end else if (we_i) begin
            if (waddr_i == `HW_REG_CONTROL) control_q <= wdata_i[1:0];
            if (waddr_i == `HW_REG_SCRATCH) scratch_q <= wdata_i;
        end
    end

    always @* begin
        rd_ok_o = 1'b1;
        case (addr_i)
            `HW_REG_ID:             rdata_o = `HW_DEVICE_ID;
            `HW_REG_VERSION:        rdata_o = {16'd0, `HW_WIRE_VERSION};
            `HW_REG_CONTROL:        rdata_o = {30'd0, control_q};
            `HW_REG_STATUS:         rdata_o = {29'd0, evt_pending_i, sched_full_i, running_i};
            `HW_REG_ERR_CRC:        rdata_o = err_crc_q;
            `HW_REG_ERR_LATE:       rdata_o = err_late_q;
            `HW_REG_ERR_OVERFLOW:   rdata_o = err_ovf_q;
            `HW_REG_ERR_BAD_HEADER: rdata_o = err_hdr_q;
            `HW_REG_CNT_HERALD:     rdata_o = cnt_herald_q;
            `HW_REG_CNT_BOTH:       rdata_o = cnt_both_q;
            `HW_REG_CNT_ATTEMPTS:   rdata_o = cnt_att_q;
            `HW_REG_CNT_HEADERS:    rdata_o = cnt_hdrs_q;
            `HW_REG_SLOTS_FREE:     rdata_o = {24'd0, slots_free_i};
            `HW_REG_EVT_LOST:       rdata_o = evt_lost_q;
            `HW_REG_SCRATCH:        rdata_o = scratch_q;
            default: begin
                rdata_o = 32'd0;
                rd_ok_o = 1'b0;
            end
        endcase
    end
endmodule
`default_nettype wire

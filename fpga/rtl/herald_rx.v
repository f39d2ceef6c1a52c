// Herald line receiver of a node port (docs/physical-layer.md sections 2-3): the station's
// 11-byte herald frame (marker MARKER, t u64 big-endian, bell u8, CRC-8/SMBUS over t and bell) on
// a UART-like line (idle high, 8N1, BIT_CYCLES cycles per bit), received by uart_rx (2-FF
// synchronizer, mid-bit sampling) and assembled here, like the header decoder's serial line.
//
// A good frame gives ok_o with t_o / bell_o; a malformed one gives bad_o. Malformed = first
// byte not MARKER, wrong CRC-8, a bell byte other than 0 / 1, a stop bit 0 (framing), or more than
// GAP_BITS bit periods of silence between two bytes inside a frame (counted from one byte's
// stop-bit sample to the next byte's; a byte takes 10). After a bad frame the receiver waits for
// the next byte as a marker; a stream of garbage gives one bad_o per wrong marker byte.
// Outputs are registered one-cycle pulses, one cycle after the CRC byte's stop-bit sample (two
// for a gap timeout). HOLD = 1: t_o / bell_o are a copy held until the next frame completes.
// HOLD = 0 (area: the node top's iCE40 fit): t_o / bell_o are the receive shift register itself,
// handed off; they hold from ok_o until the next frame's first t byte is shifted in, at least
// 20 bit periods - 1 cycles later (marker byte first), so the reader must take them by then
// (pair_match does within (N_PORTS - 1) * 40 cycles; top checks the bound).
`default_nettype none
module herald_rx #(
    parameter       BIT_CYCLES = 4,     // >= 4
    parameter [7:0] MARKER     = 8'hA5,
    parameter       GAP_BITS   = 30,    // 10 bits of a byte + 20 bit periods of silence
    parameter       HOLD       = 1,     // 0: t_o / bell_o are the shift register (see above)
    parameter       FAST       = 0      // 1: idx_q == 10 and the bell byte's zero bits as
                                        // registered flags (the node top's ECP5 builds,
                                        // FIFO_LUTRAM; same cycles, 2 flip-flops more); 0: the
                                        // compares (iCE40)
) (
    input  wire        clk_i,
    input  wire        rst_i,
    input  wire        line_i,
    output reg         ok_o,
    output reg         bad_o,
    output wire [63:0] t_o,
    output wire        bell_o
);
    localparam GW = $clog2(GAP_BITS * BIT_CYCLES + 1);
    localparam [GW-1:0] GAP_MAX = GW'(GAP_BITS * BIT_CYCLES);

    wire [7:0] b;
    wire       bv, berr;
    uart_rx #(.CLKS_PER_BIT(BIT_CYCLES)) u_rx (
        .clk_i(clk_i), .rst_i(rst_i), .rx_i(line_i), .data_o(b), .valid_o(bv), .err_o(berr)
    );

    reg  [3:0]  idx_q;                 // byte index expected next (0 = marker)
    reg  [71:0] sr_q;                  // t and bell bytes
    reg  [7:0]  crc_q;
    reg  [GW-1:0] gap_q;
    reg         gap_hit_q;             // the gap limit was reached (registered: timing)
    reg         in_q;                  // inside a frame (idx_q != 0)
    // FAST: i10_q = idx_q == 10 (the CRC byte next) and sz_q = sr_q[7:1] == 0 (the bell
    // byte's unused bits), registered with idx_q / sr_q from their next values, so ok_o's next
    // value is the CRC compare and a few flags (timing: the two compares were 2 LUT levels in
    // front of ok_o's; node ECP5 HeAP, sr_q -> ok_o 7.8 ns)
    // (in g_flags only, read by hierarchical names in the folded-away branches: a wire declared
    // here, even undriven and unused, changed the iCE40 netlist's mapping; for simulators and
    // linters the 0 side declares them as constants, not in synthesis)
    wire [7:0]  crc_nx;
    crc_byte #(.WIDTH(8), .POLY(8'h07)) u_crc (.crc_i(crc_q), .data_i(b), .crc_o(crc_nx));

    always @(posedge clk_i) begin
        ok_o <= 1'b0;
        bad_o <= 1'b0;
        if (rst_i) begin
            idx_q <= 4'd0;
            in_q <= 1'b0;
            sr_q <= 72'd0;
            crc_q <= 8'd0;
            gap_q <= {GW{1'b0}};
            gap_hit_q <= 1'b0;
        end else begin
            gap_q <= (bv || berr || !in_q) ? {GW{1'b0}} : gap_q + {{(GW-1){1'b0}}, 1'b1};
            gap_hit_q <= in_q && !bv && !berr && (gap_q == GAP_MAX);
            if (berr || (gap_hit_q && !bv)) begin
                // framing error, or silence inside a frame
                bad_o <= 1'b1;
                idx_q <= 4'd0;
                in_q <= 1'b0;
            end else if (bv) begin
                if (idx_q == 4'd0) begin
                    if (b == MARKER) begin
                        idx_q <= 4'd1;
                        in_q <= 1'b1;
                        crc_q <= 8'd0;
                    end else begin
                        bad_o <= 1'b1;
                    end
                end else if ((FAST != 0) ? g_flags.i10_q : idx_q == 4'd10) begin
                    idx_q <= 4'd0;
                    in_q <= 1'b0;
                    if (b == crc_q && ((FAST != 0) ? g_flags.sz_q : sr_q[7:1] == 7'd0)) begin
                        ok_o <= 1'b1;
                    end else begin
                        bad_o <= 1'b1;
                    end
                end else begin
                    sr_q <= {sr_q[63:0], b};
                    crc_q <= crc_nx;
                    idx_q <= idx_q + 4'd1;
                end
            end
        end
    end
    generate if (FAST != 0) begin : g_flags
        reg i10_q, sz_q;
        always @(posedge clk_i) begin
            if (rst_i) begin
                i10_q <= 1'b0;
                sz_q <= 1'b1;
            end else if (berr || (gap_hit_q && !bv)) begin
                i10_q <= 1'b0;
            end else if (bv && idx_q != 4'd0) begin
                if (i10_q) i10_q <= 1'b0;
                else begin                      // a t / bell byte shifted in
                    i10_q <= idx_q == 4'd9;
                    sz_q <= b[7:1] == 7'd0;
                end
            end
        end
`ifndef SYNTHESIS
`ifndef FORMAL
        // (simulation only: the flags equal the compares in every cycle)
        always @(posedge clk_i)
            if (!rst_i && (i10_q != (idx_q == 4'd10) || sz_q != (sr_q[7:1] == 7'd0)))
                $fatal(1, "herald_rx: i10_q / sz_q differ from idx_q / sr_q");
`endif
`endif
    end
`ifndef SYNTHESIS
    else begin : g_flags
        wire i10_q = 1'b0, sz_q = 1'b0;
    end
`endif
    endgenerate
    generate if (HOLD != 0) begin : g_hold
        reg [63:0] t_q;
        reg        bell_q;
        always @(posedge clk_i) begin
            if (rst_i) begin
                t_q <= 64'd0;
                bell_q <= 1'b0;
            end else if (bv && !berr && !(gap_hit_q && !bv)
                         && ((FAST != 0) ? g_flags.i10_q : idx_q == 4'd10) && b == crc_q
                         && ((FAST != 0) ? g_flags.sz_q : sr_q[7:1] == 7'd0)) begin
                t_q <= sr_q[71:8];
                bell_q <= sr_q[0];
            end
        end
        assign t_o = t_q;
        assign bell_o = bell_q;
    end else begin : g_handoff
        assign t_o = sr_q[71:8];
        assign bell_o = sr_q[0];
    end endgenerate
endmodule
`default_nettype wire

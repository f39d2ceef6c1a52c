// 64-bit free-running timestamp counter in device clock cycles (machine units).
//
// Split carry: a 32-bit low half (`lo_q`, itself two 16-bit chains: bits 31:16 count on c16_q,
// "bits 15:0 == 0xFFFF", registered a cycle ahead) and two 16-bit upper halves (bits 47:32
// `md_q`, bits 63:48 `hi_q`), each upper half counting on a carry registered one cycle ahead, so
// every carry chain is 16 bits with the carry on the clock enable (ECP5: the 32-bit high half's
// chain was the station's 5.2 ns path, then the low half's 32-bit increment its 4.9 ns one).
// - carry_q ("lo_q == 0xFFFF_FFFF") is set while the low half holds 0xFFFF_FFFE, so md_q
//   increments on the same edge the low half wraps. It is not a 32-bit compare in one cycle:
//   nib_q registers, per 4-bit group, "the low half equals 0xFFFF_FFFC here", pre_q registers
//   the AND of those eight flags ("lo_q == 0xFFFF_FFFE"), and carry_q is pre_q registered, so
//   carry_q and carry_hi_q are one LUT of flip-flops (the AND of eight flags and the load mux
//   were 3 LUT levels into carry_hi_q, station_top's ECP5 path at 174 MHz, HeAP seed 1).
// - carry_hi_q ("lo_q == 0xFFFF_FFFF and md_q == 0xFFFF") is set in the same cycle as carry_q,
//   from pre_q and mff_q ("md_q == 0xFFFF", registered), so hi_q increments on
//   the edge where the low half wraps and md_q wraps with it: all three halves change on one
//   edge and ts_o is a consistent 64-bit value in every cycle.
//   mff_q lags md_q by one cycle, but md_q only changes on the edge where the low half wraps to
//   0, and mff_q is only used while the low half holds 0xFFFF_FFFE (2^32 - 2 cycles later), so
//   it is exact whenever it is read (invariant: lo_q != 0 -> mff_q == (md_q == 0xFFFF); reset
//   and load set it from the value loaded).
// INIT sets the reset value (tests start near 2^32 and 2^48 to exercise both carries).
// load_i (TIME_SET) loads val_i: the counter reads val_i in the cycle after load_i. val_i must be
// stable the cycle before load_i (its wrap flags are registered from it every cycle: timing).
// FAST = 1 (the ECP5 station: station_top's FIFO_LUTRAM; 0, main's logic, everywhere else, so the
// HX8K netlists do not change) adds flip-flops for timing, same counter value in every cycle:
// - the wrap flags of val_i in two steps, byte flags of val_i (f_vb_q) then their AND: val_i must
//   then be stable the two cycles before load_i (time_set's val_o is: it is set 2 cycles after
//   the strobe and load_o comes >= 4 cycles after it, in mode 0 and armed; a later strobe changes
//   val_o 2 cycles after it, and an armed load fires at that strobe's cycle at the latest). The
//   32-bit compares of val_i into vff_q / vfe_q were station_top's ECP5 HeAP path at seeds 1
//   and 3 (5.08 / 5.15 ns, thirteenth session). The node's attempt_core keeps FAST = 0 (its
//   u_ts4 reads time_set's val4_o, stable only the one cycle before load_i).
// - mff_q as the AND of four registered nibble flags of md_q (f_mnib_q), so it lags md_q by two
//   cycles: exact while the low half is not 0 or 1 (it is read only at 0xFFFF_FFFE; the 16-bit
//   compare with the load mux into mff_q was a 4.8-5.0 ns path, eleventh-thirteenth sessions).
// fpga/formal/ts_counter_props.v proves ts + 1 every cycle, reset and load, by k-induction (both
// FAST values side by side).
`default_nettype none
module ts_counter #(
    parameter [63:0] INIT = 64'd0,
    parameter        FAST = 0          // 1: the ECP5 station's variant (above)
) (
    input  wire        clk_i,
    input  wire        rst_i,
    input  wire        load_i,
    input  wire [63:0] val_i,
    output wire [63:0] ts_o
);
    localparam [31:0] PRE = 32'hFFFF_FFFC;   // low half three cycles before it wraps
    localparam        I_FF = (INIT[31:0] == 32'hFFFF_FFFF);
    localparam        I_MFF = (INIT[47:32] == 16'hFFFF);
    reg [31:0] lo_q;
    reg [15:0] md_q, hi_q;
    reg        carry_q;                        // lo_q == 0xFFFF_FFFF: md_q counts at this edge
    reg        carry_hi_q;                     // ... and md_q == 0xFFFF: hi_q counts too
    reg        mff_q;                          // md_q == 0xFFFF (exact while lo_q != 0)
    reg [7:0]  nib_q;                          // per nibble: lo_q was PRE last cycle
    reg        pre_q;                          // lo_q == 0xFFFF_FFFE
    reg        vff_q, vfe_q, vfd_q, vmff_q;    // val_i low half == 0xFFFF_FFFF / _FFFE / _FFFD, bits 47:32 == 0xFFFF
    reg        c16_q;                          // lo_q[15:0] == 0xFFFF: lo_q[31:16] counts at this edge
    reg        vl16_q;                         // val_i[15:0] == 0xFFFF
    always @(posedge clk_i) begin
        vl16_q <= (val_i[15:0] == 16'hFFFF);
        vff_q  <= (val_i[31:0] == 32'hFFFF_FFFF);
        vfe_q  <= (val_i[31:0] == 32'hFFFF_FFFE);
        vfd_q  <= (val_i[31:0] == 32'hFFFF_FFFD);
        vmff_q <= (val_i[47:32] == 16'hFFFF);
    end

    integer k;
    always @(posedge clk_i) begin
        if (rst_i) begin
            lo_q       <= INIT[31:0];
            md_q       <= INIT[47:32];
            hi_q       <= INIT[63:48];
            carry_q    <= I_FF;
            c16_q      <= (INIT[15:0] == 16'hFFFF);
            carry_hi_q <= I_FF && I_MFF;
            mff_q      <= I_MFF;
            pre_q      <= (INIT[31:0] == 32'hFFFF_FFFE);
            nib_q      <= {8{INIT[31:0] == 32'hFFFF_FFFD}};
        end else if (load_i) begin
            lo_q       <= val_i[31:0];
            md_q       <= val_i[47:32];
            hi_q       <= val_i[63:48];
            carry_q    <= vff_q;
            c16_q      <= vl16_q;
            carry_hi_q <= vff_q && vmff_q;
            mff_q      <= vmff_q;
            pre_q      <= vfe_q;
            nib_q      <= {8{vfd_q}};
        end else begin
            lo_q[15:0] <= lo_q[15:0] + 16'd1;
            if (c16_q) lo_q[31:16] <= lo_q[31:16] + 16'd1;
            c16_q      <= (lo_q[15:0] == 16'hFFFE);
            if (carry_q) md_q <= md_q + 16'd1;
            if (carry_hi_q) hi_q <= hi_q + 16'd1;
            pre_q      <= &nib_q;
            carry_q    <= pre_q;
            carry_hi_q <= pre_q && mff_q;
            mff_q      <= (md_q == 16'hFFFF);
            for (k = 0; k < 8; k = k + 1) nib_q[k] <= (lo_q[4*k +: 4] == PRE[4*k +: 4]);
        end
    end

    generate if (FAST != 0) begin : g_fast
        // its own copy (f_) of every register (main's above are then unused, and removed; main's
        // text is kept as it is, so the FAST = 0 netlist is main's)
        reg [31:0] f_lo_q;
        reg [15:0] f_md_q, f_hi_q;
        reg        f_carry_q, f_carry_hi_q, f_mff_q, f_pre_q, f_c16_q;
        reg [7:0]  f_nib_q;
        reg        f_vff_q, f_vfe_q, f_vfd_q, f_vmff_q, f_vl16_q;
        // byte flags of val_i: [0] bits 7:0 == 0xFF, [1..5] bytes 1..5 == 0xFF; f_vbe_q / f_vbd_q
        // bits 7:0 == 0xFE / 0xFD
        reg [5:0] f_vb_q;
        reg       f_vbe_q, f_vbd_q;
        reg [3:0] f_mnib_q;             // per nibble: f_md_q's is 0xF (AND exact while f_lo_q != 0)
        integer   j;
        always @(posedge clk_i) begin
            f_vb_q[0] <= (val_i[7:0] == 8'hFF);
            f_vbe_q   <= (val_i[7:0] == 8'hFE);
            f_vbd_q   <= (val_i[7:0] == 8'hFD);
            for (j = 1; j < 6; j = j + 1) f_vb_q[j] <= (val_i[8*j +: 8] == 8'hFF);
            f_vl16_q <= f_vb_q[1] && f_vb_q[0];
            f_vff_q  <= (&f_vb_q[3:1]) && f_vb_q[0];
            f_vfe_q  <= (&f_vb_q[3:1]) && f_vbe_q;
            f_vfd_q  <= (&f_vb_q[3:1]) && f_vbd_q;
            f_vmff_q <= f_vb_q[5] && f_vb_q[4];
        end
        always @(posedge clk_i) begin
            if (rst_i) begin
                f_lo_q <= INIT[31:0];
                f_md_q <= INIT[47:32];
                f_hi_q <= INIT[63:48];
                f_carry_q <= I_FF;
                f_c16_q <= (INIT[15:0] == 16'hFFFF);
                f_carry_hi_q <= I_FF && I_MFF;
                f_mff_q <= I_MFF;
                f_mnib_q <= {4{I_MFF}};
                f_pre_q <= (INIT[31:0] == 32'hFFFF_FFFE);
                f_nib_q <= {8{INIT[31:0] == 32'hFFFF_FFFD}};
            end else if (load_i) begin
                f_lo_q <= val_i[31:0];
                f_md_q <= val_i[47:32];
                f_hi_q <= val_i[63:48];
                f_carry_q <= f_vff_q;
                f_c16_q <= f_vl16_q;
                f_carry_hi_q <= f_vff_q && f_vmff_q;
                f_mff_q <= f_vmff_q;
                f_mnib_q <= {4{f_vmff_q}};
                f_pre_q <= f_vfe_q;
                f_nib_q <= {8{f_vfd_q}};
            end else begin
                f_lo_q[15:0] <= f_lo_q[15:0] + 16'd1;
                if (f_c16_q) f_lo_q[31:16] <= f_lo_q[31:16] + 16'd1;
                if (f_carry_q) f_md_q <= f_md_q + 16'd1;
                if (f_carry_hi_q) f_hi_q <= f_hi_q + 16'd1;
                f_c16_q <= (f_lo_q[15:0] == 16'hFFFE);
                f_pre_q <= &f_nib_q;
                f_carry_q <= f_pre_q;
                f_carry_hi_q <= f_mff_q && f_pre_q;
                f_mff_q <= &f_mnib_q;
                for (j = 0; j < 4; j = j + 1) f_mnib_q[j] <= (f_md_q[4*j +: 4] == 4'hF);
                for (j = 0; j < 8; j = j + 1) f_nib_q[j] <= (f_lo_q[4*j +: 4] == PRE[4*j +: 4]);
            end
        end
        assign ts_o = {f_hi_q, f_md_q, f_lo_q};
    end else begin : g_main
        assign ts_o = {hi_q, md_q, lo_q};
    end endgenerate
endmodule
`default_nettype wire

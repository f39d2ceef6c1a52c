// ECP5 implementation of ram_sdp_oreg (fpga/rtl/ram_sdp_oreg.v: same name, ports and cycles;
// read there for the behaviour and the same-edge collision). Read only by the ECP5 synthesis
// flows (hwctl synth --target ecp5, the ULX3S board build, fpga/bench/*_pnr.sh), which take it
// in place of the behavioural file, and by the one simulation that checks it against the model
// fpga/tests/hdl/DP16KD.v (fpga/tests/test_hdl_ram_sdp_oreg.py, and the slot ring / block path
// runs with the ecp5 sources). One DP16KD, port A writing, port B reading with its output
// register (REGMODE_B OUTREG): yosys infers a DP16KD only without it, and that one has a
// 5.8 ns clock-to-out (the node's ECP5 critical path in the fifth round). DW <= 18,
// DEPTH <= 1024 (the 18-bit mode: address ADx[13:4], ADx[1:0] the two 9-bit byte enables).
`default_nettype none
module ram_sdp_oreg #(
    parameter DW    = 18,
    parameter DEPTH = 1024,
    parameter AW    = (DEPTH > 1) ? $clog2(DEPTH) : 1
) (
    input  wire          clk_i,
    input  wire          we_i,
    input  wire [AW-1:0] wa_i,
    input  wire [DW-1:0] wd_i,
    input  wire [AW-1:0] ra_i,
    output wire [DW-1:0] rd_o
);
    generate
        if (DEPTH > 1024 || DW > 18 || AW > 10) begin : g_too_big
            ram_sdp_oreg_ecp5_needs_DEPTH_le_1024_and_DW_le_18 u_err ();
        end
    endgenerate
    wire [17:0] dob, doa;
    wire [17:0] dia = 18'(wd_i);
    wire [13:0] ada = 14'({wa_i, 4'b0011});
    wire [13:0] adb = 14'({ra_i, 4'b0000});
    DP16KD #(.DATA_WIDTH_A(18), .DATA_WIDTH_B(18), .REGMODE_A("NOREG"),
             .REGMODE_B("OUTREG"), .RESETMODE("SYNC"), .CSDECODE_A("0b000"),
             .CSDECODE_B("0b000"), .WRITEMODE_A("NORMAL"), .WRITEMODE_B("NORMAL"),
             .GSR("DISABLED")) u_ram (
        .CLKA(clk_i), .CEA(1'b1), .OCEA(1'b1), .WEA(we_i), .RSTA(1'b0),
        .CSA0(1'b0), .CSA1(1'b0), .CSA2(1'b0),
        .ADA0(ada[0]), .ADA1(ada[1]), .ADA2(ada[2]), .ADA3(ada[3]), .ADA4(ada[4]),
        .ADA5(ada[5]), .ADA6(ada[6]), .ADA7(ada[7]), .ADA8(ada[8]), .ADA9(ada[9]),
        .ADA10(ada[10]), .ADA11(ada[11]), .ADA12(ada[12]), .ADA13(ada[13]),
        .DIA0(dia[0]), .DIA1(dia[1]), .DIA2(dia[2]), .DIA3(dia[3]), .DIA4(dia[4]),
        .DIA5(dia[5]), .DIA6(dia[6]), .DIA7(dia[7]), .DIA8(dia[8]), .DIA9(dia[9]),
        .DIA10(dia[10]), .DIA11(dia[11]), .DIA12(dia[12]), .DIA13(dia[13]),
        .DIA14(dia[14]), .DIA15(dia[15]), .DIA16(dia[16]), .DIA17(dia[17]),
        .DOA0(doa[0]), .DOA1(doa[1]), .DOA2(doa[2]), .DOA3(doa[3]), .DOA4(doa[4]),
        .DOA5(doa[5]), .DOA6(doa[6]), .DOA7(doa[7]), .DOA8(doa[8]), .DOA9(doa[9]),
        .DOA10(doa[10]), .DOA11(doa[11]), .DOA12(doa[12]), .DOA13(doa[13]), .DOA14(doa[14]),
        .DOA15(doa[15]), .DOA16(doa[16]), .DOA17(doa[17]),
        .CLKB(clk_i), .CEB(1'b1), .OCEB(1'b1), .WEB(1'b0), .RSTB(1'b0),
        .CSB0(1'b0), .CSB1(1'b0), .CSB2(1'b0),
        .ADB0(adb[0]), .ADB1(adb[1]), .ADB2(adb[2]), .ADB3(adb[3]), .ADB4(adb[4]),
        .ADB5(adb[5]), .ADB6(adb[6]), .ADB7(adb[7]), .ADB8(adb[8]), .ADB9(adb[9]),
        .ADB10(adb[10]), .ADB11(adb[11]), .ADB12(adb[12]), .ADB13(adb[13]),
        .DIB0(1'b0), .DIB1(1'b0), .DIB2(1'b0), .DIB3(1'b0), .DIB4(1'b0), .DIB5(1'b0),
        .DIB6(1'b0), .DIB7(1'b0), .DIB8(1'b0), .DIB9(1'b0), .DIB10(1'b0),
        .DIB11(1'b0), .DIB12(1'b0), .DIB13(1'b0), .DIB14(1'b0), .DIB15(1'b0),
        .DIB16(1'b0), .DIB17(1'b0),
        .DOB0(dob[0]), .DOB1(dob[1]), .DOB2(dob[2]), .DOB3(dob[3]), .DOB4(dob[4]),
        .DOB5(dob[5]), .DOB6(dob[6]), .DOB7(dob[7]), .DOB8(dob[8]), .DOB9(dob[9]),
        .DOB10(dob[10]), .DOB11(dob[11]), .DOB12(dob[12]), .DOB13(dob[13]),
        .DOB14(dob[14]), .DOB15(dob[15]), .DOB16(dob[16]), .DOB17(dob[17]));
    assign rd_o = dob[DW-1:0];
    wire unused_dob = &{1'b0, dob, doa};
endmodule
`default_nettype wire

// Simulation model of the ECP5 DP16KD block RAM (Lattice TN1264, "sysMEM Usage Guide"), for
// the cocotb tests and lint only: yosys's ECP5 cell library declares DP16KD as a black box, so
// an RTL instance (slot_ring, LUTRAM = 1) has no behaviour in Icarus without this file. Never
// read by synthesis (fpga/rtl/ only; a DP16KD module there would be synthesised as logic).
//
// Modelled: DATA_WIDTH 18 on both ports (1024 words; address ADx[13:4], ADx[1:0] the byte
// enables of a write: bits 8:0 and 17:9), one clock (CLKA and CLKB the same net), CE, WE,
// WRITEMODE NORMAL (a port's output keeps its value on a write), REGMODE NOREG (the output is
// the word read at the last edge) or OUTREG (one more register, enabled by OCE). CSDECODE
// "0b000" with CS 0, RST 0. Anything else stops the simulation. A read on one port at the edge
// the other writes the same word is undefined in the device: the model reads X (so a design
// that relies on either value fails its tests). The array starts at 0 (INITVAL 0).
`default_nettype none
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off UNUSEDPARAM */
/* verilator lint_off DECLFILENAME */
/* verilator lint_off WIDTH */
module DP16KD #(
    parameter integer DATA_WIDTH_A = 18,
    parameter integer DATA_WIDTH_B = 18,
    parameter REGMODE_A = "NOREG",
    parameter REGMODE_B = "NOREG",
    parameter RESETMODE = "SYNC",
    parameter ASYNC_RESET_RELEASE = "SYNC",
    parameter CSDECODE_A = "0b000",
    parameter CSDECODE_B = "0b000",
    parameter WRITEMODE_A = "NORMAL",
    parameter WRITEMODE_B = "NORMAL",
    parameter GSR = "ENABLED"
) (
    input  wire DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6,
    input  wire DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
    input  wire ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2,
    input  wire ADA1, ADA0,
    input  wire CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
    output wire DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6,
    output wire DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
    input  wire DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6,
    input  wire DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
    input  wire ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2,
    input  wire ADB1, ADB0,
    input  wire CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
    output wire DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6,
    output wire DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
    wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7,
                       DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7,
                       DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
    wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2,
                       ADA1, ADA0};
    wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2,
                       ADB1, ADB0};
    reg [17:0] mem [0:1023];
    reg [17:0] ra_q, rb_q;          // the word read at the last edge
    reg [17:0] oa_q, ob_q;          // the output registers (OUTREG)
    integer i;
    initial begin
        for (i = 0; i < 1024; i = i + 1) mem[i] = 18'd0;
        ra_q = 18'd0; rb_q = 18'd0; oa_q = 18'd0; ob_q = 18'd0;
        if (DATA_WIDTH_A != 18 || DATA_WIDTH_B != 18
            || (REGMODE_A != "NOREG" && REGMODE_A != "OUTREG")
            || (REGMODE_B != "NOREG" && REGMODE_B != "OUTREG")
            || WRITEMODE_A != "NORMAL" || WRITEMODE_B != "NORMAL"
            || CSDECODE_A != "0b000" || CSDECODE_B != "0b000")
            $fatal(1, "DP16KD model: only 18-bit ports, NOREG / OUTREG, NORMAL, CSDECODE 0b000");
    end
    wire [9:0] wa = ada[13:4];
    wire [9:0] wb = adb[13:4];
    wire       wra = CEA && WEA;
    wire       wrb = CEB && WEB;
    always @(posedge CLKA) begin
        if (CLKB !== CLKA || RSTA !== 1'b0 || RSTB !== 1'b0
            || {CSA2, CSA1, CSA0, CSB2, CSB1, CSB0} !== 6'd0)
            $fatal(1, "DP16KD model: one clock, RST 0, CS 0");
        if (CEA && !WEA) ra_q <= (wrb && wb == wa) ? 18'bx : mem[wa];
        if (CEB && !WEB) rb_q <= (wra && wa == wb) ? 18'bx : mem[wb];
        if (wra && wrb && wa == wb) begin
            mem[wa] <= 18'bx;
        end else begin
            if (wra && ada[0]) mem[wa][8:0] <= dia[8:0];
            if (wra && ada[1]) mem[wa][17:9] <= dia[17:9];
            if (wrb && adb[0]) mem[wb][8:0] <= dib[8:0];
            if (wrb && adb[1]) mem[wb][17:9] <= dib[17:9];
        end
        if (OCEA) oa_q <= ra_q;
        if (OCEB) ob_q <= rb_q;
    end
    wire [17:0] doa = (REGMODE_A == "OUTREG") ? oa_q : ra_q;
    wire [17:0] dob = (REGMODE_B == "OUTREG") ? ob_q : rb_q;
    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5,
            DOA4, DOA3, DOA2, DOA1, DOA0} = doa;
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5,
            DOB4, DOB3, DOB2, DOB1, DOB0} = dob;
endmodule
/* verilator lint_on WIDTH */
/* verilator lint_on DECLFILENAME */
/* verilator lint_on UNUSEDPARAM */
/* verilator lint_on UNUSEDSIGNAL */
`default_nettype wire

// Simple dual-port RAM with a registered read: one write port, one read port, one clock, the
// read data through an output register (technology independent, behavioural; eleventh
// session). The ECP5 builds read fpga/rtl/ecp5/ram_sdp_oreg.v instead (same name, ports and
// cycles: one DP16KD with REGMODE OUTREG), never this file; iCE40 and every simulation read
// this one (fpga/README.md "Vendor primitives").
//
// Cycles: at a clock edge with we_i the word wd_i is written at wa_i; the word at ra_i is read
// at every edge (the array's value before that edge's write) and appears on rd_o one edge
// later: rd_o is mem[ra_i] of two edges before (read latency 2, no enables). A write is in the
// array for any read issued at a later edge.
// Same-edge collision (we_i and ra_i == wa_i at one edge): undefined, as in the ECP5 DP16KD
// (two ports on one word, WRITEMODE NORMAL: TN1264 leaves the read undefined). Simulation reads
// X for that word (as fpga/tests/hdl/DP16KD.v does), so a design that relies on either the old
// or the new word fails its tests; synthesis may give either (no_rw_check). The write itself
// always takes effect. The array starts at 0 in simulation (the DP16KD's INITVAL 0); callers
// clear what they rely on (slot_ring's reset does).
`default_nettype none
module ram_sdp_oreg #(
    parameter DW    = 18,                              // data bits
    parameter DEPTH = 1024,                            // words
    parameter AW    = (DEPTH > 1) ? $clog2(DEPTH) : 1  // address bits (derived: leave as is)
) (
    input  wire          clk_i,
    input  wire          we_i,
    input  wire [AW-1:0] wa_i,
    input  wire [DW-1:0] wd_i,
    input  wire [AW-1:0] ra_i,
    output reg  [DW-1:0] rd_o
);
    (* ram_style = "block", no_rw_check *)
    reg [DW-1:0] mem_q [0:DEPTH-1];
    reg [DW-1:0] rq_q;                  // the word read at the last edge
`ifndef SYNTHESIS
    integer i;
    initial begin
        for (i = 0; i < DEPTH; i = i + 1) mem_q[i] = {DW{1'b0}};
        rq_q = {DW{1'b0}};
        rd_o = {DW{1'b0}};
    end
`endif
    always @(posedge clk_i) begin
        if (we_i) mem_q[wa_i] <= wd_i;
`ifndef SYNTHESIS
        rq_q <= (we_i && wa_i == ra_i) ? {DW{1'bx}} : mem_q[ra_i];
`else
        rq_q <= mem_q[ra_i];
`endif
        rd_o <= rq_q;
    end
endmodule
`default_nettype wire

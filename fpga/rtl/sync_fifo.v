// Synchronous FIFO, DEPTH a power of two. Registered read (dout_o is valid the cycle after
// rd_en_i), so synthesis can map the storage to block RAM. Writes to a full FIFO and reads from an
// empty one are ignored (callers check full_o / empty_o). flush_i empties it. full_o, empty_o and
// count_o are registers (timing); the flags follow a thermometer copy of the count. LUTRAM = 1
// keeps the storage in LUT (distributed) RAM, where the read is a LUT delay into the dout_o
// flip-flops (ECP5: a DP16KD without output register has a 5.8 ns clock-to-out); LUTRAM = 0 asks
// for block RAM (iCE40 has no LUT RAM). Same behaviour.
`default_nettype none
module sync_fifo #(
    parameter WIDTH = 8,
    parameter AW    = 2,
    parameter LUTRAM = 0,
    parameter CHECKED = 0       // 1: the caller never writes when full nor reads when empty, so
                                // no guard logic (timing); 0: such requests are ignored
) (
    input  wire             clk_i,
    input  wire             rst_i,
    input  wire             flush_i,
    input  wire             wr_en_i,
    input  wire [WIDTH-1:0] din_i,
    input  wire             rd_en_i,
    output reg  [WIDTH-1:0] dout_o,
    output reg              full_o,
    output reg              empty_o,
    output reg  [AW:0]      count_o,
    output wire             room_o      // a write presented next cycle will fit (counts this
                                        // cycle's write, not its read, as full_o ignores reads)
);
    localparam DEPTH = 1 << AW;
    reg [AW-1:0] wr_q, rd_q;
    reg [DEPTH:1] th_q;     // thermometer count: th_q[k] = (count >= k); full/empty from its
                            // neighbours, no count compare (timing)
    wire wr_ok = wr_en_i && (CHECKED != 0 || !full_o);
    wire rd_ok = rd_en_i && (CHECKED != 0 || !empty_o);
    assign room_o = !(th_q[DEPTH] || (wr_en_i && th_q[DEPTH-1]));
    wire [AW:0] count_nx = count_o + {{AW{1'b0}}, wr_ok} - {{AW{1'b0}}, rd_ok};

    generate
        if (LUTRAM != 0) begin : g_lut
            (* ram_style = "distributed", no_rw_check *)
            reg [WIDTH-1:0] mem_q [0:(1<<AW)-1];
            always @(posedge clk_i) begin
                if (wr_ok) mem_q[wr_q] <= din_i;
                if (rd_ok) dout_o <= mem_q[rd_q];
            end
        end else begin : g_block
            // no_rw_check: a FIFO never reads the address it writes in the same cycle (that needs
            // count 0 or 2^AW, where the read or the write is refused), so yosys need not emulate
            // read-during-write around the block RAM (it cost ~290 flip-flops + 150 LUTs per FIFO)
            (* ram_style = "block", no_rw_check *)
            reg [WIDTH-1:0] mem_q [0:(1<<AW)-1];
            always @(posedge clk_i) begin
                if (wr_ok) mem_q[wr_q] <= din_i;
                if (rd_ok) dout_o <= mem_q[rd_q];
            end
        end
    endgenerate

    always @(posedge clk_i) begin
        if (rst_i || flush_i) begin
            wr_q <= {AW{1'b0}};
            rd_q <= {AW{1'b0}};
            count_o <= {(AW+1){1'b0}};
            th_q <= {DEPTH{1'b0}};
            full_o <= 1'b0;
            empty_o <= 1'b1;
        end else begin
            if (wr_ok) wr_q <= wr_q + 1'b1;
            if (rd_ok) rd_q <= rd_q + 1'b1;
            count_o <= count_nx;
            if (wr_ok && !rd_ok) begin
                th_q <= {th_q[DEPTH-1:1], 1'b1};
                full_o <= th_q[DEPTH-1];
                empty_o <= 1'b0;
            end else if (rd_ok && !wr_ok) begin
                th_q <= {1'b0, th_q[DEPTH:2]};
                full_o <= 1'b0;
                empty_o <= !th_q[2];
            end
        end
    end
endmodule
`default_nettype wire

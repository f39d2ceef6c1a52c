// Synchronous FIFO, DEPTH a power of two. Registered read (dout_o is valid the cycle after
// rd_en_i), so synthesis can map the storage to block RAM. Writes to a full FIFO and reads from an
// empty one are ignored (callers check full_o / empty_o). flush_i empties it.
`default_nettype none
module sync_fifo #(
    parameter WIDTH = 8,
    parameter AW    = 2
) (
    input  wire             clk_i,
    input  wire             rst_i,
    input  wire             flush_i,
    input  wire             wr_en_i,
    input  wire [WIDTH-1:0] din_i,
    input  wire             rd_en_i,
    output reg  [WIDTH-1:0] dout_o,
    output wire             full_o,
    output wire             empty_o,
    output wire [AW:0]      count_o
);
    (* ram_style = "block" *)
    reg [WIDTH-1:0] mem_q [0:(1<<AW)-1];
    reg [AW:0] wr_q, rd_q;

    assign count_o = wr_q - rd_q;
    assign empty_o = (wr_q == rd_q);
    assign full_o  = (wr_q[AW] != rd_q[AW]) && (wr_q[AW-1:0] == rd_q[AW-1:0]);

    always @(posedge clk_i) begin
        if (wr_en_i && !full_o) mem_q[wr_q[AW-1:0]] <= din_i;
        if (rd_en_i && !empty_o) dout_o <= mem_q[rd_q[AW-1:0]];
    end

    always @(posedge clk_i) begin
        if (rst_i || flush_i) begin
            wr_q <= {(AW+1){1'b0}};
            rd_q <= {(AW+1){1'b0}};
        end else begin
            if (wr_en_i && !full_o)  wr_q <= wr_q + 1'b1;
            if (rd_en_i && !empty_o) rd_q <= rd_q + 1'b1;
        end
    end
endmodule
`default_nettype wire

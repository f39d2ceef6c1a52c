// Synchronous FIFO, DEPTH a power of two. Registered read (dout_o is valid the cycle after
// rd_en_i), so synthesis can map the storage to block RAM. Writes to a full FIFO and reads from an
// empty one are ignored (callers check full_o / empty_o). flush_i empties it. full_o, empty_o and
// count_o are registers (timing).
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
    output reg              full_o,
    output reg              empty_o,
    output reg  [AW:0]      count_o
);
    (* ram_style = "block" *)
    reg [WIDTH-1:0] mem_q [0:(1<<AW)-1];
    reg [AW-1:0] wr_q, rd_q;
    wire wr_ok = wr_en_i && !full_o;
    wire rd_ok = rd_en_i && !empty_o;
    wire [AW:0] count_nx = count_o + {{AW{1'b0}}, wr_ok} - {{AW{1'b0}}, rd_ok};

    always @(posedge clk_i) begin
        if (wr_ok) mem_q[wr_q] <= din_i;
        if (rd_ok) dout_o <= mem_q[rd_q];
    end

    always @(posedge clk_i) begin
        if (rst_i || flush_i) begin
            wr_q <= {AW{1'b0}};
            rd_q <= {AW{1'b0}};
            count_o <= {(AW+1){1'b0}};
            full_o <= 1'b0;
            empty_o <= 1'b1;
        end else begin
            if (wr_ok) wr_q <= wr_q + 1'b1;
            if (rd_ok) rd_q <= rd_q + 1'b1;
            count_o <= count_nx;
            // flags from registered count compares, not from count_nx (timing)
            if (wr_ok && !rd_ok) begin
                full_o <= (count_o == (1 << AW) - 1);
                empty_o <= 1'b0;
            end else if (rd_ok && !wr_ok) begin
                full_o <= 1'b0;
                empty_o <= (count_o == 1);
            end
        end
    end
endmodule
`default_nettype wire

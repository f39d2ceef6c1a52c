// Two-flip-flop synchronizer for an asynchronous input (one bit per instance).
`default_nettype none
module sync2 #(
    parameter RESET_VAL = 1'b0
) (
    input  wire clk_i,
    input  wire rst_i,
    input  wire d_i,
    output wire q_o
);
    reg s1_q, s2_q;
    always @(posedge clk_i) begin
        if (rst_i) begin
            s1_q <= RESET_VAL;
            s2_q <= RESET_VAL;
        end else begin
            s1_q <= d_i;
            s2_q <= s1_q;
        end
    end
    assign q_o = s2_q;
endmodule
`default_nettype wire

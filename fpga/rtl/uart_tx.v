// UART transmitter, 8N1, LSB first, valid/ready byte input. tx_o is a register (idle high).
// B2B = 0: a byte is taken only while idle, so bytes sent back to back are 10 bit periods + 1
// cycle apart (the stop bit lasts one cycle more). B2B = 1: a byte waiting (valid_i) in the last
// cycle of the stop bit starts right after it: exactly 10 bit periods per byte (the herald line,
// whose frame time the contract gives as 11 x 10 bit periods).
`default_nettype none
module uart_tx #(
    parameter CLKS_PER_BIT = 33,
    parameter B2B = 0
) (
    input  wire       clk_i,
    input  wire       rst_i,
    input  wire [7:0] data_i,
    input  wire       valid_i,
    output wire       ready_o,
    output reg        tx_o
);
    // bit timer width (counts CLKS_PER_BIT-1..0; one bit at CLKS_PER_BIT = 1, which holds 0)
    localparam CW = (CLKS_PER_BIT > 1) ? $clog2(CLKS_PER_BIT) : 1;
    localparam [CW-1:0] BIT_M1 = CW'(CLKS_PER_BIT - 1);
    reg          busy_q;
    reg [CW-1:0] cnt_q;
    reg [3:0]    bit_q;     // 0 start, 1..8 data, 9 stop
    reg [8:0]    shift_q;   // {stop, data}
    reg          z_q;       // cnt_q == 0, kept as a flag (timing: the compare had fanned out
                            // into every enable of this block)

    wire stop_end = z_q && (bit_q == 4'd9);    // the stop bit's last cycle
    assign ready_o = !busy_q || ((B2B != 0) && stop_end);

    always @(posedge clk_i) begin
        if (rst_i) begin
            busy_q  <= 1'b0;
            cnt_q   <= {CW{1'b0}};
            z_q     <= 1'b1;
            bit_q   <= 4'd0;
            shift_q <= 9'h1FF;
            tx_o    <= 1'b1;
        end else if (!busy_q) begin
            tx_o <= 1'b1;
            if (valid_i) begin
                busy_q  <= 1'b1;
                shift_q <= {1'b1, data_i};
                tx_o    <= 1'b0;           // start bit
                cnt_q   <= BIT_M1;
                z_q     <= (BIT_M1 == 0);
                bit_q   <= 4'd0;
            end
        end else if (!z_q) begin
            cnt_q <= cnt_q - 1'b1;
            z_q   <= (cnt_q == {{(CW-1){1'b0}}, 1'b1});
        end else if (bit_q == 4'd9) begin
            if ((B2B != 0) && valid_i) begin   // the next byte's start bit right away
                shift_q <= {1'b1, data_i};
                tx_o    <= 1'b0;
                cnt_q   <= BIT_M1;
                z_q     <= (BIT_M1 == 0);
                bit_q   <= 4'd0;
            end else begin
                busy_q <= 1'b0;                // stop bit done
                tx_o   <= 1'b1;
            end
        end else begin
            tx_o    <= shift_q[0];
            shift_q <= {1'b1, shift_q[8:1]};
            bit_q   <= bit_q + 4'd1;
            cnt_q   <= BIT_M1;
            z_q     <= (BIT_M1 == 0);
        end
    end
endmodule
`default_nettype wire

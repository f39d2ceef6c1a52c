// UART transmitter, 8N1, LSB first, valid/ready byte input. tx_o is a register (idle high).
// B2B = 0: a byte is taken only while idle, so bytes sent back to back are 10 bit periods + 1
// cycle apart (the stop bit lasts one cycle more). B2B = 1: a byte waiting (valid_i) in the last
// cycle of the stop bit starts right after it: exactly 10 bit periods per byte (the herald line,
// whose frame time the contract gives as 11 x 10 bit periods).
`default_nettype none
module uart_tx #(
    parameter CLKS_PER_BIT = 33,
    parameter B2B = 0,
    parameter FAST = 0     // 1: the ECP5 station's enables (below); 0: main's logic (HX8K builds)
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
    // Flags kept exactly with bit_q / z_q (every assignment to either sets them too), so the
    // byte-done decision and ready_o are one LUT of flip-flops (timing: `z_q && bit_q == 9` was
    // 2-3 LUTs from bit_q to ready_o and the upstream take, ECP5 station and HX8K node paths):
    reg          b9_q;      // bit_q == 9
    reg          se_q;      // z_q && bit_q == 9: the stop bit's last cycle
    localparam   Z1 = (BIT_M1 == 0);   // z_q after a load (a one-cycle bit)

    assign ready_o = !busy_q || ((B2B != 0) && se_q);

    generate if (FAST == 0) begin : g_main   // main's logic, unchanged
        always @(posedge clk_i) begin
            if (rst_i) begin
                busy_q  <= 1'b0;
                cnt_q   <= {CW{1'b0}};
                z_q     <= 1'b1;
                bit_q   <= 4'd0;
                b9_q    <= 1'b0;
                se_q    <= 1'b0;
                shift_q <= 9'h1FF;
                tx_o    <= 1'b1;
            end else if (!busy_q) begin
                tx_o <= 1'b1;
                if (valid_i) begin
                    busy_q  <= 1'b1;
                    shift_q <= {1'b1, data_i};
                    tx_o    <= 1'b0;           // start bit
                    cnt_q   <= BIT_M1;
                    z_q     <= Z1;
                    bit_q   <= 4'd0;
                    b9_q    <= 1'b0;
                    se_q    <= 1'b0;
                end
            end else if (!z_q) begin
                cnt_q <= cnt_q - 1'b1;
                z_q   <= (cnt_q == {{(CW-1){1'b0}}, 1'b1});
                se_q  <= (cnt_q == {{(CW-1){1'b0}}, 1'b1}) && b9_q;
            end else if (b9_q) begin
                if ((B2B != 0) && valid_i) begin   // the next byte's start bit right away
                    shift_q <= {1'b1, data_i};
                    tx_o    <= 1'b0;
                    cnt_q   <= BIT_M1;
                    z_q     <= Z1;
                    bit_q   <= 4'd0;
                    b9_q    <= 1'b0;
                    se_q    <= 1'b0;
                end else begin
                    busy_q <= 1'b0;                // stop bit done
                    tx_o   <= 1'b1;
                end
            end else begin
                tx_o    <= shift_q[0];
                shift_q <= {1'b1, shift_q[8:1]};
                bit_q   <= bit_q + 4'd1;
                b9_q    <= (bit_q == 4'd8);
                se_q    <= Z1 && (bit_q == 4'd8);
                cnt_q   <= BIT_M1;
                z_q     <= Z1;
            end
        end
    end else begin : g_fast
        // The same registers, cycle for cycle, written as one enable and one data select each:
        // take (a byte starts: valid_i && ready_o) is the only term with valid_i, and every data
        // select is a function of flip-flops, so valid_i is one LUT from each enable (timing:
        // the priority chain above put valid_i 3 LUTs deep into bit_q's / shift_q's enables,
        // the station's host-link path from frame_tx's byte_valid_o, ECP5 HeAP 4.5-5.1 ns,
        // thirteenth session). While busy and counting (!z_q) no byte is taken (ready_o is low:
        // se_q implies z_q), so the three cases below never meet.
        wire take = valid_i && (!busy_q || ((B2B != 0) && se_q));
        wire step = busy_q && z_q && !b9_q;     // a bit ends, not the stop bit: shift
        wire cnt  = busy_q && !z_q;             // counting within a bit
        wire stop = busy_q && z_q && b9_q;      // the stop bit's last cycle
        always @(posedge clk_i) begin
            if (rst_i) begin
                busy_q  <= 1'b0;
                cnt_q   <= {CW{1'b0}};
                z_q     <= 1'b1;
                bit_q   <= 4'd0;
                b9_q    <= 1'b0;
                se_q    <= 1'b0;
                shift_q <= 9'h1FF;
                tx_o    <= 1'b1;
            end else begin
                if (take || stop) busy_q <= take;
                if (take || step || cnt) begin
                    cnt_q <= cnt ? cnt_q - 1'b1 : BIT_M1;
                    z_q   <= cnt ? (cnt_q == {{(CW-1){1'b0}}, 1'b1}) : Z1;
                    se_q  <= cnt ? ((cnt_q == {{(CW-1){1'b0}}, 1'b1}) && b9_q)
                                 : (step && Z1 && (bit_q == 4'd8));
                end
                if (take || step) begin
                    shift_q <= step ? {1'b1, shift_q[8:1]} : {1'b1, data_i};
                    bit_q   <= step ? bit_q + 4'd1 : 4'd0;
                    b9_q    <= step && (bit_q == 4'd8);
                end
                if (!busy_q || z_q) tx_o <= step ? shift_q[0] : !take;
            end
        end
    end endgenerate
endmodule
`default_nettype wire

// UART receiver, 8N1, LSB first. CLKS_PER_BIT = clock frequency / baud rate (>= 4).
// The line is synchronized (2 FF) here; each bit is sampled at its middle. valid_o pulses for one
// cycle with data_o; err_o pulses instead when the stop bit is 0 (framing error).
`default_nettype none
module uart_rx #(
    parameter CLKS_PER_BIT = 33
) (
    input  wire       clk_i,
    input  wire       rst_i,
    input  wire       rx_i,
    output reg  [7:0] data_o,
    output reg        valid_o,
    output reg        err_o
);
    localparam CW = $clog2(CLKS_PER_BIT);   // bit timer width (counts CLKS_PER_BIT-1..0)
    localparam [CW-1:0] BIT_M1 = CW'(CLKS_PER_BIT - 1);
    localparam [CW-1:0] HALF_M1 = CW'(CLKS_PER_BIT / 2 - 1);
    localparam [1:0] S_IDLE = 2'd0, S_START = 2'd1, S_DATA = 2'd2, S_STOP = 2'd3;

    wire rx_s;
    sync2 #(.RESET_VAL(1'b1)) u_sync (.clk_i(clk_i), .rst_i(rst_i), .d_i(rx_i), .q_o(rx_s));

    reg [1:0]    state_q;
    reg [CW-1:0] cnt_q;
    reg [2:0]    bit_q;
    reg [7:0]    shift_q;
    reg          cz_q;          // cnt_q == 0, registered: every reload value is >= 1, so it is
                                // "the count just stepped from 1" (timing)

    // Bit timer: reloaded by two flags (one LUT each, from flip-flops), else counting down (also
    // while idle, where it is not looked at). Timing: the reload mux is one LUT after the
    // decrement's carry chain; the state case had made it three levels.
    (* keep *) wire ld_half = (state_q == S_IDLE) && !rx_s;
    (* keep *) wire ld_bit  = cz_q && (((state_q == S_START) && !rx_s) || (state_q == S_DATA));

    always @(posedge clk_i) begin
        if (rst_i) cnt_q <= {CW{1'b0}};
        else cnt_q <= ld_half ? HALF_M1 : ld_bit ? BIT_M1 : cnt_q - 1'b1;
    end

    always @(posedge clk_i) begin
        valid_o <= 1'b0;
        err_o   <= 1'b0;
        if (rst_i) begin
            state_q <= S_IDLE;
            bit_q   <= 3'd0;
            shift_q <= 8'd0;
            data_o  <= 8'd0;
            cz_q    <= 1'b0;
        end else begin
            cz_q <= 1'b0;
            if (cnt_q == {{(CW-1){1'b0}}, 1'b1}) cz_q <= 1'b1;
            case (state_q)
                S_IDLE: if (!rx_s) begin
                    state_q <= S_START;
                    cz_q    <= 1'b0;
                end
                S_START: if (cz_q) begin
                    if (!rx_s) begin
                        state_q <= S_DATA;
                        cz_q    <= 1'b0;
                        bit_q   <= 3'd0;
                    end else begin
                        state_q <= S_IDLE;          // glitch, not a start bit
                    end
                end
                S_DATA: if (cz_q) begin
                    shift_q <= {rx_s, shift_q[7:1]};
                    cz_q    <= 1'b0;
                    bit_q   <= bit_q + 3'd1;
                    if (bit_q == 3'd7) state_q <= S_STOP;
                end
                S_STOP: if (cz_q) begin
                    // Return to idle at mid stop bit so back-to-back bytes are caught.
                    state_q <= S_IDLE;
                    if (rx_s) begin
                        data_o  <= shift_q;
                        valid_o <= 1'b1;
                    end else begin
                        err_o   <= 1'b1;
                    end
                end
            endcase
        end
    end
endmodule
`default_nettype wire

// Transmit arbitration: a waiting response goes before waiting events (one frame at a time into
// frame_tx). Events come from the event FIFO (registered read: pop, load next cycle, then decode
// the payload length from the opcode one cycle later, for timing).
`default_nettype none
`include "wire_spec.vh"
module tx_arb (
    input  wire         clk_i,
    input  wire         rst_i,
    input  wire         resp_valid_i,
    output wire         resp_ready_o,
    input  wire [7:0]   resp_seq_i,
    input  wire [7:0]   resp_op_i,
    input  wire [5:0]   resp_len_i,
    input  wire [63:0]  resp_pl_i,
    input  wire         ev_empty_i,
    output wire         ev_rd_o,
    input  wire [143:0] ev_dout_i,
    output reg          tx_valid_o,
    input  wire         tx_ready_i,
    output reg  [7:0]   tx_seq_o,
    output reg  [7:0]   tx_op_o,
    output reg  [5:0]   tx_len_o,
    output reg  [127:0] tx_pl_o
);
    reg ev_q;   // an event is being read from the FIFO
    reg ev2_q;  // ... and was loaded last cycle: its length is decoded now (timing)
    wire idle = !tx_valid_o && !ev_q && !ev2_q && tx_ready_i;
    assign resp_ready_o = idle;
    assign ev_rd_o = idle && !resp_valid_i && !ev_empty_i;

    reg [5:0] ev_len;
    always @* begin
        case (tx_op_o)
            `HW_OP_HERALD: ev_len = `HW_LEN_HERALD;
            `HW_OP_DONE:   ev_len = `HW_LEN_DONE;
            `HW_OP_LATE:   ev_len = `HW_LEN_LATE;
            `HW_OP_HEADER: ev_len = `HW_LEN_HEADER;
            default:       ev_len = `HW_LEN_ERROR;
        endcase
    end

    always @(posedge clk_i) begin
        if (rst_i) begin
            ev_q <= 1'b0;
            ev2_q <= 1'b0;
            tx_valid_o <= 1'b0;
            tx_seq_o <= 8'd0;
            tx_op_o <= 8'd0;
            tx_len_o <= 6'd0;
            tx_pl_o <= 128'd0;
        end else begin
            if (tx_valid_o && tx_ready_i) tx_valid_o <= 1'b0;
            ev_q <= ev_rd_o;
            ev2_q <= ev_q;
            if (idle && resp_valid_i) begin
                tx_valid_o <= 1'b1;
                tx_seq_o <= resp_seq_i;
                tx_op_o <= resp_op_i;
                tx_len_o <= resp_len_i;
                tx_pl_o <= {resp_pl_i, 64'd0};
            end else if (ev_q) begin
                {tx_seq_o, tx_op_o, tx_pl_o} <= ev_dout_i;
            end else if (ev2_q) begin
                tx_valid_o <= 1'b1;
                tx_len_o <= ev_len;
            end
        end
    end
endmodule
`default_nettype wire

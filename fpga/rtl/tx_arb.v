// Transmit arbitration: a waiting response goes before waiting events (one frame at a time into
// frame_tx). Events come from the event FIFO (registered read: pop, load next cycle, then the
// payload length from opcode flags registered in the load cycle, for timing). Which one goes next is decided
// a cycle ahead from registers, so each frame starts a cycle later than it could (the UART takes
// CLKS_PER_BIT * 10 cycles per byte anyway).
// Ordered responses (wire v4, docs/header-path.md section 3): a response with resp_ord_i (PIN_MASK
// / UNPIN_MASK) waits until the event FIFO yields the marker entry event_arb placed for it (opcode
// MRK_OP, not sent); from then on no event is read until the response has been taken, so it leaves
// after every event ahead of the marker and before every event behind it.
`default_nettype none
`include "wire_spec.vh"
module tx_arb #(
    parameter [7:0] MRK_OP = 8'h00  // event_arb's marker entry
) (
    input  wire         clk_i,
    input  wire         rst_i,
    input  wire         resp_valid_i,
    input  wire         resp_ord_i,
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
    // Every decision is registered (timing: no path from the handshake inputs into the 150 load
    // enables): idle_q && tx_ready_i picks, for the next cycle, either the response (rsp_q: load
    // it, resp_ready_o) or an event (rd_q: FIFO read, ev_q: load the FIFO output, ev2_q: decode
    // its payload length and present it).
    reg idle_q;     // no frame presented or being fetched
    reg rsp_q;      // load the response this cycle (resp_ready_o)
    reg rd_q;       // read the event FIFO this cycle
    reg ev_q;       // the FIFO output holds the event: load it
    reg ev2_q;      // ... loaded last cycle: its length is decoded now
    reg rel_q;      // the marker of the ordered response has been read
    reg mk2_q;      // ev2_q && op_mrk_q, registered from their own inputs: the marker, no frame
    wire start = idle_q && tx_ready_i;
    wire rsp_go = resp_valid_i && (!resp_ord_i || rel_q);
    // idle_q's next value. While idle, nothing is presented or fetched (tx_valid_o, rsp_q, rd_q,
    // ev_q, ev2_q all low), and rsp_q / ev_q / ev2_q are never two at once (one frame at a time),
    // so the priority chain below reduces to: idle stays unless a frame starts; busy ends with
    // the frame's handshake or the marker (timing: as the chain, idle_q's input was 3 LUTs from
    // rsp_q, the station's ECP5 HeAP path at 185 MHz, tenth session)
    wire fetch = rsp_go || (!ev_empty_i && !rel_q);
    wire idle_d = idle_q ? !(tx_ready_i && fetch) : ((tx_valid_o && tx_ready_i) || mk2_q);
    assign resp_ready_o = rsp_q;
    assign ev_rd_o = rd_q;

    // the event's payload length from registered opcode flags of the FIFO output (free-running:
    // in the ev2_q cycle they describe the event loaded by ev_q; timing: the opcode compare and
    // the length select had been three LUT levels into tx_len_o)
    // Each compare is two kept nibble LUTs and their AND (yosys had shared terms between the four
    // compares: 3 LUT levels with a 2.5 ns route between them, ECP5).
    wire [7:0] fifo_op = ev_dout_i[135:128];
    localparam [39:0] OPS = {`HW_OP_PAIR, `HW_OP_HERALD, `HW_OP_DONE, `HW_OP_LATE, `HW_OP_HEADER};
    (* keep *) wire [4:0] op_hi, op_lo;   // per opcode (4 = PAIR .. 0 = HEADER): nibble matches
    genvar go;
    generate
        for (go = 0; go < 5; go = go + 1) begin : g_op
            assign op_hi[go] = (fifo_op[7:4] == OPS[8*go+4 +: 4]);
            assign op_lo[go] = (fifo_op[3:0] == OPS[8*go +: 4]);
        end
    endgenerate
    reg        op_her_q, op_done_q, op_late_q, op_hdr_q, op_pair_q, op_mrk_q;
    always @(posedge clk_i) begin
        op_mrk_q  <= (fifo_op == MRK_OP);
        op_pair_q <= op_hi[4] && op_lo[4];
        op_her_q  <= op_hi[3] && op_lo[3];
        op_done_q <= op_hi[2] && op_lo[2];
        op_late_q <= op_hi[1] && op_lo[1];
        op_hdr_q  <= op_hi[0] && op_lo[0];
    end
    wire [5:0] ev_len = op_her_q ? 6'(`HW_LEN_HERALD) : op_done_q ? 6'(`HW_LEN_DONE)
                      : op_late_q ? 6'(`HW_LEN_LATE) : op_hdr_q ? 6'(`HW_LEN_HEADER)
                      : op_pair_q ? 6'(`HW_LEN_PAIR) : 6'(`HW_LEN_ERROR);

    always @(posedge clk_i) begin
        mk2_q <= !rst_i && ev_q && (fifo_op == MRK_OP);
        if (rst_i) begin
            idle_q <= 1'b1;
            rsp_q <= 1'b0;
            rd_q <= 1'b0;
            ev_q <= 1'b0;
            ev2_q <= 1'b0;
            tx_valid_o <= 1'b0;
            tx_seq_o <= 8'd0;
            tx_op_o <= 8'd0;
            tx_len_o <= 6'd0;
            tx_pl_o <= 128'd0;
            rel_q <= 1'b0;
        end else begin
            rsp_q <= 1'b0;
            rd_q <= 1'b0;
            ev_q <= rd_q;
            ev2_q <= ev_q;
            idle_q <= idle_d;
            if (start && rsp_go) begin
                rsp_q <= 1'b1;
                if (resp_ord_i) rel_q <= 1'b0;
            end else if (start && !ev_empty_i && !rel_q) begin
                rd_q <= 1'b1;
            end
            if (tx_valid_o && tx_ready_i) tx_valid_o <= 1'b0;
            if (rsp_q) begin
                tx_valid_o <= 1'b1;
                tx_seq_o <= resp_seq_i;
                tx_op_o <= resp_op_i;
                tx_len_o <= resp_len_i;
                tx_pl_o <= {resp_pl_i, 64'd0};
            end else if (ev_q) begin
                {tx_seq_o, tx_op_o, tx_pl_o} <= ev_dout_i;
            end else if (ev2_q && op_mrk_q) begin
                rel_q <= 1'b1;              // (the marker: no frame; idle_d)
            end else if (ev2_q) begin
                tx_valid_o <= 1'b1;
                tx_len_o <= ev_len;
            end
        end
    end
`ifndef SYNTHESIS
`ifndef FORMAL
    // (simulation only: what idle_d relies on, in every cycle)
    always @(posedge clk_i)
        if (!rst_i && ((idle_q && (tx_valid_o || rsp_q || rd_q || ev_q || ev2_q))
                       || (rsp_q + ev_q + ev2_q > 2'd1) || (mk2_q != (ev2_q && op_mrk_q))))
            $fatal(1, "tx_arb: idle / fetch flags inconsistent");
`endif
`endif
endmodule
`default_nettype wire

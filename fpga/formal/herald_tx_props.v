// Formal harness for herald_tx (fpga/rtl/herald_tx.v): the station's herald line transmitter,
// its queue in front of the frame sequencer (docs/physical-layer.md section 2). Ports only for
// the properties; the frame itself is crc8_frame_tx's (crc8_frame_tx_props.v: MARKER, t
// big-endian, bell, CRC-8 over the 9 loaded bytes, one frame per accepted go_i, under any UART
// back-pressure), and the line the UART's (uart_tx_props.v), so the harness checks what herald_tx
// hands the sequencer: which herald each frame carries, and that the sequencer's contract holds.
// The UART is the abstract one (uart_tx_free.v: ready_o free), so frames take any time.
//
// Reference: the heralds waiting (W = 0..2, q0 the oldest), from the pushes. A frame starts (the
// sequencer accepts go_i) when a herald waits and the sequencer is free; a push is dropped when it
// finds 2 waiting and none starts in that cycle (the queue full while a frame is sent). Asserted
// in every cycle:
//  - the sequencer is started exactly then (never without a waiting herald, never later: a
//    waiting herald is not held back), and loaded exactly in the cycle after the start (its
//    contract: a load only while idle or right after the go, each frame loaded by go + 1), with
//    {t, 7'b0, bell} of the herald that started: heralds framed in push order, each once;
//  - drop_o (a cycle after the push) exactly for a push that found the queue full;
//  - busy_o = a frame is being sent or a herald waits.
// So every push is either framed exactly once, in order, or dropped with drop_o (CNT_HL_DROP),
// and a drop only when 2 wait behind a frame being sent. push_i, t_i, bell_i free every cycle.
// INDUCT (task prove*): invariants on taps (the waiting thermometer, the FIFO's pointers and
// words, the pop's registered copy) so the properties close by k-induction. (The FIFO's own count
// and flags drive nothing in herald_tx, which keeps its thermometer: yosys removes them.)
`default_nettype none
module herald_tx_props #(
    parameter LUTRAM = 0
) (
    input wire        clk_i,
    input wire        rst_i,
    input wire        push_i,
    input wire [63:0] t_i,
    input wire        bell_i
);
    wire drop, busy, line;
    herald_tx #(.BIT_CYCLES(4), .MARKER(8'hA5), .LUTRAM(LUTRAM)) dut (
        .clk_i(clk_i), .rst_i(rst_i), .push_i(push_i), .t_i(t_i), .bell_i(bell_i),
        .drop_o(drop), .busy_o(busy), .line_o(line)
    );
    // the sequencer's inputs and busy flag (connected by herald_tx.sby after flattening)
    wire        tap_send, tap_go, tap_load;
    wire [71:0] tap_data;

    reg init_q = 1'b1;
    always @(posedge clk_i) init_q <= 1'b0;
    always @(*) if (init_q) assume(rst_i);

    // reference queue of the waiting heralds ({t, bell})
    reg  [1:0]  w_q;
    reg  [64:0] q0_q, q1_q;
    reg  [64:0] cur_q;          // the herald whose frame started in the last cycle
    reg         st_q;           // a frame started in the last cycle
    reg         drop_q;         // the last cycle's push was dropped
    wire        start = (w_q != 2'd0) && !tap_send && !rst_i;
    wire        dropr = push_i && (w_q == 2'd2) && !start && !rst_i;
    wire        acc = push_i && !dropr && !rst_i;
    wire [64:0] h = {t_i, bell_i};
    always @(posedge clk_i) begin
        if (rst_i) begin
            w_q <= 2'd0;
            st_q <= 1'b0;
            drop_q <= 1'b0;
        end else begin
            st_q <= start;
            drop_q <= dropr;
            w_q <= w_q + {1'b0, acc} - {1'b0, start};
            if (start) begin
                cur_q <= q0_q;
                q0_q <= q1_q;
            end
            // the push lands behind the heralds that stay
            if (acc && (w_q - {1'b0, start}) == 2'd0) q0_q <= h;
            if (acc && (w_q - {1'b0, start}) == 2'd1) q1_q <= h;
        end
    end

    always @(*) if (!init_q && !rst_i) begin
        assert(w_q <= 2'd2);
        assert((tap_go && !tap_send) == start);
        assert(tap_load == st_q);
        // (no `if` on a tap: its proc mux compare would be left undriven by `connect -set`)
        assert(!tap_load || tap_data == {cur_q[64:1], 7'd0, cur_q[0]});
        assert(drop == drop_q);
        assert(busy == (tap_send || w_q != 2'd0));
    end

`ifdef INDUCT
    wire       tap_w1, tap_w2, tap_popq;
    wire [1:0] tap_wr, tap_rd;
    wire [64:0] tap_m0, tap_m1, tap_m2, tap_m3;
    wire [64:0] tap_dout;
    wire [1:0] r1 = tap_rd + 2'd1;
    function [64:0] word(input [1:0] a, input [64:0] m0, m1, m2, m3);
        word = (a == 2'd0) ? m0 : (a == 2'd1) ? m1 : (a == 2'd2) ? m2 : m3;
    endfunction
    always @(*) if (!init_q) begin
        assert(tap_w1 == (w_q >= 2'd1));
        assert(tap_w2 == (w_q == 2'd2));
        assert(tap_popq == st_q);
        assert(tap_wr == tap_rd + w_q);
        if (w_q >= 2'd1) assert(word(tap_rd, tap_m0, tap_m1, tap_m2, tap_m3) == q0_q);
        if (w_q == 2'd2) assert(word(r1, tap_m0, tap_m1, tap_m2, tap_m3) == q1_q);
        if (st_q) assert(tap_dout == cur_q);
    end
`endif

    // not vacuous: a push dropped behind two waiting, and the second of them framed after it
    reg dq_q;
    always @(posedge clk_i) dq_q <= !rst_i && (dq_q || drop);
    always @(*) if (!init_q) cover(dq_q && tap_load);
endmodule
`default_nettype wire

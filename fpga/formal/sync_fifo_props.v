// Formal harness for sync_fifo (fpga/rtl/sync_fifo.v): the FIFO never loses, duplicates or
// reorders an entry, and refuses a write only while full_o says so (the caller's OVERFLOW).
//
// Reference: an ideal queue (q_q[0] = head, n_q entries) updated from the same requests. Every
// write the FIFO accepts enters the queue; a write is refused only when full_o is high (with
// CHECKED = 1 the caller promises never to write when full nor read when empty, which is
// assumed). Asserted in every cycle: count_o, full_o, empty_o and room_o agree with the queue;
// the cycle after a read, dout_o is the queue's head as it was. Strengthening (needed for
// k-induction, itself proven): the memory words from the read pointer on hold the queue's
// entries in order, the write pointer is read pointer + count, the thermometer is the count.
// Data independence: the FIFO never inspects the data, so WIDTH = 4 stands for any width
// (distinct values are enough to tell a lost, duplicated or reordered entry apart).
`default_nettype none
module sync_fifo_props #(
    parameter AW = 2,
    parameter LUTRAM = 1,
    parameter CHECKED = 0
) (
    input wire       clk_i,
    input wire       rst_i,
    input wire       flush_i,
    input wire       wr_en_i,
    input wire [3:0] din_i,
    input wire       rd_en_i
);
    localparam DEPTH = 1 << AW;
    localparam W = 4;
    wire [W-1:0] dout;
    wire         full, empty, room;
    wire [AW:0]  count;
    sync_fifo #(.WIDTH(W), .AW(AW), .LUTRAM(LUTRAM), .CHECKED(CHECKED)) dut (
        .clk_i(clk_i), .rst_i(rst_i), .flush_i(flush_i), .wr_en_i(wr_en_i), .din_i(din_i),
        .rd_en_i(rd_en_i), .dout_o(dout), .full_o(full), .empty_o(empty), .count_o(count),
        .room_o(room)
    );
    // taps on dut internals, connected by sync_fifo.sby after flattening (no hierarchical refs
    // in yosys): memory words (after memory_map), pointers, thermometer
    wire [W*DEPTH-1:0] tap_mem;     // word k in bits [W*k +: W]
    wire [AW-1:0]  tap_wr_q, tap_rd_q;
    wire [DEPTH:1] tap_th_q;

    reg init_q = 1'b1;
    always @(posedge clk_i) init_q <= 1'b0;
    always @(*) if (init_q) assume(rst_i);

    // reference queue
    reg [W-1:0] q_q [0:DEPTH-1];
    reg [AW:0]  n_q;
    wire acc_wr = wr_en_i && (n_q != DEPTH);
    wire acc_rd = rd_en_i && (n_q != 0);
    always @(*) if (CHECKED != 0 && !rst_i && !flush_i) begin
        assume(!(wr_en_i && n_q == DEPTH));
        assume(!(rd_en_i && n_q == 0));
    end
    integer i;
    always @(posedge clk_i) begin
        if (rst_i || flush_i) begin
            n_q <= 0;
        end else begin
            n_q <= n_q + acc_wr - acc_rd;
            for (i = 0; i < DEPTH; i = i + 1) begin
                // shift out the head on a read; the write lands behind the remaining entries
                if (acc_rd) q_q[i] <= (i + 1 < DEPTH) ? q_q[(i + 1) % DEPTH] : {W{1'b0}};
                if (acc_wr && i == n_q - acc_rd) q_q[i] <= din_i;
            end
        end
    end
    reg         rd_d_q;
    reg [W-1:0] head_d_q;
    always @(posedge clk_i) begin
        rd_d_q <= !rst_i && !flush_i && acc_rd;
        head_d_q <= q_q[0];
    end

    always @(*) if (!init_q) begin
        assert(n_q <= DEPTH);
        assert(count == n_q);
        assert(full == (n_q == DEPTH));
        assert(empty == (n_q == 0));
        assert(room == ((n_q + {{AW{1'b0}}, wr_en_i}) < DEPTH));
        if (rd_d_q) assert(dout == head_d_q);
        // strengthening
        assert(tap_wr_q == tap_rd_q + n_q[AW-1:0]);
    end
    genvar k, m;
    generate
        for (k = 0; k < DEPTH; k = k + 1) begin : g_inv
            // queue entry k is the memory word at rd + k (AW-bit sum: wraps like the pointers);
            // selected by constant slices (a variable part-select would be a multiply in SMT)
            wire [AW-1:0] pos = tap_rd_q + k;
            for (m = 0; m < DEPTH; m = m + 1) begin : g_word
                always @(*) if (!init_q && k < n_q && pos == m)
                    assert(tap_mem[W*m +: W] == q_q[k]);
            end
            always @(*) if (!init_q) assert(tap_th_q[k + 1] == (n_q >= k + 1));
        end
    endgenerate
    // not vacuous: the FIFO fills up, and drains a full queue
    always @(*) if (!init_q) cover(full && rd_d_q);
endmodule
`default_nettype wire

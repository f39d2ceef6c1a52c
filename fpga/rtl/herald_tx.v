// Herald line transmitter of the station, one per line (docs/physical-layer.md section 2).
//
// A herald (t, bell) becomes an 11-byte frame on line_o: marker byte MARKER, t (8 bytes,
// big-endian), bell (1 byte), CRC-8/SMBUS (poly 0x07, init 0) over the 9 bytes of t and bell.
// The line is UART-like (idle high, 8N1, LSB first, BIT_CYCLES cycles per bit: uart_tx with
// CLKS_PER_BIT = BIT_CYCLES, B2B = 1); the bytes of a frame follow each other without idle time
// (a start bit right after the previous stop bit): a frame takes 11 x 10 bit periods, as the
// contract and the twin's station (frame_cycles) have it.
// Heralds decided while a frame is being sent wait in a 2-deep queue (besides the frame being
// sent); a herald that finds the queue full is dropped and drop_o pulses (CNT_HL_DROP).
// A queued herald's frame starts right after the previous frame's last stop bit (back to back).
//
// Structure: the queue is a sync_fifo (4 entries, of which at most 2 wait and 1 is being read
// out: a push never writes the entry being read) in front of crc8_frame_tx (the frame
// sequencer). A pop starts the frame (marker to the UART in the next cycle) and reads the head
// into the FIFO's output register; the frame's shift register takes it one cycle later, before
// the first t byte is loaded (two cycles after the pop at the earliest). So the pop enables only
// a few flip-flops (the ECP5 critical path was a pop that loaded and shifted ~150 of them), and
// the line is cycle for cycle what the former 2-register queue sent (line_o, drop_o, busy_o).
// LUTRAM = 1 keeps the queue in LUT RAM (ECP5), 0 in block RAM (iCE40), as sync_fifo.
`default_nettype none
module herald_tx #(
    parameter       BIT_CYCLES = 4,     // >= 4
    parameter [7:0] MARKER     = 8'hA5,
    parameter       LUTRAM     = 0
) (
    input  wire        clk_i,
    input  wire        rst_i,
    input  wire        push_i,
    input  wire [63:0] t_i,
    input  wire        bell_i,
    output reg         drop_o,
    output wire        busy_o,          // a frame is being sent or waits
    output wire        line_o
);
    wire        sending;                // crc8_frame_tx busy: a frame is being sent
    wire        empty;                  // no herald waits
    wire [64:0] head;                   // {t, bell} read at the pop
    // Heralds waiting, as a thermometer kept here (w1_q: >= 1, w2_q: >= 2; at most 2 wait), not
    // the FIFO's count_o (timing: push -> the write enable -> the count adder -> count_o, then
    // count_o[1] into the drop decision, was 3 LUT levels; w2_q's next value is one LUT of
    // push_i, sending and the flags). w1_q == !empty in every cycle.
    reg         w1_q, w2_q;
    wire        pop = !sending && w1_q;     // (w1_q == !empty)
    // a push that finds 2 waiting and no pop in this cycle (2 waiting => not empty, so no pop
    // means a frame is being sent) is dropped
    wire        drop = push_i && w2_q && sending;
    wire        wr = push_i && !drop;
    reg         pop_q;                  // the pop's head is in the FIFO's output register
    // the flags' next values: one more waiting (a write, no pop) or one less (a pop, no write),
    // as gates rather than an if, so each is one LUT of push_i, sending and the flags (timing:
    // yosys made the if a clock enable, a LUT level in front of the flags' data LUT, with
    // push_i's long route into both; station_top ECP5 HeAP)
    wire        up = wr && !pop;
    wire        dn = pop && !wr;
    wire        w1_d = up || (dn && w2_q) || (!up && !dn && w1_q);
    wire        w2_d = (up && w1_q) || (!up && !dn && w2_q);
    assign busy_o = sending || w1_q;

    always @(posedge clk_i) begin
        if (rst_i) begin
            drop_o <= 1'b0;
            pop_q <= 1'b0;
            w1_q <= 1'b0;
            w2_q <= 1'b0;
        end else begin
            drop_o <= drop;
            pop_q <= pop;
            w1_q <= w1_d;
            w2_q <= w2_d;
        end
    end
`ifndef SYNTHESIS
`ifndef FORMAL
    // (simulation only: the flag equals the logic it replaces in every cycle)
    always @(posedge clk_i)
        if (!rst_i && w1_q == empty) $fatal(1, "herald_tx: w1_q != !empty");
`endif
`endif

    /* verilator lint_off PINCONNECTEMPTY */
    sync_fifo #(.WIDTH(65), .AW(2), .LUTRAM(LUTRAM), .CHECKED(1)) u_q (
        .clk_i(clk_i), .rst_i(rst_i), .flush_i(1'b0), .wr_en_i(wr),
        .din_i({t_i, bell_i}), .rd_en_i(pop), .dout_o(head), .full_o(), .empty_o(empty),
        .count_o(), .room_o()
    );
    // go_i = w1_q (a herald waits): crc8_frame_tx ignores go_i while busy (sending), so this is the pop (one
    // LUT level less into its byte-valid flag)
    crc8_frame_tx #(.N(9), .BIT_CYCLES(BIT_CYCLES), .B2B(1), .MARKER(MARKER),
                    .FAST(LUTRAM)) u_frame (
        .clk_i(clk_i), .rst_i(rst_i), .load_i(pop_q), .data_i({head[64:1], 7'd0, head[0]}),
        .go_i(w1_q), .bad_i(1'b0), .busy_o(sending), .done_o(), .line_o(line_o)
    );
    /* verilator lint_on PINCONNECTEMPTY */
endmodule
`default_nettype wire

// Formal harness for crc8_frame_tx (fpga/rtl/crc8_frame_tx.v): the frame sequencer of the
// station's herald lines (herald_tx, N = 9) and of the node's test streams (test_gen: herald
// loop N = 9, header stream N = 4). Wire format (docs/physical-layer.md sections 2 and 6): a
// frame is MARKER, the N payload bytes most significant first, and CRC-8/SMBUS (poly 0x07, init
// 0, no reflection, no xorout) over the N payload bytes; bad_i sends its complement.
//
// The UART is the abstract one (uart_tx_free.v): ready_o free in every cycle, so the bytes are
// checked where the sequencer hands them to the UART (valid / ready / data: taps), under any
// back-pressure; uart_tx_props.v proves the real UART puts exactly the taken bytes on the line.
//
// Inputs free under the module's contract: go_i any time (ignored while busy_o), load_i while
// busy_o is low or in the cycle right after an accepted go_i (herald_tx loads then, test_gen
// before or with go_i), and each frame loaded (a load_i since the last frame's go + 1 and by its
// own go + 1); data_i and bad_i free in every cycle. Reference: pl_q = the last loaded
// payload, rk_q = bytes the UART took in the running frame, act_q = a frame runs (from the
// cycle after an accepted go_i). Asserted in every cycle:
//  - a byte is taken only inside a frame and only its N + 2 bytes: take k (from 0) is MARKER
//    (k = 0), payload byte k - 1 (MSB first; k = 1..N), then CRC-8 over the N payload bytes sent
//    (the harness's own bitwise CRC, not crc_byte.v), complemented
//    iff bad_i was high in the cycle after the N+1-th take (where the module samples it): frames
//    well formed, bytes in order, none dropped, duplicated or added;
//  - a byte waiting for the UART does not change and is not withdrawn (valid until taken);
//  - no stall: the next byte is offered (valid) in every cycle of a frame except the one right
//    after a take (the marker in the cycle after go_i, each later byte two cycles after the take
//    of the one before: what lets herald_tx send its frames back to back);
//  - busy_o = act_q (high from the cycle after an accepted go_i until the cycle after the last
//    take's next, done_o in that last cycle only).
// INDUCT (task prove*): strengthening invariants on taps into the sequencer (byte index, shift
// register, CRC register, byte register, the one-cycle load / end flags) as functions of the
// reference, so the properties close by k-induction (unbounded: any number of frames, any
// back-pressure, any history).
`default_nettype none
module crc8_frame_tx_props #(
    parameter       N      = 9,
    parameter [7:0] MARKER = 8'hA5
) (
    input wire           clk_i,
    input wire           rst_i,
    input wire           load_i,
    input wire [8*N-1:0] data_i,
    input wire           go_i,
    input wire           bad_i
);
    wire busy, done, line;
    crc8_frame_tx #(.N(N), .BIT_CYCLES(4), .B2B(1), .MARKER(MARKER)) dut (
        .clk_i(clk_i), .rst_i(rst_i), .load_i(load_i), .data_i(data_i), .go_i(go_i),
        .bad_i(bad_i), .busy_o(busy), .done_o(done), .line_o(line)
    );
    // the UART's byte interface (connected by crc8_frame_tx.sby after flattening)
    wire [7:0] tap_byte;
    wire       tap_valid, tap_ready;
    wire       take = tap_valid && tap_ready && !rst_i;

    reg init_q = 1'b1;
    always @(posedge clk_i) init_q <= 1'b0;
    always @(*) if (init_q) assume(rst_i);

    // CRC-8/SMBUS update by one byte, bit by bit (independent of crc_byte.v)
    function [7:0] crc8_step(input [7:0] c, input [7:0] d);
        integer b;
        reg [7:0] r;
        begin
            r = c ^ d;
            for (b = 0; b < 8; b = b + 1)
                r = r[7] ? ((r << 1) ^ 8'h07) : (r << 1);
            crc8_step = r;
        end
    endfunction
    // payload byte j (0 = the first sent, the most significant)
    function [7:0] pbyte(input [8*N-1:0] p, input [4:0] j);
        integer i;
        begin
            pbyte = 8'd0;
            for (i = 0; i < N; i = i + 1)
                if (j == i) pbyte = p[8*(N-1-i) +: 8];
        end
    endfunction

    // reference
    reg           act_q;        // a frame runs (busy_o)
    reg [4:0]     rk_q;         // bytes taken in it
    reg [8*N-1:0] pl_q;         // the payload (last load)
    reg           tk_q;         // a byte was taken in the last cycle
    reg           go_q;         // the last cycle was an accepted go_i
    reg           badc_q;       // bad_i where the CRC byte was formed
    reg  [7:0]    rc_q;         // CRC-8 (init 0) over the payload bytes taken so far
    reg           fresh_q;      // loaded since the last frame's start (go + 1)
    wire          go_acc = go_i && !act_q;
    // contract: a load only while idle or in the cycle after the go; every frame loaded (by then)
    always @(*) if (!rst_i && load_i) assume(!act_q || go_q);
    always @(*) if (!rst_i && go_q) assume(fresh_q || load_i);
    always @(posedge clk_i) begin
        if (rst_i) begin
            act_q <= 1'b0;
            rk_q <= 5'd0;
            pl_q <= {8*N{1'b0}};
            tk_q <= 1'b0;
            go_q <= 1'b0;
            badc_q <= 1'b0;
            rc_q <= 8'd0;
            fresh_q <= 1'b1;            // the reset clears sr_q and pl_q alike
        end else begin
            fresh_q <= !go_q && (load_i || fresh_q);   // a load at go + 1 is this frame's
            tk_q <= take;
            go_q <= go_acc;
            if (load_i) pl_q <= data_i;
            if (take) rk_q <= rk_q + 5'd1;
            if (take && rk_q >= 1 && rk_q <= N) rc_q <= crc8_step(rc_q, tap_byte);
            if (tk_q && rk_q == N + 1) badc_q <= bad_i;
            if (go_acc) begin
                act_q <= 1'b1;
                rk_q <= 5'd0;
                rc_q <= 8'd0;
            end
            if (act_q && tk_q && rk_q == N + 2) begin
                act_q <= 1'b0;
                rk_q <= 5'd0;
            end
        end
    end
    wire [7:0] exp_byte = (rk_q == 0) ? MARKER :
                          (rk_q <= N) ? pbyte(pl_q, rk_q - 5'd1) : (rc_q ^ {8{badc_q}});
    // the byte offered in the last cycle and not taken
    reg       wait_q;
    reg [7:0] wbyte_q;
    always @(posedge clk_i) begin
        wait_q <= !rst_i && tap_valid && !tap_ready;
        wbyte_q <= tap_byte;
    end

    always @(*) if (!init_q && !rst_i) begin
        assert(busy == act_q);
        assert(done == (act_q && tk_q && rk_q == N + 2));
        assert(rk_q <= N + 2);
        if (!act_q) assert(rk_q == 0 && !tk_q);
        if (act_q && rk_q == N + 2) assert(tk_q);     // done in the cycle after the last take
        if (go_q) assert(act_q && rk_q == 0 && !tk_q);   // where a load may still come
        if (act_q && !go_q) assert(!fresh_q);            // the frame has taken its payload
        if (take) begin
            assert(act_q && rk_q < N + 2);
            assert(tap_byte == exp_byte);
        end
        // offered without a stall, and only the frame's bytes
        assert(tap_valid == (act_q && rk_q < N + 2 && !tk_q));
        if (wait_q) assert(tap_valid && tap_byte == wbyte_q);
    end

`ifdef INDUCT
    localparam IW = $clog2(N + 3);
    wire [IW-1:0]  tap_idx;
    wire [8*N-1:0] tap_sr;
    wire [7:0]     tap_crc;
    wire           tap_lddat, tap_ldcrc, tap_ld, tap_end;
    // payload bytes moved into the byte register so far (the load follows the take a cycle later)
    wire [4:0] m = (rk_q == 0) ? 5'd0 : (rk_q <= N) ? rk_q - {4'd0, tk_q} : N;
    always @(*) if (!init_q) begin
        if (fresh_q || (act_q && !go_q)) assert(tap_sr == (pl_q << (8 * m)));
        if (!act_q) begin
            assert(tap_idx == 0 && tap_crc == 8'd0);
            assert(tap_byte == MARKER);
        end else begin
            assert(tap_idx == rk_q);
            // the module's CRC includes the payload byte waiting in byte_q
            assert(tap_crc == ((!tk_q && rk_q >= 1 && rk_q <= N) ? crc8_step(rc_q, tap_byte)
                                                                  : rc_q));
            if (!tk_q && rk_q <= N + 1) assert(tap_byte == exp_byte);
        end
        assert(tap_lddat == (act_q && tk_q && rk_q >= 1 && rk_q <= N));
        assert(tap_ldcrc == (act_q && tk_q && rk_q == N + 1));
        assert(tap_ld == (tap_lddat || tap_ldcrc));
        assert(tap_end == (act_q && tk_q && rk_q == N + 2));
    end
`endif

    // not vacuous: a whole frame, then the marker of the next
    reg one_q;
    always @(posedge clk_i) one_q <= !rst_i && (one_q || done);
    always @(*) if (!init_q) cover(one_q && take && rk_q == 0);
    always @(*) if (!init_q) cover(take && rk_q == N + 1 && badc_q);
endmodule
`default_nettype wire

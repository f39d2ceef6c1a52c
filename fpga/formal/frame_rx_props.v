// Formal harness for frame_rx (fpga/rtl/frame_rx.v): a frame with a bad CRC or bad COBS is never
// delivered, every good frame is delivered with its bytes, and the receiver resynchronises on
// the next delimiter.
//
// Reference: a plain COBS decoder + CRC-16/CCITT-FALSE over the input bytes as they arrive
// (s_*: no pipelining, reset at every delimiter whatever came before). At a delimiter after at
// least one byte the reference's verdict is "good" iff: no UART error, no byte arrived while a
// frame was held (frame_valid_o && !frame_ready_i, the documented rule), the last COBS block is
// complete, 4..FMAX decoded bytes, CRC residue 0. Asserted: frame_valid_o rises exactly 2
// cycles after a good verdict's delimiter and at no other time, with plen_o = length - 4 and
// seq/op/payload equal to the reference's decoded bytes; err_valid_o pulses exactly 2 cycles
// after a bad verdict (code CRC iff only the CRC is wrong, else FRAMING) and at no other time;
// a held frame does not change. Since the reference restarts at every delimiter, "every good
// frame after a delimiter is delivered" is the resynchronisation property.
// Assumed (the interface rule of frame_rx): input bytes (valid or UART error, never both) are
// >= 3 cycles apart; reset only in the first cycle.
// Unbounded (frame_rx.sby, prove / prove_full: k-induction) with the strengthening invariants
// at the end (DUT state = reference state at the settled points of the byte spacing): any
// input history, frames of any length, overlong ones included. prove: PMAX = 1 (good frames of
// 4-5 decoded bytes; the decoder's logic does not depend on PMAX except for the buffer size and
// the overlong check); prove_full: the spec's PMAX = 32.
`default_nettype none
module frame_rx_props #(
    parameter PMAX = 1
) (
    input wire       clk_i,
    input wire       rst_i,
    input wire [7:0] byte_i,
    input wire       byte_valid_i,
    input wire       byte_err_i,
    input wire       frame_ready_i
);
    localparam FMAX = PMAX + 4;
    wire             frame_valid, err_valid;
    wire [7:0]       seq, op, err_code;
    wire [5:0]       plen;
    wire [8*PMAX-1:0] payload;
    frame_rx #(.PMAX(PMAX)) dut (
        .clk_i(clk_i), .rst_i(rst_i), .byte_i(byte_i), .byte_valid_i(byte_valid_i),
        .byte_err_i(byte_err_i), .frame_valid_o(frame_valid), .frame_ready_i(frame_ready_i),
        .seq_o(seq), .op_o(op), .plen_o(plen), .payload_o(payload), .err_valid_o(err_valid),
        .err_code_o(err_code)
    );

    reg init_q = 1'b1;
    always @(posedge clk_i) init_q <= 1'b0;
    always @(*) assume(rst_i == init_q);

    // interface: one event (byte or UART error) at a time, >= 3 cycles apart
    wire ev = byte_valid_i || byte_err_i;
    reg [1:0] since_q = 2'd3;
    always @(posedge clk_i) since_q <= ev ? 2'd0 : (since_q == 2'd3 ? 2'd3 : since_q + 2'd1);
    always @(*) begin
        assume(!(byte_valid_i && byte_err_i));
        if (ev) assume(since_q >= 2'd2);
    end

    function [15:0] crc_step(input [15:0] c, input [7:0] d);
        integer b;
        reg [15:0] r;
        begin
            r = c ^ {d, 8'h00};
            for (b = 0; b < 8; b = b + 1) r = r[15] ? ((r << 1) ^ 16'h1021) : (r << 1);
            crc_step = r;
        end
    endfunction

    // reference decoder
    reg        s_any, s_bad, s_first, s_ff;
    reg [7:0]  s_rem;
    reg [5:0]  s_len;
    reg [15:0] s_crc;
    reg [8*FMAX-1:0] s_bufv;         // decoded byte i at s_bufv[8*i +: 8] (registers, no memory)
    wire       held = frame_valid && !frame_ready_i;
    wire       is_code = s_first || (s_rem == 8'd0);
    wire       emits = is_code ? (!s_first && !s_ff) : 1'b1;
    wire [7:0] dec = is_code ? 8'h00 : byte_i;
    wire       verdict_good = !s_bad && (s_rem == 8'd0) && (s_len >= 6'd4) && (s_crc == 16'd0);
    wire       crc_only = !s_bad && (s_rem == 8'd0) && (s_len >= 6'd4) && (s_crc != 16'd0);
    wire       delim = byte_valid_i && byte_i == 8'h00;
    integer i;
    always @(posedge clk_i) begin
        if (rst_i || (delim && !init_q)) begin
            s_any <= 1'b0; s_bad <= 1'b0; s_first <= 1'b1; s_ff <= 1'b0;
            s_rem <= 8'd0; s_len <= 6'd0; s_crc <= 16'hFFFF;
        end else if (byte_err_i) begin
            s_any <= 1'b1; s_bad <= 1'b1;
        end else if (byte_valid_i) begin
            s_any <= 1'b1;
            if (held) s_bad <= 1'b1;
            if (is_code) begin
                s_rem <= byte_i - 8'd1;
                s_ff <= (byte_i == 8'hFF);
                s_first <= 1'b0;
            end else begin
                s_rem <= s_rem - 8'd1;
            end
            if (emits) begin
                if (s_len == FMAX) s_bad <= 1'b1;      // overlong
                else begin
                    for (i = 0; i < FMAX; i = i + 1) if (i == s_len) s_bufv[8*i +: 8] <= dec;
                    s_len <= s_len + 6'd1;
                    s_crc <= crc_step(s_crc, dec);
                end
            end
        end
    end

    // verdicts, 2 cycles ahead of the DUT's outputs; the good frame's bytes are kept
    reg       g1_q = 1'b0, g2_q = 1'b0, b1_q = 1'b0, b2_q = 1'b0, c1_q = 1'b0, c2_q = 1'b0;
    reg [5:0] glen_q;
    reg [8*FMAX-1:0] gbufv_q;
    always @(posedge clk_i) begin
        g1_q <= !rst_i && delim && s_any && verdict_good;
        b1_q <= !rst_i && delim && s_any && !verdict_good;
        c1_q <= crc_only;
        g2_q <= g1_q; b2_q <= b1_q; c2_q <= c1_q;
        if (!rst_i && delim && s_any && verdict_good) begin
            glen_q <= s_len;
            gbufv_q <= s_bufv;
        end
    end
    reg fv_d_q = 1'b0, held_d_q = 1'b0;
    always @(posedge clk_i) begin
        fv_d_q <= !rst_i && frame_valid;
        held_d_q <= !rst_i && held;
    end

    // internal state of the DUT (connected by frame_rx.sby: connect -set)
    wire [5:0]      tap_len_q, tap_lm4_q;
    wire [7:0]      tap_rem_q;
    wire [15:0]     tap_crc_q;
    wire            tap_first_q, tap_rem0_q, tap_bad_q, tap_any_q, tap_ff_q, tap_full_q,
                    tap_short_q;

`ifndef RESYNC_ONLY   // the resync task proves only the reset-state assertion below
    always @(*) if (!init_q) begin
        // delivery exactly for good frames, with their bytes
        assert((frame_valid && !fv_d_q) == g2_q);
        if (frame_valid && !fv_d_q) begin
            assert(plen == glen_q - 6'd4);
            assert(seq == gbufv_q[7:0]);
            assert(op == gbufv_q[15:8]);
        end
        // error report exactly for bad frames
        assert(err_valid == b2_q);
        if (err_valid) assert(err_code == (c2_q ? 8'd1 : 8'd2));
        // a held frame stays
        if (held_d_q) assert(frame_valid);
    end
    genvar p;
    generate
        for (p = 0; p < PMAX; p = p + 1) begin : g_pl
            always @(*) if (!init_q && frame_valid && !fv_d_q && p + 4 < glen_q)
                assert(payload[8*(PMAX-p)-1 -: 8] == gbufv_q[8*(p+2) +: 8]);
        end
    endgenerate
    reg [7:0] seq_d_q, op_d_q;
    reg [5:0] plen_d_q;
    always @(posedge clk_i) begin
        seq_d_q <= seq; op_d_q <= op; plen_d_q <= plen;
    end
    always @(*) if (!init_q && held_d_q) assert(seq == seq_d_q && op == op_d_q && plen == plen_d_q);

    // Strengthening invariants for k-induction (task prove): they add nothing to the property,
    // they make it inductive. They are stated at the settled points of the byte spacing (>= 2
    // cycles after the last byte: since_q >= 2), where the DUT's pipeline (input register,
    // registered write, buffer / CRC a cycle later) has caught up with the reference: the COBS
    // state, flags and counters equal the reference's, and while the reference saw no error
    // the length, CRC and every decoded byte too; a held frame is the reference's good frame
    // (gbufv_q) and nothing was written since. Between settled points (at most 2 cycles) the
    // state is fixed by the preceding settled one and the inputs, which the induction depth
    // covers.
    // the buffer bytes on the outputs (seq, op, payload: all but the two CRC bytes, which
    // nothing reads: the CRC is checked through crc_q); byte i at dbuf[8*(OMAX-i)-1 -: 8]
    localparam OMAX = PMAX + 2;
    wire [8*OMAX-1:0] dbuf = {seq, op, payload};
    wire            settled = !init_q && since_q >= 2'd2;
    always @(*) if (settled) begin
        assert(tap_first_q == s_first && tap_ff_q == s_ff && tap_rem_q == s_rem);
        assert(tap_rem0_q == (tap_rem_q == 8'd0));
        assert(tap_any_q == s_any && tap_bad_q == s_bad);
        assert(tap_len_q <= FMAX && s_len <= FMAX);
        assert(tap_full_q == (tap_len_q == FMAX) && tap_short_q == (tap_len_q < 6'd4));
        assert(tap_lm4_q == tap_len_q - 6'd4);
        if (!s_any) assert(s_first && !s_ff && s_rem == 8'd0 && !s_bad && s_len == 6'd0
                           && s_crc == 16'hFFFF);
        if (!s_bad) assert(tap_len_q == s_len && tap_crc_q == s_crc);
        if (frame_valid) begin
            assert(!s_any || s_bad);
            assert(tap_len_q == 6'd0);
            assert(glen_q >= 6'd4 && glen_q <= FMAX && plen == glen_q - 6'd4);
        end
    end
    genvar q;
    generate
        for (q = 0; q < OMAX; q = q + 1) begin : g_inv
            always @(*) if (settled) begin
                if (!s_bad && q < s_len) assert(dbuf[8*(OMAX-q)-1 -: 8] == s_bufv[8*q +: 8]);
                if (frame_valid && q < glen_q) assert(dbuf[8*(OMAX-q)-1 -: 8] == gbufv_q[8*q +: 8]);
            end
        end
    endgenerate

`endif
    // resynchronisation for any history (k-induction): 2 cycles after a delimiter byte the
    // decoder is in its reset state, so the next frame is judged as if it were the first after
    // reset (which the prove task checks in full)
    reg dl1_q = 1'b0, dl2_q = 1'b0;
    always @(posedge clk_i) begin
        dl1_q <= !rst_i && delim;
        dl2_q <= dl1_q;
    end
    always @(*) if (!init_q) begin
        assert(!dl2_q || (tap_first_q && tap_rem0_q && !tap_bad_q && !tap_any_q && !tap_ff_q
                          && tap_len_q == 6'd0 && !tap_full_q && tap_short_q
                          && tap_crc_q == 16'hFFFF));
    end

    // not vacuous: a bad frame, then a good one delivered (resynchronisation)
    reg seen_bad_q = 1'b0;
    always @(posedge clk_i) if (!init_q && err_valid) seen_bad_q <= 1'b1;
    always @(*) cover(seen_bad_q && frame_valid && !fv_d_q);
endmodule
`default_nettype wire

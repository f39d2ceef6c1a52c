// Formal harness for the slot pool of header_decoder (fpga/rtl/header_decoder.v): no memory slot
// is handed out twice.
//
// Reference: held_q, the set of slots the host holds: a slot enters it when a HEADER event
// names it and leaves it when a FREE / FREE_MASK (free_i) names it. Asserted: every HEADER event
// names a slot < N_SLOTS that is not held (never handed out twice, never outside the pool).
// Assumed (the contract with cmd_decoder and the host): free_base_i / free_mask_i hold still
// for the 2 cycles before free_i (the decoder presents them from the frame buffer long before),
// and free_i names only held slots (the host frees only slots it was told of; cmd_decoder checks
// with free_ok_o first). The header line, HEADER_EN, the timestamp, the FREE check inputs and
// the ERR_BAD_HEADER count are unconstrained.
// Strengthening for k-induction (proven too): the pool's used bits are the held set plus the
// slot of a HEADER event on its way out; a header about to be allocated gets a slot that is
// free and one-hot-consistent with its index.
// Abstraction: N_SLOTS = 4, FREE_MASK width 16, BIT_CYCLES = 1 (the spec: one sample per cycle,
// headers as close as 60 cycles, the verdict stages of one byte overlapping the next byte's bits)
// and 4 (mid-bit sampling; task prove_b4). The pool logic is the same bit vector for any
// N_SLOTS <= 240; the line timing only decides when headers complete.
`default_nettype none
`include "wire_spec.vh"
module header_decoder_props #(
    parameter BIT_CYCLES = 1,
    parameter N_SLOTS = 4,
    parameter MW = 16,
    parameter FAST = 0              // header_decoder's timing variant (the node's ECP5 builds)
) (
    input wire          clk_i,
    input wire          rst_i,
    input wire          hdr_i,
    input wire          en_i,
    input wire [63:0]   ts_i,
    input wire [31:0]   bad_cnt_i,
    input wire [15:0]   chk_base_i,
    input wire [MW-1:0] chk_mask_i,
    input wire          free_i,
    input wire [15:0]   free_base_i,
    input wire [MW-1:0] free_mask_i
);
    wire         free_ok, cnt_good, cnt_bad, ev_valid;
    wire [7:0]   slots_free, ev_op;
    wire [127:0] ev_payload;
    header_decoder #(.BIT_CYCLES(BIT_CYCLES), .N_SLOTS(N_SLOTS), .MW(MW), .FAST(FAST)) dut (
        .clk_i(clk_i), .rst_i(rst_i), .hdr_i(hdr_i), .en_i(en_i), .blk_i(1'b0), .ts_i(ts_i),
        .bad_cnt_i(bad_cnt_i), .chk_base_i(chk_base_i), .chk_mask_i(chk_mask_i),
        .free_ok_o(free_ok), .free_i(free_i), .free_base_i(free_base_i),
        .free_mask_i(free_mask_i), .slots_free_o(slots_free), .cnt_good_o(cnt_good),
        .cnt_bad_o(cnt_bad), .ev_valid_o(ev_valid), .ev_op_o(ev_op), .ev_payload_o(ev_payload),
        .arr_o(), .arr_seq_o(), .arr_ts_o()
    );
    // taps, connected by header_decoder.sby after flattening
    wire [N_SLOTS-1:0] tap_used_q, tap_free_oh_q;
    wire               tap_act_hdr_q, tap_have_free_q;
    wire [7:0]         tap_free_idx_q;

    reg init_q = 1'b1;
    always @(posedge clk_i) init_q <= 1'b0;
    always @(*) assume(rst_i == init_q);

    // FREE arguments stable for 2 cycles before free_i
    reg [1:0]    fst_q = 2'd0;
    reg [15:0]   fb_d_q;
    reg [MW-1:0] fm_d_q;
    wire same = free_base_i == fb_d_q && free_mask_i == fm_d_q;
    always @(posedge clk_i) begin
        fb_d_q <= free_base_i;
        fm_d_q <= free_mask_i;
        fst_q <= init_q ? 2'd0 : !same ? 2'd0 : (fst_q == 2'd3 ? 2'd3 : fst_q + 2'd1);
    end
    wire fstable = (fst_q >= 2'd2) && same;   // unchanged in this and the 2 cycles before
    wire [N_SLOTS-1:0] named = (free_base_i < N_SLOTS)
                               ? (free_mask_i[N_SLOTS-1:0] << free_base_i[1:0]) : {N_SLOTS{1'b0}};

    reg [N_SLOTS-1:0] held_q;
    wire hdr_ev = ev_valid && ev_op == `HW_OP_HEADER;
    wire [7:0] slot = ev_payload[23:16];       // HEADER payload: seq(4) ts(8) slot(u16) pad(2)
    wire [N_SLOTS-1:0] slot_oh = hdr_ev ? ({{(N_SLOTS-1){1'b0}}, 1'b1} << slot) : {N_SLOTS{1'b0}};
    always @(*) if (!init_q && free_i) begin
        assume(fstable);
        assume((named & ~held_q) == {N_SLOTS{1'b0}});
    end
    always @(posedge clk_i) begin
        if (rst_i) held_q <= {N_SLOTS{1'b0}};
        else held_q <= (held_q & ~(free_i ? named : {N_SLOTS{1'b0}})) | slot_oh;
    end

    always @(*) if (!init_q) begin
        if (hdr_ev) begin
            assert(ev_payload[31:24] == 8'd0 && slot < N_SLOTS);
            assert((held_q & slot_oh) == {N_SLOTS{1'b0}});    // never handed out twice
        end
        // strengthening
        assert(tap_used_q == (held_q | slot_oh));
        // (implications, not `if (tap)`: a tap used directly as an if condition loses its
        // connection in yosys' proc + connect)
        assert(!tap_act_hdr_q || tap_have_free_q);
        assert(!tap_act_hdr_q || tap_free_idx_q < N_SLOTS);
        assert(!tap_act_hdr_q
               || tap_free_oh_q == ({{(N_SLOTS-1){1'b0}}, 1'b1} << tap_free_idx_q));
        assert(!tap_act_hdr_q || (tap_free_oh_q & tap_used_q) == {N_SLOTS{1'b0}});
        assert(!tap_act_hdr_q || !hdr_ev);
    end
    // not vacuous: all slots handed out (every HEADER event path is in the searched space)
    always @(*) if (!init_q) cover(held_q == {N_SLOTS{1'b1}});
endmodule
`default_nettype wire

// Formal harness for the block-mode slot ring (fpga/rtl/slot_ring.v, docs/header-path.md
// section 3), ports only (no taps: it survives rework of the search pipeline and the area work).
//
// Reference: pin_q, the set of pinned slots, and cur_q, the slot of the last arrival (reset:
// N_SLOTS - 1). A pin change (load_i with set / base / mask) is judged as the wire spec says:
// mask == 0 -> pin_done_o with pin_err_o = 1; a named slot >= N_SLOTS -> pin_done_o with 2;
// otherwise chk_ok_o, and after pin_i the named slots are pinned (set) or unpinned, then
// pin_done_o with 0. Asserted:
//  - ring order, skipping pinned slots: whenever nxt_rdy_o && nxt_ok_o, nxt_slot_o is the first
//    slot after cur_q (cur_q + 1, ..., N_SLOTS - 1, 0, ..., cur_q) that is not pinned: a take
//    never hands out a pinned slot (a pinned slot is never overwritten), and after reset the first
//    arrival takes slot 0 (or the first unpinned one);
//  - nxt_rdy_o && !nxt_ok_o only while every slot is pinned (NO_SLOT);
//  - each load gives exactly one verdict (chk_ok_o or pin_done_o with its error), the right one;
//    a change that passed its check ends in exactly one pin_done_o with 0; a rejected change
//    changes nothing; pinned_o = number of pinned slots, free_o = N_SLOTS - pinned_o;
//  - a pin_i under the contract below is never ignored (busy_o low);
//  - the next slot is known (nxt_rdy_o) within NW + 7 cycles of a take or of the end of the
//    clear / a pin change (the search reads at most NW + 1 words).
// Assumed (the contract with hdr_block / cmd_decoder): take_i only while nxt_rdy_o && nxt_ok_o;
// load_i only when no pin change is under way (the decoder waits for pin_done_o); pin_i once
// per passed check, at least a cycle after chk_ok_o and not in the cycle right after a take
// (hdr_block closes its block and drains the event path for >= 5 cycles first: a pin_i right
// after a take would be ignored, busy_o covers the ring's M_FIN cycle); mask_i may change after
// load_i. set_i / base_i / mask_i otherwise free.
// Abstraction: N_SLOTS = 16 with W = 4 (4 words) or W = 8 (2 words of 2 groups), MW = 6; the
// ring's logic is the same for 8192 slots of 16 bits. Bounded model check from reset (the bound
// in slot_ring.sby).
`default_nettype none
module slot_ring_props #(
    parameter N_SLOTS = 16,
    parameter W       = 4,
    parameter MW      = 6,
    parameter LUTRAM  = 0           // 1: the ECP5 build's ring (ram_sdp_oreg, the FAST registers)
) (
    input wire          clk_i,
    input wire          rst_i,
    input wire          take_i,
    input wire          load_i,
    input wire          pin_i,
    input wire          set_i,
    input wire [15:0]   base_i,
    input wire [MW-1:0] mask_i
);
    localparam NW = N_SLOTS / W;
    wire          nxt_rdy, nxt_ok, chk_ok, pin_done, busy;
    wire [15:0]   nxt_slot;
    wire [1:0]    pin_err;
    wire [16:0]   pinned, free;
    slot_ring #(.N_SLOTS(N_SLOTS), .W(W), .MW(MW), .LUTRAM(LUTRAM)) dut (
        .clk_i(clk_i), .rst_i(rst_i), .take_i(take_i), .nxt_rdy_o(nxt_rdy), .nxt_ok_o(nxt_ok),
        .nxt_slot_o(nxt_slot), .load_i(load_i), .pin_i(pin_i), .set_i(set_i), .base_i(base_i),
        .mask_i(mask_i), .chk_ok_o(chk_ok), .pin_done_o(pin_done), .pin_err_o(pin_err),
        .busy_o(busy), .pinned_o(pinned), .free_o(free)
    );

    reg init_q = 1'b1;
    always @(posedge clk_i) init_q <= 1'b0;
    always @(*) assume(rst_i == init_q);

    // ---------------------------------------------------------------- reference
    reg [N_SLOTS-1:0] pin_q;          // pinned slots
    reg [15:0]        cur_q;          // slot of the last arrival
    // pin change under way: 0 none, 1 checking, 2 passed (waiting for pin_i), 3 applying
    reg [1:0]         ph_q;
    reg               r_set_q;
    reg [15:0]        r_base_q;
    reg [MW-1:0]      r_mask_q;
    reg [7:0]         since_q;        // cycles since the search was (re)started
    reg [7:0]         lim_q;          // ... and the bound on its length
    reg               srch_q;         // a search runs (no pin change holds it)

    // the reference's verdict on the loaded change
    reg         v_zero, v_range;
    reg [N_SLOTS-1:0] named;
    integer     i;
    always @* begin
        v_zero = (r_mask_q == {MW{1'b0}});
        v_range = 1'b0;
        named = {N_SLOTS{1'b0}};
        for (i = 0; i < MW; i = i + 1)
            if (r_mask_q[i]) begin
                if ({1'b0, r_base_q} + 17'(i) >= 17'(N_SLOTS)) v_range = 1'b1;
                else named = named | ({{(N_SLOTS-1){1'b0}}, 1'b1} << (r_base_q + 16'(i)));
            end
    end

    // first unpinned slot after cur_q, in ring order
    reg         e_ok;
    reg [15:0]  e_slot;
    reg [15:0]  s;
    integer     n;
    always @* begin
        e_ok = 1'b0;
        e_slot = 16'd0;
        for (n = N_SLOTS; n >= 1; n = n - 1) begin
            s = 16'((32'(cur_q) + n) % N_SLOTS);
            if (!pin_q[s]) begin
                e_ok = 1'b1;
                e_slot = s;
            end
        end
    end

    // number of pinned slots
    reg [16:0] npin;
    integer    c;
    always @* begin
        npin = 17'd0;
        for (c = 0; c < N_SLOTS; c = c + 1) npin = npin + {16'd0, pin_q[c]};
    end

    always @(posedge clk_i) begin
        if (rst_i) begin
            pin_q <= {N_SLOTS{1'b0}};
            cur_q <= 16'(N_SLOTS - 1);
            ph_q <= 2'd0;
            since_q <= 8'd0;
            lim_q <= 8'(2 * NW + 8);  // the clear (NW writes), then the search
            srch_q <= 1'b1;
        end else begin
            if (take_i) cur_q <= nxt_slot;
            if (load_i) begin
                ph_q <= 2'd1;
                r_set_q <= set_i;
                r_base_q <= base_i;
                r_mask_q <= mask_i;
            end
            if (ph_q == 2'd1 && (chk_ok || pin_done)) ph_q <= chk_ok ? 2'd2 : 2'd0;
            if (pin_i) begin
                ph_q <= 2'd3;
                pin_q <= r_set_q ? (pin_q | named) : (pin_q & ~named);
            end
            if (ph_q == 2'd3 && pin_done) ph_q <= 2'd0;
            // search timer: restarted by a take and by the end of a pin change; stopped by pin_i
            since_q <= (since_q == 8'hFF) ? since_q : since_q + 8'd1;
            if (take_i || (ph_q == 2'd3 && pin_done)) begin
                since_q <= 8'd0;
                lim_q <= 8'(NW + 7);
                srch_q <= 1'b1;
            end
            if (pin_i) srch_q <= 1'b0;
            if (nxt_rdy) srch_q <= 1'b0;
        end
    end

    // ---------------------------------------------------------------- contract
    reg pend_pin_q;                   // a cycle has passed since chk_ok_o
    reg take_d_q;
    always @(posedge clk_i) begin
        pend_pin_q <= !rst_i && ph_q == 2'd2;
        take_d_q <= take_i;
    end
    always @(*) begin
        if (take_i) assume(nxt_rdy && nxt_ok && !rst_i);
        if (load_i) assume(ph_q == 2'd0 && !rst_i);
        // (not in the cycle after a take: the ring is then in M_FIN, busy_o is high and a pin_i
        // would be ignored; hdr_block drains the event path for >= 5 cycles after its last take)
        if (pin_i) assume(ph_q == 2'd2 && pend_pin_q && !take_d_q && !rst_i);
    end

    // ---------------------------------------------------------------- properties
    always @(*) if (!init_q) begin
        if (nxt_rdy && nxt_ok) begin
            assert(e_ok && nxt_slot == e_slot);     // ring order, skipping pinned slots
            assert(nxt_slot < N_SLOTS && !pin_q[nxt_slot]);
        end
        if (nxt_rdy && !nxt_ok) assert(!e_ok);     // NO_SLOT only with every slot pinned
        if (chk_ok) assert(ph_q == 2'd1 && !v_zero && !v_range && !pin_done);
        if (pin_done && ph_q == 2'd1) begin
            assert(v_zero || v_range);
            assert(pin_err == (v_zero ? 2'd1 : 2'd2));
        end
        if (pin_done) assert(ph_q == 2'd1 || (ph_q == 2'd3 && pin_err == 2'd0));
        if (pin_i) assert(!busy);                  // a pin change is never ignored
        if (ph_q == 2'd0 && !busy) assert(pinned == npin);
        if (srch_q && ph_q == 2'd0) assert(since_q <= lim_q);
    end
    // the free count follows the pinned count a cycle later
    always @(posedge clk_i) if (!init_q && !rst_i && !$past(rst_i))
        assert(free == 17'(N_SLOTS) - $past(pinned));

    // not vacuous: a take of a slot past a pinned one after a pin change, and NO_SLOT
    always @(*) if (!init_q) begin
        cover(take_i && pin_q != {N_SLOTS{1'b0}} && nxt_slot != cur_q + 16'd1);
        cover(nxt_rdy && !nxt_ok);
    end
endmodule
`default_nettype wire

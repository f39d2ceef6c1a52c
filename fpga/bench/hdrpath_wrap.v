// Timing wrapper (not part of any top): hdr_block + slot_ring + blk_tx wired as in top.v's
// block-mode path, every other input from a shift register fed by one pin (so inputs come from
// flip-flops, as in top) and every output registered and folded into one pin by a two-stage
// XOR tree (so nothing is optimised away). For nextpnr runs of the block-mode header path alone
// (fpga/bench/hdrpath_pnr.sh, fpga/README.md "ECP5 Fmax, eighth session").
`default_nettype none
module hdrpath_wrap #(
    parameter NB = 8,
    parameter LUTRAM = 1,
    parameter RING_SLOTS = 8192,
    parameter MW = 240
) (
    input  wire clk_i,
    input  wire si_i,
    output reg  so_o
);
    localparam NI = 64 + 1 + 32 + 1 + 1 + 32 + 64 + 1 + 1 + 1 + 16 + MW + 1 + 8 + 1 + 1 + 1;
    reg [NI-1:0] sh_q;
    always @(posedge clk_i) sh_q <= {sh_q[NI-2:0], si_i};
    wire        rst = sh_q[0];
    wire [63:0] ts = sh_q[64:1];
    wire        en = sh_q[65];
    wire [31:0] flush = sh_q[97:66];
    wire        clr = sh_q[98];
    wire        arr = sh_q[99];
    wire [31:0] arr_seq = sh_q[131:100];
    wire [63:0] arr_ts = sh_q[195:132];
    wire        bad = sh_q[196];
    wire        load = sh_q[197];
    wire        set = sh_q[198];
    wire [15:0] base = sh_q[214:199];
    wire [MW-1:0] mask = sh_q[214+MW:215];
    wire        bvalid = sh_q[215+MW];
    wire [7:0]  seq = sh_q[223+MW:216+MW];
    wire        obusy = sh_q[224+MW];
    wire        bready = sh_q[225+MW];

    wire pin_go, pin_done, nxt_rdy, nxt_ok, take, tok, lost, cnt_blk, ns_valid, drop, chk_ok;
    wire busy, rel, bvalid_o, bready_o;
    wire [15:0] nxt_slot;
    wire [31:0] ns_seq;
    wire [6:0] rd_off;
    wire [7:0] rd_byte, byte_o;
    wire [1:0] pin_err;
    wire [16:0] pinned, free;
    hdr_block #(.NB(NB), .LUTRAM(LUTRAM), .RL(3)) u_blk (
        .clk_i(clk_i), .rst_i(rst), .ts_i(ts), .en_i(en), .flush_i(flush), .clr_i(clr),
        .arr_i(arr), .arr_seq_i(arr_seq), .arr_ts_i(arr_ts), .bad_i(bad), .close_i(chk_ok),
        .pin_go_o(pin_go), .pin_done_i(pin_done), .nxt_rdy_i(nxt_rdy), .nxt_ok_i(nxt_ok),
        .nxt_slot_i(nxt_slot), .take_o(take), .tok_o(tok), .lost_o(lost), .cnt_blk_o(cnt_blk),
        .ns_valid_o(ns_valid), .ns_seq_o(ns_seq), .drop_o(drop), .rd_off_i(rd_off),
        .rd_byte_o(rd_byte), .rel_i(rel)
    );
    slot_ring #(.N_SLOTS(RING_SLOTS), .MW(MW), .LUTRAM(LUTRAM)) u_ring (
        .clk_i(clk_i), .rst_i(rst), .take_i(take), .nxt_rdy_o(nxt_rdy), .nxt_ok_o(nxt_ok),
        .nxt_slot_o(nxt_slot), .load_i(load), .pin_i(pin_go), .set_i(set), .base_i(base),
        .mask_i(mask), .chk_ok_o(chk_ok), .pin_done_o(pin_done), .pin_err_o(pin_err),
        .busy_o(busy), .pinned_o(pinned), .free_o(free)
    );
    blk_tx #(.RL(3), .LUTRAM(LUTRAM)) u_btx (
        .clk_i(clk_i), .rst_i(rst), .valid_i(bvalid), .ready_o(bready_o), .seq_i(seq),
        .rd_off_o(rd_off), .rd_byte_i(rd_byte), .rel_o(rel), .other_busy_i(obusy),
        .byte_o(byte_o), .byte_valid_o(bvalid_o), .byte_ready_i(bready)
    );
    localparam NO = 112;            // 108 output bits, padded to whole bytes
    reg [NO-1:0] o_q;
    reg [NO/8-1:0] x_q;
    always @(posedge clk_i) begin
        o_q <= {4'd0, pin_go, pin_done, nxt_rdy, nxt_ok, take, tok, lost, cnt_blk, ns_valid, drop,
                chk_ok, busy, rel, bvalid_o, bready_o, 1'b0, nxt_slot, ns_seq, pin_err, pinned,
                free, byte_o};
        so_o <= ^x_q;
    end
    genvar j;
    generate for (j = 0; j < NO / 8; j = j + 1) begin : g_x
        always @(posedge clk_i) x_q[j] <= ^o_q[8*j +: 8];
    end endgenerate
endmodule
`default_nettype wire

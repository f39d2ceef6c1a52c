// Block encoder of the block-mode header path (wire v4, docs/header-path.md section 2).
//
// Arrivals (well-formed headers: seq, ts from header_decoder) are recorded in the open block:
// the first one opens it (seq0, ts0, slot0 = the ring slot it takes, n = 1, used = 0); each later
// one with d = (seq - last_seq - 1) mod 2^32 appends floor(d / 31) skip bytes 0xF8 and one entry
// byte (d mod 31) << 3 | (ts & 7), unless d > 124, its bytes do not fit in the 48 entry bytes or
// ts - ts0 >= BLOCK_FLUSH: then the block is closed first and a new one opens at this arrival.
// The open block is also closed BLOCK_FLUSH + LAT cycles after ts0 (LAT: an arrival whose header
// ended before ts0 + BLOCK_FLUSH is still in the header decoder for a few cycles, and must join the
// block, as in the twin; it does because the comparison above uses the arrival's ts), when
// close_i asks (PIN_MASK / UNPIN_MASK, before the change) and when en_i (CONTROL.HDR_BLOCK &&
// HEADER_EN) falls. Malformed headers (bad_i) count in the next closed block's bad (saturating).
// An arrival when every ring slot is pinned takes no slot and is not recorded: ERROR(NO_SLOT,
// info = seq) on the ns_* event port.
//
// Blocks are written into NB buffers of 128 bytes in block RAM, the 67 HDR_BLOCK payload bytes at
// offsets 0..66 (blk, seq0, ts0, slot0, n, used, bad, entries; unused entry bytes are not
// written: blk_tx sends them as 0): seq0 / ts0 / slot0 when the block opens, each entry byte at
// its arrival, blk / n / used / bad at the close. A closed block pulses tok_o (event_arb queues
// one HDR_BLOCK token per pulse into the event FIFO, never dropping it) and stays in its buffer
// until blk_tx has sent it (rel_i); buffers are used and released in order, so the token needs no
// index. A block that opens while every buffer still holds an unsent block is lost (whole: its
// bytes are not stored), counted at its close by lost_o (EVT_LOST, an event seq, the EVENT_OVERFLOW
// report) and by the gap in blk, which every closed block consumes (cnt_blk_o: CNT_BLOCKS).
//
// Pin changes: close_i (the command decoder executes PIN_MASK / UNPIN_MASK) -> an arrival that was
// already pending is recorded first, then the open block is closed, then the event path is waited
// for until it holds nothing (evq_idle_i for 4 cycles: the block's token has been read by tx_arb,
// so the block frame goes out before the command's response), then pin_go_o starts the ring's
// change; arrivals wait (one pending) until pin_done_i.
//
// Arrivals must be >= ~700 cycles apart (one is held while a pin change runs, <= 690 cycles with
// the default ring): a header takes 60 header bit periods (960 cycles at the spec's 16). A second
// arrival while one is pending is dropped and pulses drop_o (never seen with the spec timing).
`default_nettype none
`include "wire_spec.vh"
module hdr_block #(
    parameter NB  = 8,              // block buffers (power of 2), 128 bytes each
    parameter LAT = 8               // timer margin over the header decoder's latency (cycles)
) (
    input  wire          clk_i,
    input  wire          rst_i,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire [63:0]   ts_i,          // (the timer uses the low 32 bits)
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire          en_i,
    input  wire [31:0]   flush_i,       // BLOCK_FLUSH
    input  wire          clr_i,         // CLEAR_COUNTERS: blk restarts at 0
    input  wire          arr_i,
    input  wire [31:0]   arr_seq_i,
    input  wire [63:0]   arr_ts_i,
    input  wire          bad_i,
    // pin changes
    input  wire          close_i,
    input  wire          evq_idle_i,
    output reg           pin_go_o,
    input  wire          pin_done_i,
    // slot ring
    input  wire          nxt_rdy_i,
    input  wire          nxt_ok_i,
    input  wire [15:0]   nxt_slot_i,
    output reg           take_o,
    // events and counts
    output reg           tok_o,
    output reg           lost_o,
    output reg           cnt_blk_o,
    output reg           ns_valid_o,
    output reg  [127:0]  ns_payload_o,
    output reg           drop_o,
    // buffer read port (blk_tx): the oldest unsent block
    input  wire [6:0]    rd_off_i,
    output reg  [7:0]    rd_byte_o,     // one cycle after rd_off_i
    input  wire          rel_i
);
    localparam BW = (NB > 1) ? $clog2(NB) : 1;

    // ------------------------------------------------------------ block buffers (block RAM)
    (* ram_style = "block", no_rw_check *)
    reg [7:0] mem_q [0:NB*128-1];
    reg          we_q;
    reg [6:0]    wo_a_q;                // write offset
    reg [7:0]    wd_q;
    reg [BW-1:0] wb_q, rb_q;            // buffer being written / oldest unsent
    reg [BW:0]   nfull_q;               // closed blocks not yet sent
    always @(posedge clk_i) begin
        if (we_q) mem_q[{wb_q, wo_a_q}] <= wd_q;
        rd_byte_o <= mem_q[{rb_q, rd_off_i}];
    end

    // ------------------------------------------------------------ state
    localparam [3:0] S_IDLE = 4'd0, S_A1 = 4'd1, S_A2 = 4'd2, S_A3 = 4'd3, S_OPEN = 4'd4,
                     S_OW = 4'd5, S_APP = 4'd6, S_CLOSE = 4'd7, S_DRAIN = 4'd8, S_PIN = 4'd9;
    reg [3:0]   st_q;
    reg         pend_q, pre_q;          // an arrival waits; it was pending when close_i came
    reg [31:0]  p_seq_q;
    reg [63:0]  p_ts_q;
    reg         creq_q;                 // a close for a pin change is asked for
    reg         open_q, lost_q;
    reg [31:0]  ts0_lo_q, last_q;
    reg [7:0]   n_q;
    reg [5:0]   used_q;
    reg [7:0]   bad_q;
    reg [15:0]  blk_q;
    reg [111:0] hsr_q;                  // seq0, ts0, slot0 being written
    reg [3:0]   k_q;                    // bytes left to write
    reg         then_open_q;
    reg [31:0]  d_q, el_q;
    reg         big_q, fl_q;
    reg [2:0]   q_q;                    // skip bytes
    reg [4:0]   r_q;                    // d mod 31
    reg [2:0]   idle_cnt_q;
    // flush timer: elapsed cycles since ts0, compared with BLOCK_FLUSH + LAT
    reg [31:0]  el_t_q;
    reg [32:0]  fl_lat_q;
    reg [1:0]   arm_q;
    reg         tmr_q;

    wire pend_ok = pend_q && (!creq_q || pre_q) && !(st_q == S_PIN || st_q == S_DRAIN);
    wire [7:0] entry = {r_q, p_ts_q[2:0]};
    wire [6:0] fit_end = {1'b0, used_q} + {4'd0, q_q} + 7'd1;   // entry bytes after appending

    always @(posedge clk_i) begin
        we_q <= 1'b0;
        take_o <= 1'b0;
        tok_o <= 1'b0;
        lost_o <= 1'b0;
        cnt_blk_o <= 1'b0;
        ns_valid_o <= 1'b0;
        drop_o <= 1'b0;
        pin_go_o <= 1'b0;
        el_t_q <= ts_i[31:0] - ts0_lo_q;
        fl_lat_q <= {1'b0, flush_i} + 33'(LAT);
        arm_q <= {arm_q[0], 1'b1};
        tmr_q <= arm_q[1] && open_q && ({1'b0, el_t_q} >= fl_lat_q);
        if (rst_i) begin
            st_q <= S_IDLE;
            {pend_q, pre_q, creq_q, open_q, lost_q, then_open_q, tmr_q} <= 7'd0;
            wb_q <= {BW{1'b0}};
            rb_q <= {BW{1'b0}};
            nfull_q <= {(BW+1){1'b0}};
            bad_q <= 8'd0;
            blk_q <= 16'd0;
            n_q <= 8'd0;
            used_q <= 6'd0;
            last_q <= 32'd0;
            ts0_lo_q <= 32'd0;
            ns_payload_o <= 128'd0;
            idle_cnt_q <= 3'd0;
        end else begin
            if (clr_i) blk_q <= 16'd0;
            if (bad_i && bad_q != 8'hFF) bad_q <= bad_q + 8'd1;
            if (close_i) begin
                creq_q <= 1'b1;
                pre_q <= pend_q;
            end
            nfull_q <= nfull_q + {{BW{1'b0}}, tok_o} - {{BW{1'b0}}, rel_i};
            if (rel_i) rb_q <= rb_q + 1'b1;
            case (st_q)
                S_IDLE: begin
                    if (pend_ok) begin
                        if (nxt_rdy_i) st_q <= S_A1;
                    end else if (open_q && (creq_q || !en_i || tmr_q)) begin
                        then_open_q <= 1'b0;
                        k_q <= 4'd0;
                        st_q <= S_CLOSE;
                    end else if (creq_q) begin
                        idle_cnt_q <= 3'd0;
                        st_q <= S_DRAIN;
                    end
                end
                S_A1: begin
                    d_q <= p_seq_q - last_q - 32'd1;
                    el_q <= p_ts_q[31:0] - ts0_lo_q;
                    st_q <= S_A2;
                end
                S_A2: begin
                    big_q <= (d_q[31:7] != 25'd0) || (d_q[6:0] > 7'd124);
                    q_q <= {2'd0, d_q[6:0] >= 7'd31} + {2'd0, d_q[6:0] >= 7'd62}
                         + {2'd0, d_q[6:0] >= 7'd93} + {2'd0, d_q[6:0] >= 7'd124};
                    fl_q <= (el_q >= flush_i);
                    st_q <= S_A3;
                end
                S_A3: begin
                    r_q <= 5'(d_q[6:0] - 7'd31 * {4'd0, q_q});
                    k_q <= {1'b0, q_q};
                    if (!nxt_ok_i) begin
                        ns_valid_o <= 1'b1;
                        ns_payload_o <= {`HW_ERR_NO_SLOT, p_seq_q, 88'd0};
                        pend_q <= 1'b0;
                        pre_q <= 1'b0;
                        st_q <= S_IDLE;
                    end else if (!open_q) begin
                        st_q <= S_OPEN;
                    end else if (big_q || fl_q || fit_end > 7'd48) begin
                        then_open_q <= 1'b1;
                        k_q <= 4'd0;
                        st_q <= S_CLOSE;
                    end else begin
                        st_q <= S_APP;
                    end
                end
                S_OPEN: begin
                    take_o <= 1'b1;
                    open_q <= 1'b1;
                    // (a block closed last cycle is counted by tok_o: nfull_q counts it next cycle)
                    lost_q <= (nfull_q + {{BW{1'b0}}, tok_o} >= (BW+1)'(NB));
                    hsr_q <= {p_seq_q, p_ts_q, nxt_slot_i};
                    ts0_lo_q <= p_ts_q[31:0];
                    arm_q <= 2'b00;
                    last_q <= p_seq_q;
                    n_q <= 8'd1;
                    used_q <= 6'd0;
                    pend_q <= 1'b0;
                    pre_q <= 1'b0;
                    wo_a_q <= 7'd1;         // first write: offset 2
                    k_q <= 4'd13;
                    st_q <= S_OW;
                end
                S_OW: begin
                    we_q <= !lost_q;
                    wo_a_q <= wo_a_q + 7'd1;
                    wd_q <= hsr_q[111:104];
                    hsr_q <= {hsr_q[103:0], 8'd0};
                    k_q <= k_q - 4'd1;
                    if (k_q == 4'd0) st_q <= S_IDLE;
                end
                S_APP: begin
                    we_q <= !lost_q;
                    wo_a_q <= 7'd19 + {1'b0, used_q};
                    wd_q <= (k_q == 4'd0) ? entry : 8'hF8;
                    used_q <= used_q + 6'd1;
                    k_q <= k_q - 4'd1;
                    if (k_q == 4'd0) begin
                        n_q <= n_q + 8'd1;
                        last_q <= p_seq_q;
                        take_o <= 1'b1;
                        pend_q <= 1'b0;
                        pre_q <= 1'b0;
                        st_q <= S_IDLE;
                    end
                end
                S_CLOSE: begin              // blk (0, 1), n, used, bad (16..18)
                    we_q <= !lost_q;
                    k_q <= k_q + 4'd1;
                    case (k_q[2:0])
                        3'd0: begin wo_a_q <= 7'd0;  wd_q <= blk_q[15:8]; end
                        3'd1: begin wo_a_q <= 7'd1;  wd_q <= blk_q[7:0]; end
                        3'd2: begin wo_a_q <= 7'd16; wd_q <= n_q; end
                        3'd3: begin wo_a_q <= 7'd17; wd_q <= {2'd0, used_q}; end
                        3'd4: begin
                            wo_a_q <= 7'd18;
                            wd_q <= bad_q;
                            bad_q <= bad_i ? 8'd1 : 8'd0;
                        end
                        default: ;
                    endcase
                    if (k_q == 4'd5) begin  // (the last write was issued a cycle ago)
                        we_q <= 1'b0;
                        open_q <= 1'b0;
                        cnt_blk_o <= 1'b1;
                        blk_q <= clr_i ? 16'd0 : blk_q + 16'd1;
                        if (lost_q) lost_o <= 1'b1;
                        else tok_o <= 1'b1;
                        st_q <= then_open_q ? S_OPEN : S_IDLE;
                    end
                end
                S_DRAIN: begin              // block token (if any) through the event path
                    idle_cnt_q <= evq_idle_i ? idle_cnt_q + 3'd1 : 3'd0;
                    if (idle_cnt_q == 3'd4) begin
                        pin_go_o <= 1'b1;
                        creq_q <= 1'b0;
                        st_q <= S_PIN;
                    end
                end
                S_PIN: if (pin_done_i) st_q <= S_IDLE;
                default: st_q <= S_IDLE;
            endcase
            // the buffer of a block written by a close is the next one (after its last write)
            if (st_q == S_CLOSE && k_q == 4'd5 && !lost_q) wb_q <= wb_q + 1'b1;
            // arrivals
            if (arr_i) begin
                if (pend_q && !((st_q == S_A3 && !nxt_ok_i) || st_q == S_OPEN
                                || (st_q == S_APP && k_q == 4'd0)))
                    drop_o <= 1'b1;
                pend_q <= 1'b1;
                pre_q <= 1'b0;
                p_seq_q <= arr_seq_i;
                p_ts_q <= arr_ts_i;
            end
        end
    end
endmodule
`default_nettype wire

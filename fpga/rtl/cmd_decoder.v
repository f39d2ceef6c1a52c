// Command decoder (spec [commands], retry rule in the spec header).
//
// Takes good frames from frame_rx, one at a time, when the response slot is free, and answers each
// with exactly one response (seq echoed). Order of checks (same as the software twin):
// unknown opcode -> NAK(BAD_OPCODE); wrong payload length -> NAK(BAD_LENGTH); same seq as the
// previous command and not REG_READ/TIME -> the previous response again, nothing executed;
// a response/event opcode -> NAK(BAD_OPCODE); otherwise execute. Bad frames from frame_rx
// (CRC/FRAMING) count in ERR_CRC and become ERROR(code, info = ERR_CRC after the increment).
//
// Pipeline (for timing): cycle A accepts the frame and registers the decoded flags, fields and the
// register read, and the FREE slot check the header decoder made on the frame buffer; cycle B decides (response kind, NAK code) and registers the action strobes
// (push/abort/free/reg write), which take effect in cycle C; cycle C writes the response. FIFO-full
// and slot checks are made in B; only this decoder pushes or frees, so they still hold in C.
// FREE / FREE_MASK: chk_base_o / chk_mask_o are computed every cycle from the frame buffer and the
// header decoder answers free_ok_i 4 cycles later. Payload bytes are final at least two UART byte
// times (the CRC bytes and the delimiter follow them) before frame_valid_i, so the answer describes
// the held frame at stage A; the slots are freed from the same registers in cycle C, before the
// next frame's first payload byte can arrive (seq and opcode come first). After a free, the
// decoder takes no frame for 3 cycles, so the next check sees the freed slots.
`default_nettype none
`include "wire_spec.vh"
module cmd_decoder #(
    parameter MW = 8 * (`HW_LEN_FREE_MASK - 2)  // FREE_MASK mask bits
) (
    input  wire         clk_i,
    input  wire         rst_i,
    input  wire [63:0]  ts_i,
    // from frame_rx
    input  wire         frame_valid_i,
    output wire         frame_ready_o,
    input  wire [7:0]   seq_i,
    input  wire [7:0]   op_i,
    input  wire [5:0]   plen_i,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire [255:0] payload_i,       // only the first 18 bytes are ever used
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire         rx_err_i,
    input  wire [7:0]   rx_err_code_i,
    // register file
    output wire [7:0]   reg_addr_o,      // read address (stage A)
    output wire [7:0]   reg_waddr_o,     // write address (with reg_we_o)
    output wire         reg_we_o,
    output wire [31:0]  reg_wdata_o,
    input  wire [31:0]  reg_rdata_i,
    input  wire         reg_rd_ok_i,
    input  wire         reg_wr_ok_i,
    input  wire [31:0]  err_crc_i,
    output wire         inc_crc_o,
    output wire         inc_overflow_o,
    // scheduler
    output wire         push_o,
    output wire [63:0]  t_start_o,
    output wire [31:0]  count_o,
    output wire [31:0]  period_o,
    output wire [15:0]  window_o,
    input  wire         sched_full_i,
    output wire         abort_o,
    // header decoder slots
    // slots named by the FREE / FREE_MASK frame in the buffer (FREE: mask 1); also what free_o
    // frees (the buffer holds still until then, see the pipeline note above)
    output reg  [15:0]  chk_base_o,
    output reg  [MW-1:0] chk_mask_o,
    input  wire         free_ok_i,       // header decoder: all of them allocated (registered)
    output wire         free_o,
    // response to tx_arb
    output reg          resp_valid_o,
    input  wire         resp_ready_i,
    output reg  [7:0]   resp_seq_o,
    output reg  [7:0]   resp_op_o,
    output reg  [5:0]   resp_len_o,
    output reg  [63:0]  resp_pl_o,
    // link-error events to event_arb
    output reg          ev_valid_o,
    output reg  [7:0]   ev_op_o,
    output reg  [127:0] ev_payload_o
);
    reg  busy_q;                // stage B holds a command
    reg  c_q;                   // stage C holds a command (response being written)
    reg  [1:0] fhold_q;         // cycles left after a free before the next frame is taken
    wire acc = frame_valid_i && !resp_valid_o && !busy_q && !c_q && (fhold_q == 2'd0);
    assign frame_ready_o = !resp_valid_o && !busy_q && !c_q && (fhold_q == 2'd0);
    // stage B -> C: response kind (one-hot) and NAK code
    reg  c_retry_q, c_val_q, c_time_q, c_ack_q, c_nak_q;
    reg [7:0] c_code_q;

    // opcode table: known, is a command, payload length
    reg       known, is_cmd;
    reg [5:0] len;
    always @* begin
        known = 1'b1;
        is_cmd = 1'b1;
        len = 6'd0;
        case (op_i)
            `HW_OP_REG_READ:   len = `HW_LEN_REG_READ;
            `HW_OP_REG_WRITE:  len = `HW_LEN_REG_WRITE;
            `HW_OP_SCHEDULE:   len = `HW_LEN_SCHEDULE;
            `HW_OP_ABORT:      len = `HW_LEN_ABORT;
            `HW_OP_FREE:       len = `HW_LEN_FREE;
            `HW_OP_FREE_MASK:  len = `HW_LEN_FREE_MASK;
            `HW_OP_TIME:       len = `HW_LEN_TIME;
            `HW_OP_ACK:        begin is_cmd = 1'b0; len = `HW_LEN_ACK; end
            `HW_OP_NAK:        begin is_cmd = 1'b0; len = `HW_LEN_NAK; end
            `HW_OP_REG_VALUE:  begin is_cmd = 1'b0; len = `HW_LEN_REG_VALUE; end
            `HW_OP_TIME_VALUE: begin is_cmd = 1'b0; len = `HW_LEN_TIME_VALUE; end
            `HW_OP_HERALD:     begin is_cmd = 1'b0; len = `HW_LEN_HERALD; end
            `HW_OP_DONE:       begin is_cmd = 1'b0; len = `HW_LEN_DONE; end
            `HW_OP_LATE:       begin is_cmd = 1'b0; len = `HW_LEN_LATE; end
            `HW_OP_HEADER:     begin is_cmd = 1'b0; len = `HW_LEN_HEADER; end
            `HW_OP_ERROR:      begin is_cmd = 1'b0; len = `HW_LEN_ERROR; end
            default:           begin known = 1'b0; is_cmd = 1'b0; end
        endcase
    end

    reg       last_v_q;
    reg [7:0] last_seq_q;
    wire retry = last_v_q && (seq_i == last_seq_q) && (op_i != `HW_OP_REG_READ) && (op_i != `HW_OP_TIME);

    wire [63:0] f_t_start = payload_i[255:192];
    wire [31:0] f_count   = payload_i[191:160];
    wire [31:0] f_period  = payload_i[159:128];
    wire [15:0] f_window  = payload_i[127:112];
    assign reg_addr_o = payload_i[255:248];

    // SCHEDULE argument check, in two registered steps that run every cycle on the frame buffer
    // (timing: window + 2, then the compare: one carry chain each). frame_rx writes its last
    // byte >= 3 cycles before frame_valid_i rises when its input bytes are >= 3 cycles apart (a
    // UART byte takes 10 bit times), so barg_q describes the held frame when stage A samples it.
    localparam MG = (MW + 15) / 16;
    wire [16*MG-1:0] chk_mask_pad = {{(16*MG-MW){1'b0}}, chk_mask_o};
    reg [MG-1:0] mnz_q;          // 16-bit groups of chk_mask_o with a set bit (timing)
    integer gi;
    reg [32:0] wp2_q;
    reg        cw0_q, barg_q;
    always @(posedge clk_i) begin
        wp2_q  <= {17'd0, f_window} + 33'd2;
        cw0_q  <= (f_count == 32'd0) || (f_window == 16'd0);
        barg_q <= cw0_q || ({1'b0, f_period} < wp2_q);
        // FREE / FREE_MASK: the slots to check (answer free_ok_i one cycle later, still >= 1
        // cycle before stage A, same argument as barg_q)
        chk_base_o <= payload_i[255:240];
        chk_mask_o <= (op_i == `HW_OP_FREE_MASK) ? payload_i[239:240-MW] : {{(MW-1){1'b0}}, 1'b1};
        for (gi = 0; gi < MG; gi = gi + 1) mnz_q[gi] <= |chk_mask_pad[16*gi +: 16];
    end

    // ---------------------------------------------------------------- stage A registers
    reg [7:0]  seq_a, op_a, b0_a;
    reg        known_a, is_cmd_a, len_ok_a, retry_a, bad_arg_a, rd_ok_a, wr_ok_a;
    reg        free_ok_a, mask0_a;
    reg [31:0] rdata_a, wdata_a;
    reg [63:0] t_start_a;
    reg [31:0] count_a, period_a;
    reg [15:0] window_a;

    // ---------------------------------------------------------------- stage B -> C actions
    reg push_q, abort_q, free_q, we_q, ovf_q;
    assign push_o = push_q;
    assign abort_o = abort_q;
    assign free_o = free_q;

    assign reg_we_o = we_q;
    assign reg_waddr_o = b0_a;
    assign reg_wdata_o = wdata_a;
    assign t_start_o = t_start_a;
    assign count_o = count_a;
    assign period_o = period_a;
    assign window_o = window_a;
    assign inc_overflow_o = ovf_q;
    assign inc_crc_o = rx_err_i;


    always @(posedge clk_i) begin
        ev_valid_o <= 1'b0;
        push_q <= 1'b0;
        abort_q <= 1'b0;
        free_q <= 1'b0;
        we_q <= 1'b0;
        ovf_q <= 1'b0;
        if (rst_i) begin
            busy_q <= 1'b0;
            c_q <= 1'b0;
            {c_retry_q, c_val_q, c_time_q, c_ack_q, c_nak_q} <= 5'd0;
            c_code_q <= 8'd0;
            resp_valid_o <= 1'b0;
            resp_seq_o <= 8'd0;
            resp_op_o <= 8'd0;
            resp_len_o <= 6'd0;
            resp_pl_o <= 64'd0;
            last_v_q <= 1'b0;
            last_seq_q <= 8'd0;
            ev_op_o <= 8'd0;
            ev_payload_o <= 128'd0;
            seq_a <= 8'd0; op_a <= 8'd0; b0_a <= 8'd0;
            {known_a, is_cmd_a, len_ok_a, retry_a, bad_arg_a, rd_ok_a, wr_ok_a} <= 7'd0;
            {free_ok_a, mask0_a} <= 2'd0;
            fhold_q <= 2'd0;
            rdata_a <= 32'd0; wdata_a <= 32'd0;
            t_start_a <= 64'd0; count_a <= 32'd0; period_a <= 32'd0; window_a <= 16'd0;
        end else begin
            if (resp_valid_o && resp_ready_i) resp_valid_o <= 1'b0;
            fhold_q <= free_q ? 2'd3 : (fhold_q == 2'd0 ? 2'd0 : fhold_q - 2'd1);
            if (rx_err_i) begin
                ev_valid_o <= 1'b1;
                ev_op_o <= `HW_OP_ERROR;
                ev_payload_o <= {rx_err_code_i, err_crc_i + 32'd1, 88'd0};
            end
            // stage A
            if (acc) begin
                busy_q <= 1'b1;
                seq_a <= seq_i;
                op_a <= op_i;
                b0_a <= payload_i[255:248];
                known_a <= known;
                is_cmd_a <= is_cmd;
                len_ok_a <= (plen_i == len);
                retry_a <= retry;
                bad_arg_a <= barg_q;
                rd_ok_a <= reg_rd_ok_i;
                wr_ok_a <= reg_wr_ok_i;
                rdata_a <= reg_rdata_i;
                free_ok_a <= free_ok_i;
                mask0_a <= (mnz_q == {MG{1'b0}});
                wdata_a <= payload_i[247:216];
                t_start_a <= f_t_start;
                count_a <= f_count;
                period_a <= f_period;
                window_a <= f_window;
            end
            // stage B: decide (small outputs only)
            c_q <= busy_q;
            if (busy_q) begin
                busy_q <= 1'b0;
                {c_retry_q, c_val_q, c_time_q, c_ack_q, c_nak_q} <= 5'd0;
                c_code_q <= 8'd0;
                if (!known_a) begin
                    c_nak_q <= 1'b1;
                    c_code_q <= `HW_ERR_BAD_OPCODE;
                end else if (!len_ok_a) begin
                    c_nak_q <= 1'b1;
                    c_code_q <= `HW_ERR_BAD_LENGTH;
                end else if (retry_a) begin
                    c_retry_q <= 1'b1;                      // same response again
                end else if (!is_cmd_a) begin
                    c_nak_q <= 1'b1;
                    c_code_q <= `HW_ERR_BAD_OPCODE;
                end else case (op_a)
                    `HW_OP_REG_READ:
                        if (rd_ok_a) c_val_q <= 1'b1;
                        else begin c_nak_q <= 1'b1; c_code_q <= `HW_ERR_BAD_REG; end
                    `HW_OP_REG_WRITE:
                        if (wr_ok_a) begin
                            we_q <= 1'b1;
                            c_ack_q <= 1'b1;
                        end else begin c_nak_q <= 1'b1; c_code_q <= `HW_ERR_BAD_REG; end
                    `HW_OP_SCHEDULE:
                        if (bad_arg_a) begin
                            c_nak_q <= 1'b1;
                            c_code_q <= `HW_ERR_BAD_ARG;
                        end else if (sched_full_i) begin
                            ovf_q <= 1'b1;
                            c_nak_q <= 1'b1;
                            c_code_q <= `HW_ERR_OVERFLOW;
                        end else begin
                            push_q <= 1'b1;
                            c_ack_q <= 1'b1;
                        end
                    `HW_OP_FREE, `HW_OP_FREE_MASK:
                        if (mask0_a) begin
                            c_nak_q <= 1'b1;
                            c_code_q <= `HW_ERR_BAD_ARG;
                        end else if (free_ok_a) begin
                            free_q <= 1'b1;
                            c_ack_q <= 1'b1;
                        end else begin c_nak_q <= 1'b1; c_code_q <= `HW_ERR_BAD_SLOT; end
                    `HW_OP_TIME:
                        c_time_q <= 1'b1;
                    default: begin  // ABORT
                        abort_q <= 1'b1;
                        c_ack_q <= 1'b1;
                    end
                endcase
            end
            // stage C: write the response (one-hot AND-OR mux)
            if (c_q) begin
                resp_valid_o <= 1'b1;
                if (!c_retry_q) begin
                    resp_seq_o <= seq_a;
                    resp_op_o <= c_val_q ? `HW_OP_REG_VALUE : c_time_q ? `HW_OP_TIME_VALUE :
                                 c_ack_q ? `HW_OP_ACK : `HW_OP_NAK;
                    resp_len_o <= c_val_q ? 6'(`HW_LEN_REG_VALUE) : c_time_q ? 6'(`HW_LEN_TIME_VALUE) :
                                  c_ack_q ? 6'(`HW_LEN_ACK) : 6'(`HW_LEN_NAK);
                    resp_pl_o <= ({64{c_val_q}}  & {b0_a, rdata_a, 24'd0})
                               | ({64{c_time_q}} & ts_i)
                               | ({64{c_ack_q}}  & {op_a, 56'd0})
                               | ({64{c_nak_q}}  & {op_a, c_code_q, 48'd0});
                    last_v_q <= 1'b1;
                    last_seq_q <= seq_a;
                end
            end
        end
    end
endmodule
`default_nettype wire

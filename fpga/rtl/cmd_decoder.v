// Command decoder (spec [commands], retry rule in the spec header).
//
// Takes good frames from frame_rx, one at a time, when the response slot is free, and answers each
// with exactly one response (seq echoed). Order of checks (same as the software twin):
// unknown opcode -> NAK(BAD_OPCODE); wrong payload length -> NAK(BAD_LENGTH); same seq as the
// previous command and not REG_READ/TIME -> the previous response again, nothing executed;
// a response/event opcode -> NAK(BAD_OPCODE); otherwise execute. Bad frames from frame_rx
// (CRC/FRAMING) count in ERR_CRC and become ERROR(code, info = ERR_CRC after the increment).
//
// Pipeline (for timing): the opcode decode, retry compare, argument checks and per-command NAK
// code are registered every cycle from the frame buffer (it holds still from long before
// frame_valid_i until the command is done); cycle A accepts the frame and registers those flags,
// seq and opcode, whether the register exists, the FIFO-full flag and the FREE slot check the
// header decoder made on the frame buffer, combined into the command's outcome; cycle B decides
// (response kind, NAK code: few-input functions of A's flags) and registers the action strobes
// (push/abort/free/reg write), which take effect in cycle C; cycle C writes the response (a
// REG_VALUE with the register file's read value of that cycle). FIFO-full
// and slot checks are made in A; only this decoder pushes or frees, so they still hold in C.
// FREE / FREE_MASK: chk_base_o (registered) / chk_mask_o (not a copy) come from the frame buffer
// and the header decoder answers free_ok_i <= 5 cycles later. Payload bytes are final at least
// two UART byte times (the CRC bytes and the delimiter follow them) before frame_valid_i, so the
// answer describes the held frame at stage A. The buffer also holds still until cycle C (the next
// frame's first payload byte comes >= 3 UART bytes after stage A: code, seq and opcode first), so
// the slots are freed, and the SCHEDULE fields and the register write data are taken, straight
// from it in cycle C. After a free, the decoder takes no frame for 3 cycles, so the next check
// sees the freed slots.
// PIN_MASK / UNPIN_MASK (wire v4, node): stage B pulses pin_go_o (the ring takes set / base /
// mask from the frame buffer, hdr_block closes its open block, drains the event path and runs the
// change) and the decoder waits, taking no frame, until pin_done_i (pin_err_i: 0 ACK, 1
// NAK(BAD_ARG), 2 NAK(BAD_SLOT)); stage C then writes that response with resp_ord_o = 1: an
// ordered response, which tx_arb sends only at event_arb's marker (docs/header-path.md section 3;
// a retry's repeated response is not ordered).
`default_nettype none
`include "wire_spec.vh"
module cmd_decoder #(
    parameter MW = 8 * (`HW_LEN_FREE_MASK - 2), // FREE_MASK mask bits
    parameter NODE = 1,             // 0: the heralding station (only REG_READ / REG_WRITE / TIME
                                    // / TIME_SET are commands; the node's are unknown opcodes)
    parameter QUBITS = 6,           // SCHEDULE_PAIRS: pairs <= QUBITS
    parameter N_PORTS = 2,          // SCHEDULE_PAIRS: port < N_PORTS
    parameter V2 = 1,               // 0: SCHEDULE (v2 single-device mode) is an unknown opcode
    // build profile (fpga/README.md): a command of a mode left out is an unknown opcode
    parameter PAIRS = 1,            // 0: SCHEDULE_PAIRS
    parameter BLOCKS = 1,           // 0: PIN_MASK / UNPIN_MASK
    parameter HEADERS = 1           // 0: FREE / FREE_MASK
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
    input  wire [31:0]  err_crc_p1_i,  // ERR_CRC + 1 (the register file keeps it)
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
    // pair scheduler (SCHEDULE_PAIRS: t_start / count / period on the ports above)
    output wire         ppush_o,
    output wire [7:0]   pairs_o,
    output wire [7:0]   port_o,
    input  wire         psched_full_i,
    // TIME_SET (value on t_start_o)
    output wire         tset_o,
    output wire         tset_mode_o,
    // header decoder slots
    // slots named by the FREE / FREE_MASK frame in the buffer (FREE: mask 1); also what free_o
    // frees (the buffer holds still until then, see the pipeline note above)
    output reg  [15:0]  chk_base_o,
    output wire [MW-1:0] chk_mask_o,     // (from the frame buffer and a registered opcode flag)
    input  wire         free_ok_i,       // header decoder: all of them allocated (registered)
    output wire         free_o,
    // PIN_MASK / UNPIN_MASK (slot ring; base / mask: chk_base_o / payload bits 239:0)
    output reg          pin_go_o,
    output reg          pin_set_o,
    output wire [MW-1:0] pin_mask_o,
    input  wire         pin_done_i,
    input  wire [1:0]   pin_err_i,
    // response to tx_arb
    output reg          resp_valid_o,
    output reg          resp_ord_o,      // the response is ordered among the events (pin change)
    input  wire         resp_ready_i,
    output reg  [7:0]   resp_seq_o,
    output reg  [7:0]   resp_op_o,
    output reg  [5:0]   resp_len_o,
    output reg  [63:0]  resp_pl_o,
    // link-error events to event_arb
    output reg          ev_valid_o,
    output wire [7:0]   ev_op_o,
    output wire [127:0] ev_payload_o     // valid with ev_valid_o (not held after it)
);
    reg  busy_q;                // stage B holds a command
    reg  c_q;                   // stage C holds a command (response being written)
    reg  c_ord_q;               // ... the response of an executed pin change
    reg  [1:0] fhold_q;         // cycles left after a free before the next frame is taken
    // rdy_q: the decoder was idle last cycle and took no frame, so it is idle now (nothing but
    // acc starts a command); a registered ready keeps acc, the stage A load enable of ~300
    // flip-flops, one LUT from flip-flops (timing; a frame may wait one more cycle)
    reg  rdy_q;
    wire acc = frame_valid_i && rdy_q;
    assign frame_ready_o = rdy_q;
    // stage B -> C: response kind (one-hot) and NAK code
    reg  c_val_q, c_time_q, c_ack_q, c_nak_q;
    reg  c_wr_q;                   // stage C writes a new response (c_q && !c_retry_q: a
                                   // flip-flop for the ~90 response enables, timing)
    reg [7:0] c_code_q;

    // local copies of the frame's seq and opcode bytes (timing: frame_rx is far away)
    reg [7:0] op_r, seq_r;
    always @(posedge clk_i) begin
        op_r  <= op_i;
        seq_r <= seq_i;
    end

    // opcode table, one registered stage before the decode below (timing: an 8-input table
    // was 4 LUT levels): one flag per known opcode, then known / is a command / payload length
    // are ORs of those flags. Bits 0-6 are the commands.
    localparam NOPS = 21;
    localparam [0:0] ND = (NODE != 0);
    localparam [0:0] V2S = (NODE != 0) && (V2 != 0);
    localparam [0:0] PRS = (NODE != 0) && (PAIRS != 0);
    localparam [0:0] BLS = (NODE != 0) && (BLOCKS != 0);
    localparam [0:0] HDS = (NODE != 0) && (HEADERS != 0);
    reg [NOPS-1:0] oh_q;
    always @(posedge clk_i) begin
        oh_q[0] <= (op_r == `HW_OP_REG_READ);
        oh_q[1] <= (op_r == `HW_OP_REG_WRITE);
        oh_q[2] <= V2S && (op_r == `HW_OP_SCHEDULE);
        oh_q[3] <= ND && (op_r == `HW_OP_ABORT);
        oh_q[4] <= HDS && (op_r == `HW_OP_FREE);
        oh_q[5] <= (op_r == `HW_OP_TIME);
        oh_q[6] <= HDS && (op_r == `HW_OP_FREE_MASK);
        oh_q[7] <= (op_r == `HW_OP_ACK);
        oh_q[8] <= (op_r == `HW_OP_NAK);
        oh_q[9] <= (op_r == `HW_OP_REG_VALUE);
        oh_q[10] <= (op_r == `HW_OP_TIME_VALUE);
        oh_q[11] <= (op_r == `HW_OP_HERALD);
        oh_q[12] <= (op_r == `HW_OP_DONE);
        oh_q[13] <= (op_r == `HW_OP_LATE);
        oh_q[14] <= (op_r == `HW_OP_HEADER);
        oh_q[15] <= (op_r == `HW_OP_ERROR);
        oh_q[16] <= PRS && (op_r == `HW_OP_SCHEDULE_PAIRS);
        oh_q[17] <= (op_r == `HW_OP_TIME_SET);
        oh_q[18] <= (op_r == `HW_OP_PAIR);
        oh_q[19] <= BLS && (op_r == `HW_OP_PIN_MASK);
        oh_q[20] <= BLS && (op_r == `HW_OP_UNPIN_MASK);
    end
    wire       known  = |oh_q;
    wire       is_cmd = |oh_q[6:0] || oh_q[16] || oh_q[17] || oh_q[19] || oh_q[20];
    wire [5:0] len    = ({6{oh_q[0]}} & 6'(`HW_LEN_REG_READ)) |
                      ({6{oh_q[1]}} & 6'(`HW_LEN_REG_WRITE)) |
                      ({6{oh_q[2]}} & 6'(`HW_LEN_SCHEDULE)) | ({6{oh_q[3]}} & 6'(`HW_LEN_ABORT)) |
                      ({6{oh_q[4]}} & 6'(`HW_LEN_FREE)) | ({6{oh_q[5]}} & 6'(`HW_LEN_TIME)) |
                      ({6{oh_q[6]}} & 6'(`HW_LEN_FREE_MASK)) | ({6{oh_q[7]}} & 6'(`HW_LEN_ACK)) |
                      ({6{oh_q[8]}} & 6'(`HW_LEN_NAK)) | ({6{oh_q[9]}} & 6'(`HW_LEN_REG_VALUE)) |
                      ({6{oh_q[10]}} & 6'(`HW_LEN_TIME_VALUE)) |
                      ({6{oh_q[11]}} & 6'(`HW_LEN_HERALD)) | ({6{oh_q[12]}} & 6'(`HW_LEN_DONE)) |
                      ({6{oh_q[13]}} & 6'(`HW_LEN_LATE)) | ({6{oh_q[14]}} & 6'(`HW_LEN_HEADER)) |
                      ({6{oh_q[15]}} & 6'(`HW_LEN_ERROR)) |
                      ({6{oh_q[16]}} & 6'(`HW_LEN_SCHEDULE_PAIRS)) |
                      ({6{oh_q[17]}} & 6'(`HW_LEN_TIME_SET)) | ({6{oh_q[18]}} & 6'(`HW_LEN_PAIR)) |
                      ({6{oh_q[19]}} & 6'(`HW_LEN_PIN_MASK)) | ({6{oh_q[20]}} & 6'(`HW_LEN_UNPIN_MASK));

    reg       last_v_q;
    reg [7:0] last_seq_q;

    // Opcode decode and the retry compare, registered every cycle from the frame buffer (timing).
    // seq and opcode are the first bytes of a frame, final long before frame_valid_i; last_seq_q
    // changes in stage C, and resp_valid_o keeps the next frame out until >= 2 cycles later.
    reg       known_p, is_cmd_p, go_p, seq_eq_p, no_retry_op_p, fm_p;
    reg       op_rd_p, op_wr_p, op_sched_p, op_free_p, op_time_p, op_abort_p, op_psched_p,
              op_tset_p, op_pin_p, pin_set_p;
    reg [5:0] len_p;
    always @(posedge clk_i) begin
        known_p  <= known;
        is_cmd_p <= is_cmd;
        len_p    <= len;
        op_rd_p    <= oh_q[0];
        op_wr_p    <= oh_q[1];
        op_sched_p <= oh_q[2];
        op_free_p  <= oh_q[4] || oh_q[6];
        op_time_p  <= oh_q[5];
        op_abort_p <= oh_q[3];
        op_psched_p <= oh_q[16];
        op_tset_p  <= oh_q[17];
        op_pin_p   <= oh_q[19] || oh_q[20];
        pin_set_p  <= oh_q[19];
        no_retry_op_p <= oh_q[0] || oh_q[5];
        fm_p <= oh_q[6];
        seq_eq_p <= (seq_r == last_seq_q);
        go_p     <= known && is_cmd;
    end
    wire retry = last_v_q && seq_eq_p && !no_retry_op_p;

    wire [63:0] f_t_start = payload_i[255:192];
    wire [31:0] f_count   = payload_i[191:160];
    wire [31:0] f_period  = payload_i[159:128];
    wire [15:0] f_window  = payload_i[127:112];
    wire [7:0]  f_pairs   = payload_i[127:120];     // SCHEDULE_PAIRS
    wire [7:0]  f_port    = payload_i[119:112];
    wire [7:0]  f_mode    = payload_i[191:184];     // TIME_SET
    assign reg_addr_o = payload_i[255:248];
    assign pin_mask_o = payload_i[255-16 -: MW];

    // SCHEDULE argument check, in three registered steps that run every cycle on the frame
    // buffer (timing: window + 2, then the compare, one carry chain each, then the OR with the
    // zero flags). The SCHEDULE fields are followed by the two CRC bytes in the frame, so frame_rx
    // writes them >= 2 UART bytes (>= 20 bit times) before frame_valid_i rises: barg_q (and
    // sched_ok_p / xcode_p a step later) describe the held frame long before stage A samples it.
    localparam MG = (MW + 15) / 16;
    localparam Q4 = MW / 4;
    reg [4*MG-1:0] q4_q;         // 4-bit groups of chk_mask_o with a set bit (timing)
    reg [MG-1:0] mnz_q;          // 16-bit groups of chk_mask_o with a set bit
    // the mask is not copied (area): the frame buffer holds still until the command is done
    assign chk_mask_o = fm_p ? payload_i[239:240-MW] : {{(MW-1){1'b0}}, 1'b1};
    integer gi;
    reg [16:0] wp2_q;             // window + 2
    reg        phz_q;             // period[31:17] == 0 (else period >= 2^17 > window + 2)
    reg        cz_lo_q, cz_hi_q, wz_q, barg_q;   // count halves == 0, window == 0
    reg        plt_q;             // period[16:0] < window + 2
    reg        plt2_q, pz_q, pbig_q, portbad_q, parg_q, targ_q;   // SCHEDULE_PAIRS / TIME_SET
    always @(posedge clk_i) begin
        wp2_q  <= {1'b0, f_window} + 17'd2;
        phz_q  <= (f_period[31:17] == 15'd0);
        cz_lo_q <= (f_count[15:0] == 16'd0);
        cz_hi_q <= (f_count[31:16] == 16'd0);
        wz_q    <= (f_window == 16'd0);
        plt_q  <= (f_period[16:0] < wp2_q);
        barg_q <= (cz_lo_q && cz_hi_q) || wz_q || (phz_q && plt_q);
        // SCHEDULE_PAIRS: count == 0, period < 2, pairs == 0 or > QUBITS, port >= N_PORTS
        plt2_q <= (f_period[31:1] == 31'd0);
        pz_q <= (f_pairs == 8'd0);
        pbig_q <= ({24'd0, f_pairs} > 32'(QUBITS));
        portbad_q <= ({24'd0, f_port} >= 32'(N_PORTS));
        parg_q <= (cz_lo_q && cz_hi_q) || plt2_q || pz_q || pbig_q || portbad_q;
        targ_q <= (f_mode[7:1] != 7'd0);
        // FREE / FREE_MASK: the slots to check (answer free_ok_i one cycle later, still >= 1
        // cycle before stage A, same argument as barg_q)
        chk_base_o <= payload_i[255:240];
        for (gi = 0; gi < 4 * MG; gi = gi + 1)
            q4_q[gi] <= (gi < Q4) && |chk_mask_o[4*((gi < Q4) ? gi : 0) +: 4];
        for (gi = 0; gi < MG; gi = gi + 1) mnz_q[gi] <= |q4_q[4*gi +: 4];
    end
    // per-command outcome parts, one more registered step on the same frame-buffer data
    reg       mask0_p, sched_ok_p, free_pre_p, mnz_any_p, psched_ok_p, tset_ok_p;
    reg [7:0] xcode_p;             // NAK code if the command's own check fails
    always @(posedge clk_i) begin
        mnz_any_p  <= (mnz_q != {MG{1'b0}});
        mask0_p    <= !mnz_any_p;
        sched_ok_p <= op_sched_p && !barg_q;
        psched_ok_p <= op_psched_p && !parg_q;
        tset_ok_p  <= op_tset_p && !targ_q;
        free_pre_p <= op_free_p && mnz_any_p;
        xcode_p    <= (op_rd_p || op_wr_p) ? `HW_ERR_BAD_REG
                    : op_sched_p ? (barg_q ? `HW_ERR_BAD_ARG : `HW_ERR_OVERFLOW)
                    : op_psched_p ? (parg_q ? `HW_ERR_BAD_ARG : `HW_ERR_OVERFLOW)
                    : op_tset_p ? `HW_ERR_BAD_ARG
                    : (mask0_p ? `HW_ERR_BAD_ARG : `HW_ERR_BAD_SLOT);
    end

    // ---------------------------------------------------------------- stage A registers
    reg [7:0]  seq_a, op_a, xcode_a;
    reg        known_a, is_cmd_a, len_ok_a, retry_a, go_a;
    // the command's outcome if it executes: REG_VALUE / ACK / TIME_VALUE (k_ok_a: one of them),
    // and its action strobe
    reg        k_val_a, k_ack_a, k_time_a, k_ok_a;
    reg        k_we_a, k_push_a, k_ovf_a, k_free_a, k_abort_a, k_ppush_a, k_tset_a;
    reg        k_pin_a, pin_set_a;
    reg        pwait_q;            // a pin change runs: wait for pin_done_i
    wire       pin_b = len_ok_a && go_a && k_pin_a;   // (stage B) this command is a pin change

    // ---------------------------------------------------------------- stage B -> C actions
    reg push_q, abort_q, free_q, we_q, ovf_q, ppush_q, tset_q;
    assign ppush_o = ppush_q;
    assign tset_o = tset_q;
    assign pairs_o = f_pairs;
    assign port_o = f_port;
    assign tset_mode_o = f_mode[0];
    assign push_o = push_q;
    assign abort_o = abort_q;
    assign free_o = free_q;

    assign reg_we_o = we_q;
    // the register address and, in stage C, the read value: straight from the frame buffer and
    // the register file, no stage A copies (area: 40 flip-flop-only HX8K cells). The buffer holds
    // still until stage C (above), so REG_VALUE echoes the address of the command and carries
    // the register it names as read in stage C (two cycles after the stage A sample before;
    // the register file shows the addressed register continuously)
    assign reg_waddr_o = payload_i[255:248];
    // SCHEDULE fields and the write data straight from the frame buffer (area: it holds still
    // until the command is done, see the FREE note above)
    assign reg_wdata_o = payload_i[247:216];
    assign t_start_o = f_t_start;
    assign count_o = f_count;
    assign period_o = f_period;
    assign window_o = f_window;
    assign inc_overflow_o = ovf_q;
    assign inc_crc_o = rx_err_i;
    // ERROR(CRC / FRAMING) event, one cycle after rx_err_i: the payload is not registered (area:
    // 66 flip-flop-only HX8K logic cells with the ERR_CRC + 1 copy; event_arb takes it in the
    // valid cycle). rx_err_code_i holds until frame_rx's next bad frame, and ERR_CRC + 1 moves
    // only 3 cycles after rx_err_i (the register file's strobe stages), so this is the value of
    // ERR_CRC after the increment
    assign ev_op_o = `HW_OP_ERROR;
    assign ev_payload_o = {rx_err_code_i, err_crc_p1_i, 88'd0};


    always @(posedge clk_i) begin
        ev_valid_o <= 1'b0;
        push_q <= 1'b0;
        abort_q <= 1'b0;
        free_q <= 1'b0;
        we_q <= 1'b0;
        ovf_q <= 1'b0;
        ppush_q <= 1'b0;
        tset_q <= 1'b0;
        if (rst_i) begin
            busy_q <= 1'b0;
            c_q <= 1'b0;
            rdy_q <= 1'b0;
            {c_val_q, c_time_q, c_ack_q, c_nak_q} <= 4'd0;
            c_wr_q <= 1'b0;
            c_code_q <= 8'd0;
            resp_valid_o <= 1'b0;
            resp_ord_o <= 1'b0;
            c_ord_q <= 1'b0;
            resp_seq_o <= 8'd0;
            resp_op_o <= 8'd0;
            resp_len_o <= 6'd0;
            resp_pl_o <= 64'd0;
            last_v_q <= 1'b0;
            last_seq_q <= 8'd0;
            seq_a <= 8'd0; op_a <= 8'd0; xcode_a <= 8'd0;
            {known_a, is_cmd_a, len_ok_a, retry_a, go_a} <= 5'd0;
            {k_val_a, k_ack_a, k_time_a, k_ok_a} <= 4'd0;
            {k_we_a, k_push_a, k_ovf_a, k_free_a, k_abort_a, k_ppush_a, k_tset_a} <= 7'd0;
            fhold_q <= 2'd0;
            {k_pin_a, pin_set_a, pwait_q, pin_go_o, pin_set_o} <= 5'd0;
        end else begin
            if (resp_valid_o && resp_ready_i) resp_valid_o <= 1'b0;
            fhold_q <= free_q ? 2'd3 : (fhold_q == 2'd0 ? 2'd0 : fhold_q - 2'd1);
            rdy_q <= !resp_valid_o && !busy_q && !c_q && (fhold_q == 2'd0) && !acc && !pwait_q;
            pin_go_o <= 1'b0;
            if (rx_err_i) ev_valid_o <= 1'b1;
            // stage A: capture the frame and the outcome of its own checks. The FIFO-full flag
            // is sampled here: only this decoder pushes, so "not full" still holds in C.
            if (acc) begin
                busy_q <= 1'b1;
                seq_a <= seq_i;
                op_a <= op_i;
                xcode_a <= xcode_p;
                known_a <= known_p;
                is_cmd_a <= is_cmd_p;
                len_ok_a <= (plen_i == len_p);
                retry_a <= retry;
                go_a <= go_p && !retry;
                k_val_a <= op_rd_p && reg_rd_ok_i;
                k_time_a <= op_time_p;
                k_ack_a <= (op_wr_p && reg_wr_ok_i) || (sched_ok_p && !sched_full_i)
                        || (free_pre_p && free_ok_i) || op_abort_p
                        || (psched_ok_p && !psched_full_i) || tset_ok_p;
                k_ok_a <= (op_rd_p && reg_rd_ok_i) || op_time_p || (op_wr_p && reg_wr_ok_i)
                       || (sched_ok_p && !sched_full_i) || (free_pre_p && free_ok_i) || op_abort_p
                       || (psched_ok_p && !psched_full_i) || tset_ok_p;
                k_we_a <= op_wr_p && reg_wr_ok_i;
                k_push_a <= sched_ok_p && !sched_full_i;
                k_ovf_a <= (sched_ok_p && sched_full_i) || (psched_ok_p && psched_full_i);
                k_ppush_a <= psched_ok_p && !psched_full_i;
                k_tset_a <= tset_ok_p;
                k_free_a <= free_pre_p && free_ok_i;
                k_abort_a <= op_abort_p;
                k_pin_a <= op_pin_p;
                pin_set_a <= pin_set_p;
            end
            // stage B: decide (few-input functions of stage A flags). Order of the checks:
            // unknown opcode, length, retry, not a command, then the command's own outcome.
            c_q <= (busy_q && !pin_b) || (pwait_q && pin_done_i);
            c_ord_q <= pwait_q && pin_done_i;
            c_wr_q <= (busy_q && !pin_b && !(known_a && len_ok_a && retry_a))
                      || (pwait_q && pin_done_i);
            if (busy_q && pin_b) begin
                pin_go_o <= 1'b1;
                pin_set_o <= pin_set_a;
                pwait_q <= 1'b1;
            end
            if (pwait_q && pin_done_i) begin
                pwait_q <= 1'b0;
                c_val_q <= 1'b0;
                c_time_q <= 1'b0;
                c_ack_q <= (pin_err_i == 2'd0);
                c_nak_q <= (pin_err_i != 2'd0);
                c_code_q <= (pin_err_i == 2'd1) ? `HW_ERR_BAD_ARG : `HW_ERR_BAD_SLOT;
            end
            if (busy_q) begin
                busy_q <= 1'b0;
                c_val_q   <= len_ok_a && go_a && k_val_a;
                c_time_q  <= len_ok_a && go_a && k_time_a;
                c_ack_q   <= len_ok_a && go_a && k_ack_a;
                c_nak_q   <= !(known_a && len_ok_a && (retry_a || (go_a && k_ok_a)));
                c_code_q  <= !known_a ? `HW_ERR_BAD_OPCODE : !len_ok_a ? `HW_ERR_BAD_LENGTH
                           : !is_cmd_a ? `HW_ERR_BAD_OPCODE : xcode_a;
                we_q    <= len_ok_a && go_a && k_we_a;
                push_q  <= len_ok_a && go_a && k_push_a;
                ovf_q   <= len_ok_a && go_a && k_ovf_a;
                free_q  <= len_ok_a && go_a && k_free_a;
                abort_q <= len_ok_a && go_a && k_abort_a;
                ppush_q <= len_ok_a && go_a && k_ppush_a;
                tset_q  <= len_ok_a && go_a && k_tset_a;
            end
            // stage C: write the response (one-hot AND-OR mux)
            if (c_q) begin                  // (a retry re-sends the last response)
                resp_valid_o <= 1'b1;
                resp_ord_o <= c_ord_q;
            end
            if (c_wr_q) begin
                resp_seq_o <= seq_a;
                resp_op_o <= c_val_q ? `HW_OP_REG_VALUE : c_time_q ? `HW_OP_TIME_VALUE :
                             c_ack_q ? `HW_OP_ACK : `HW_OP_NAK;
                resp_len_o <= c_val_q ? 6'(`HW_LEN_REG_VALUE) : c_time_q ? 6'(`HW_LEN_TIME_VALUE) :
                              c_ack_q ? 6'(`HW_LEN_ACK) : 6'(`HW_LEN_NAK);
                resp_pl_o <= ({64{c_val_q}}  & {payload_i[255:248], reg_rdata_i, 24'd0})
                           | ({64{c_time_q}} & ts_i)
                           | ({64{c_ack_q}}  & {op_a, 56'd0})
                           | ({64{c_nak_q}}  & {op_a, c_code_q, 48'd0});
                last_v_q <= 1'b1;
                last_seq_q <= seq_a;
            end
        end
    end
endmodule
`default_nettype wire

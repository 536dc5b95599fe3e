// LZ4 block decompressor: compressed bytes in 8 per clock, decoded bytes out up to 8 per clock.
//
// Two halves run side by side, joined by a small command queue:
// - the parser reads tokens, length extensions, literals and offsets from a 16-byte input window
//   and queues commands: "write these literal bytes (up to 8), then copy LEN bytes from OFFSET
//   back", either part possibly absent. A short sequence (at most 8 literals, no length bytes)
//   that sits whole in the window is parsed in one clock; so is the tail of a longer one;
// - the copier executes the command at the head of the queue, the literals in one clock and the
//   copy 8 bytes per clock, into the history
//   window (eight byte-wide banks so any 8 consecutive positions are one row in each bank) and onto
//   the output stream. Overlapping copies (offset < 8) repeat the last OFFSET bytes lane by lane,
//   so they also run at 8 bytes per clock.
//
// Checks, in the order the reference decoder (lz4_flex) makes them: a missing token, length byte,
// literal or offset byte is ERR_TRUNCATED; offset 0 is ERR_OFFSET_ZERO; a sequence that would take
// the output past out_limit is ERR_OUTPUT_LIMIT (literals are read on to the end first, so a block
// that is also truncated reports ERR_TRUNCATED as the reference does); an offset reaching before
// the first output byte is ERR_OFFSET_RANGE. Nothing is written past out_limit, and every state
// either consumes input, waits for input that is still to come, or finishes: the module cannot hang.
//
// Interface: s_* as in crc64 (s_keep lanes contiguous from lane 0); m_keep marks the bytes of an
// output beat, lanes contiguous from 0 (a beat may carry fewer than 8). out_limit must stay
// stable from reset until done. done rises once, with error and result_len: the decoded length
// (no error), or for ERR_OUTPUT_LIMIT the length the block needed at the failing sequence.
// Lengths are 32-bit: the driver bounds the input so length extensions cannot overflow them.
`default_nettype none

module lz4_decompress #(
    // History window, log2 bytes. LZ4 offsets reach 65535 back, so 16 covers every block.
    parameter integer HISTORY_LOG2 = 16,
    // Command queue depth, log2 entries.
    parameter integer QUEUE_LOG2 = 2
) (
    input  wire        clk,
    input  wire        rst,
    input  wire [31:0] out_limit,
    input  wire        s_valid,
    output wire        s_ready,
    input  wire [63:0] s_data,
    input  wire [7:0]  s_keep,
    input  wire        s_last,
    output wire        m_valid,
    input  wire        m_ready,
    output wire [63:0] m_data,
    output wire [7:0]  m_keep,
    output reg         done,
    output reg  [2:0]  error,
    output reg  [31:0] result_len
);
    localparam [2:0] ERR_NONE = 3'd0;
    localparam [2:0] ERR_TRUNCATED = 3'd1;
    localparam [2:0] ERR_OFFSET_ZERO = 3'd2;
    localparam [2:0] ERR_OFFSET_RANGE = 3'd3;
    localparam [2:0] ERR_OUTPUT_LIMIT = 3'd4;

    localparam [2:0] P_TOKEN = 3'd0;
    localparam [2:0] P_LITERAL_LENGTH = 3'd1;
    localparam [2:0] P_LITERALS = 3'd2;
    localparam [2:0] P_OFFSET = 3'd3;
    localparam [2:0] P_MATCH_LENGTH = 3'd4;
    localparam [2:0] P_END = 3'd5;

    localparam integer ROW_BITS = HISTORY_LOG2 - 3;
    localparam integer QUEUE_DEPTH = 1 << QUEUE_LOG2;
    // LZ4's shortest match; the token's low nibble counts from here.
    localparam [31:0] MIN_MATCH = 32'd4;

    // ---------------------------------------------------------------- input window
    wire [127:0] window;         // byte i of the window is window[8i +: 8], byte 0 oldest
    wire [4:0]   window_count;   // bytes held, 0..16
    reg         input_ended;     // the beat with s_last has been taken

    assign s_ready = !input_ended && !done && window_count <= 5'd8;

    wire [7:0] byte0 = window[7:0];
    wire [7:0] byte1 = window[15:8];

    // ---------------------------------------------------------------- command queue
    reg [3:0]            queue_literal_count [0:QUEUE_DEPTH-1];
    reg                  queue_is_match [0:QUEUE_DEPTH-1];
    reg [31:0]           queue_length   [0:QUEUE_DEPTH-1];
    reg [15:0]           queue_offset   [0:QUEUE_DEPTH-1];
    reg [63:0]           queue_literals [0:QUEUE_DEPTH-1];
    reg [QUEUE_LOG2-1:0] queue_head;
    reg [QUEUE_LOG2-1:0] queue_tail;
    reg [QUEUE_LOG2:0]   queue_count;

    // ---------------------------------------------------------------- parser state
    reg [2:0]  parse_state;
    reg [3:0]  token_match;       // the token's match nibble, kept until the offset is read
    reg [31:0] literal_length;    // literals still to read
    reg        literals_over;     // the current literals exceed out_limit: read on, write nothing
    reg [31:0] literals_needed;   // output length the over-limit literals would need
    reg [15:0] match_offset;
    reg [31:0] match_length;
    reg [31:0] produced;          // output length once every queued command has run

    // Parser decisions for this clock (combinational).
    reg [4:0]  consume;
    reg        push;
    reg [3:0]  push_literal_count;
    reg [63:0] push_literals;
    reg        push_is_match;
    reg [31:0] push_length;
    reg [15:0] push_offset;
    // A whole sequence tail (literals then match) in the window, and whether it may go in one clock.
    reg [63:0]  tail_literals;
    reg [15:0]  tail_offset;
    reg [31:0]  tail_match_length;
    reg         tail_fits;
    reg [2:0]  parse_state_next;
    reg [31:0] literal_length_next;
    reg        literals_over_next;
    reg [31:0] literals_needed_next;
    reg [15:0] match_offset_next;
    reg [31:0] match_length_next;
    reg [3:0]  token_match_next;
    reg [31:0] produced_next;
    reg [2:0]  fail;
    reg [31:0] fail_length;

    wire queue_full = queue_count == QUEUE_DEPTH[QUEUE_LOG2:0];

    // literal_length clipped to what one clock moves.
    wire [3:0] literal_chunk_max = (literal_length < 32'd8) ? literal_length[3:0] : 4'd8;
    wire [4:0] literal_chunk = ({1'b0, literal_chunk_max} < window_count) ? {1'b0, literal_chunk_max} : window_count;

    // Starting the literals of a sequence: record whether they fit under out_limit.
    task automatic start_literals(input [31:0] length);
        begin
            literal_length_next = length;
            literals_over_next = ({1'b0, produced} + {1'b0, length}) > {1'b0, out_limit};
            literals_needed_next = produced + length;
            parse_state_next = P_LITERALS;
        end
    endtask

    // Finishing a match: check it, then queue it (or wait for room, consuming nothing).
    task automatic finish_match(input [15:0] offset, input [31:0] length, input [4:0] bytes_read);
        begin
            if (({1'b0, produced} + {1'b0, length}) > {1'b0, out_limit}) begin
                fail = ERR_OUTPUT_LIMIT;
                fail_length = produced + length;
            end else if ({16'd0, offset} > produced) begin
                fail = ERR_OFFSET_RANGE;
            end else if (!queue_full) begin
                push = 1'b1;
                push_is_match = 1'b1;
                push_length = length;
                push_offset = offset;
                produced_next = produced + length;
                consume = bytes_read;
                parse_state_next = P_TOKEN;
            end
        end
    endtask

    // Literals `literal_count` (<= 8) at window byte `first`, then the offset, all in the window and
    // all checks passing: queue literals and match as one command and go to the next token.
    // Anything else leaves the decision to the byte-by-byte states, which report errors in order.
    task automatic try_tail(input [3:0] literal_count, input first, input [3:0] match_nibble);
        begin
            tail_literals = window[{3'd0, first, 3'd0} +: 64];
            tail_offset = window[{{3'd0, first} + literal_count, 3'd0} +: 16];
            tail_match_length = MIN_MATCH + {28'd0, match_nibble};
            tail_fits = match_nibble != 4'd15 && literal_count <= 4'd8 && !queue_full
                && window_count >= {4'd0, first} + {1'b0, literal_count} + 5'd2
                && tail_offset != 16'd0
                && ({1'b0, produced} + {29'd0, literal_count} + {1'b0, tail_match_length}) <= {1'b0, out_limit}
                && {16'd0, tail_offset} <= produced + {28'd0, literal_count};
            if (tail_fits) begin
                consume = {4'd0, first} + {1'b0, literal_count} + 5'd2;
                push = 1'b1;
                push_literal_count = literal_count;
                push_literals = tail_literals;
                push_is_match = 1'b1;
                push_length = tail_match_length;
                push_offset = tail_offset;
                produced_next = produced + {28'd0, literal_count} + tail_match_length;
                literal_length_next = 32'd0;
                parse_state_next = P_TOKEN;
            end
        end
    endtask

    always @* begin
        consume = 5'd0;
        push = 1'b0;
        push_literal_count = 4'd0;
        push_literals = window[63:0];
        push_is_match = 1'b0;
        push_length = 32'd0;
        push_offset = 16'd0;
        tail_literals = 64'd0;
        tail_offset = 16'd0;
        tail_match_length = 32'd0;
        tail_fits = 1'b0;
        parse_state_next = parse_state;
        literal_length_next = literal_length;
        literals_over_next = literals_over;
        literals_needed_next = literals_needed;
        match_offset_next = match_offset;
        match_length_next = match_length;
        token_match_next = token_match;
        produced_next = produced;
        fail = ERR_NONE;
        fail_length = 32'd0;
        case (parse_state)
            P_TOKEN: begin
                if (window_count != 5'd0) begin
                    try_tail(byte0[7:4], 1'b1, byte0[3:0]);
                end
                if (tail_fits) begin
                    token_match_next = byte0[3:0];
                end else if (window_count != 5'd0) begin
                    consume = 5'd1;
                    token_match_next = byte0[3:0];
                    if (byte0[7:4] == 4'd15) begin
                        literal_length_next = 32'd15;
                        parse_state_next = P_LITERAL_LENGTH;
                    end else if (byte0[7:4] != 4'd0) begin
                        start_literals({28'd0, byte0[7:4]});
                    end else begin
                        parse_state_next = P_OFFSET;
                    end
                end else if (input_ended) begin
                    fail = ERR_TRUNCATED;
                end
            end
            P_LITERAL_LENGTH: begin
                if (window_count != 5'd0) begin
                    consume = 5'd1;
                    if (byte0 == 8'd255) begin
                        literal_length_next = literal_length + 32'd255;
                    end else begin
                        start_literals(literal_length + {24'd0, byte0});
                    end
                end else if (input_ended) begin
                    fail = ERR_TRUNCATED;
                end
            end
            P_LITERALS: begin
                if (literal_length == 32'd0) begin
                    if (literals_over) begin
                        fail = ERR_OUTPUT_LIMIT;
                        fail_length = literals_needed;
                    end else begin
                        parse_state_next = P_OFFSET;
                    end
                end else if (window_count != 5'd0) begin
                    if (!literals_over && literal_length <= 32'd8) begin
                        try_tail(literal_length[3:0], 1'b0, token_match);
                    end
                    if (!tail_fits && (literals_over || !queue_full)) begin
                        consume = literal_chunk;
                        push = !literals_over;
                        push_literal_count = literal_chunk[3:0];
                        literal_length_next = literal_length - {27'd0, literal_chunk};
                        if (!literals_over) begin
                            produced_next = produced + {27'd0, literal_chunk};
                        end
                    end
                end else if (input_ended) begin
                    fail = ERR_TRUNCATED;
                end
            end
            P_OFFSET: begin
                // The block may end here, right after a sequence's literals.
                if (window_count >= 5'd2) begin
                    if ({byte1, byte0} == 16'd0) begin
                        fail = ERR_OFFSET_ZERO;
                    end else if (token_match == 4'd15) begin
                        consume = 5'd2;
                        match_offset_next = {byte1, byte0};
                        match_length_next = MIN_MATCH + 32'd15;
                        parse_state_next = P_MATCH_LENGTH;
                    end else begin
                        finish_match({byte1, byte0}, MIN_MATCH + {28'd0, token_match}, 5'd2);
                    end
                end else if (input_ended) begin
                    if (window_count == 5'd0) begin
                        parse_state_next = P_END;
                    end else begin
                        fail = ERR_TRUNCATED;
                    end
                end
            end
            P_MATCH_LENGTH: begin
                if (window_count != 5'd0) begin
                    if (byte0 == 8'd255) begin
                        consume = 5'd1;
                        match_length_next = match_length + 32'd255;
                    end else begin
                        finish_match(match_offset, match_length + {24'd0, byte0}, 5'd1);
                    end
                end else if (input_ended) begin
                    fail = ERR_TRUNCATED;
                end
            end
            default: begin
            end
        endcase
    end

    // ---------------------------------------------------------------- copier
    reg [HISTORY_LOG2-1:0] write_position;   // where the next output byte goes in the history

    wire [3:0]  head_literal_count = queue_literal_count[queue_head];
    wire        head_is_match = queue_is_match[queue_head];
    wire [31:0] head_length = queue_length[queue_head];
    wire [15:0] head_offset = queue_offset[queue_head];
    wire [63:0] head_literals = queue_literals[queue_head];

    // A command's literals go first, in one clock; then its match, up to 8 bytes a clock. When the
    // match reaches at least MERGE_OFFSET_MIN back, its first bytes fill the rest of the literals'
    // clock: they come from bytes already in the history, none from this clock's own writes.
    localparam [15:0] MERGE_OFFSET_MIN = 16'd16;
    wire        copying_literals = head_literal_count != 4'd0;
    wire        merging = copying_literals && head_is_match && head_offset >= MERGE_OFFSET_MIN;
    wire [3:0]  merge_room = 4'd8 - head_literal_count;
    wire [3:0]  merge_chunk = (head_length < {28'd0, merge_room}) ? head_length[3:0] : merge_room;
    wire        copier_go = queue_count != 0 && (!m_valid || m_ready);
    wire [3:0]  match_chunk = (head_length < 32'd8) ? head_length[3:0] : 4'd8;
    wire [3:0]  copy_count = merging ? head_literal_count + merge_chunk
                           : copying_literals ? head_literal_count : match_chunk;
    wire        head_done = merging ? head_length <= {28'd0, merge_room}
                          : copying_literals ? !head_is_match : head_length <= 32'd8;
    wire [31:0] head_length_left = head_length - {28'd0, merging ? merge_chunk : match_chunk};

    // History reads are synchronous (block RAM style): each bank's row is registered one clock
    // ahead, from the position the copier will read in the next clock: the next write position,
    // plus the literals of a merging command, less the offset of the command then at the head
    // (the one being queued now, if the queue will otherwise be empty). Reads see the same edge's
    // writes, so an overlapping copy still finds the bytes written just before it.
    wire [QUEUE_LOG2-1:0] next_head = (copier_go && head_done) ? queue_head + 1'b1 : queue_head;
    wire        next_is_pushed = push && queue_tail == next_head;
    wire [15:0] next_offset = next_is_pushed ? push_offset : queue_offset[next_head];
    wire [3:0]  next_literal_count = next_is_pushed ? push_literal_count
                                   : (next_head != queue_head) ? queue_literal_count[next_head]
                                   : copier_go ? 4'd0 : head_literal_count;
    wire [3:0]  next_skip = (next_offset >= MERGE_OFFSET_MIN) ? next_literal_count : 4'd0;
    wire [HISTORY_LOG2-1:0] write_position_next = copier_go
        ? write_position + {{(HISTORY_LOG2-4){1'b0}}, copy_count} : write_position;
    /* verilator lint_off WIDTH */
    wire [HISTORY_LOG2-1:0] read_position_next = write_position_next + next_skip - next_offset;
    /* verilator lint_on WIDTH */
    reg  [2:0] read_phase;   // the low bits of this clock's read position: which bank is lane 0
    always @(posedge clk) begin
        read_phase <= read_position_next[2:0];
    end

    // Eight byte-wide banks: position p lives in bank p % 8, row p / 8.
    wire [7:0] bank_read [0:7];
    reg  [63:0] copy_bytes;

    genvar bank;
    generate
        for (bank = 0; bank < 8; bank = bank + 1) begin : banks
            // Which of the 8 bytes read / written falls in this bank, and its full position; the
            // position's low 3 bits are this bank's number, so only its row is used.
            wire [2:0] read_lane = bank[2:0] - read_position_next[2:0];
            wire [2:0] write_lane = bank[2:0] - write_position[2:0];
            /* verilator lint_off UNUSEDSIGNAL */
            wire [HISTORY_LOG2-1:0] read_address = read_position_next + {{(HISTORY_LOG2-3){1'b0}}, read_lane};
            wire [HISTORY_LOG2-1:0] write_address = write_position + {{(HISTORY_LOG2-3){1'b0}}, write_lane};
            /* verilator lint_on UNUSEDSIGNAL */
            ferrite_ram #(
                .WIDTH(8),
                .ADDRESS_BITS(ROW_BITS),
                .READ_REGISTERED(1)
            ) history (
                .clk(clk),
                .write_enable(copier_go && ({1'b0, write_lane} < copy_count)),
                .write_address(write_address[HISTORY_LOG2-1:3]),
                .write_data(copy_bytes[write_lane * 8 +: 8]),
                .read_address(read_address[HISTORY_LOG2-1:3]),
                .read_data(bank_read[bank])
            );
        end
    endgenerate

    // The bytes this clock writes, lane i for position write_position + i.
    integer lane;
    reg [2:0] source_lane;
    reg [2:0] source_bank;
    always @* begin
        copy_bytes = 64'd0;
        source_lane = 3'd0;
        source_bank = 3'd0;
        for (lane = 0; lane < 8; lane = lane + 1) begin
            if (copying_literals && lane < {28'd0, head_literal_count}) begin
                copy_bytes[lane * 8 +: 8] = head_literals[lane * 8 +: 8];
            end else if (copying_literals) begin
                // A merging match's first bytes, after the literals.
                /* verilator lint_off WIDTH */
                source_lane = lane[2:0] - head_literal_count[2:0];
                source_bank = read_phase + source_lane;
                copy_bytes[lane * 8 +: 8] = bank_read[source_bank];
                /* verilator lint_on WIDTH */
            end else begin
                // An overlapping copy repeats the OFFSET bytes before the write position.
                /* verilator lint_off WIDTH */
                source_lane = (head_offset >= 16'd8) ? lane[2:0] : lane % head_offset[2:0];
                source_bank = read_phase + source_lane;
                copy_bytes[lane * 8 +: 8] = bank_read[source_bank];
                /* verilator lint_on WIDTH */
            end
        end
    end

    // ---------------------------------------------------------------- sequencing
    wire [3:0] beat_count = {3'd0, s_keep[0]} + {3'd0, s_keep[1]} + {3'd0, s_keep[2]} + {3'd0, s_keep[3]}
                          + {3'd0, s_keep[4]} + {3'd0, s_keep[5]} + {3'd0, s_keep[6]} + {3'd0, s_keep[7]};

    // Input window: drops what the parser consumed, appends the accepted beat.
    byte_window input_window (
        .clk(clk),
        .rst(rst),
        .enable(!done),
        .drop_count(consume),
        .append_data(s_data),
        .append_count((s_valid && s_ready) ? beat_count : 4'd0),
        .bytes(window),
        .count(window_count)
    );

    // Each copier clock's bytes are one output beat.
    output_beat output_register (
        .clk(clk),
        .rst(rst),
        .enable(!done),
        .load(copier_go),
        .load_data(copy_bytes),
        .load_count(copy_count),
        .m_ready(m_ready),
        .m_valid(m_valid),
        .m_data(m_data),
        .m_keep(m_keep)
    );

    always @(posedge clk) begin
        if (rst) begin
            input_ended <= 1'b0;
            queue_head <= {QUEUE_LOG2{1'b0}};
            queue_tail <= {QUEUE_LOG2{1'b0}};
            queue_count <= {(QUEUE_LOG2+1){1'b0}};
            parse_state <= P_TOKEN;
            token_match <= 4'd0;
            literal_length <= 32'd0;
            literals_over <= 1'b0;
            literals_needed <= 32'd0;
            match_offset <= 16'd0;
            match_length <= 32'd0;
            produced <= 32'd0;
            write_position <= {HISTORY_LOG2{1'b0}};
            done <= 1'b0;
            error <= ERR_NONE;
            result_len <= 32'd0;
        end else if (!done) begin
            if (s_valid && s_ready) begin
                input_ended <= s_last;
            end

            parse_state <= parse_state_next;
            token_match <= token_match_next;
            literal_length <= literal_length_next;
            literals_over <= literals_over_next;
            literals_needed <= literals_needed_next;
            match_offset <= match_offset_next;
            match_length <= match_length_next;
            produced <= produced_next;

            if (push) begin
                queue_literal_count[queue_tail] <= push_literal_count;
                queue_is_match[queue_tail] <= push_is_match;
                queue_length[queue_tail] <= push_length;
                queue_offset[queue_tail] <= push_offset;
                queue_literals[queue_tail] <= push_literals;
                queue_tail <= queue_tail + 1'b1;
            end

            if (copier_go) begin
                write_position <= write_position_next;
                if (head_done) begin
                    queue_head <= queue_head + 1'b1;
                end else if (copying_literals) begin
                    queue_literal_count[queue_head] <= 4'd0;
                    if (merging) begin
                        queue_length[queue_head] <= head_length_left;
                    end
                end else begin
                    queue_length[queue_head] <= head_length_left;
                end
            end
            queue_count <= queue_count + {{QUEUE_LOG2{1'b0}}, push} - {{QUEUE_LOG2{1'b0}}, copier_go && head_done};

            if (fail != ERR_NONE) begin
                done <= 1'b1;
                error <= fail;
                result_len <= fail_length;
            end else if (parse_state == P_END && queue_count == 0 && !m_valid) begin
                done <= 1'b1;
                result_len <= produced;
            end
        end
    end
endmodule

`default_nettype wire

// LZ4 block compressor: uncompressed bytes in 8 per clock, one LZ4 block out 8 bytes per beat.
//
// Three parts run side by side:
// - the loader writes each input beat into the block memory (eight byte-wide banks, so any 8
//   consecutive positions are one row in each bank);
// - the matcher walks the block two positions per clock: for each it hashes the 4 bytes there,
//   looks the hash up in a table of earlier positions (and records this one), and compares the
//   bytes at the candidate with the bytes here; 4 or more equal bytes make a match (the first
//   position's wins), which it then extends 8 bytes per clock. Each finished sequence (literal
//   run + match) goes into a small queue;
// - the emitter turns queued sequences into bytes: token (with up to 7 literals when they need no
//   length bytes), literal length bytes, literals (read back from the block memory, 8 per clock),
//   offset, match length bytes, packing them into output beats.
//
// End of block rules (LZ4 block format): no match starts in the last 12 bytes (MFLIMIT) and every
// match ends at least 5 bytes before the end (LAST_LITERALS), so the block closes with literals.
// The block length is known once the beat with s_last arrives; until then the matcher only works
// where the rules cannot apply (it waits for enough look-ahead instead).
//
// Interface: s_* as in crc64 (full beats until the last; s_keep lanes contiguous from lane 0;
// an empty block is one beat with s_keep = 0 and s_last). The input may be at most
// 2**BLOCK_LOG2 bytes; the driver enforces it. m_* as in lz4_decompress. done rises once, with
// result_len, the block's length in bytes.
`default_nettype none

module lz4_compress #(
    // Largest block, log2 bytes; at most 16, so every match offset fits LZ4's 16 bits.
    parameter integer BLOCK_LOG2 = 16,
    // Hash table entries, log2.
    parameter integer HASH_LOG2 = 12,
    // Sequence queue depth, log2 entries.
    parameter integer QUEUE_LOG2 = 2
) (
    input  wire        clk,
    input  wire        rst,
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
    output reg  [31:0] result_len
);
    localparam integer LENGTH_BITS = BLOCK_LOG2 + 1;     // a length may equal 2**BLOCK_LOG2
    localparam integer ROW_BITS = BLOCK_LOG2 - 3;
    localparam integer HASH_ENTRIES = 1 << HASH_LOG2;
    localparam integer QUEUE_DEPTH = 1 << QUEUE_LOG2;
    localparam [LENGTH_BITS-1:0] MIN_MATCH = 4;
    localparam [LENGTH_BITS-1:0] MFLIMIT = 12;
    localparam [LENGTH_BITS-1:0] LAST_LITERALS = 5;
    // Bytes the matcher wants loaded past its position before the block length is known: the 12
    // of MFLIMIT plus an 8-byte compare, rounded up to whole beats.
    localparam [LENGTH_BITS-1:0] LOOKAHEAD = 24;
    // The hash covers 5 bytes, as lz4 and lz4_flex do on 64-bit machines: the candidate then
    // tends to share a fifth byte, so matches run longer. The multiplier is lz4's prime for it.
    localparam [39:0] HASH_MULTIPLIER = 40'd889523592379;

    // ---------------------------------------------------------------- loader
    reg [LENGTH_BITS-1:0] loaded;        // bytes in the block memory
    reg                   input_ended;   // the s_last beat is in: `loaded` is the block length

    assign s_ready = !input_ended;

    wire [3:0] beat_count = {3'd0, s_keep[0]} + {3'd0, s_keep[1]} + {3'd0, s_keep[2]} + {3'd0, s_keep[3]}
                          + {3'd0, s_keep[4]} + {3'd0, s_keep[5]} + {3'd0, s_keep[6]} + {3'd0, s_keep[7]};
    wire       load = s_valid && s_ready;

    // ---------------------------------------------------------------- block memory, 4 read ports
    // Ports: the matcher's position, the candidates for the two positions it tries, and the
    // emitter's literals. Each reads the 8 bytes from its address on.
    reg  [BLOCK_LOG2-1:0] position_read_at;
    reg  [BLOCK_LOG2-1:0] candidate_read_at;
    wire [BLOCK_LOG2-1:0] second_candidate_read_at;
    reg  [BLOCK_LOG2-1:0] literals_read_at;
    wire [63:0]           position_banks;     // bank b's byte at [8b +: 8]
    wire [63:0]           candidate_banks;
    wire [63:0]           second_candidate_banks;
    wire [63:0]           literals_banks;

    // The row bank `bank` supplies for a read from `start`: one past the start's row when the
    // 8 bytes wrap past bank 7.
    function automatic [ROW_BITS-1:0] bank_row(input [BLOCK_LOG2-1:0] start, input [2:0] bank);
        begin
            bank_row = start[BLOCK_LOG2-1:3] + {{(ROW_BITS-1){1'b0}}, bank < start[2:0]};
        end
    endfunction

    // Banks in lane order: lane i comes from bank (start + i) % 8.
    function automatic [63:0] lanes_from_banks(input [63:0] banks, input [2:0] start);
        integer lane;
        reg [2:0] source;
        begin
            lanes_from_banks = 64'd0;
            for (lane = 0; lane < 8; lane = lane + 1) begin
                source = start + lane[2:0];
                lanes_from_banks[lane * 8 +: 8] = banks[source * 8 +: 8];
            end
        end
    endfunction

    genvar bank;
    generate
        for (bank = 0; bank < 8; bank = bank + 1) begin : banks
            // Beats arrive whole until the last, so every beat fills one row.
            wire                write_enable = load && s_keep[bank];
            wire [ROW_BITS-1:0] write_row = loaded[BLOCK_LOG2-1:3];
            wire [7:0]          write_byte = s_data[bank * 8 +: 8];
            // One copy of the bank per read port, all written alike.
            ferrite_ram #(.WIDTH(8), .ADDRESS_BITS(ROW_BITS)) position_copy (
                .clk(clk), .write_enable(write_enable), .write_address(write_row), .write_data(write_byte),
                .read_address(bank_row(position_read_at, bank)), .read_data(position_banks[bank * 8 +: 8]));
            ferrite_ram #(.WIDTH(8), .ADDRESS_BITS(ROW_BITS)) candidate_copy (
                .clk(clk), .write_enable(write_enable), .write_address(write_row), .write_data(write_byte),
                .read_address(bank_row(candidate_read_at, bank)), .read_data(candidate_banks[bank * 8 +: 8]));
            ferrite_ram #(.WIDTH(8), .ADDRESS_BITS(ROW_BITS)) second_candidate_copy (
                .clk(clk), .write_enable(write_enable), .write_address(write_row), .write_data(write_byte),
                .read_address(bank_row(second_candidate_read_at, bank)),
                .read_data(second_candidate_banks[bank * 8 +: 8]));
            ferrite_ram #(.WIDTH(8), .ADDRESS_BITS(ROW_BITS)) literals_copy (
                .clk(clk), .write_enable(write_enable), .write_address(write_row), .write_data(write_byte),
                .read_address(bank_row(literals_read_at, bank)), .read_data(literals_banks[bank * 8 +: 8]));
        end
    endgenerate

    wire [63:0] position_bytes = lanes_from_banks(position_banks, position_read_at[2:0]);
    wire [63:0] candidate_bytes = lanes_from_banks(candidate_banks, candidate_read_at[2:0]);
    wire [63:0] second_candidate_bytes = lanes_from_banks(second_candidate_banks, second_candidate_read_at[2:0]);
    wire [63:0] literal_bytes = lanes_from_banks(literals_banks, literals_read_at[2:0]);

    // ---------------------------------------------------------------- hash table
    // The last position recorded for each hash: a RAM macro, instantiated below the matcher whose
    // decisions write it. Whether an entry holds anything is kept beside it in flip-flops, which
    // reset clears in one clock, so a block never sees the last one's positions.
    wire [BLOCK_LOG2-1:0] table_first_read;
    wire [BLOCK_LOG2-1:0] table_second_read;
    reg [HASH_ENTRIES-1:0] table_valid;

    // ---------------------------------------------------------------- sequence queue
    reg [LENGTH_BITS-1:0] queue_literal_start  [0:QUEUE_DEPTH-1];
    reg [LENGTH_BITS-1:0] queue_literal_length [0:QUEUE_DEPTH-1];
    reg [15:0]            queue_offset         [0:QUEUE_DEPTH-1];
    reg [LENGTH_BITS-1:0] queue_match_length   [0:QUEUE_DEPTH-1];   // 0: the closing literals
    reg [QUEUE_LOG2-1:0]  queue_head;
    reg [QUEUE_LOG2-1:0]  queue_tail;
    reg [QUEUE_LOG2:0]    queue_count;
    wire queue_full = queue_count == QUEUE_DEPTH[QUEUE_LOG2:0];

    // ---------------------------------------------------------------- matcher
    localparam [1:0] M_SCAN = 2'd0;
    localparam [1:0] M_EXTEND = 2'd1;
    localparam [1:0] M_PUSH = 2'd2;    // a sequence waits for room in the queue
    localparam [1:0] M_END = 2'd3;     // the closing literals are queued

    reg [1:0]             match_state;
    reg [LENGTH_BITS-1:0] position;        // where the scan is, or where the current match starts
    reg [LENGTH_BITS-1:0] literal_start;   // first byte not yet covered by a sequence
    reg [BLOCK_LOG2-1:0]  candidate;
    reg [LENGTH_BITS-1:0] match_length;
    reg                   closing;         // the sequence waiting in M_PUSH is the closing literals

    // The scan tries two positions per clock: `position` (first) and `position + 1` (second).
    function automatic [HASH_LOG2-1:0] hash_of(input [39:0] bytes);
        /* verilator lint_off UNUSEDSIGNAL */
        reg [39:0] product;   // the hash is its top bits
        /* verilator lint_on UNUSEDSIGNAL */
        begin
            product = bytes * HASH_MULTIPLIER;
            hash_of = product[39:40-HASH_LOG2];
        end
    endfunction

    wire [HASH_LOG2-1:0]  first_hash = hash_of(position_bytes[39:0]);
    wire [HASH_LOG2-1:0]  second_hash = hash_of(position_bytes[47:8]);
    wire                  first_found = table_valid[first_hash];
    wire [BLOCK_LOG2-1:0] first_candidate = table_first_read;
    // Both hashes equal: the first position, recorded this clock, is the second's candidate.
    wire                  same_hash = first_hash == second_hash;
    wire                  second_found = same_hash || table_valid[second_hash];
    wire [BLOCK_LOG2-1:0] second_candidate = same_hash ? position[BLOCK_LOG2-1:0] : table_second_read;

    // Where the bytes compared this clock start, and how many may match before LAST_LITERALS.
    wire [LENGTH_BITS-1:0] compare_at = (match_state == M_EXTEND) ? position + match_length : position;
    wire [LENGTH_BITS-1:0] block_length = loaded;
    wire                   can_scan = input_ended || loaded >= position + LOOKAHEAD;
    wire                   can_extend = input_ended || loaded >= compare_at + 8 + LAST_LITERALS;
    wire                   scan_over = input_ended && position + MFLIMIT > block_length;
    // The second position may start a match (the first may whenever the scan is not over).
    wire                   second_allowed = !input_ended || position + 1 + MFLIMIT <= block_length;
    wire [LENGTH_BITS-1:0] compare_room = input_ended ? block_length - LAST_LITERALS - compare_at
                                                      : {{(LENGTH_BITS-4){1'b0}}, 4'd8};

    // Leading equal bytes of `here` and `there`, at most `room`.
    function automatic [3:0] leading_equal(input [63:0] here, input [63:0] there, input [LENGTH_BITS-1:0] room);
        integer lane;
        reg still_equal;
        begin
            leading_equal = 4'd0;
            still_equal = 1'b1;
            for (lane = 0; lane < 8; lane = lane + 1) begin
                still_equal = still_equal && here[lane * 8 +: 8] == there[lane * 8 +: 8]
                    && room > lane[LENGTH_BITS-1:0];
                leading_equal = leading_equal + {3'd0, still_equal};
            end
        end
    endfunction

    // First position (or the extension): 8 bytes. Second position: the 7 bytes the read holds.
    wire [3:0] first_equal = leading_equal(position_bytes, candidate_bytes, compare_room);
    wire [LENGTH_BITS-1:0] second_room = (compare_room > 8) ? 7 : (compare_room > 1) ? compare_room - 1 : 0;
    wire [3:0] second_equal = leading_equal({8'd0, position_bytes[63:8]}, second_candidate_bytes, second_room);

    // ---------------------------------------------------------------- emitter
    localparam [2:0] E_IDLE = 3'd0;    // waiting for a sequence, or emitting its token
    localparam [2:0] E_LITERAL_LENGTH = 3'd2;
    localparam [2:0] E_LITERALS = 3'd3;
    localparam [2:0] E_OFFSET = 3'd4;
    localparam [2:0] E_MATCH_LENGTH = 3'd5;

    reg [2:0]             emit_state;
    reg [LENGTH_BITS-1:0] emit_literal_position;
    reg [LENGTH_BITS-1:0] emit_literal_remaining;
    reg [LENGTH_BITS-1:0] emit_length_remaining;   // what the length bytes still have to say

    wire [LENGTH_BITS-1:0] head_literal_start = queue_literal_start[queue_head];
    wire [LENGTH_BITS-1:0] head_literal_length = queue_literal_length[queue_head];
    wire [15:0]            head_offset = queue_offset[queue_head];
    wire [LENGTH_BITS-1:0] head_match_length = queue_match_length[queue_head];
    wire                   head_has_match = head_match_length != {LENGTH_BITS{1'b0}};
    wire [LENGTH_BITS-1:0] head_match_code = head_match_length - MIN_MATCH;
    wire [3:0]             token_literals = (head_literal_length >= 15) ? 4'd15 : head_literal_length[3:0];
    wire [3:0]             token_match = !head_has_match ? 4'd0
                                       : (head_match_code >= 15) ? 4'd15 : head_match_code[3:0];

    // Output packing: up to 16 bytes wait in `pack`; a beat leaves when 8 are there (or at the end).
    /* verilator lint_off UNUSEDSIGNAL */
    wire [127:0] pack;           // bytes 8..15 wait for a later beat
    /* verilator lint_on UNUSEDSIGNAL */
    wire [4:0]   pack_count;
    wire        output_free = !m_valid || m_ready;
    wire        block_emitted = match_state == M_END && queue_count == 0 && emit_state == E_IDLE;
    wire        drain = output_free && (pack_count >= 5'd8 || (block_emitted && pack_count != 5'd0));
    wire [3:0]  drain_count = (pack_count >= 5'd8) ? 4'd8 : pack_count[3:0];
    wire        can_append = pack_count <= 5'd8;

    // A run of LZ4 length bytes: 255s then the remainder; up to 8 bytes per clock.
    reg [63:0]            length_bytes;
    reg [3:0]             length_count;
    reg                   length_final;
    reg [LENGTH_BITS-1:0] length_left;
    /* verilator lint_off UNUSEDSIGNAL */
    reg [LENGTH_BITS-1:0] length_last;   // the byte after the 255s, as a length (< 255)
    /* verilator lint_on UNUSEDSIGNAL */
    integer run_index;
    reg [3:0] short_count;   // bytes a length below 2040 takes: its 255s and the remainder
    always @* begin
        short_count = 4'd1;
        for (run_index = 1; run_index < 8; run_index = run_index + 1) begin
            if (emit_length_remaining >= run_index[LENGTH_BITS-1:0] * 255) begin
                short_count = run_index[3:0] + 4'd1;
            end
        end
        length_bytes = {8{8'hFF}};
        length_count = 4'd8;
        length_final = 1'b0;
        length_left = emit_length_remaining - 2040;
        length_last = emit_length_remaining - {{(LENGTH_BITS-4){1'b0}}, short_count - 4'd1} * 255;
        if (emit_length_remaining < 2040) begin
            length_final = 1'b1;
            length_left = {LENGTH_BITS{1'b0}};
            length_count = short_count;
            length_bytes[(short_count - 4'd1) * 8 +: 8] = length_last[7:0];   // < 255 by construction
        end
    end

    // What the emitter appends this clock.
    reg [63:0] append_bytes;
    reg [3:0]  append_count;
    reg [2:0]  emit_state_next;
    reg        emit_pop;
    reg [LENGTH_BITS-1:0] literal_chunk;
    always @* begin
        append_bytes = 64'd0;
        append_count = 4'd0;
        emit_state_next = emit_state;
        emit_pop = 1'b0;
        literal_chunk = (emit_literal_remaining < 8) ? emit_literal_remaining : 8;
        if (can_append) begin
            case (emit_state)
                E_IDLE: begin
                    // The token, and with it up to 7 literals when no length bytes follow.
                    if (queue_count != 0) begin
                        append_bytes = {literal_bytes[55:0], token_literals, token_match};
                        append_count = 4'd1;
                        if (head_literal_length >= 15) begin
                            emit_state_next = E_LITERAL_LENGTH;
                        end else if (head_literal_length >= 8) begin
                            emit_state_next = E_LITERALS;
                        end else begin
                            append_count = 4'd1 + head_literal_length[3:0];
                            if (head_has_match) begin
                                emit_state_next = E_OFFSET;
                            end else begin
                                emit_pop = 1'b1;
                            end
                        end
                    end
                end
                E_LITERAL_LENGTH, E_MATCH_LENGTH: begin
                    append_bytes = length_bytes;
                    append_count = length_count;
                    if (length_final) begin
                        if (emit_state == E_LITERAL_LENGTH) begin
                            emit_state_next = E_LITERALS;
                        end else begin
                            emit_state_next = E_IDLE;
                            emit_pop = 1'b1;
                        end
                    end
                end
                E_LITERALS: begin
                    append_bytes = literal_bytes;
                    append_count = literal_chunk[3:0];
                    if (emit_literal_remaining <= 8) begin
                        if (head_has_match) begin
                            emit_state_next = E_OFFSET;
                        end else begin
                            emit_state_next = E_IDLE;
                            emit_pop = 1'b1;
                        end
                    end
                end
                E_OFFSET: begin
                    append_bytes[15:0] = head_offset;
                    append_count = 4'd2;
                    if (head_match_code >= 15) begin
                        emit_state_next = E_MATCH_LENGTH;
                    end else begin
                        emit_state_next = E_IDLE;
                        emit_pop = 1'b1;
                    end
                end
                default: begin
                end
            endcase
        end
    end

    // ---------------------------------------------------------------- matcher decisions
    reg                   push;
    reg [LENGTH_BITS-1:0] push_literal_length;
    reg [LENGTH_BITS-1:0] push_match_length;
    reg [15:0]            push_offset;
    reg [1:0]             match_state_next;
    reg [LENGTH_BITS-1:0] position_next;
    reg [LENGTH_BITS-1:0] literal_start_next;
    reg [BLOCK_LOG2-1:0]  candidate_next;
    reg [LENGTH_BITS-1:0] match_length_next;
    reg                   closing_next;
    reg                   first_table_write;
    reg                   second_table_write;

    // A match of `length` from `start` against `source` is complete: queue its sequence, or
    // remember it and wait in M_PUSH.
    task automatic finish_match(input [LENGTH_BITS-1:0] start, input [BLOCK_LOG2-1:0] source,
                                input [LENGTH_BITS-1:0] length);
        /* verilator lint_off UNUSEDSIGNAL */
        reg [LENGTH_BITS-1:0] offset;   // below 2**16: both ends lie in one block
        /* verilator lint_on UNUSEDSIGNAL */
        begin
            offset = start - {1'b0, source};
            position_next = start;
            candidate_next = source;
            match_length_next = length;
            if (!queue_full) begin
                push = 1'b1;
                push_literal_length = start - literal_start;
                push_match_length = length;
                push_offset = offset[15:0];
                position_next = start + length;
                literal_start_next = start + length;
                match_state_next = M_SCAN;
            end else begin
                match_state_next = M_PUSH;
            end
        end
    endtask

    always @* begin
        push = 1'b0;
        push_literal_length = {LENGTH_BITS{1'b0}};
        push_match_length = {LENGTH_BITS{1'b0}};
        push_offset = 16'd0;
        match_state_next = match_state;
        position_next = position;
        literal_start_next = literal_start;
        candidate_next = candidate;
        match_length_next = match_length;
        closing_next = closing;
        first_table_write = 1'b0;
        second_table_write = 1'b0;
        case (match_state)
            M_SCAN: begin
                if (scan_over) begin
                    // The rest of the block is the closing literals.
                    closing_next = 1'b1;
                    if (!queue_full) begin
                        push = 1'b1;
                        push_literal_length = block_length - literal_start;
                        match_state_next = M_END;
                    end else begin
                        match_state_next = M_PUSH;
                    end
                end else if (can_scan) begin
                    first_table_write = 1'b1;
                    second_table_write = second_allowed;
                    if (first_found && first_equal >= MIN_MATCH[3:0]) begin
                        if (first_equal == 4'd8) begin
                            candidate_next = first_candidate;
                            match_length_next = 8;
                            match_state_next = M_EXTEND;
                        end else begin
                            finish_match(position, first_candidate, {{(LENGTH_BITS-4){1'b0}}, first_equal});
                        end
                    end else if (second_allowed && second_found && second_equal >= MIN_MATCH[3:0]) begin
                        if (second_equal == 4'd7) begin
                            position_next = position + 1;
                            candidate_next = second_candidate;
                            match_length_next = 7;
                            match_state_next = M_EXTEND;
                        end else begin
                            finish_match(position + 1, second_candidate, {{(LENGTH_BITS-4){1'b0}}, second_equal});
                        end
                    end else begin
                        position_next = position + (second_allowed ? 2 : 1);
                    end
                end
            end
            M_EXTEND: begin
                if (can_extend) begin
                    if (first_equal == 4'd8) begin
                        match_length_next = match_length + 8;
                    end else begin
                        finish_match(position, candidate, match_length + {{(LENGTH_BITS-4){1'b0}}, first_equal});
                    end
                end
            end
            M_PUSH: begin
                if (closing) begin
                    if (!queue_full) begin
                        push = 1'b1;
                        push_literal_length = block_length - literal_start;
                        match_state_next = M_END;
                    end
                end else begin
                    finish_match(position, candidate, match_length);
                end
            end
            default: begin
            end
        endcase
    end

    // The hash table records the positions the scan tries, in clocks where the registers below
    // advance; one copy per read port, all written alike. Write port 1 wins on equal hashes: the
    // second position's entry is the newer one.
    wire                    table_writing = !rst && !done;
    wire [1:0]              table_write_enable = {second_table_write && table_writing,
                                                  first_table_write && table_writing};
    wire [2*HASH_LOG2-1:0]  table_write_address = {second_hash, first_hash};
    wire [2*BLOCK_LOG2-1:0] table_write_data = {position[BLOCK_LOG2-1:0] + 1'b1, position[BLOCK_LOG2-1:0]};
    ferrite_ram #(.WIDTH(BLOCK_LOG2), .ADDRESS_BITS(HASH_LOG2), .WRITE_PORTS(2)) first_table_copy (
        .clk(clk), .write_enable(table_write_enable), .write_address(table_write_address),
        .write_data(table_write_data), .read_address(first_hash), .read_data(table_first_read));
    ferrite_ram #(.WIDTH(BLOCK_LOG2), .ADDRESS_BITS(HASH_LOG2), .WRITE_PORTS(2)) second_table_copy (
        .clk(clk), .write_enable(table_write_enable), .write_address(table_write_address),
        .write_data(table_write_data), .read_address(second_hash), .read_data(table_second_read));

    // Read addresses: the matcher's compare position, the candidates (from the table while
    // scanning, from the register while extending) and the emitter's literals.
    always @* begin
        position_read_at = compare_at[BLOCK_LOG2-1:0];
        candidate_read_at = (match_state == M_EXTEND) ? candidate + match_length[BLOCK_LOG2-1:0]
                                                      : first_candidate;
        literals_read_at = (emit_state == E_IDLE) ? head_literal_start[BLOCK_LOG2-1:0]
                                                  : emit_literal_position[BLOCK_LOG2-1:0];
    end
    assign second_candidate_read_at = second_candidate;

    // ---------------------------------------------------------------- registers
    // The packer takes the emitter's bytes and gives up a beat's worth to the output register.
    byte_window packer (
        .clk(clk),
        .rst(rst),
        .enable(!done),
        .drop_count(drain ? {1'b0, drain_count} : 5'd0),
        .append_data(append_bytes),
        .append_count(append_count),
        .bytes(pack),
        .count(pack_count)
    );

    output_beat output_register (
        .clk(clk),
        .rst(rst),
        .enable(!done),
        .load(drain),
        .load_data(pack[63:0]),
        .load_count(drain_count),
        .m_ready(m_ready),
        .m_valid(m_valid),
        .m_data(m_data),
        .m_keep(m_keep)
    );

    always @(posedge clk) begin
        if (rst) begin
            loaded <= {LENGTH_BITS{1'b0}};
            input_ended <= 1'b0;
            table_valid <= {HASH_ENTRIES{1'b0}};
            queue_head <= {QUEUE_LOG2{1'b0}};
            queue_tail <= {QUEUE_LOG2{1'b0}};
            queue_count <= {(QUEUE_LOG2+1){1'b0}};
            match_state <= M_SCAN;
            position <= {LENGTH_BITS{1'b0}};
            literal_start <= {LENGTH_BITS{1'b0}};
            candidate <= {BLOCK_LOG2{1'b0}};
            match_length <= {LENGTH_BITS{1'b0}};
            closing <= 1'b0;
            emit_state <= E_IDLE;
            emit_literal_position <= {LENGTH_BITS{1'b0}};
            emit_literal_remaining <= {LENGTH_BITS{1'b0}};
            emit_length_remaining <= {LENGTH_BITS{1'b0}};
            done <= 1'b0;
            result_len <= 32'd0;
        end else if (!done) begin
            if (load) begin
                loaded <= loaded + {{(LENGTH_BITS-4){1'b0}}, beat_count};
                input_ended <= s_last;
            end

            if (first_table_write) begin
                table_valid[first_hash] <= 1'b1;
            end
            if (second_table_write) begin
                table_valid[second_hash] <= 1'b1;
            end
            match_state <= match_state_next;
            position <= position_next;
            literal_start <= literal_start_next;
            candidate <= candidate_next;
            match_length <= match_length_next;
            closing <= closing_next;

            if (push) begin
                queue_literal_start[queue_tail] <= literal_start;
                queue_literal_length[queue_tail] <= push_literal_length;
                queue_offset[queue_tail] <= push_offset;
                queue_match_length[queue_tail] <= push_match_length;
                queue_tail <= queue_tail + 1'b1;
            end
            queue_count <= queue_count + {{QUEUE_LOG2{1'b0}}, push} - {{QUEUE_LOG2{1'b0}}, emit_pop};

            // Emitter: set up the counters each state consumes.
            emit_state <= emit_state_next;
            if (emit_pop) begin
                queue_head <= queue_head + 1'b1;
            end
            if (can_append) begin
                case (emit_state)
                    E_IDLE: begin
                        emit_literal_position <= head_literal_start;
                        emit_literal_remaining <= head_literal_length;
                        emit_length_remaining <= head_literal_length - 15;
                    end
                    E_LITERALS: begin
                        emit_literal_position <= emit_literal_position + literal_chunk;
                        emit_literal_remaining <= emit_literal_remaining - literal_chunk;
                    end
                    E_OFFSET: begin
                        emit_length_remaining <= head_match_code - 15;
                    end
                    E_LITERAL_LENGTH, E_MATCH_LENGTH: begin
                        emit_length_remaining <= length_left;
                    end
                    default: begin
                    end
                endcase
            end

            if (drain) begin
                result_len <= result_len + {28'd0, drain_count};
            end
            if (block_emitted && pack_count == 5'd0 && !m_valid) begin
                done <= 1'b1;
            end
        end
    end
endmodule

`default_nettype wire

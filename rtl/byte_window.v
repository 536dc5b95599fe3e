// Byte-stream building block the LZ4 modules share. Like them: one clock, synchronous active-high
// reset, and `enable` low holds every register (the modules stop once done).
`default_nettype none

// Up to 16 bytes in arrival order, byte i at bytes[8i +: 8] (byte 0 oldest). Each enabled clock
// drops the oldest drop_count bytes and appends lanes 0..append_count-1 of append_data behind the
// rest. The caller keeps drop_count <= count and the result within 16 bytes. Bytes past `count`
// read as 0. The LZ4 decoder's input window and the encoder's output packer.
module byte_window (
    input  wire         clk,
    input  wire         rst,
    input  wire         enable,
    input  wire [4:0]   drop_count,
    input  wire [63:0]  append_data,
    input  wire [3:0]   append_count,   // 0..8
    output reg  [127:0] bytes,
    output reg  [4:0]   count
);
    wire [4:0]   count_after_drop = count - drop_count;
    wire [127:0] bytes_after_drop = bytes >> {drop_count, 3'd0};
    wire [63:0]  appended = append_data & ({64{1'b1}} >> {4'd8 - append_count, 3'd0});

    always @(posedge clk) begin
        if (rst) begin
            bytes <= 128'd0;
            count <= 5'd0;
        end else if (enable) begin
            bytes <= bytes_after_drop | ({64'd0, appended} << {count_after_drop, 3'd0});
            count <= count_after_drop + {1'b0, append_count};
        end
    end
endmodule

`default_nettype wire

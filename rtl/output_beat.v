// Byte-stream building block the LZ4 modules share. Like them: one clock, synchronous active-high
// reset, and `enable` low holds every register (the modules stop once done).
`default_nettype none

// A stream's output register: an enabled clock with `load` registers lanes 0..load_count-1 of
// load_data as the next beat (load_count 1..8) and raises m_valid, which stays high until m_ready
// takes the beat. The caller loads only when the register is free: m_valid low, or m_ready high.
module output_beat (
    input  wire        clk,
    input  wire        rst,
    input  wire        enable,
    input  wire        load,
    input  wire [63:0] load_data,
    input  wire [3:0]  load_count,
    input  wire        m_ready,
    output reg         m_valid,
    output reg  [63:0] m_data,
    output reg  [7:0]  m_keep
);
    always @(posedge clk) begin
        if (rst) begin
            m_valid <= 1'b0;
            m_data <= 64'd0;
            m_keep <= 8'd0;
        end else if (enable) begin
            if (m_valid && m_ready) begin
                m_valid <= 1'b0;
            end
            if (load) begin
                m_valid <= 1'b1;
                m_data <= load_data;
                m_keep <= 8'hFF >> (4'd8 - load_count);
            end
        end
    end
endmodule

`default_nettype wire

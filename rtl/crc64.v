// CRC-64/XZ (ECMA-182 polynomial 0x42F0E1EBA9EA3693, reflected, init and xorout all ones) over a
// byte stream that arrives 8 bytes per clock.
//
// Input beats (s_*): byte lane i is s_data[8*i +: 8]; lanes are taken in order 0..7 and only
// where s_keep[i] is set (a full beat has s_keep = 8'hFF; the last beat may carry fewer). A beat
// with s_last closes the message; a message may be a single beat with s_keep = 0 (empty input,
// CRC 0). The CRC is offered on m_crc with m_valid until m_ready takes it; no new beat is
// accepted meanwhile, so s_ready depends on state only.
`default_nettype none

module crc64 (
    input  wire        clk,
    input  wire        rst,
    input  wire        s_valid,
    output wire        s_ready,
    input  wire [63:0] s_data,
    input  wire [7:0]  s_keep,
    input  wire        s_last,
    output reg         m_valid,
    input  wire        m_ready,
    output reg  [63:0] m_crc
);
    // ECMA-182 polynomial, bit-reversed because CRC-64/XZ shifts least significant bit first.
    localparam [63:0] POLY_REFLECTED = 64'hC96C_5795_D787_0F42;
    localparam [63:0] INIT = 64'hFFFF_FFFF_FFFF_FFFF;

    reg [63:0] state;

    assign s_ready = !m_valid;

    // One beat of the bitwise CRC recurrence, unrolled: synthesis folds it into an XOR network.
    function automatic [63:0] crc_beat(input [63:0] crc_in, input [63:0] data, input [7:0] keep);
        reg [63:0] crc;
        integer lane;
        integer bit_index;
        begin
            crc = crc_in;
            for (lane = 0; lane < 8; lane = lane + 1) begin
                if (keep[lane]) begin
                    for (bit_index = 0; bit_index < 8; bit_index = bit_index + 1) begin
                        crc = (crc >> 1) ^ (POLY_REFLECTED & {64{crc[0] ^ data[lane * 8 + bit_index]}});
                    end
                end
            end
            crc_beat = crc;
        end
    endfunction

    wire [63:0] state_next = crc_beat(state, s_data, s_keep);

    always @(posedge clk) begin
        if (rst) begin
            state <= INIT;
            m_valid <= 1'b0;
            m_crc <= 64'd0;
        end else begin
            if (m_valid && m_ready) begin
                m_valid <= 1'b0;
            end
            if (s_valid && s_ready) begin
                if (s_last) begin
                    m_crc <= ~state_next;
                    m_valid <= 1'b1;
                    state <= INIT;
                end else begin
                    state <= state_next;
                end
            end
        end
    end
endmodule

`default_nettype wire

// Simulation top for fpga-sim: the offload modules side by side, each in its own clock domain so
// that the simulator only evaluates the module being driven. Not part of a hardware design.
`default_nettype none

module offload_top (
    input  wire        crc_clk,
    input  wire        crc_rst,
    input  wire        crc_s_valid,
    output wire        crc_s_ready,
    input  wire [63:0] crc_s_data,
    input  wire [7:0]  crc_s_keep,
    input  wire        crc_s_last,
    output wire        crc_m_valid,
    input  wire        crc_m_ready,
    output wire [63:0] crc_m_crc
);
    crc64 crc_engine (
        .clk(crc_clk), .rst(crc_rst),
        .s_valid(crc_s_valid), .s_ready(crc_s_ready), .s_data(crc_s_data), .s_keep(crc_s_keep),
        .s_last(crc_s_last),
        .m_valid(crc_m_valid), .m_ready(crc_m_ready), .m_crc(crc_m_crc)
    );
endmodule

`default_nettype wire

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
    output wire [63:0] crc_m_crc,

    input  wire        dec_clk,
    input  wire        dec_rst,
    input  wire [31:0] dec_out_limit,
    input  wire        dec_s_valid,
    output wire        dec_s_ready,
    input  wire [63:0] dec_s_data,
    input  wire [7:0]  dec_s_keep,
    input  wire        dec_s_last,
    output wire        dec_m_valid,
    input  wire        dec_m_ready,
    output wire [63:0] dec_m_data,
    output wire [7:0]  dec_m_keep,
    output wire        dec_done,
    output wire [2:0]  dec_error,
    output wire [31:0] dec_result_len,

    input  wire        cmp_clk,
    input  wire        cmp_rst,
    input  wire        cmp_s_valid,
    output wire        cmp_s_ready,
    input  wire [63:0] cmp_s_data,
    input  wire [7:0]  cmp_s_keep,
    input  wire        cmp_s_last,
    output wire        cmp_m_valid,
    input  wire        cmp_m_ready,
    output wire [63:0] cmp_m_data,
    output wire [7:0]  cmp_m_keep,
    output wire        cmp_done,
    output wire [31:0] cmp_result_len
);
    crc64 crc_engine (
        .clk(crc_clk), .rst(crc_rst),
        .s_valid(crc_s_valid), .s_ready(crc_s_ready), .s_data(crc_s_data), .s_keep(crc_s_keep),
        .s_last(crc_s_last),
        .m_valid(crc_m_valid), .m_ready(crc_m_ready), .m_crc(crc_m_crc)
    );

    lz4_decompress decompress_engine (
        .clk(dec_clk), .rst(dec_rst), .out_limit(dec_out_limit),
        .s_valid(dec_s_valid), .s_ready(dec_s_ready), .s_data(dec_s_data), .s_keep(dec_s_keep),
        .s_last(dec_s_last),
        .m_valid(dec_m_valid), .m_ready(dec_m_ready), .m_data(dec_m_data), .m_keep(dec_m_keep),
        .done(dec_done), .error(dec_error), .result_len(dec_result_len)
    );

    lz4_compress compress_engine (
        .clk(cmp_clk), .rst(cmp_rst),
        .s_valid(cmp_s_valid), .s_ready(cmp_s_ready), .s_data(cmp_s_data), .s_keep(cmp_s_keep),
        .s_last(cmp_s_last),
        .m_valid(cmp_m_valid), .m_ready(cmp_m_ready), .m_data(cmp_m_data), .m_keep(cmp_m_keep),
        .done(cmp_done), .result_len(cmp_result_len)
    );
endmodule

`default_nettype wire

// RAM macro: 2**ADDRESS_BITS words of WIDTH bits, WRITE_PORTS write ports and one read port, all
// on one clock. The LZ4 modules keep every large memory in these, the way a design instantiates a
// vendor's block RAM or an ASIC memory compiler's macro; a memory read at several addresses per
// clock is one macro per read port, all written alike (as FPGA tools replicate RAM per read port).
//
// Two views of the same module:
// - simulation (Verilator; SYNTHESIS undefined): the behavioural model below;
// - synthesis (yosys' read_verilog defines SYNTHESIS): an empty module, which yosys turns into a
//   black box, so `synth` keeps each instance as one cell instead of mapping the memory to
//   flip-flops (generic `synth` has no RAM primitive: 64 KiB would become half a million
//   flip-flops). The macro's size is in its parameters; rtl/check.sh counts the bits.
//
// Write ports are packed: port w uses write_enable[w], write_address[w*ADDRESS_BITS +:
// ADDRESS_BITS] and write_data[w*WIDTH +: WIDTH]. Writes land on the rising edge; when two write
// ports hit one address, the higher-numbered port wins.
//
// READ_REGISTERED 0: the read port is combinational (distributed / LUT RAM style): read_data shows
// the word at read_address in the same clock. READ_REGISTERED 1: block RAM style: read_address is
// registered on the rising edge, and read_data shows the word at the registered address, including
// a write made on that same edge (write-first).
`default_nettype none

module ferrite_ram #(
    parameter integer WIDTH = 8,
    parameter integer ADDRESS_BITS = 13,
    parameter integer WRITE_PORTS = 1,
    parameter integer READ_REGISTERED = 0
) (
    input  wire                                clk,
    input  wire [WRITE_PORTS-1:0]              write_enable,
    input  wire [WRITE_PORTS*ADDRESS_BITS-1:0] write_address,
    input  wire [WRITE_PORTS*WIDTH-1:0]        write_data,
    input  wire [ADDRESS_BITS-1:0]             read_address,
    output wire [WIDTH-1:0]                    read_data
);
`ifndef SYNTHESIS
    reg [WIDTH-1:0] memory [0:(1 << ADDRESS_BITS)-1];

    integer write_port;
    always @(posedge clk) begin
        for (write_port = 0; write_port < WRITE_PORTS; write_port = write_port + 1) begin
            if (write_enable[write_port]) begin
                memory[write_address[write_port * ADDRESS_BITS +: ADDRESS_BITS]]
                    <= write_data[write_port * WIDTH +: WIDTH];
            end
        end
    end

    generate
        if (READ_REGISTERED != 0) begin : registered
            reg [ADDRESS_BITS-1:0] read_address_registered;
            always @(posedge clk) begin
                read_address_registered <= read_address;
            end
            assign read_data = memory[read_address_registered];
        end else begin : combinational
            assign read_data = memory[read_address];
        end
    endgenerate
`endif
endmodule

`default_nettype wire

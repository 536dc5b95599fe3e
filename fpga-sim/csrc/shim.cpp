// C ABI over the Verilated models of rtl/ (one per module, sharing a context and a waveform):
// create/free, and one clock cycle per call for each module. Each call sets the module's inputs,
// raises and lowers its clock, and reads the module's outputs (which depend on state only, so
// they are what the next clock edge will see).
#include <cstdint>
#include <memory>

#include "Vcrc64.h"
#include "Vlz4_compress.h"
#include "Vlz4_decompress.h"
#include "verilated.h"
#include "verilated_vcd_c.h"

namespace {

// Levels of hierarchy the waveform dump records (all of them).
constexpr int TRACE_DEPTH = 99;

}  // namespace

// Port layouts, mirrored by fpga-sim/src/ffi.rs.
struct FerriteCrcIn {
    uint64_t s_data;
    uint8_t rst;
    uint8_t s_valid;
    uint8_t s_keep;
    uint8_t s_last;
    uint8_t m_ready;
    uint8_t padding[3];
};

struct FerriteCrcOut {
    uint64_t m_crc;
    uint8_t s_ready;
    uint8_t m_valid;
    uint8_t padding[6];
};

// The ports of both LZ4 modules: out_limit is the decompressor's only, error 0 for the compressor.
struct FerriteLz4In {
    uint64_t s_data;
    uint32_t out_limit;
    uint8_t rst;
    uint8_t s_valid;
    uint8_t s_keep;
    uint8_t s_last;
    uint8_t m_ready;
    uint8_t padding[7];
};

struct FerriteLz4Out {
    uint64_t m_data;
    uint32_t result_len;
    uint8_t s_ready;
    uint8_t m_valid;
    uint8_t m_keep;
    uint8_t done;
    uint8_t error;
    uint8_t padding[7];
};

struct FerriteRtl {
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<Vcrc64> crc;
    std::unique_ptr<Vlz4_decompress> decompress;
    std::unique_ptr<Vlz4_compress> compress;
    std::unique_ptr<VerilatedVcdC> trace;
    uint64_t time = 0;

    // One full clock of `model`: rising edge, falling edge, each settled and recorded in the
    // waveform if one is open.
    template <typename Model>
    void clock(Model& model) {
        model.clk = 1;
        model.eval();
        dump();
        model.clk = 0;
        model.eval();
        dump();
    }

    // One clock of an LZ4 module through the ports both have (the caller handles the rest).
    template <typename Model>
    void lz4_cycle(Model& model, const FerriteLz4In* in, FerriteLz4Out* out) {
        model.rst = in->rst;
        model.s_valid = in->s_valid;
        model.s_data = in->s_data;
        model.s_keep = in->s_keep;
        model.s_last = in->s_last;
        model.m_ready = in->m_ready;
        clock(model);
        out->m_data = model.m_data;
        out->result_len = model.result_len;
        out->s_ready = model.s_ready;
        out->m_valid = model.m_valid;
        out->m_keep = model.m_keep;
        out->done = model.done;
    }

    void dump() {
        if (trace) {
            trace->dump(time);
        }
        time += 1;
    }
};

extern "C" {

// Returns a new model with every clock low, or null if allocation fails. `trace_path` (nullable)
// names a VCD file that records every half-cycle.
FerriteRtl* ferrite_rtl_new(const char* trace_path) {
    try {
        auto rtl = std::make_unique<FerriteRtl>();
        rtl->context = std::make_unique<VerilatedContext>();
        rtl->context->traceEverOn(trace_path != nullptr);
        rtl->crc = std::make_unique<Vcrc64>(rtl->context.get(), "crc64");
        rtl->decompress = std::make_unique<Vlz4_decompress>(rtl->context.get(), "lz4_decompress");
        rtl->compress = std::make_unique<Vlz4_compress>(rtl->context.get(), "lz4_compress");
        if (trace_path != nullptr) {
            rtl->trace = std::make_unique<VerilatedVcdC>();
            rtl->crc->trace(rtl->trace.get(), TRACE_DEPTH);
            rtl->decompress->trace(rtl->trace.get(), TRACE_DEPTH);
            rtl->compress->trace(rtl->trace.get(), TRACE_DEPTH);
            rtl->trace->open(trace_path);
        }
        rtl->crc->eval();
        rtl->decompress->eval();
        rtl->compress->eval();
        return rtl.release();
    } catch (...) {
        return nullptr;
    }
}

void ferrite_rtl_free(FerriteRtl* rtl) {
    if (rtl == nullptr) {
        return;
    }
    if (rtl->trace) {
        rtl->trace->close();
    }
    rtl->crc->final();
    rtl->decompress->final();
    rtl->compress->final();
    delete rtl;
}

void ferrite_rtl_crc_cycle(FerriteRtl* rtl, const FerriteCrcIn* in, FerriteCrcOut* out) {
    Vcrc64& crc = *rtl->crc;
    crc.rst = in->rst;
    crc.s_valid = in->s_valid;
    crc.s_data = in->s_data;
    crc.s_keep = in->s_keep;
    crc.s_last = in->s_last;
    crc.m_ready = in->m_ready;
    rtl->clock(crc);
    out->m_crc = crc.m_crc;
    out->s_ready = crc.s_ready;
    out->m_valid = crc.m_valid;
}

void ferrite_rtl_decompress_cycle(FerriteRtl* rtl, const FerriteLz4In* in, FerriteLz4Out* out) {
    rtl->decompress->out_limit = in->out_limit;
    rtl->lz4_cycle(*rtl->decompress, in, out);
    out->error = rtl->decompress->error;
}

void ferrite_rtl_compress_cycle(FerriteRtl* rtl, const FerriteLz4In* in, FerriteLz4Out* out) {
    rtl->lz4_cycle(*rtl->compress, in, out);
    out->error = 0;
}

}  // extern "C"

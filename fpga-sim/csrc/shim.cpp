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

    void dump() {
        if (trace) {
            trace->dump(time);
        }
        time += 1;
    }
};

extern "C" {

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

struct FerriteDecompressIn {
    uint64_t s_data;
    uint32_t out_limit;
    uint8_t rst;
    uint8_t s_valid;
    uint8_t s_keep;
    uint8_t s_last;
    uint8_t m_ready;
    uint8_t padding[7];
};

struct FerriteDecompressOut {
    uint64_t m_data;
    uint32_t result_len;
    uint8_t s_ready;
    uint8_t m_valid;
    uint8_t m_keep;
    uint8_t done;
    uint8_t error;
    uint8_t padding[7];
};

struct FerriteCompressIn {
    uint64_t s_data;
    uint8_t rst;
    uint8_t s_valid;
    uint8_t s_keep;
    uint8_t s_last;
    uint8_t m_ready;
    uint8_t padding[3];
};

struct FerriteCompressOut {
    uint64_t m_data;
    uint32_t result_len;
    uint8_t s_ready;
    uint8_t m_valid;
    uint8_t m_keep;
    uint8_t done;
};

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

void ferrite_rtl_decompress_cycle(FerriteRtl* rtl, const FerriteDecompressIn* in, FerriteDecompressOut* out) {
    Vlz4_decompress& decompress = *rtl->decompress;
    decompress.rst = in->rst;
    decompress.out_limit = in->out_limit;
    decompress.s_valid = in->s_valid;
    decompress.s_data = in->s_data;
    decompress.s_keep = in->s_keep;
    decompress.s_last = in->s_last;
    decompress.m_ready = in->m_ready;
    rtl->clock(decompress);
    out->m_data = decompress.m_data;
    out->result_len = decompress.result_len;
    out->s_ready = decompress.s_ready;
    out->m_valid = decompress.m_valid;
    out->m_keep = decompress.m_keep;
    out->done = decompress.done;
    out->error = decompress.error;
}

void ferrite_rtl_compress_cycle(FerriteRtl* rtl, const FerriteCompressIn* in, FerriteCompressOut* out) {
    Vlz4_compress& compress = *rtl->compress;
    compress.rst = in->rst;
    compress.s_valid = in->s_valid;
    compress.s_data = in->s_data;
    compress.s_keep = in->s_keep;
    compress.s_last = in->s_last;
    compress.m_ready = in->m_ready;
    rtl->clock(compress);
    out->m_data = compress.m_data;
    out->result_len = compress.result_len;
    out->s_ready = compress.s_ready;
    out->m_valid = compress.m_valid;
    out->m_keep = compress.m_keep;
    out->done = compress.done;
}

}  // extern "C"

// C ABI over the Verilated offload_top model: create/free, and one clock cycle per call for each
// module's domain. Each call sets the module's inputs, raises and lowers its clock, and reads the
// module's outputs (which depend on state only, so they are what the next clock edge will see).
#include <cstdint>
#include <memory>

#include "Voffload_top.h"
#include "verilated.h"
#include "verilated_vcd_c.h"

namespace {

// Levels of hierarchy the waveform dump records (all of them).
constexpr int TRACE_DEPTH = 99;

}  // namespace

struct FerriteRtl {
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<Voffload_top> top;
    std::unique_ptr<VerilatedVcdC> trace;
    uint64_t time = 0;

    // One half-cycle: settle the model, then record it in the waveform if one is open.
    void settle() {
        top->eval();
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
        rtl->top = std::make_unique<Voffload_top>(rtl->context.get(), "offload_top");
        if (trace_path != nullptr) {
            rtl->trace = std::make_unique<VerilatedVcdC>();
            rtl->top->trace(rtl->trace.get(), TRACE_DEPTH);
            rtl->trace->open(trace_path);
        }
        rtl->top->eval();
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
    rtl->top->final();
    delete rtl;
}

void ferrite_rtl_crc_cycle(FerriteRtl* rtl, const FerriteCrcIn* in, FerriteCrcOut* out) {
    Voffload_top& top = *rtl->top;
    top.crc_rst = in->rst;
    top.crc_s_valid = in->s_valid;
    top.crc_s_data = in->s_data;
    top.crc_s_keep = in->s_keep;
    top.crc_s_last = in->s_last;
    top.crc_m_ready = in->m_ready;
    top.crc_clk = 1;
    rtl->settle();
    top.crc_clk = 0;
    rtl->settle();
    out->m_crc = top.crc_m_crc;
    out->s_ready = top.crc_s_ready;
    out->m_valid = top.crc_m_valid;
}

void ferrite_rtl_decompress_cycle(FerriteRtl* rtl, const FerriteDecompressIn* in, FerriteDecompressOut* out) {
    Voffload_top& top = *rtl->top;
    top.dec_rst = in->rst;
    top.dec_out_limit = in->out_limit;
    top.dec_s_valid = in->s_valid;
    top.dec_s_data = in->s_data;
    top.dec_s_keep = in->s_keep;
    top.dec_s_last = in->s_last;
    top.dec_m_ready = in->m_ready;
    top.dec_clk = 1;
    rtl->settle();
    top.dec_clk = 0;
    rtl->settle();
    out->m_data = top.dec_m_data;
    out->result_len = top.dec_result_len;
    out->s_ready = top.dec_s_ready;
    out->m_valid = top.dec_m_valid;
    out->m_keep = top.dec_m_keep;
    out->done = top.dec_done;
    out->error = top.dec_error;
}

void ferrite_rtl_compress_cycle(FerriteRtl* rtl, const FerriteCompressIn* in, FerriteCompressOut* out) {
    Voffload_top& top = *rtl->top;
    top.cmp_rst = in->rst;
    top.cmp_s_valid = in->s_valid;
    top.cmp_s_data = in->s_data;
    top.cmp_s_keep = in->s_keep;
    top.cmp_s_last = in->s_last;
    top.cmp_m_ready = in->m_ready;
    top.cmp_clk = 1;
    rtl->settle();
    top.cmp_clk = 0;
    rtl->settle();
    out->m_data = top.cmp_m_data;
    out->result_len = top.cmp_result_len;
    out->s_ready = top.cmp_s_ready;
    out->m_valid = top.cmp_m_valid;
    out->m_keep = top.cmp_m_keep;
    out->done = top.cmp_done;
}

}  // extern "C"

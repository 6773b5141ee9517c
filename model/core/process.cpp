// SPDX-License-Identifier: GPL-3.0-or-later
// Process set-up for the engine: threads (LibTorch's and OpenBLAS's), OpenMP's wait policy, glibc's
// allocator, device names.
#include "model/core/process.h"

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace gw {

int configureThreads(int threads) {
    const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    torch::set_num_threads(n);
    // OpenBLAS (Debian's libopenblas0-pthread) keeps its own pool, which LibTorch does not size:
    // left at every core it spins beside LibTorch's threads. Found at run time, so that the reference
    // BLAS or MKL work too.
    using SetThreads = void (*)(int);
    if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
    return n;
}

int autoGwThreads(int64_t batch, int64_t widestLayer, bool cpuStep) {
    // Measured on 2 cores (docs/benchmarks.md). Autograd: one thread wins below 64 M (tutorial 840
    // against 730 steps/s, ssd 22 against 17.6), every core above it (wide: a single 1024^3 product
    // runs at 208 against 107 GFLOP/s). Hand-written step: see the header.
    const int64_t kSmall = cpuStep ? int64_t(512) << 10 : int64_t(64) << 20;
    if (batch * widestLayer < kSmall) return 1;
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void ensurePassiveOpenMP(char** argv) {
    if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GW_NO_REEXEC")) return;
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    setenv("GW_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);  // returns only on failure: go on with the spinning policy
}

void tuneAllocator() {
    // glibc's largest mmap threshold (32 MiB on 64-bit; larger values are refused): the tensors of a
    // GW step then come from the heap and are reused, instead of being mapped, faulted in and unmapped
    // on every step. Trimming is raised to match, so that freed memory stays for the next step.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_TOP_PAD, 16 << 20);
    mallopt(M_ARENA_MAX, 2);
}

torch::Device parseDevice(const std::string& name) {
    if (name == "cpu") return torch::Device(torch::kCPU);
    if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
        if (!torch::cuda::is_available())
            throw std::invalid_argument("device '" + name + "': this LibTorch has no CUDA device (built without CUDA, "
                                        "or no GPU is visible); use device: cpu");
        int index = 0;
        if (name.size() > 5) {
            try {
                index = std::stoi(name.substr(5));
            } catch (const std::exception&) {
                throw std::invalid_argument("device '" + name + "': expected cuda:N with N a number");
            }
        }
        const auto count = static_cast<int>(torch::cuda::device_count());
        if (index < 0 || index >= count)
            throw std::invalid_argument("device '" + name + "': expected an index below " + std::to_string(count) +
                                        " (CUDA devices found), found " + std::to_string(index));
        return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
    }
    throw std::invalid_argument("device '" + name + "': expected cpu, cuda or cuda:N");
}

}  // namespace gw

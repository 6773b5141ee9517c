// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/cpu_step/blas.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>

namespace gw::cpu {

namespace {
using SgemmFn = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                         const int*, const float*, const int*, const float*, float*, const int*);

SgemmFn sgemmFn() {
    static const SgemmFn f = reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "sgemm_"));
    return f;
}
}  // namespace

bool blasAvailable() { return sgemmFn() != nullptr; }

// A row-major matrix read column-major is its transpose, so this is Cᵀ = op(B)ᵀ op(A)ᵀ column-major.
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
    if (m == 0 || n == 0 || k == 0) return;  // never called so: every batch and layer is non-empty
    const char ta = transA ? 'T' : 'N', tb = transB ? 'T' : 'N';
    const int M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
    const int LDA = static_cast<int>(lda), LDB = static_cast<int>(ldb), LDC = static_cast<int>(ldc);
    sgemmFn()(&tb, &ta, &N, &M, &K, &alpha, b, &LDB, a, &LDA, &beta, c, &LDC);
}

int64_t threadBlock(int64_t len) {
    const int64_t t = std::max(1, at::get_num_threads());
    return std::max<int64_t>(16, ((len + t - 1) / t + 15) / 16 * 16);
}

void gemmSplit(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
    const int64_t threads = at::get_num_threads();
    if (threads <= 1 || at::in_parallel_region() || m * n * k < (int64_t(1) << 18)) {
        gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    if (m >= n) {  // rows i0 .. i1 of op(A) and of C
        at::parallel_for(0, m, threadBlock(m), [&](int64_t i0, int64_t i1) {
            gemm(transA, transB, i1 - i0, n, k, alpha, transA ? a + i0 : a + i0 * lda, lda, b, ldb, beta, c + i0 * ldc, ldc);
        });
    } else {  // columns j0 .. j1 of op(B) and of C
        at::parallel_for(0, n, threadBlock(n), [&](int64_t j0, int64_t j1) {
            gemm(transA, transB, m, j1 - j0, k, alpha, a, lda, transB ? b + j0 * ldb : b + j0, ldb, beta, c + j0, ldc);
        });
    }
}

std::string blasCoreName() {
    using Name = char* (*)();
    static const auto f = reinterpret_cast<Name>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
    const char* n = f ? f() : nullptr;
    return n ? std::string(n) : std::string();
}

BlasThreads::BlasThreads(int n) {
    using Get = int (*)();
    static const auto get = reinterpret_cast<Get>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    static const auto set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (n <= 0 || !get || !set) return;
    set_ = set;
    before_ = get();
    if (before_ != n) set_(n);
    else set_ = nullptr;
}

BlasThreads::~BlasThreads() {
    if (set_) set_(before_);
}

}  // namespace gw::cpu

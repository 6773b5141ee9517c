// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file blas.h
/// The BLAS binding of the hand-written CPU step: the Fortran `sgemm_` that LibTorch itself calls on
/// the CPU, looked up at run time (dlsym), so that a LibTorch without a separate BLAS library (the pip
/// wheels link MKL privately) still builds and runs the autograd step; and OpenBLAS's thread count.
/// Every matrix here is row-major float32.
#include <cstdint>
#include <string>

namespace gw::cpu {

/// Whether the process holds a BLAS `sgemm_` (gemm() may be called only then).
bool blasAvailable();

/// Row-major C (m × n) = alpha · op(A) · op(B) + beta · C with op(A) (m × k) and op(B) (k × n);
/// lda, ldb, ldc are the row strides. Does nothing when m, n or k is 0.
/// Precondition: blasAvailable().
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

/// The kernels OpenBLAS picked for this CPU (`openblas_get_corename`: "Haswell", "Cooperlake", ...;
/// OPENBLAS_CORETYPE in the environment forces one), or "" for another BLAS. The matrix product
/// `gw bench` measures beside each step runs on them: an AVX2 kernel set such as Haswell's reaches about
/// half of an AVX-512 one's FLOP/s on a CPU that has both (docs/benchmarks.md).
std::string blasCoreName();

/// The grain that gives at::parallel_for over `len` rows (or columns) one block per intra-op thread:
/// len / threads rounded up to a multiple of 16, at least 16 (so all of len on one thread).
int64_t threadBlock(int64_t len);

/// gemm() with C split over LibTorch's intra-op threads (at::parallel_for): its rows when m ≥ n, else
/// its columns, in parts of a multiple of 16, each part one sgemm on the thread that computes it. For
/// a step that holds OpenBLAS at one thread (BlasThreads(1)) so that the intra-op threads do every
/// part of it: OpenBLAS's own pool, woken by a product, spins (sched_yield) for its timeout, tens of
/// milliseconds, against the intra-op threads running the elementwise passes between products
/// (docs/architecture.md, "Threads and memory"; measured in docs/benchmarks.md, "Two threads without
/// OpenBLAS's spinning"). One sgemm, as gemm(), on one thread, inside a parallel region, or below 2¹⁸
/// multiply-adds.
void gemmSplit(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

/// While alive, OpenBLAS's own pool runs `n` threads (0: leave it as it is); restores the count after.
/// Other BLAS libraries are left alone (found at run time, like sgemm_).
class BlasThreads {
public:
    explicit BlasThreads(int n);
    ~BlasThreads();
    BlasThreads(const BlasThreads&) = delete;
    BlasThreads& operator=(const BlasThreads&) = delete;

private:
    void (*set_)(int) = nullptr;
    int before_ = 0;
};

}  // namespace gw::cpu

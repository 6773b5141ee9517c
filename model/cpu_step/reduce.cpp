// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/cpu_step/reduce.h"

#include <algorithm>

#include "model/cpu_step/simd.h"

namespace gw::cpu {

namespace {

constexpr int64_t kBlock = 1024;

GW_SIMD double sumOfBody(const float* x, int64_t n) {
    double total = 0;
    for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
        const int64_t e = std::min(n, i0 + kBlock);
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = i0; i < e; ++i) s += x[i];
        total += s;
    }
    return total;
}

GW_SIMD double dotOfBody(const float* x, const float* y, int64_t n) {
    double total = 0;
    for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
        const int64_t e = std::min(n, i0 + kBlock);
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = i0; i < e; ++i) s += x[i] * y[i];
        total += s;
    }
    return total;
}

GW_SIMD double sqDevOfBody(const float* x, int64_t n, float m) {
    double total = 0;
    for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
        const int64_t e = std::min(n, i0 + kBlock);
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = i0; i < e; ++i) s += (x[i] - m) * (x[i] - m);
        total += s;
    }
    return total;
}

GW_SIMD void shiftedSumsOfBody(const float* x, int64_t n, float k, double& s1, double& s2) {
    double t1 = 0, t2 = 0;
    for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
        const int64_t e = std::min(n, i0 + kBlock);
        float a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
        for (int64_t i = i0; i < e; ++i) {
            const float d = x[i] - k;
            a += d;
            b += d * d;
        }
        t1 += a;
        t2 += b;
    }
    s1 = t1;
    s2 = t2;
}

}  // namespace

GW_DISPATCH(void, shiftedSumsOf, (const float* x, int64_t n, float k, double& s1, double& s2), (x, n, k, s1, s2))
GW_DISPATCH(double, sumOf, (const float* x, int64_t n), (x, n))
GW_DISPATCH(double, dotOf, (const float* x, const float* y, int64_t n), (x, y, n))
GW_DISPATCH(double, sqDevOf, (const float* x, int64_t n, float m), (x, n, m))

}  // namespace gw::cpu

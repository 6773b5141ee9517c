// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file reduce.h
/// The partial-sum reductions of the hand-written CPU steps (the conv VAE's batch norms, the
/// contrastive's softmax rows): float partial sums in vector lanes over blocks of 1024 values, the
/// blocks added in double. Vectorised without -ffast-math (the lanes are an explicit reduction) and
/// compiled for AVX-512, AVX2 + FMA or the baseline, chosen at run time (simd.h). A sum of n values
/// differs from the exact one by about 1e-7 · Σ|x| (float rounding within a block).
#include <cstdint>

namespace gw::cpu {

/// Σ x[i] for i < n (n ≥ 0; 0 when n is 0).
double sumOf(const float* x, int64_t n);
/// Σ x[i]·y[i] for i < n.
double dotOf(const float* x, const float* y, int64_t n);
/// Σ (x[i] − m)² for i < n: a batch norm's second pass around its mean m.
double sqDevOf(const float* x, int64_t n, float m);
/// s1 = Σ (x[i] − k) and s2 = Σ (x[i] − k)² for i < n, in one pass: a batch norm's statistics, the
/// mean k + s1/n and n·variance s2 − s1²/n, with k near the mean (then s1²/n ≪ s2 and little cancels).
void shiftedSumsOf(const float* x, int64_t n, float k, double& s1, double& s2);

}  // namespace gw::cpu

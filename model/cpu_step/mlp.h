// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file mlp.h
/// The GW encoders' and decoders' MLPs (makeGWMlp's Sequential: Linears with a ReLU between them,
/// none after the last) run forward and backward by hand on arena buffers, every product an sgemm
/// (blas.h). Rows are samples: an input of n rows is (n × in) float32, row-major.
#include <cstdint>
#include <vector>

#include "model/core/torch_fwd.h"
#include "model/cpu_step/arena.h"

namespace gw::cpu {

/// Element-wise loops split across the intra-op threads above this many elements (the wide
/// benchmark's 2048 x 1024 activations); the small GWs that run on one thread never split.
constexpr int64_t kGrain = int64_t(1) << 16;
inline int64_t rowGrain(int64_t width) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(width, 1)); }

/// One Linear of a GW MLP: weight (out, in), bias (out), both contiguous float32 on the CPU.
struct Layer {
    torch::Tensor w, b;
    int64_t in = 0, out = 0;
};

/// An MLP as its Linears.
struct Mlp {
    std::vector<Layer> layers;
};

/// The Linears of a Sequential, in order (other children, the ReLUs, are implied between them).
Mlp readMlp(torch::nn::Sequential& seq);

/// p's .grad as a float pointer, allocated as zeros when undefined; null when p needs no gradient.
/// Call it on the thread that owns the step, never in a parallel task.
float* gradPtr(torch::Tensor& p);

/// One forward pass of an MLP on n rows, with what its backward pass reads.
struct Pass {
    const Mlp* mlp = nullptr;
    int64_t n = 0;
    std::vector<const float*> h;  ///< h[i]: input of layer i (n × in_i); h[0] is the pass's input
    float* out = nullptr;         ///< (n × the last layer's out)
};

/// Runs `m` on x (n × in) into buffers of `arena`; p records the pass.
void forward(Arena& arena, const Mlp& m, const float* x, int64_t n, Pass& p);

/// Backward of a pass: g (n × out), overwritten, is the gradient of the loss w.r.t. the pass's output.
/// Weight and bias gradients are added into the layers' .grad; dx (n × in), when given, receives
/// (is overwritten with) the gradient w.r.t. the pass's input.
void backward(Arena& arena, const Pass& p, float* g, float* dx);

/// y = tanh(x), `count` floats (y may be x).
void tanhInto(const float* x, float* y, int64_t count);

}  // namespace gw::cpu

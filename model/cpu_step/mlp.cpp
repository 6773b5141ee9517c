// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/cpu_step/mlp.h"

#include <algorithm>
#include <cmath>

#include "model/cpu_step/blas.h"

namespace gw::cpu {

Mlp readMlp(torch::nn::Sequential& seq) {
    Mlp m;
    for (const auto& child : seq->children())
        if (auto* lin = child->as<torch::nn::LinearImpl>()) m.layers.push_back({lin->weight, lin->bias, lin->weight.size(1), lin->weight.size(0)});
    return m;
}

float* gradPtr(torch::Tensor& p) {
    if (!p.requires_grad()) return nullptr;
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    return p.grad().data_ptr<float>();
}

void forward(Arena& arena, const Mlp& m, const float* x, int64_t n, Pass& p) {
    p.mlp = &m;
    p.n = n;
    p.h.assign(m.layers.size(), nullptr);
    const float* cur = x;
    for (size_t i = 0; i < m.layers.size(); ++i) {
        const Layer& l = m.layers[i];
        p.h[i] = cur;
        float* y = arena.alloc(static_cast<size_t>(n * l.out));
        gemm(false, true, n, l.out, l.in, 1.f, cur, l.in, l.w.data_ptr<float>(), l.in, 0.f, y, l.out);
        const float* b = l.b.data_ptr<float>();
        const bool last = i + 1 == m.layers.size();
        at::parallel_for(0, n, rowGrain(l.out), [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                float* row = y + r * l.out;
                if (last)
                    for (int64_t j = 0; j < l.out; ++j) row[j] += b[j];
                else
                    for (int64_t j = 0; j < l.out; ++j) row[j] = std::max(row[j] + b[j], 0.f);
            }
        });
        cur = y;
    }
    p.out = const_cast<float*>(cur);
}

void backward(Arena& arena, const Pass& p, float* g, float* dx) {
    const int64_t n = p.n;
    for (size_t i = p.mlp->layers.size(); i-- > 0;) {
        const Layer& l = p.mlp->layers[i];
        auto w = l.w, b = l.b;
        if (float* gw = gradPtr(w)) gemm(true, false, l.out, l.in, n, 1.f, g, l.out, p.h[i], l.in, 1.f, gw, l.in);
        if (float* gb = gradPtr(b))
            at::parallel_for(0, l.out, std::max<int64_t>(16, kGrain / std::max<int64_t>(n, 1)), [&](int64_t j0, int64_t j1) {
                for (int64_t r = 0; r < n; ++r) {
                    const float* row = g + r * l.out;
                    for (int64_t j = j0; j < j1; ++j) gb[j] += row[j];
                }
            });
        if (i == 0) {
            if (dx) gemm(false, false, n, l.in, l.out, 1.f, g, l.out, l.w.data_ptr<float>(), l.in, 0.f, dx, l.in);
            return;
        }
        float* gh = arena.alloc(static_cast<size_t>(n * l.in));
        gemm(false, false, n, l.in, l.out, 1.f, g, l.out, l.w.data_ptr<float>(), l.in, 0.f, gh, l.in);
        const float* h = p.h[i];
        at::parallel_for(0, n * l.in, kGrain, [&](int64_t k0, int64_t k1) {
            for (int64_t k = k0; k < k1; ++k) gh[k] = h[k] > 0.f ? gh[k] : 0.f;  // a select: vectorised, no branch
        });
        g = gh;
    }
}

void tanhInto(const float* x, float* y, int64_t count) {
    at::parallel_for(0, count, kGrain / 8, [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; ++k) y[k] = std::tanh(x[k]);
    });
}

}  // namespace gw::cpu

// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/cpu_step/phases.h"

#include <cstring>

namespace gw::cpu {

PerDomain::PerDomain(int domains)
    : D_(domains), parallel_(domains >= 2 && at::get_num_threads() >= 2 && !at::in_parallel_region()),
      blas_(parallel_ ? 1 : 0) {}

void PerDomain::operator()(const std::function<void(int)>& fn) const {
    if (!parallel_) {
        for (int d = 0; d < D_; ++d) fn(d);
        return;
    }
    at::parallel_for(0, D_, 1, [&](int64_t b, int64_t e) {
        for (int64_t d = b; d < e; ++d) fn(static_cast<int>(d));
    });
}

void StepBuffers::begin(const void* key, size_t D, const std::function<DomainNets(size_t)>& net) {
    arena.reset();
    if (key_ != key || doms.size() != D) {
        doms.assign(D, PhaseDomain());
        for (size_t d = 0; d < D; ++d) {
            DomainNets n = net(d);
            auto& dom = doms[d];
            dom.name = n.name;
            dom.mod = n.mod;
            dom.L = n.mod->latentDim();
            dom.enc = readMlp(n.enc);
            dom.dec = readMlp(n.dec);
        }
        key_ = key;
    }
    for (auto& dom : doms)
        for (auto* m : {&dom.enc, &dom.dec})
            for (auto& l : m->layers) {
                gradPtr(l.w);
                gradPtr(l.b);
            }
    arenas.resize(D);
    for (auto& a : arenas) a.reset();
    for (auto& dom : doms) {
        dom.in1.clear();
        dom.in2.clear();
        dom.in3.clear();
        dom.in4.clear();
        dom.n1 = dom.n2 = dom.n3 = dom.n4 = 0;
    }
    terms.clear();
}

std::vector<std::vector<int64_t>> encodeLatents(StepBuffers& b, const PerDomain& each, const GroupData& g, int64_t W,
                                                bool withTanh) {
    auto& doms = b.doms;
    const size_t G = g.dom.size();
    std::vector<std::vector<int64_t>> row1(G);
    for (size_t gi = 0; gi < G; ++gi)
        for (size_t k = 0; k < g.dom[gi].size(); ++k) {
            auto& dom = doms[g.dom[gi][k]];
            row1[gi].push_back(dom.n1);
            dom.in1.push_back({static_cast<int>(gi), static_cast<int64_t>(k), dom.n1, g.rows(gi)});
            dom.n1 += g.rows(gi);
        }
    each([&](int d) {
        auto& dom = doms[d];
        Arena& ar = b.arenas[d];
        if (!dom.n1) return;
        float* x = ar.alloc(static_cast<size_t>(dom.n1 * dom.L));
        for (const auto& s : dom.in1) std::memcpy(x + s.row * dom.L, g.latPtr[s.src][s.srcRow], sizeof(float) * s.n * dom.L);
        forward(ar, dom.enc, x, dom.n1, dom.p1);
        if (withTanh) {
            dom.s1 = ar.alloc(static_cast<size_t>(dom.n1 * W));
            tanhInto(dom.p1.out, dom.s1, dom.n1 * W);
        }
    });
    return row1;
}

void decodeStates(StepBuffers& b, const PerDomain& each, int phase, int64_t W,
                  const std::function<const float*(const Seg&)>& state) {
    auto& doms = b.doms;
    each([&](int d) {
        auto& dom = doms[d];
        Arena& ar = b.arenas[d];
        const int64_t n = phase == 2 ? dom.n2 : dom.n4;
        if (n) {
            float* x = ar.alloc(static_cast<size_t>(n * W));
            for (const auto& s : dom.in(phase)) std::memcpy(x + s.row * W, state(s), sizeof(float) * s.n * W);
            forward(ar, dom.dec, x, n, phase == 2 ? dom.p2 : dom.p4);
        }
        if (phase == 4) {
            dom.dY2 = dom.n2 ? ar.zeros(static_cast<size_t>(dom.n2 * dom.L)) : nullptr;
            dom.dY4 = dom.n4 ? ar.zeros(static_cast<size_t>(dom.n4 * dom.L)) : nullptr;
        }
    });
}

void encodeDecodings(StepBuffers& b, const PerDomain& each, int64_t W, bool withTanh) {
    each([&](int d) {
        auto& dom = b.doms[d];
        Arena& ar = b.arenas[d];
        if (!dom.n3) return;
        float* x = ar.alloc(static_cast<size_t>(dom.n3 * dom.L));
        for (const auto& s : dom.in3) std::memcpy(x + s.row * dom.L, dom.p2.out + s.srcRow * dom.L, sizeof(float) * s.n * dom.L);
        forward(ar, dom.enc, x, dom.n3, dom.p3);
        if (withTanh) {
            dom.s3 = ar.alloc(static_cast<size_t>(dom.n3 * W));
            tanhInto(dom.p3.out, dom.s3, dom.n3 * W);
        }
    });
}

FamilyTotals termValues(StepBuffers& b, int64_t W, float logitScale) {
    FamilyTotals f;
    for (auto& t : b.terms) {
        if (t.kind == LatentLossKind::Mse) mseTerm(t, false);
        else if (t.kind == LatentLossKind::CrossEntropy) crossEntropyTerm(t, false);
        else
            contrastiveValue(b.arena, t, b.doms[t.da].p1.out + t.rowA * W, b.doms[t.db].p1.out + t.rowB * W, W,
                             logitScale);
        f.add(t.family, t.value);
    }
    return f;
}

void addRows(float* out, const float* g, int64_t count) {
    for (int64_t k = 0; k < count; ++k) out[k] += g[k];
}

void scatterInputGrads(StepBuffers& b, int phase, int64_t W, const std::vector<float*>& dX,
                       const std::function<float*(const Seg&)>& dest) {
    for (size_t d = 0; d < b.doms.size(); ++d)
        for (const auto& s : b.doms[d].in(phase)) addRows(dest(s), dX[d] + s.row * W, s.n * W);
}

void tanhBackward(float* dx, const float* y, int64_t count) {
    for (int64_t k = 0; k < count; ++k) dx[k] *= 1.f - y[k] * y[k];
}

void backwardPhases(StepBuffers& b, const PerDomain& each, int64_t W, float logitScale, torch::Tensor logitScaleTensor,
                    const StateBackward& states) {
    auto& doms = b.doms;
    std::vector<float*> dX(doms.size(), nullptr);
    // Phase 4 back to its states, and through them into E3.
    each([&](int d) {
        auto& dom = doms[d];
        Arena& ar = b.arenas[d];
        dom.dE1 = dom.n1 ? ar.zeros(static_cast<size_t>(dom.n1 * W)) : nullptr;
        dom.dE3 = dom.n3 ? ar.zeros(static_cast<size_t>(dom.n3 * W)) : nullptr;
        dX[d] = nullptr;
        if (!dom.n4) return;
        dX[d] = ar.alloc(static_cast<size_t>(dom.n4 * W));
        backward(ar, dom.p4, dom.dY4, dX[d]);
    });
    states(4, dX);
    // Phase 3 back into the decodings of phase 2 (each domain's own rows).
    each([&](int d) {
        auto& dom = doms[d];
        if (!dom.n3) return;
        float* dx = b.arenas[d].alloc(static_cast<size_t>(dom.n3 * dom.L));
        backward(b.arenas[d], dom.p3, dom.dE3, dx);
        for (const auto& s : dom.in3) addRows(dom.dY2 + s.srcRow * dom.L, dx + s.row * dom.L, s.n * dom.L);
    });
    // Phase 2 back to its states, and through them into E1.
    each([&](int d) {
        auto& dom = doms[d];
        dX[d] = nullptr;
        if (!dom.n2) return;
        dX[d] = b.arenas[d].alloc(static_cast<size_t>(dom.n2 * W));
        backward(b.arenas[d], dom.p2, dom.dY2, dX[d]);
    });
    states(2, dX);
    // The contrastive terms into E1 and the logit scale; phase 1's encoders.
    double dLogitScale = 0;
    for (auto& t : b.terms)
        if (t.family == metrics::Family::Contrastive && t.weight != 0)
            dLogitScale += contrastiveGrad(b.arena, t, W, doms[t.da].dE1 + t.rowA * W, doms[t.db].dE1 + t.rowB * W, logitScale);
    each([&](int d) {
        if (doms[d].n1) backward(b.arenas[d], doms[d].p1, doms[d].dE1, nullptr);
    });
    if (logitScaleTensor.requires_grad()) {
        float* g = gradPtr(logitScaleTensor);
        g[0] += static_cast<float>(dLogitScale);
    }
}

void fuseForward(Arena& arena, FusedState& st, const std::vector<PhaseDomain>& doms, int64_t W) {
    const int64_t n = st.n;
    st.z = arena.alloc(static_cast<size_t>(n * W));
    std::memset(st.z, 0, sizeof(float) * static_cast<size_t>(n * W));
    for (const auto& src : st.sources) {
        const auto& dom = doms[src.dom];
        const float* x = (src.phase3 ? dom.p3.out : dom.p1.out) + src.row * W;
        if (!src.score.defined()) {
            std::memcpy(st.z, x, sizeof(float) * static_cast<size_t>(n * W));
            continue;
        }
        const float* sc = src.score.data_ptr<float>();
        for (int64_t r = 0; r < n; ++r)
            for (int64_t j = 0; j < W; ++j) st.z[r * W + j] += sc[r] * x[r * W + j];
    }
    tanhInto(st.z, st.z, n * W);
}

void fuseBackward(FusedState& st, std::vector<PhaseDomain>& doms, int64_t W) {
    tanhBackward(st.dz, st.z, st.n * W);
    for (const auto& src : st.sources) {
        auto& dom = doms[src.dom];
        float* out = (src.phase3 ? dom.dE3 : dom.dE1) + src.row * W;
        if (!src.score.defined()) {
            addRows(out, st.dz, st.n * W);
            continue;
        }
        const float* sc = src.score.data_ptr<float>();
        for (int64_t r = 0; r < st.n; ++r)
            for (int64_t j = 0; j < W; ++j) out[r * W + j] += sc[r] * st.dz[r * W + j];
    }
}

}  // namespace gw::cpu

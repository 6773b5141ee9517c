// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file phases.h
/// The four phases that every hand-written GW step runs, forward and backward, written once for the
/// flavours' steps (model/gw/flavours/*_cpu.cpp):
/// 1. each domain's GW encoder on its latents of every group: E1 (n1 × W);
/// 2. each domain's GW decoder on workspace states (n2 × W) built by the flavour from E1: Y2 (n2 × L);
/// 3. each domain's GW encoder on rows of its own Y2 (cycles): E3 (n3 × W);
/// 4. each domain's GW decoder on states built from E3: Y4 (n4 × L);
/// and the backward pass from d loss / d Y2, Y4 (the terms', latent_losses.h) down to the GW weights'
/// .grad and the logit scale's. How a state is built from encodings, and its gradient passed back, is
/// the flavour's (a callback); the fused state z = tanh(Σ_k s_k ⊙ x_k) is a kernel here.
/// Each domain's passes may run on a thread of their own (PerDomain); nothing two domains' tasks
/// write overlaps: each owns its layers' gradients and its arena, and the scatters across domains run
/// after a phase, on the calling thread.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/core/torch_fwd.h"
#include "model/cpu_step/arena.h"
#include "model/cpu_step/blas.h"
#include "model/cpu_step/latent_losses.h"
#include "model/cpu_step/mlp.h"
#include "model/domains/domain_module.h"

namespace gw::cpu {

/// Rows [row, row + n) of one buffer, copied from rows [srcRow, srcRow + n) of another.
struct Seg {
    int src = -1;        ///< what the rows come from (a group, a domain, a state: the phase says)
    int64_t srcRow = 0;  ///< first row in the source buffer
    int64_t row = 0;     ///< first row in this buffer
    int64_t n = 0;
};

/// A GW domain as the caller gives it: its module and its GW encoder and decoder (makeGWMlp).
struct DomainNets {
    std::string name;
    DomainModule* mod = nullptr;
    torch::nn::Sequential enc, dec;
};

/// One domain's passes in a step.
struct PhaseDomain {
    std::string name;
    DomainModule* mod = nullptr;
    int64_t L = 0;
    Mlp enc, dec;
    std::vector<Seg> in1;  ///< phase 1: src = group, srcRow = index of the domain in the group
    std::vector<Seg> in2;  ///< phase 2: src and srcRow name a state's rows, as the flavour builds them
    std::vector<Seg> in3;  ///< phase 3: srcRow = row in this domain's Y2 (src: the flavour's)
    std::vector<Seg> in4;  ///< phase 4: as in2
    int64_t n1 = 0, n2 = 0, n3 = 0, n4 = 0;
    Pass p1, p2, p3, p4;
    float *s1 = nullptr, *s3 = nullptr;  ///< tanh(E1), tanh(E3) (n × W) when the phase asks for them
    float *dE1 = nullptr, *dY2 = nullptr, *dE3 = nullptr, *dY4 = nullptr;  ///< d loss / d E1, Y2, E3, Y4
    const Pass& pass(int phase) const { return phase == 1 ? p1 : phase == 2 ? p2 : phase == 3 ? p3 : p4; }
    const std::vector<Seg>& in(int phase) const { return phase == 1 ? in1 : phase == 2 ? in2 : phase == 3 ? in3 : in4; }
};

/// The groups' latents as contiguous float32 (B, L) and, for class domains, their int64 (B,)
/// indices; `dom[gi][k]` is the GW index of group gi's k-th domain. Pointers are taken on the
/// calling thread (data_ptr is not for worker threads to call).
struct GroupData {
    std::vector<std::vector<torch::Tensor>> lat, cls;
    std::vector<std::vector<int>> dom;
    std::vector<std::vector<const float*>> latPtr;
    int64_t rows(size_t gi) const { return lat[gi][0].size(0); }
};

/// Domain-parallel mode: with two or more intra-op threads, each domain's passes of a phase run on a
/// thread of their own with a single-threaded sgemm, instead of every product split across the
/// threads and joined (measured on the wide benchmark: docs/benchmarks.md).
class PerDomain {
public:
    explicit PerDomain(int domains);
    void operator()(const std::function<void(int)>& fn) const;

private:
    int D_;
    bool parallel_;
    BlasThreads blas_;
};

/// What one step object keeps between steps (no allocation after the first step).
class StepBuffers {
public:
    Arena arena;                ///< serial parts: loss terms, states, scatter buffers
    std::vector<Arena> arenas;  ///< one per domain: its passes (they may run on different threads)
    std::vector<PhaseDomain> doms;
    std::vector<Term> terms;

    /// Starts a step on D domains: reads the layers (net(d) for each d) when `key` (the GW) differs
    /// from the last step's, allocates every layer's .grad here, on the calling thread, and clears
    /// the arenas, segments and terms.
    void begin(const void* key, size_t D, const std::function<DomainNets(size_t)>& net);

private:
    const void* key_ = nullptr;
};

/// Phase 1: every group's latents through their domain's encoder; returns row1[gi][k], the first
/// row of group gi's k-th domain in that domain's E1. With `withTanh`, s1 = tanh(E1).
std::vector<std::vector<int64_t>> encodeLatents(StepBuffers& b, const PerDomain& each, const GroupData& g, int64_t W,
                                                bool withTanh);
/// Phase 2 or 4: each domain's decoder on the rows of its in2 / in4, read from state(seg) (seg.n × W).
/// After phase 4, every domain's dY2 and dY4 are zeros.
void decodeStates(StepBuffers& b, const PerDomain& each, int phase, int64_t W,
                  const std::function<const float*(const Seg&)>& state);
/// Phase 3: each domain's encoder on the rows of its Y2 that in3 names. With `withTanh`, s3 = tanh(E3).
void encodeDecodings(StepBuffers& b, const PerDomain& each, int64_t W, bool withTanh);

/// Every term's value: MSE, cross-entropy, or the contrastive of its two domains' E1 rows.
FamilyTotals termValues(StepBuffers& b, int64_t W, float logitScale);

/// The flavour's part of the backward pass: after phase `phase` (4, then 2) the gradient of each
/// decoder input segment seg of domain d is the rows [seg.row, seg.row + seg.n) of dX[d] (W wide);
/// the flavour adds them into its states (addRows) and passes them through the states into dE3
/// (phase 4) or dE1 (phase 2) of the domains whose encodings the states read.
using StateBackward = std::function<void(int phase, const std::vector<float*>& dX)>;

/// The backward pass, after termGradients: phase 4's decoders, the flavour's states (into dE3),
/// phase 3's encoders (into dY2), phase 2's decoders, the flavour's states (into dE1), the
/// contrastive terms (into dE1 and the logit scale's .grad) and phase 1's encoders.
void backwardPhases(StepBuffers& b, const PerDomain& each, int64_t W, float logitScale, torch::Tensor logitScaleTensor,
                    const StateBackward& states);

/// out[k] += g[k] for k < count.
void addRows(float* out, const float* g, int64_t count);
/// Scatters dX (of phase 2 or 4) into the rows that `dest(seg)` names (seg.n × W), domain by domain,
/// segment by segment.
void scatterInputGrads(StepBuffers& b, int phase, int64_t W, const std::vector<float*>& dX,
                       const std::function<float*(const Seg&)>& dest);
/// dx[k] *= 1 − y[k]² (the gradient through y = tanh(x)), for k < count.
void tanhBackward(float* dx, const float* y, int64_t count);

/// A fused workspace state of n rows: z = tanh(Σ_k score_k ⊙ x_k) over its sources, each x_k the rows
/// of a domain's E1 or E3 (n × W), score_k (n,) float32, or undefined for a lone source taken as is.
struct FusedState {
    struct Source {
        int dom = -1;
        bool phase3 = false;  ///< x from the domain's E3, else E1
        int64_t row = 0;
        torch::Tensor score;  ///< (n,) contiguous float32, or undefined
    };
    int64_t n = 0;
    std::vector<Source> sources;
    float* z = nullptr;
    float* dz = nullptr;  ///< d loss / d z (n × W)
};
/// Computes st.z into `arena` from the sources' encodings in `doms`.
void fuseForward(Arena& arena, FusedState& st, const std::vector<PhaseDomain>& doms, int64_t W);
/// Passes st.dz through the tanh (in place) and the scores into the sources' dE1 / dE3 rows.
void fuseBackward(FusedState& st, std::vector<PhaseDomain>& doms, int64_t W);

}  // namespace gw::cpu

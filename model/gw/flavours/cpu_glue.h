// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file cpu_glue.h
/// What the flavours' hand-written steps (*_cpu.cpp) share to hand a GW and a batch to the kernels of
/// model/cpu_step/ (which know nothing of model/gw/): the GW's domains as cpu::DomainNets, the groups'
/// tensors as cpu::GroupData, and the latent loss term of a decoded prediction. Included only by the
/// *_cpu.cpp files.
#include <algorithm>
#include <string>
#include <vector>

#include "model/cpu_step/phases.h"
#include "model/gw/flavours/losses.h"

namespace gw::cpu {

/// Starts a step of `b` on the domains of `gw` (cpu::StepBuffers::begin).
inline void beginStep(StepBuffers& b, GWModule& gw) {
    const auto& names = gw.domainNames();
    b.begin(&gw, names.size(), [&](size_t d) {
        return DomainNets{names[d], &gw.domainModule(names[d]), gw.encoder(names[d]), gw.decoder(names[d])};
    });
}

/// The groups' tensors, contiguous, with their domains as GW indices (shapes as GroupBatch).
inline GroupData gatherGroups(GWModule& gw, const std::vector<GroupBatch>& groups) {
    const auto& names = gw.domainNames();
    const size_t G = groups.size();
    GroupData g;
    g.lat.resize(G);
    g.cls.resize(G);
    g.dom.resize(G);
    g.latPtr.resize(G);
    for (size_t gi = 0; gi < G; ++gi)
        for (const auto& d : groups[gi].domains) {
            g.dom[gi].push_back(static_cast<int>(std::find(names.begin(), names.end(), d) - names.begin()));
            g.lat[gi].push_back(groups[gi].latents.at(d).contiguous());
            g.latPtr[gi].push_back(g.lat[gi].back().data_ptr<float>());
            const auto* in = groups[gi].inputs.find(d);
            g.cls[gi].push_back(gw.domainModule(d).latentLossKind() == LatentLossKind::CrossEntropy ? in->contiguous()
                                                                                                   : torch::Tensor());
        }
    return g;
}

/// The latent term `name` of domain d's prediction (rows of its Y2 or Y4, and their gradient) against
/// the k-th domain of group gi.
inline Term latentTerm(const StepBuffers& b, const GroupData& g, std::string name, metrics::Family f, int d,
                       const float* pred, float* grad, size_t gi, size_t k) {
    Term t;
    t.name = std::move(name);
    t.family = f;
    t.kind = b.doms[d].mod->latentLossKind();
    t.pred = pred;
    t.grad = grad;
    t.target = g.latPtr[gi][k];
    if (g.cls[gi][k].defined()) t.classes = g.cls[gi][k].data_ptr<int64_t>();
    t.n = g.rows(gi);
    t.L = b.doms[d].L;
    return t;
}

/// The contrastive term `name` of the k-th and l-th domains of group gi (rows of their E1).
inline Term contrastiveTerm(const GroupData& g, const std::vector<std::vector<int64_t>>& row1, std::string name,
                            size_t gi, size_t k, size_t l) {
    Term t;
    t.name = std::move(name);
    t.family = metrics::Family::Contrastive;
    t.kind = LatentLossKind::Custom;
    t.n = g.rows(gi);
    t.da = g.dom[gi][k];
    t.db = g.dom[gi][l];
    t.rowA = row1[gi][k];
    t.rowB = row1[gi][l];
    return t;
}

inline torch::Tensor scalarOf(double v) { return torch::scalar_tensor(v, torch::kFloat32); }

}  // namespace gw::cpu

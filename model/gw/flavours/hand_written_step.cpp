// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/gw/flavours/hand_written_step.h"

#include <algorithm>

#include "model/core/registry.h"

namespace gw {

std::string unsupportedTerms(const GWLosses& losses, const std::vector<std::string>& implemented) {
    for (const auto& t : losses.terms())
        if (std::find(implemented.begin(), implemented.end(), t) == implemented.end())
            return "loss term '" + t + "' is not written out by hand";
    return {};
}

std::string unsupportedDomains(GWModule& gw) {
    if (gw.shape().activation != FusionActivation::Tanh)
        return std::string("fusion activation '") + fusionActivationName(gw.shape().activation) + "' is not written out by hand";
    if (gw.shape().linear && !gw.shape().linearBias) return "the linear GW encoders and decoders have no bias";
    for (const auto& d : gw.domainNames()) {
        auto& mod = gw.domainModule(d);
        if (!mod.isFrozen()) return "domain module '" + d + "' trains end to end";
        if (mod.latentLossKind() == LatentLossKind::Custom) return "domain module '" + d + "' has its own loss";
        for (auto* seq : {&gw.encoder(d), &gw.decoder(d)})
            for (const auto& p : (*seq)->parameters())
                if (!p.is_cpu() || p.scalar_type() != torch::kFloat32 || !p.is_contiguous())
                    return "the GW's weights are not contiguous float32 on the CPU";
    }
    return {};
}

std::string unsupportedGroups(GWModule& gw, const std::vector<GroupBatch>& groups, size_t maxDomains) {
    std::vector<std::string> seen;
    for (const auto& g : groups) {
        if (g.domains.empty() || g.domains.size() > maxDomains)
            return "a group of " + std::to_string(g.domains.size()) + " domains";
        const auto name = groupName(g.domains);
        if (std::find(seen.begin(), seen.end(), name) != seen.end()) return "group " + name + " appears twice";
        seen.push_back(name);
        int64_t n = -1;
        for (const auto& d : g.domains) {
            const auto* t = g.latents.find(d);
            if (!t || !t->defined() || !t->is_cpu() || t->scalar_type() != torch::kFloat32 || t->dim() != 2 ||
                t->size(1) != gw.domainModule(d).latentDim() || t->requires_grad())
                return "latents of '" + d + "' are not (B, L) float32 on the CPU without gradient";
            if (n >= 0 && t->size(0) != n) return "group " + name + " has batches of different sizes";
            n = t->size(0);
            if (n == 0) return "an empty batch";
            if (gw.domainModule(d).latentLossKind() == LatentLossKind::CrossEntropy) {
                const auto* c = g.inputs.find(d);
                if (!c || !c->defined() || !c->is_cpu() || c->scalar_type() != torch::kInt64 || c->dim() != 1 || c->size(0) != n)
                    return "class indices of '" + d + "' are not (B,) int64 on the CPU";
            }
        }
    }
    return {};
}

}  // namespace gw

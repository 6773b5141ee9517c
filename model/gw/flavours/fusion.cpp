// SPDX-License-Identifier: GPL-3.0-or-later
/// \file fusion.cpp
/// The Fusion flavour: contrastive plus the broadcast loss (shimmer `shimmer/modules/losses.py`,
/// `GWLosses.step` and `broadcast_loss`; GlobalWorkspaceFusion; docs/gw-semantics.md 2.3). Registered in
/// model/core/kinds.cpp as `fusion`, with its hand-written step (fusion_cpu.cpp); tested in tests/tst_fusion.cpp.
#include <algorithm>
#include <set>

#include "model/gw/flavours/hand_written_step.h"
#include "model/gw/flavours/loss_batcher.h"
#include "model/gw/flavours/losses.h"
#include "model/core/registry.h"

namespace gw {

GWLossesFusion::GWLossesFusion(const LossSettings& loss) : GWLosses("fusion", loss) {}
GWLossesFusion::GWLossesFusion(std::string flavour, const LossSettings& loss) : GWLosses(std::move(flavour), loss) {}

LossOutput GWLossesFusion::pairContrastive(const std::string&, const std::string&, const torch::Tensor& ea,
                                           const torch::Tensor& eb, TensorMap&) {
    return (*contrastive_)(ea, eb);
}

StepLosses GWLossesFusion::step(GWModule& gw, Selection& selection, const std::vector<GroupBatch>& groups) {
    const auto& all = gw.domainNames();
    auto encode = [&](const std::string& d, const torch::Tensor& x) { return gw.encoder(d)->forward(x); };
    auto decode = [&](const std::string& d, const torch::Tensor& x) { return gw.decoder(d)->forward(x); };
    auto fuse = [&](const TensorMap& latents, const TensorMap& pre) { return gw.selectAndFuse(latents, pre, selection); };

    // 1. Pre-fusion encodings of every group (each GW encoder once).
    detail::Batcher enc;
    std::vector<OrderedMap<size_t>> encSlot(groups.size());
    for (size_t gi = 0; gi < groups.size(); ++gi)
        for (const auto& d : groups[gi].domains) encSlot[gi].set(d, enc.add(d, groups[gi].latents.at(d)));
    enc.run(encode);

    // 2. Every non-empty subset S of every group, in itertools.product([0, 1], repeat=|G|) order: fuse S,
    //    decode into every GW domain (each GW decoder once over all subsets).
    struct Subset {
        size_t group;
        std::vector<std::string> selected, outside;  ///< S in group order; I = GW domains not in S
        OrderedMap<size_t> decoded;                  ///< GW domain -> slot in dec
        OrderedMap<size_t> cycled;                   ///< domain of S -> slot in dec2
    };
    std::vector<Subset> subsets;
    detail::Batcher dec;
    for (size_t gi = 0; gi < groups.size(); ++gi) {
        const auto& g = groups[gi];
        const size_t n = g.domains.size();
        for (size_t mask = 1; mask < (size_t(1) << n); ++mask) {
            Subset s;
            s.group = gi;
            TensorMap lat, pre;
            for (size_t i = 0; i < n; ++i)
                if (mask & (size_t(1) << (n - 1 - i))) {  // the first domain is the most significant digit
                    const auto& d = g.domains[i];
                    s.selected.push_back(d);
                    lat.set(d, g.latents.at(d));
                    pre.set(d, enc[encSlot[gi].at(d)]);
                }
            for (const auto& d : all)
                if (std::find(s.selected.begin(), s.selected.end(), d) == s.selected.end()) s.outside.push_back(d);
            const auto state = fuse(lat, pre);
            for (const auto& d : all) s.decoded.set(d, dec.add(d, state));
            subsets.push_back(std::move(s));
        }
    }
    dec.run(decode);

    // 3. Cycles: the decodings of the domains outside S, encoded and fused again, decoded into S.
    detail::Batcher enc2, dec2;
    std::vector<OrderedMap<size_t>> reSlot(subsets.size());
    for (size_t si = 0; si < subsets.size(); ++si)
        for (const auto& d : subsets[si].outside) reSlot[si].set(d, enc2.add(d, dec[subsets[si].decoded.at(d)]));
    enc2.run(encode);
    for (size_t si = 0; si < subsets.size(); ++si) {
        auto& s = subsets[si];
        if (s.outside.empty()) continue;
        TensorMap lat, pre;
        for (const auto& d : s.outside) {
            lat.set(d, dec[s.decoded.at(d)]);
            pre.set(d, enc2[reSlot[si].at(d)]);
        }
        const auto state = fuse(lat, pre);
        for (const auto& d : s.selected) s.cycled.set(d, dec2.add(d, state));
    }
    dec2.run(decode);

    // 4. The terms, in shimmer's order, with keys made unique across groups.
    TensorMap metrics, losses, extras;
    std::vector<torch::Tensor> ct, dcy, cy, tr, fu;
    std::vector<std::set<std::string>> pairsSeen;
    for (size_t gi = 0; gi < groups.size(); ++gi) {
        const auto& g = groups[gi];
        if (g.domains.size() < 2) continue;
        for (size_t i = 0; i < g.domains.size(); ++i)
            for (size_t j = i + 1; j < g.domains.size(); ++j) {
                const std::set<std::string> pair{g.domains[i], g.domains[j]};
                if (std::find(pairsSeen.begin(), pairsSeen.end(), pair) != pairsSeen.end()) continue;
                pairsSeen.push_back(pair);
                const std::string name = metrics::contrastive(g.domains[i], g.domains[j]);
                TensorMap more;
                auto out = pairContrastive(g.domains[i], g.domains[j], enc[encSlot[gi].at(g.domains[i])],
                                           enc[encSlot[gi].at(g.domains[j])], more);
                metrics.set(name, out.loss);
                for (auto& [k, v] : out.metrics) extras.set(metrics::extraOf(name, k), v);
                for (auto& [k, v] : more) extras.set(k, v);
                ct.push_back(out.loss);
            }
    }
    StepLosses r;
    using metrics::Family, metrics::info;
    detail::addFamily(r, metrics, info(Family::Contrastive).mean, ct);
    for (const auto& [k, v] : extras) metrics.set(k, v);
    extras.clear();

    auto add = [&](std::string name, const std::string& groupLabel, LossOutput&& out, std::vector<torch::Tensor>& family) {
        if (losses.contains(name)) name = metrics::withCase(name, groupLabel);  // shimmer would overwrite here
        losses.set(name, out.loss);
        for (auto& [k, v] : out.metrics) extras.set(metrics::broadcastExtra(name, k), v);
        family.push_back(out.loss);
    };
    for (const auto& s : subsets) {
        const auto& g = groups[s.group];
        const std::string from = sortedGroupName(s.selected), caseName = sortedGroupName(g.domains);
        for (const auto& [d, slot] : s.decoded) {
            if (std::find(g.domains.begin(), g.domains.end(), d) == g.domains.end()) continue;  // no ground truth
            const bool inS = std::find(s.selected.begin(), s.selected.end(), d) != s.selected.end();
            const LossFamily family = !inS ? LossFamily::Translation
                                           : s.selected.size() == 1 ? LossFamily::DemiCycle : LossFamily::Fused;
            auto l = gw.domainModule(d).computeFamilyLoss(family, dec[slot], g.latents.at(d), g.inputs.at(d));
            if (!l) continue;
            add(metrics::broadcastTerm(from, d), caseName, std::move(*l),
                family == LossFamily::Translation ? tr : family == LossFamily::DemiCycle ? dcy : fu);
        }
        for (const auto& [d, slot] : s.cycled) {
            auto l = gw.domainModule(d).computeFamilyLoss(LossFamily::Cycle, dec2[slot], g.latents.at(d), g.inputs.at(d));
            if (!l) continue;
            add(metrics::broadcastCycle(from, sortedGroupName(s.outside), d, caseName), caseName, std::move(*l), cy);
        }
    }
    for (const auto& [k, v] : extras) metrics.set(k, v);
    detail::addFamily(r, metrics, info(Family::DemiCycle).mean, dcy);
    detail::addFamily(r, metrics, info(Family::Cycle).mean, cy);
    detail::addFamily(r, metrics, info(Family::Translation).mean, tr);
    detail::addFamily(r, metrics, info(Family::Fused).mean, fu);
    for (const auto& [k, v] : losses) metrics.set(k, v);

    r.out.loss = combineLoss(metrics, coefs());
    const std::vector<torch::Tensor> broadcast = broadcastLossTerms(metrics, coefs());
    if (!broadcast.empty()) metrics.set(metrics::kBroadcastLoss, detail::meanOf(broadcast));
    r.out.metrics = std::move(metrics);
    return r;
}

void registerFusionFlavour(FlavourRegistry& r) {
    r.add({"fusion",
           "contrastives plus the broadcast loss: every subset of every group fused and decoded into every "
           "domain (shimmer GlobalWorkspaceFusion)",
           {}},
          {[](const FlavourContext& c) -> std::shared_ptr<GWLosses> {
               return std::make_shared<GWLossesFusion>(c.loss);
           },
           "random", makeFusionCpuStep});
}

}  // namespace gw

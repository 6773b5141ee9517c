// SPDX-License-Identifier: GPL-3.0-or-later
/// \file two_domains.cpp
/// The two_domains flavour: demi-cycles and cycles on unpaired groups, translations and contrastives on
/// paired ones (shimmer `GWLosses2Domains.step`; docs/gw-semantics.md 2.2). Registered in
/// model/core/kinds.cpp as `two_domains`, with its hand-written step (two_domains_cpu.cpp).
#include "model/gw/flavours/hand_written_step.h"
#include "model/gw/flavours/loss_batcher.h"
#include "model/gw/flavours/losses.h"
#include "model/core/registry.h"

namespace gw {

GWLosses2Domains::GWLosses2Domains(const LossSettings& loss) : GWLosses("two_domains", loss) {}

void registerTwoDomainsFlavour(FlavourRegistry& r) {
    r.add({"two_domains",
           "demi-cycles and cycles on unpaired groups, translations and contrastives on paired ones "
           "(shimmer GlobalWorkspace2Domains)",
           {}},
          {[](const FlavourContext& c) -> std::shared_ptr<GWLosses> {
               return std::make_shared<GWLosses2Domains>(c.loss);
           },
           "single_domain", makeTwoDomainsCpuStep});
}

namespace {
/// Adds `{prefix}` = loss and `{prefix}_{k}` for the extra metrics; returns the loss.
void record(TensorMap& metrics, std::vector<torch::Tensor>& family, const std::string& prefix, LossOutput&& out) {
    metrics.set(prefix, out.loss);
    for (auto& [k, v] : out.metrics) metrics.set(metrics::extraOf(prefix, k), v);
    family.push_back(out.loss);
}
}  // namespace

StepLosses GWLosses2Domains::step(GWModule& gw, Selection& selection, const std::vector<GroupBatch>& groups) {
    TensorMap metrics;
    std::vector<torch::Tensor> dcy, cy, tr, ct;
    const auto& all = gw.domainNames();
    auto encode = [&](const std::string& d, const torch::Tensor& x) { return gw.encoder(d)->forward(x); };
    auto decode = [&](const std::string& d, const torch::Tensor& x) { return gw.decoder(d)->forward(x); };
    const size_t none = size_t(-1);

    // 1. Every GW encoder once: the single-domain (unpaired) groups' latents and the paired groups'.
    detail::Batcher enc;
    std::vector<size_t> singleSlot(groups.size(), none);
    std::vector<OrderedMap<size_t>> pairedSlots(groups.size());
    for (size_t gi = 0; gi < groups.size(); ++gi) {
        const auto& g = groups[gi];
        if (g.domains.size() == 1) singleSlot[gi] = enc.add(g.domains[0], g.latents.at(g.domains[0]));
        else
            for (const auto& d : g.domains) pairedSlots[gi].set(d, enc.add(d, g.latents.at(d)));
    }
    enc.run(encode);

    // 2. Every GW decoder once: demi-cycles and the first half of cycles from the unpaired states
    //    f(Enc_s(u)) (f the fusion activation), translations from the paired groups' states.
    detail::Batcher dec;
    std::vector<size_t> demiSlot(groups.size(), none);
    std::vector<OrderedMap<size_t>> cycleMid(groups.size()), trSlot(groups.size());
    std::vector<TensorMap> pre(groups.size());
    for (size_t gi = 0; gi < groups.size(); ++gi) {
        const auto& g = groups[gi];
        if (g.domains.size() == 1) {
            const std::string& s = g.domains[0];
            auto& mod = gw.domainModule(s);
            const auto state = gw.activate(enc[singleSlot[gi]]);
            if (mod.familyEnabled(LossFamily::DemiCycle)) demiSlot[gi] = dec.add(s, state);
            if (mod.familyEnabled(LossFamily::Cycle))
                for (const auto& t : all)
                    if (t != s) cycleMid[gi].set(t, dec.add(t, state));
            continue;
        }
        for (const auto& d : g.domains) pre[gi].set(d, enc[pairedSlots[gi].at(d)]);
        for (const auto& t : g.domains) {
            TensorMap srcLatents, srcPre;
            for (const auto& d : g.domains) {
                if (d == t) continue;
                srcLatents.set(d, g.latents.at(d));
                srcPre.set(d, pre[gi].at(d));
            }
            trSlot[gi].set(t, dec.add(t, gw.selectAndFuse(srcLatents, srcPre, selection)));
        }
    }
    dec.run(decode);

    // 3 and 4. Cycles back: Enc_t of the translated latents, then Dec_s.
    detail::Batcher enc2, dec2;
    std::vector<OrderedMap<size_t>> cycleBack(groups.size());
    for (size_t gi = 0; gi < groups.size(); ++gi)
        for (const auto& [t, slot] : cycleMid[gi]) cycleBack[gi].set(t, enc2.add(t, dec[slot]));
    enc2.run(encode);
    for (size_t gi = 0; gi < groups.size(); ++gi)
        for (auto& [t, slot] : cycleBack[gi]) slot = dec2.add(groups[gi].domains[0], gw.activate(enc2[slot]));
    dec2.run(decode);

    // The losses, in shimmer's order (metric names and float summation order as before).
    for (size_t gi = 0; gi < groups.size(); ++gi) {
        const auto& g = groups[gi];
        if (g.domains.size() != 1) continue;
        const std::string& s = g.domains[0];
        const auto& u = g.latents.at(s);
        const auto& raw = g.inputs.at(s);
        auto& mod = gw.domainModule(s);
        if (demiSlot[gi] != none)
            if (auto l = mod.computeFamilyLoss(LossFamily::DemiCycle, dec[demiSlot[gi]], u, raw))
                record(metrics, dcy, metrics::demiCycle(s), std::move(*l));
        for (const auto& [t, slot] : cycleBack[gi])
            if (auto l = mod.computeFamilyLoss(LossFamily::Cycle, dec2[slot], u, raw))
                record(metrics, cy, metrics::cycle(s, t), std::move(*l));
    }
    for (size_t gi = 0; gi < groups.size(); ++gi) {
        const auto& g = groups[gi];
        if (g.domains.size() < 2) continue;
        for (const auto& t : g.domains) {
            std::string srcName;
            for (const auto& d : g.domains)
                if (d != t) srcName += (srcName.empty() ? "" : "/") + d;
            if (auto l = gw.domainModule(t).computeFamilyLoss(LossFamily::Translation, dec[trSlot[gi].at(t)],
                                                              g.latents.at(t), g.inputs.at(t)))
                record(metrics, tr, metrics::translation(srcName, t), std::move(*l));
        }
        for (size_t i = 0; i < g.domains.size(); ++i)
            for (size_t j = i + 1; j < g.domains.size(); ++j) {
                const auto& a = g.domains[i];
                const auto& b = g.domains[j];
                record(metrics, ct, metrics::contrastive(a, b), (*contrastive_)(pre[gi].at(a), pre[gi].at(b)));
            }
    }
    StepLosses r;
    detail::addTwoDomainFamilies(r, metrics, dcy, cy, tr, ct);
    r.out.loss = combineLoss(metrics, coefs());
    r.out.metrics = std::move(metrics);
    return r;
}

}  // namespace gw

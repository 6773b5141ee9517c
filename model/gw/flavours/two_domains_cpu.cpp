// SPDX-License-Identifier: GPL-3.0-or-later
/// \file two_domains_cpu.cpp
/// The hand-written step of flavour `two_domains` (GWLosses2Domains::step, docs/gw-semantics.md 2.1,
/// 2.2, 2.4, 2.5) on the kernels of model/cpu_step/: phase 1 encodes every group, phase 2 decodes the
/// states tanh(E1) (demi-cycles, cycle midpoints, translations), phases 3 and 4 carry the cycles back.
/// A workspace state here is the tanh of one encoding: a fusion of a single source, so the selection
/// must be constant for one source (single_domain, fixed_shared).
#include "model/gw/flavours/cpu_glue.h"
#include "model/gw/flavours/hand_written_step.h"

namespace gw {

namespace {

using metrics::Family;

class TwoDomainsCpuStep : public HandWrittenStep {
public:
    std::string unsupportedModel(GWModule& gw, const GWLosses& losses, const Selection& selection) const override {
        if (!cpu::blasAvailable()) return "no BLAS sgemm_ in this LibTorch's process";
        const std::vector<std::string> implemented = {metrics::info(Family::DemiCycle).term, metrics::info(Family::Cycle).term,
                                                      metrics::info(Family::Translation).term,
                                                      metrics::info(Family::Contrastive).term};
        if (auto why = unsupportedTerms(losses, implemented); !why.empty()) return why;
        if (selection.scoresNeedGradient())
            return "selection '" + selection.name() + "' computes scores that need a gradient";
        if (!selection.constantForOneSource())
            return "selection '" + selection.name() + "' draws random numbers at every fusion";
        return unsupportedDomains(gw);
    }

    std::string unsupported(GWModule& gw, const GWLosses& losses, const Selection& selection,
                            const std::vector<GroupBatch>& groups) const override {
        if (auto why = unsupportedModel(gw, losses, selection); !why.empty()) return why;
        return unsupportedGroups(gw, groups, 2);
    }

    StepLosses run(GWModule& gw, GWLosses& losses, Selection& selection, const std::vector<GroupBatch>& groups) override;

private:
    cpu::StepBuffers b_;
};

StepLosses TwoDomainsCpuStep::run(GWModule& gw, GWLosses& losses, Selection&, const std::vector<GroupBatch>& groups) {
    cpu::StepBuffers& b = b_;
    cpu::beginStep(b, gw);
    auto& doms = b.doms;
    const int D = static_cast<int>(doms.size());
    const int64_t W = gw.workspaceDim();
    const cpu::PerDomain eachDomain(D);
    const size_t G = groups.size();
    const cpu::GroupData data = cpu::gatherGroups(gw, groups);
    const auto& gdom = data.dom;
    auto rowsOf = [&](size_t gi) { return data.rows(gi); };

    // Phase 1: each GW encoder once on all of its domain's latents (single groups and paired groups).
    const auto row1 = cpu::encodeLatents(b, eachDomain, data, W, true);

    // Phase 2: each GW decoder once on the states it decodes, in GWLosses2Domains::step's order.
    // Segments: src = the domain whose s1 holds the state, srcRow its first row there.
    std::vector<int64_t> demiRow(G, -1);
    std::vector<std::vector<int64_t>> midRow(G, std::vector<int64_t>(static_cast<size_t>(D), -1));
    std::vector<std::vector<int64_t>> trRow(G, std::vector<int64_t>(2, -1));
    for (size_t gi = 0; gi < G; ++gi) {
        const auto& gd = gdom[gi];
        const int64_t n = rowsOf(gi);
        if (gd.size() == 1) {
            const int s = gd[0];
            if (doms[s].mod->familyEnabled(LossFamily::DemiCycle)) {
                demiRow[gi] = doms[s].n2;
                doms[s].in2.push_back({s, row1[gi][0], doms[s].n2, n});
                doms[s].n2 += n;
            }
            if (doms[s].mod->familyEnabled(LossFamily::Cycle))
                for (int t = 0; t < D; ++t) {
                    if (t == s) continue;
                    midRow[gi][t] = doms[t].n2;
                    doms[t].in2.push_back({s, row1[gi][0], doms[t].n2, n});
                    doms[t].n2 += n;
                }
            continue;
        }
        for (size_t k = 0; k < 2; ++k) {
            const int t = gd[k], s = gd[1 - k];
            if (!doms[t].mod->familyEnabled(LossFamily::Translation)) continue;
            trRow[gi][k] = doms[t].n2;
            doms[t].in2.push_back({s, row1[gi][1 - k], doms[t].n2, n});
            doms[t].n2 += n;
        }
    }
    cpu::decodeStates(b, eachDomain, 2, W, [&](const cpu::Seg& s) { return doms[s.src].s1 + s.srcRow * W; });

    // Phases 3 and 4: cycles back, Enc_t of the decoded midpoints, then Dec_s of their states.
    // Phase-4 segments: src = the domain whose s3 holds the state.
    std::vector<std::vector<int64_t>> row4(G, std::vector<int64_t>(static_cast<size_t>(D), -1));
    for (size_t gi = 0; gi < G; ++gi) {
        if (gdom[gi].size() != 1) continue;
        const int s = gdom[gi][0];
        for (int t = 0; t < D; ++t) {
            if (midRow[gi][t] < 0) continue;
            const int64_t n = rowsOf(gi);
            doms[t].in3.push_back({s, midRow[gi][t], doms[t].n3, n});
            doms[s].in4.push_back({t, doms[t].n3, doms[s].n4, n});
            row4[gi][t] = doms[s].n4;
            doms[t].n3 += n;
            doms[s].n4 += n;
        }
    }
    cpu::encodeDecodings(b, eachDomain, W, true);
    cpu::decodeStates(b, eachDomain, 4, W, [&](const cpu::Seg& s) { return doms[s.src].s3 + s.srcRow * W; });

    // The loss terms, in GWLosses2Domains::step's order.
    auto& terms = b.terms;
    for (size_t gi = 0; gi < G; ++gi) {
        if (gdom[gi].size() != 1) continue;
        const int s = gdom[gi][0];
        auto& ds = doms[s];
        if (demiRow[gi] >= 0)
            terms.push_back(cpu::latentTerm(b, data, metrics::demiCycle(ds.name), Family::DemiCycle, s,
                                            ds.p2.out + demiRow[gi] * ds.L, ds.dY2 + demiRow[gi] * ds.L, gi, 0));
        for (int t = 0; t < D; ++t)
            if (row4[gi][t] >= 0)
                terms.push_back(cpu::latentTerm(b, data, metrics::cycle(ds.name, doms[t].name), Family::Cycle, s,
                                                ds.p4.out + row4[gi][t] * ds.L, ds.dY4 + row4[gi][t] * ds.L, gi, 0));
    }
    for (size_t gi = 0; gi < G; ++gi) {
        if (gdom[gi].size() != 2) continue;
        for (size_t k = 0; k < 2; ++k) {
            if (trRow[gi][k] < 0) continue;
            auto& dt = doms[gdom[gi][k]];
            terms.push_back(cpu::latentTerm(b, data, metrics::translation(doms[gdom[gi][1 - k]].name, dt.name),
                                            Family::Translation, gdom[gi][k], dt.p2.out + trRow[gi][k] * dt.L,
                                            dt.dY2 + trRow[gi][k] * dt.L, gi, k));
        }
        terms.push_back(cpu::contrastiveTerm(
            data, row1, metrics::contrastive(doms[gdom[gi][0]].name, doms[gdom[gi][1]].name), gi, 0, 1));
    }

    // Values, metrics and the combined loss.
    auto logitScaleTensor = losses.contrastive().logitScale();
    const float logitScale = logitScaleTensor.detach().reshape({}).item<float>();
    TensorMap logged;
    const cpu::FamilyTotals totals = cpu::termValues(b, W, logitScale);
    for (const auto& t : terms) {
        logged.set(t.name, cpu::scalarOf(t.value));
        if (t.kind == LatentLossKind::CrossEntropy) logged.set(metrics::extraOf(t.name, "accuracy"), cpu::scalarOf(t.extra));
        if (t.family == Family::Contrastive) logged.set(metrics::logitScaleOf(t.name), cpu::scalarOf(t.extra));
    }
    StepLosses r;
    for (Family f : {Family::DemiCycle, Family::Cycle, Family::Translation, Family::Contrastive}) {
        if (!totals.countOf(f)) r.skipped.emplace_back(metrics::info(f).mean);
        else logged.set(metrics::info(f).mean, cpu::scalarOf(totals.mean(f)));
    }
    r.out.loss = combineLoss(logged, losses.coefs());  // throws as the autograd step does

    // Backward: d loss / d outputs of the decoders, then back through phases 4, 3, 2 and 1. A state's
    // gradient goes through its tanh into the encoding it was taken from.
    cpu::termGradients(terms, losses.coefs(), logged, totals);
    r.out.metrics = std::move(logged);
    cpu::backwardPhases(b, eachDomain, W, logitScale, logitScaleTensor, [&](int phase, const std::vector<float*>& dX) {
        if (phase == 4) {
            cpu::scatterInputGrads(b, 4, W, dX, [&](const cpu::Seg& s) { return doms[s.src].dE3 + s.srcRow * W; });
            for (auto& dom : doms) cpu::tanhBackward(dom.dE3, dom.s3, dom.n3 * W);
            return;
        }
        // Phase 2's input gradients go to the states of several domains (the demi-cycle's and the
        // cycles' sources share rows): added after the parallel decoders.
        cpu::scatterInputGrads(b, 2, W, dX, [&](const cpu::Seg& s) { return doms[s.src].dE1 + s.srcRow * W; });
        for (auto& dom : doms) cpu::tanhBackward(dom.dE1, dom.s1, dom.n1 * W);
    });
    return r;
}

}  // namespace

std::unique_ptr<HandWrittenStep> makeTwoDomainsCpuStep() { return std::make_unique<TwoDomainsCpuStep>(); }

}  // namespace gw

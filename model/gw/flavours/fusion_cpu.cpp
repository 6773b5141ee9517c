// SPDX-License-Identifier: GPL-3.0-or-later
/// \file fusion_cpu.cpp
/// The hand-written step of flavour `fusion` (GWLossesFusion::step, docs/gw-semantics.md 2.3) on the
/// kernels of model/cpu_step/: every non-empty subset S of every group fused into a state, decoded
/// into every domain; the decodings of the domains outside S encoded, fused and decoded back into S.
/// The selection's scores are constants (the selection's scores must need no gradient); they are
/// drawn through the selection itself, at the same points and in the same order as the autograd
/// step, so that both paths consume torch's generator alike.
#include <set>

#include "model/gw/flavours/cpu_glue.h"
#include "model/gw/flavours/hand_written_step.h"

namespace gw {

namespace {

using metrics::Family;

class FusionCpuStep : public HandWrittenStep {
public:
    std::string unsupportedModel(GWModule& gw, const GWLosses& losses, const Selection& selection) const override {
        if (!cpu::blasAvailable()) return "no BLAS sgemm_ in this LibTorch's process";
        std::vector<std::string> implemented;
        for (const auto& f : metrics::families()) implemented.push_back(f.term);
        implemented.push_back(metrics::kBroadcastTerm);
        if (auto why = unsupportedTerms(losses, implemented); !why.empty()) return why;
        if (selection.scoresNeedGradient())
            return "selection '" + selection.name() + "' computes scores that need a gradient";
        return unsupportedDomains(gw);
    }

    std::string unsupported(GWModule& gw, const GWLosses& losses, const Selection& selection,
                            const std::vector<GroupBatch>& groups) const override {
        if (auto why = unsupportedModel(gw, losses, selection); !why.empty()) return why;
        return unsupportedGroups(gw, groups, size_t(-1));
    }

    StepLosses run(GWModule& gw, GWLosses& losses, Selection& selection, const std::vector<GroupBatch>& groups) override;

private:
    cpu::StepBuffers b_;
    std::vector<cpu::FusedState> states_;
};

StepLosses FusionCpuStep::run(GWModule& gw, GWLosses& losses, Selection& selection, const std::vector<GroupBatch>& groups) {
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
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
    auto view = [&](const float* p, int64_t n, int64_t w) { return torch::from_blob(const_cast<float*>(p), {n, w}, f32); };

    // Phase 1: every group's latents through their encoders.
    const auto row1 = cpu::encodeLatents(b, eachDomain, data, W, false);

    // The states of phase 2: one per subset, in itertools.product order; decoded into every domain.
    // Segments of phases 2 and 4: src = state index.
    struct Subset {
        size_t group;
        std::vector<int> selected, outside;  // domain indices; selected in group order
        int state = -1, state2 = -1;
        std::vector<int64_t> row2;  // per domain: first row of this subset's decoding in its phase 2
        std::vector<int64_t> row3;  // per domain of `outside`: rows in its phase 3
        std::vector<int64_t> row4;  // per domain of `selected`: rows in its phase 4
    };
    std::vector<Subset> subsets;
    auto& states = states_;
    states.clear();
    auto makeState = [&](const std::vector<int>& ds, bool phase3, const std::vector<int64_t>& rows, int64_t n) {
        cpu::FusedState st;
        st.n = n;
        TensorMap prem;
        for (size_t k = 0; k < ds.size(); ++k) {
            const auto& dom = doms[ds[k]];
            const float* x = (phase3 ? dom.p3.out : dom.p1.out) + rows[k] * W;
            prem.set(dom.name, view(x, n, W));
            st.sources.push_back({ds[k], phase3, rows[k], torch::Tensor()});
        }
        if (!(ds.size() == 1 && selection.constantForOneSource())) {
            // Scores that need no gradient (unsupportedModel() checks) read the encodings' batch size,
            // count and options at most, so the encodings stand in for the unimodal latents too.
            const auto s = selection.scores(prem, prem);
            for (auto& src : st.sources) src.score = s.at(doms[src.dom].name).contiguous();
        }
        cpu::fuseForward(b.arena, st, doms, W);
        states.push_back(std::move(st));
        return static_cast<int>(states.size() - 1);
    };
    for (size_t gi = 0; gi < G; ++gi) {
        const size_t n = gdom[gi].size();
        for (size_t mask = 1; mask < (size_t(1) << n); ++mask) {
            Subset s;
            s.group = gi;
            std::vector<int64_t> rows;
            for (size_t i = 0; i < n; ++i)
                if (mask & (size_t(1) << (n - 1 - i))) {
                    s.selected.push_back(gdom[gi][i]);
                    rows.push_back(row1[gi][i]);
                }
            for (int d = 0; d < D; ++d)
                if (std::find(s.selected.begin(), s.selected.end(), d) == s.selected.end()) s.outside.push_back(d);
            s.state = makeState(s.selected, false, rows, rowsOf(gi));
            s.row2.assign(static_cast<size_t>(D), -1);
            for (int d = 0; d < D; ++d) {
                s.row2[d] = doms[d].n2;
                doms[d].in2.push_back({s.state, 0, doms[d].n2, rowsOf(gi)});
                doms[d].n2 += rowsOf(gi);
            }
            subsets.push_back(std::move(s));
        }
    }
    auto stateRows = [&](const cpu::Seg& s) { return states[s.src].z + s.srcRow * W; };
    cpu::decodeStates(b, eachDomain, 2, W, stateRows);

    // Phase 3: the decodings of the domains outside S through their encoders; phase 4: their fusion
    // decoded back into S.
    for (auto& s : subsets) {
        s.row3.assign(s.outside.size(), -1);
        const int64_t n = rowsOf(s.group);
        for (size_t k = 0; k < s.outside.size(); ++k) {
            auto& dom = doms[s.outside[k]];
            s.row3[k] = dom.n3;
            dom.in3.push_back({-1, s.row2[s.outside[k]], dom.n3, n});
            dom.n3 += n;
        }
    }
    cpu::encodeDecodings(b, eachDomain, W, false);
    for (auto& s : subsets) {
        if (s.outside.empty()) continue;
        const int64_t n = rowsOf(s.group);
        s.state2 = makeState(s.outside, true, s.row3, n);
        s.row4.assign(s.selected.size(), -1);
        for (size_t k = 0; k < s.selected.size(); ++k) {
            auto& dom = doms[s.selected[k]];
            s.row4[k] = dom.n4;
            dom.in4.push_back({s.state2, 0, dom.n4, n});
            dom.n4 += n;
        }
    }
    cpu::decodeStates(b, eachDomain, 4, W, stateRows);

    // The terms, in GWLossesFusion::step's order and with its names.
    auto& terms = b.terms;
    std::vector<std::set<int>> pairsSeen;
    for (size_t gi = 0; gi < G; ++gi) {
        const auto& gd = gdom[gi];
        if (gd.size() < 2) continue;
        for (size_t i = 0; i < gd.size(); ++i)
            for (size_t j = i + 1; j < gd.size(); ++j) {
                const std::set<int> pair{gd[i], gd[j]};
                if (std::find(pairsSeen.begin(), pairsSeen.end(), pair) != pairsSeen.end()) continue;
                pairsSeen.push_back(pair);
                terms.push_back(cpu::contrastiveTerm(data, row1, metrics::contrastive(doms[gd[i]].name, doms[gd[j]].name), gi, i, j));
            }
    }
    auto sorted = [&](const std::vector<int>& ds) {
        std::vector<std::string> n;
        for (int d : ds) n.push_back(doms[d].name);
        std::sort(n.begin(), n.end());
        return metrics::domainSet(n);
    };
    std::vector<std::string> used;
    for (const auto& s : subsets) {
        const auto& gd = gdom[s.group];
        const std::string from = sorted(s.selected), caseName = sorted(gd);
        auto add = [&](std::string name, Family f, int d, const float* pred, float* grad) {
            if (std::find(used.begin(), used.end(), name) != used.end()) name = metrics::withCase(name, caseName);
            used.push_back(name);
            const size_t k = static_cast<size_t>(std::find(gd.begin(), gd.end(), d) - gd.begin());
            terms.push_back(cpu::latentTerm(b, data, std::move(name), f, d, pred, grad, s.group, k));
        };
        for (int d = 0; d < D; ++d) {
            if (std::find(gd.begin(), gd.end(), d) == gd.end()) continue;
            const bool inS = std::find(s.selected.begin(), s.selected.end(), d) != s.selected.end();
            const Family f = !inS ? Family::Translation : s.selected.size() == 1 ? Family::DemiCycle : Family::Fused;
            const LossFamily lf = f == Family::Translation ? LossFamily::Translation
                                  : f == Family::DemiCycle ? LossFamily::DemiCycle
                                                           : LossFamily::Fused;
            if (!doms[d].mod->familyEnabled(lf)) continue;
            add(metrics::broadcastTerm(from, doms[d].name), f, d, doms[d].p2.out + s.row2[d] * doms[d].L,
                doms[d].dY2 + s.row2[d] * doms[d].L);
        }
        for (size_t k = 0; k < s.row4.size(); ++k) {
            const int d = s.selected[k];
            if (!doms[d].mod->familyEnabled(LossFamily::Cycle)) continue;
            add(metrics::broadcastCycle(from, sorted(s.outside), doms[d].name, caseName), Family::Cycle, d,
                doms[d].p4.out + s.row4[k] * doms[d].L, doms[d].dY4 + s.row4[k] * doms[d].L);
        }
    }

    // Values and metrics, in GWLossesFusion::step's order.
    auto logitScaleTensor = losses.contrastive().logitScale();
    const float logitScale = logitScaleTensor.detach().reshape({}).item<float>();
    const cpu::FamilyTotals totals = cpu::termValues(b, W, logitScale);
    TensorMap logged;
    StepLosses r;
    const char* contrastives = metrics::info(Family::Contrastive).mean;
    for (const auto& t : terms)
        if (t.family == Family::Contrastive) logged.set(t.name, cpu::scalarOf(t.value));
    if (!totals.countOf(Family::Contrastive)) r.skipped.emplace_back(contrastives);
    else logged.set(contrastives, cpu::scalarOf(totals.mean(Family::Contrastive)));
    for (const auto& t : terms) {
        if (t.family == Family::Contrastive) logged.set(metrics::logitScaleOf(t.name), cpu::scalarOf(t.extra));
        else if (t.kind == LatentLossKind::CrossEntropy) logged.set(metrics::broadcastExtra(t.name, "accuracy"), cpu::scalarOf(t.extra));
    }
    for (Family f : {Family::DemiCycle, Family::Cycle, Family::Translation, Family::Fused}) {
        if (!totals.countOf(f)) r.skipped.emplace_back(metrics::info(f).mean);
        else logged.set(metrics::info(f).mean, cpu::scalarOf(totals.mean(f)));
    }
    for (const auto& t : terms)
        if (t.family != Family::Contrastive) logged.set(t.name, cpu::scalarOf(t.value));
    r.out.loss = combineLoss(logged, losses.coefs());
    cpu::termGradients(terms, losses.coefs(), logged, totals);  // before broadcast_loss, as combineLoss
    const std::vector<torch::Tensor> broadcast = broadcastLossTerms(logged, losses.coefs());
    if (!broadcast.empty()) {
        double sum = 0;
        for (const auto& x : broadcast) sum += x.item<double>();
        logged.set(metrics::kBroadcastLoss, cpu::scalarOf(sum / static_cast<double>(broadcast.size())));
    }
    r.out.metrics = std::move(logged);

    // Backward (the terms' gradients are in place). A state's gradient goes through its tanh and its
    // scores into the encodings it fused.
    for (auto& st : states) st.dz = b.arena.zeros(static_cast<size_t>(st.n * W));
    cpu::backwardPhases(b, eachDomain, W, logitScale, logitScaleTensor, [&](int phase, const std::vector<float*>& dX) {
        cpu::scatterInputGrads(b, phase, W, dX, [&](const cpu::Seg& s) { return states[s.src].dz + s.srcRow * W; });
        for (auto& s : subsets) {
            const int st = phase == 4 ? s.state2 : s.state;
            if (st >= 0) cpu::fuseBackward(states[st], doms, W);
        }
    });
    return r;
}

}  // namespace

std::unique_ptr<HandWrittenStep> makeFusionCpuStep() { return std::make_unique<FusionCpuStep>(); }

}  // namespace gw

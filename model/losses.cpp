// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/losses.h"

#include <stdexcept>

namespace gw {

std::string groupName(const std::vector<std::string>& domains) {
    std::string s = "{";
    for (size_t i = 0; i < domains.size(); ++i) s += (i ? "," : "") + domains[i];
    return s + "}";
}

torch::Tensor contrastiveLoss(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& logitScale) {
    namespace F = torch::nn::functional;
    auto xn = F::normalize(x, F::NormalizeFuncOptions().dim(1).eps(1e-12));
    auto yn = F::normalize(y, F::NormalizeFuncOptions().dim(1).eps(1e-12));
    auto logits = logitScale.exp().clamp_max(100.0).reshape({}) * torch::mm(xn, yn.t());
    auto labels = torch::arange(x.size(0), x.options().dtype(torch::kInt64));
    return 0.5 * (torch::cross_entropy_loss(logits, labels) + torch::cross_entropy_loss(logits.t(), labels));
}

ContrastiveFn::ContrastiveFn(double logitScale, bool learnable) {
    auto t = torch::full({1}, logitScale, torch::kFloat32);
    logitScale_ = learnable ? register_parameter("logit_scale", t) : register_buffer("logit_scale", t);
}

LossOutput ContrastiveFn::operator()(const torch::Tensor& x, const torch::Tensor& y) {
    TensorMap m;
    m.set("logit_scale", logitScale_.detach().exp().reshape({}));
    return LossOutput{contrastiveLoss(x, y, logitScale_), m};
}

torch::Tensor combineLoss(const TensorMap& metrics, const LossCoefs& coefs) {
    std::vector<torch::Tensor> terms;
    for (const auto& [name, c] : coefs)
        if (c > 0)
            if (const auto* m = metrics.find(name)) terms.push_back(c * *m);
    if (terms.empty()) {
        std::string have, want;
        for (const auto& k : metrics.keys()) have += (have.empty() ? "" : ", ") + k;
        for (const auto& [k, c] : coefs) want += (want.empty() ? "" : ", ") + k + "=" + std::to_string(c);
        throw std::invalid_argument("combine_loss: no positive coefficient names a computed metric (coefficients: " +
                                    want + "; metrics: " + have + ")");
    }
    if (terms.size() == 1) return terms[0];
    return torch::stack(terms).mean();
}

GWLosses::GWLosses(LossCoefs coefs, double logitScale, bool learnLogitScale) : coefs_(std::move(coefs)) {
    contrastive_ = register_module("contrastive_fn", std::make_shared<ContrastiveFn>(logitScale, learnLogitScale));
}

namespace {
/// Adds `{prefix}` = loss and `{prefix}_{k}` for the extra metrics; returns the loss.
void record(TensorMap& metrics, std::vector<torch::Tensor>& family, const std::string& prefix, LossOutput&& out) {
    metrics.set(prefix, out.loss);
    for (auto& [k, v] : out.metrics) metrics.set(prefix + "_" + k, v);
    family.push_back(out.loss);
}
torch::Tensor meanOf(const std::vector<torch::Tensor>& v) { return v.size() == 1 ? v[0] : torch::stack(v).mean(); }
}  // namespace

StepLosses GWLosses::step(GWModule& gw, Selection& selection, const std::vector<GroupBatch>& groups) {
    TensorMap metrics;
    std::vector<torch::Tensor> dcy, cy, tr, ct;
    const auto& all = gw.domainNames();

    // Demi-cycles and cycles: single-domain (unpaired) groups. The state tanh(Enc_s(u)) is shared.
    for (const auto& g : groups) {
        if (g.domains.size() != 1) continue;
        const std::string& s = g.domains[0];
        const auto& u = g.latents.at(s);
        const auto& raw = g.inputs.at(s);
        auto& mod = gw.domainModule(s);
        auto state = torch::tanh(gw.encoder(s)->forward(u));
        if (auto l = mod.computeFamilyLoss(LossFamily::DemiCycle, gw.decoder(s)->forward(state), u, raw))
            record(metrics, dcy, "demi_cycle_" + s, std::move(*l));
        if (!mod.familyEnabled(LossFamily::Cycle)) continue;
        for (const auto& t : all) {
            if (t == s) continue;
            auto xt = gw.decoder(t)->forward(state);
            auto back = gw.decoder(s)->forward(torch::tanh(gw.encoder(t)->forward(xt)));
            if (auto l = mod.computeFamilyLoss(LossFamily::Cycle, back, u, raw))
                record(metrics, cy, "cycle_" + s + "_through_" + t, std::move(*l));
        }
    }
    // Translations and contrastives: paired groups of two or more domains.
    for (const auto& g : groups) {
        if (g.domains.size() < 2) continue;
        auto pre = gw.encode(g.latents);
        for (const auto& t : g.domains) {
            TensorMap srcLatents, srcPre;
            std::string srcName;
            for (const auto& d : g.domains) {
                if (d == t) continue;
                srcLatents.set(d, g.latents.at(d));
                srcPre.set(d, pre.at(d));
                srcName += (srcName.empty() ? "" : "/") + d;
            }
            torch::Tensor state = srcPre.size() == 1 && dynamic_cast<SingleDomainSelection*>(&selection)
                                      ? torch::tanh(srcPre.begin()->second)
                                      : gw.fuse(srcPre, selection.scores(srcLatents, srcPre));
            auto pred = gw.decoder(t)->forward(state);
            if (auto l = gw.domainModule(t).computeFamilyLoss(LossFamily::Translation, pred, g.latents.at(t),
                                                              g.inputs.at(t)))
                record(metrics, tr, "translation_" + srcName + "_to_" + t, std::move(*l));
        }
        for (size_t i = 0; i < g.domains.size(); ++i)
            for (size_t j = i + 1; j < g.domains.size(); ++j) {
                const auto& a = g.domains[i];
                const auto& b = g.domains[j];
                record(metrics, ct, "contrastive_" + a + "_and_" + b, (*contrastive_)(pre.at(a), pre.at(b)));
            }
    }
    StepLosses r;
    auto family = [&](const char* name, const std::vector<torch::Tensor>& terms) {
        if (terms.empty()) r.skipped.emplace_back(name);
        else metrics.set(name, meanOf(terms));
    };
    family("demi_cycles", dcy);
    family("cycles", cy);
    family("translations", tr);
    family("contrastives", ct);
    r.out.loss = combineLoss(metrics, coefs_);
    r.out.metrics = std::move(metrics);
    return r;
}

}  // namespace gw

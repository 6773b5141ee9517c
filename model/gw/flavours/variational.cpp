// SPDX-License-Identifier: GPL-3.0-or-later
/// \file variational.cpp
/// The variational flavour: GW encoders with a learnt uncertainty, checked against shimmer tag 0.4.0
/// (shimmer/modules/gw_module.py VariationalGWEncoder, VariationalGWInterface, VariationalGWModule;
/// global_workspace.py VariationalGlobalWorkspace; losses.py VariationalGWLosses,
/// _contrastive_loss_with_uncertainty; contrastive_loss.py contrastive_loss_with_uncertainty; vae.py
/// kl_divergence_loss; docs/gw-semantics.md 1.5). Registered in model/core/kinds.cpp as `variational`,
/// trained by autograd (no hand-written step); tested in tests/tst_fusion.cpp against
/// tests/python/variational_reference.py.
#include <algorithm>
#include <stdexcept>

#include "model/gw/flavours/losses.h"
#include "model/gw/flavours/loss_batcher.h"
#include "model/core/registry.h"

namespace gw {

torch::Tensor contrastiveLossWithUncertainty(const torch::Tensor& x, const torch::Tensor& xLogVar, const torch::Tensor& y,
                                             const torch::Tensor& yLogVar, const torch::Tensor& logitScale) {
    namespace F = torch::nn::functional;
    const auto norm = 1 + torch::exp(0.5 * xLogVar) + torch::exp(0.5 * yLogVar);
    const auto xn = F::normalize(x, F::NormalizeFuncOptions().dim(1).eps(1e-12)) / norm;
    const auto yn = F::normalize(y, F::NormalizeFuncOptions().dim(1).eps(1e-12)) / norm;
    const auto logits = logitScale.exp().clamp_max(100.0).reshape({}) * torch::mm(xn, yn.t());
    const auto labels = torch::arange(x.size(0), x.options().dtype(torch::kInt64));
    return 0.5 * (torch::cross_entropy_loss(logits, labels) + torch::cross_entropy_loss(logits.t(), labels));
}

torch::Tensor klDivergence(const torch::Tensor& mean, const torch::Tensor& logVar) {
    return -0.5 * torch::sum(1 + logVar - mean.pow(2) - logVar.exp());
}

namespace {
/// What shimmer 0.4.0's VariationalGWEncoder registers: the encoder's MLP as `layers` and the
/// log-variance `uncertainty_level` (W,), initially 3.
class VariationalEncoder : public torch::nn::Module {
public:
    VariationalEncoder(const torch::nn::Sequential& layers, int64_t workspaceDim) {
        register_module("layers", layers.ptr());
        logVar = register_parameter("uncertainty_level", torch::full({workspaceDim}, 3.0, torch::kFloat32));
    }
    torch::Tensor logVar;
};

/// Adds `{prefix}` = loss and `{prefix}_{k}` for the extra metrics to the family.
void record(TensorMap& metrics, std::vector<torch::Tensor>& family, const std::string& prefix, LossOutput&& out) {
    metrics.set(prefix, out.loss);
    for (auto& [k, v] : out.metrics) metrics.set(metrics::extraOf(prefix, k), v);
    family.push_back(out.loss);
}
}  // namespace

GWLossesVariational::GWLossesVariational(const LossSettings& loss, bool sample, bool uncertaintyContrastive)
    : GWLosses("variational", loss), sample_(sample), uncertaintyContrastive_(uncertaintyContrastive) {
    if (!uncertaintyContrastive) return;
    if (contrastive_->kind() != "clip")
        throw std::invalid_argument("workspace.flavour_params.var_contrastive_loss: the uncertainty contrastive is CLIP's "
                                    "(loss.contrastive: clip), found loss.contrastive '" + contrastive_->kind() + "'");
    unregister_module("contrastive_fn");  // 0.4.0 names it after its kind
    register_module("var_contrastive_fn", contrastive_);
}

void GWLossesVariational::attach(GWModule& gw) {
    for (const auto& d : gw.domainNames()) {
        auto wrapper = std::make_shared<VariationalEncoder>(gw.encoder(d), gw.workspaceDim());
        logVar_.set(d, wrapper->logVar);
        gw.wrapEncoder(d, wrapper);
    }
    // The state of several domains: the mean of their μ_d (0.4.0's fusion_mechanism); explorer, evaluation.
    gw.setFusionHook([](const TensorMap&, const TensorMap& pre, Selection&) {
        std::vector<torch::Tensor> means;
        for (const auto& [d, e] : pre) means.push_back(torch::tanh(e));
        return torch::stack(means).mean(0);
    });
}

StepLosses GWLossesVariational::step(GWModule& gw, Selection&, const std::vector<GroupBatch>& groups) {
    const bool draw = sample_ && is_training();
    const auto& all = gw.domainNames();
    auto mean = [&](const std::string& d, const torch::Tensor& u) { return torch::tanh(gw.encoder(d)->forward(u)); };
    auto logVar = [&](const std::string& d, const torch::Tensor& m) { return logVar_.at(d).expand_as(m); };
    // 0.4.0's encode of one domain: its state, drawn in training.
    auto encode = [&](const std::string& d, const torch::Tensor& u) {
        auto m = mean(d, u);
        return draw ? m + torch::exp(0.5 * logVar(d, m)) * torch::randn_like(m) : m;
    };
    auto decode = [&](const std::string& d, const torch::Tensor& z) { return gw.decoder(d)->forward(z); };

    TensorMap metrics;
    std::vector<torch::Tensor> dcy, cy, tr, ct, kl;
    for (const auto& g : groups) {  // demi-cycles
        if (g.domains.size() != 1) continue;
        const auto& s = g.domains[0];
        if (auto l = gw.domainModule(s).computeFamilyLoss(LossFamily::DemiCycle, decode(s, encode(s, g.latents.at(s))),
                                                          g.latents.at(s), g.inputs.at(s)))
            record(metrics, dcy, metrics::demiCycle(s), std::move(*l));
    }
    for (const auto& g : groups) {  // cycles through every other domain of the GW
        if (g.domains.size() != 1) continue;
        const auto& s = g.domains[0];
        auto& mod = gw.domainModule(s);
        if (!mod.familyEnabled(LossFamily::Cycle)) continue;
        const auto z = encode(s, g.latents.at(s));
        for (const auto& t : all) {
            if (t == s) continue;
            const auto back = decode(s, encode(t, decode(t, z)));
            if (auto l = mod.computeFamilyLoss(LossFamily::Cycle, back, g.latents.at(s), g.inputs.at(s)))
                record(metrics, cy, metrics::cycle(s, t), std::move(*l));
        }
    }
    for (const auto& g : groups) {  // translations: each domain alone into every other of the group
        if (g.domains.size() < 2) continue;
        for (const auto& s : g.domains) {
            const auto z = encode(s, g.latents.at(s));
            for (const auto& t : g.domains) {
                if (t == s) continue;
                if (auto l = gw.domainModule(t).computeFamilyLoss(LossFamily::Translation, decode(t, z), g.latents.at(t),
                                                                  g.inputs.at(t)))
                    record(metrics, tr, metrics::translation(s, t), std::move(*l));
            }
        }
    }
    std::vector<std::pair<std::string, std::string>> seen;
    for (const auto& g : groups) {  // contrastives: each pair once
        if (g.domains.size() < 2) continue;
        for (size_t i = 0; i < g.domains.size(); ++i)
            for (size_t j = i + 1; j < g.domains.size(); ++j) {
                const auto& a = g.domains[i];
                const auto& b = g.domains[j];
                if (std::find(seen.begin(), seen.end(), std::make_pair(a, b)) != seen.end() ||
                    std::find(seen.begin(), seen.end(), std::make_pair(b, a)) != seen.end())
                    continue;
                seen.emplace_back(a, b);
                const auto& ua = g.latents.at(a);
                const auto& ub = g.latents.at(b);
                LossOutput out;
                if (uncertaintyContrastive_) {
                    const auto ma = mean(a, ua), mb = mean(b, ub);
                    const auto& scale = contrastive_->logitScale();
                    out.loss = contrastiveLossWithUncertainty(ma, logVar(a, ma), mb, logVar(b, mb), scale);
                    out.metrics.set(metrics::kNoUncertainty, contrastiveLoss(ma, mb, scale));
                    out.metrics.set("logit_scale", scale.detach().exp().reshape({}));
                } else {
                    out = (*contrastive_)(encode(a, ua), encode(b, ub));
                }
                record(metrics, ct, metrics::contrastive(a, b), std::move(out));
            }
    }
    for (const auto& g : groups) {  // KL of each domain's distribution, on single-domain groups
        if (g.domains.size() != 1) continue;
        const auto& s = g.domains[0];
        const auto m = mean(s, g.latents.at(s));
        const auto v = klDivergence(m, logVar(s, m)) / double(m.size(0) + m.size(1));
        metrics.set(metrics::kl(s), v);
        kl.push_back(v);
    }
    StepLosses r;
    detail::addTwoDomainFamilies(r, metrics, dcy, cy, tr, ct);
    detail::addFamily(r, metrics, metrics::kKl, kl);
    r.out.loss = combineLoss(metrics, coefs());
    r.out.metrics = std::move(metrics);
    return r;
}

void registerVariationalFlavour(FlavourRegistry& r) {
    r.add({"variational",
           "GW encoders with a learnt uncertainty (log-variance per workspace unit), fused by their mean (no selection is used); demi-cycles, cycles, translations, contrastives and KL (shimmer 0.4.0 "
           "VariationalGlobalWorkspace)",
           {{"sample", ParamInfo::Type::Bool, "false", 0, false, "",
             "draw each state μ + σ·ε in training steps, as 0.4.0's code meant (0.4.0 draws it, then uses μ: false)"},
            {"var_contrastive_loss", ParamInfo::Type::Bool, "false", 0, false, "",
             "contrastive on the means divided by 1 + σ_x + σ_y (shimmer ContrastiveLossWithUncertainty)"}}},
          {[](const FlavourContext& c) -> std::shared_ptr<GWLosses> {
               return std::make_shared<GWLossesVariational>(c.loss, c.params.flag("sample"), c.params.flag("var_contrastive_loss"));
           },
           "single_domain", {}});
}

}  // namespace gw

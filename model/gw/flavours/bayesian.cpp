// SPDX-License-Identifier: GPL-3.0-or-later
/// \file bayesian.cpp
/// The bayesian flavour: a learnt precision per domain and workspace unit weighs the fusion and the
/// contrastive, checked against shimmer tag v0.5.1 (shimmer/modules/gw_module.py GWModuleBayesian,
/// compute_fusion_scores; global_workspace.py GlobalWorkspaceBayesian; losses.py GWLossesBayesian,
/// contrastive_loss_bayesian; docs/gw-semantics.md 1.5). The rest of its loss is fusion's broadcast loss
/// (fusion.cpp), whose fusion calls this one through GWModule's fusion hook. Registered in
/// model/core/kinds.cpp as `bayesian`, trained by autograd (no hand-written step); tested in
/// tests/tst_fusion.cpp against tests/python/variational_reference.py.
#include <stdexcept>

#include "model/gw/flavours/losses.h"
#include "model/gw/selections/selection.h"
#include "model/core/registry.h"

namespace gw {

torch::Tensor bayesianFusionWeights(const torch::Tensor& scores, const torch::Tensor& precision, double c1, double c2) {
    constexpr double eps = 1e-6;
    const auto uncertainty = c1 / (eps + scores) + c2 / (eps + precision);
    const auto weights = 1 / (eps + uncertainty);
    return weights / weights.sum(0, true);
}

namespace {
/// The fused state: see GWLossesBayesian. `precisions` by domain (W,), each domain of `scores` fused.
torch::Tensor fuseWithPrecisions(const OrderedMap<torch::Tensor>& precisions, double temperature, double c1, double c2,
                                 const TensorMap& pre, const TensorMap& scores) {
    std::vector<torch::Tensor> s, p, e;
    for (const auto& [d, score] : scores) {
        const auto& x = pre.at(d);
        s.push_back(score);
        p.push_back(precisions.at(d).unsqueeze(0).expand_as(x));
        e.push_back(x);
    }
    const auto precision = torch::softmax(torch::tanh(torch::stack(p)) * temperature, 0);
    const auto weights = bayesianFusionWeights(torch::stack(s).unsqueeze(-1), precision, c1, c2);
    return torch::tanh((weights * torch::stack(e)).sum(0));
}
}  // namespace

GWLossesBayesian::GWLossesBayesian(const LossSettings& loss, double temperature, double sensitivitySelection,
                                   double sensitivityPrecision, bool normalizedContrastive)
    : GWLossesFusion("bayesian", loss), temperature_(temperature), c1_(sensitivitySelection), c2_(sensitivityPrecision),
      normalized_(normalizedContrastive) {
    if (temperature == 0) throw std::invalid_argument("flavour 'bayesian': precision_softmax_temp must not be 0");
    if (c1_ < 0 || c2_ < 0)
        throw std::invalid_argument("flavour 'bayesian': the sensitivities must be >= 0, found sensitivity_selection " +
                                    std::to_string(c1_) + ", sensitivity_precision " + std::to_string(c2_));
}

void GWLossesBayesian::attach(GWModule& gw) {
    const int64_t w = gw.workspaceDim();
    precisions_ = gw.addDomainParameters("precisions", [w](const std::string&) { return torch::randn({w}); });
    gw.setFusionHook([p = precisions_, t = temperature_, c1 = c1_, c2 = c2_](const TensorMap& latents, const TensorMap& pre,
                                                                             Selection& selection) {
        return fuseWithPrecisions(p, t, c1, c2, pre, selection.scores(latents, pre));
    });
}

torch::Tensor GWLossesBayesian::fuse(const TensorMap& preFusion, const TensorMap& scores) const {
    return fuseWithPrecisions(precisions_, temperature_, c1_, c2_, preFusion, scores);
}

LossOutput GWLossesBayesian::pairContrastive(const std::string& a, const std::string& b, const torch::Tensor& ea,
                                             const torch::Tensor& eb, TensorMap& more) {
    if (!normalized_) return (*contrastive_)(ea, eb);
    const auto coef = torch::softmax(
        temperature_ * torch::stack({precisions_.at(a).unsqueeze(0).expand_as(ea), precisions_.at(b).unsqueeze(0).expand_as(eb)}), 0);
    const auto norm = torch::sqrt(coef[0] * coef[1]);
    LossOutput out = (*contrastive_)(ea * norm, eb * norm);
    more.set(metrics::unnormalised(metrics::contrastive(a, b)), (*contrastive_)(ea, eb).loss);
    return out;
}

void registerBayesianFlavour(FlavourRegistry& r) {
    r.add({"bayesian",
           "fusion with a learnt precision per domain and workspace unit, combined with the selection's scores; "
           "the contrastive weighted by the precisions (shimmer v0.5.1 GlobalWorkspaceBayesian)",
           {{"precision_softmax_temp", ParamInfo::Type::Real, "0.01", 0, true, "",
             "temperature T of the softmax over domains of the precisions"},
            {"sensitivity_selection", ParamInfo::Type::Real, "1", 0, false, "", "weight c1 of the selection's uncertainty"},
            {"sensitivity_precision", ParamInfo::Type::Real, "1", 0, false, "", "weight c2 of the precision's uncertainty"},
            {"use_normalized_contrastive", ParamInfo::Type::Bool, "true", 0, false, "",
             "weigh the contrastive by the precisions (shimmer's use_normalized_constrastive)"}}},
          {[](const FlavourContext& c) -> std::shared_ptr<GWLosses> {
               return std::make_shared<GWLossesBayesian>(c.loss, c.params.real("precision_softmax_temp"),
                                                         c.params.real("sensitivity_selection"),
                                                         c.params.real("sensitivity_precision"),
                                                         c.params.flag("use_normalized_contrastive"));
           },
           "fixed_shared", {}});
}

}  // namespace gw

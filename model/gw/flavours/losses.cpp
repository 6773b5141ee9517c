// SPDX-License-Identifier: GPL-3.0-or-later
/// \file losses.cpp
/// What every GW flavour shares: group names, the CLIP contrastive loss, combineLoss and the GWLosses
/// base. The flavours: two_domains.cpp, fusion.cpp (their hand-written steps: *_cpu.cpp).
#include "model/gw/flavours/losses.h"

#include <algorithm>
#include <stdexcept>

namespace gw {

std::string groupName(const std::vector<std::string>& domains) { return metrics::domainSet(domains); }

std::string sortedGroupName(std::vector<std::string> domains) {
    std::sort(domains.begin(), domains.end());
    return groupName(domains);
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

std::vector<torch::Tensor> broadcastLossTerms(const TensorMap& logged, const LossCoefs& coefs) {
    std::vector<torch::Tensor> terms;
    for (const auto& [name, c] : coefs)
        if (c > 0 && name != metrics::info(metrics::Family::Contrastive).mean)
            if (const auto* m = logged.find(name)) terms.push_back(*m);
    return terms;
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

GWLosses::GWLosses(std::string flavour, const LossSettings& loss) : flavour_(std::move(flavour)), loss_(loss) {
    contrastive_ = register_module("contrastive_fn", std::make_shared<ContrastiveFn>(loss.logitScale, loss.learnLogitScale));
}

}  // namespace gw

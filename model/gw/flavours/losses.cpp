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

torch::Tensor infoNceLoss(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& logitScale) {
    namespace F = torch::nn::functional;
    auto xn = F::normalize(x, F::NormalizeFuncOptions().dim(1).eps(1e-12));
    auto yn = F::normalize(y, F::NormalizeFuncOptions().dim(1).eps(1e-12));
    auto logits = logitScale.exp().clamp_max(100.0).reshape({}) * torch::mm(xn, yn.t());
    return torch::cross_entropy_loss(logits, torch::arange(x.size(0), x.options().dtype(torch::kInt64)));
}

torch::Tensor vseppLoss(const torch::Tensor& x, const torch::Tensor& y, double margin, bool orderMeasure, bool maxViolation) {
    namespace F = torch::nn::functional;
    auto xn = F::normalize(x, F::NormalizeFuncOptions().dim(1).eps(1e-12));
    auto yn = F::normalize(y, F::NormalizeFuncOptions().dim(1).eps(1e-12));
    torch::Tensor scores;
    if (orderMeasure) {
        // S_ij = -|| max(0, ŷ_j - x̂_i) ||: (B_y, B_x, W) differences, transposed to (B_x, B_y).
        auto diff = yn.unsqueeze(1) - xn.unsqueeze(0);
        scores = -diff.clamp_min(0).pow(2).sum(2).sqrt().t();
    } else {
        scores = torch::mm(xn, yn.t());
    }
    auto diagonal = scores.diag().view({scores.size(0), 1});
    auto costY = (margin + scores - diagonal.expand_as(scores)).clamp_min(0);
    auto costX = (margin + scores - diagonal.t().expand_as(scores)).clamp_min(0);
    auto mask = torch::eye(scores.size(0), scores.options().dtype(torch::kBool));
    costY = costY.masked_fill(mask, 0);
    costX = costX.masked_fill(mask, 0);
    if (maxViolation) {
        costY = std::get<0>(costY.max(1));
        costX = std::get<0>(costX.max(0));
    }
    return costY.sum() + costX.sum();
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

LossOutput InfoNceFn::operator()(const torch::Tensor& x, const torch::Tensor& y) {
    TensorMap m;
    m.set("logit_scale", logitScale_.detach().exp().reshape({}));
    return LossOutput{infoNceLoss(x, y, logitScale_), m};
}

VseppFn::VseppFn(double margin, const std::string& measure, bool maxViolation, double logitScale, bool learnable)
    : ContrastiveFn(NoLogitScale{}), margin_(margin), order_(measure == "order"), maxViolation_(maxViolation) {
    if (measure != "cosine" && measure != "order")
        throw std::invalid_argument("contrastive 'vsepp': measure must be cosine or order, found '" + measure + "'");
    clip_ = register_module("clip_contrastive_loss", std::make_shared<ContrastiveFn>(logitScale, learnable));
}

LossOutput VseppFn::operator()(const torch::Tensor& x, const torch::Tensor& y) {
    TensorMap m;
    m.set("clip", (*clip_)(x, y).loss);
    return LossOutput{vseppLoss(x, y, margin_, order_, maxViolation_), m};
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
    contrastive_ = register_module("contrastive_fn", makeContrastive(loss));
}

std::shared_ptr<ContrastiveFn> makeContrastive(const LossSettings& loss) {
    const auto& entry = contrastiveRegistry().at(loss.contrastive, "loss.contrastive");
    return entry.impl(ContrastiveContext{
        loss, checkParams(entry.info, "contrastive", loss.contrastiveParams, "loss.contrastive_params")});
}

void registerClipContrastive(ContrastiveRegistry& r) {
    r.add({"clip", "CLIP: symmetric cross-entropy of the scaled cosine similarities (shimmer contrastive_loss)", {}},
          [](const ContrastiveContext& c) { return std::make_shared<ContrastiveFn>(c.loss.logitScale, c.loss.learnLogitScale); });
}

void registerInfoNceContrastive(ContrastiveRegistry& r) {
    r.add({"info_nce", "InfoNCE: CLIP's cross-entropy in one direction, first domain against second (shimmer info_nce)", {}},
          [](const ContrastiveContext& c) { return std::make_shared<InfoNceFn>(c.loss.logitScale, c.loss.learnLogitScale); });
}

void registerVseppContrastive(ContrastiveRegistry& r) {
    r.add({"vsepp",
           "VSE++: hinge loss on cosine (or order) similarities, summed; CLIP's loss logged as `clip` (shimmer-ssd VSEPPContrastiveLoss)",
           {{"margin", ParamInfo::Type::Real, "0.2", 0, false, "", "the hinge's margin"},
            {"measure", ParamInfo::Type::Text, "cosine", 0, false, "", "the similarity: cosine, or order (order embeddings)",
             std::numeric_limits<double>::infinity(), {"cosine", "order"}},
            {"max_violation", ParamInfo::Type::Bool, "true", 0, false, "", "only the hardest negative of each row and column"}}},
          [](const ContrastiveContext& c) {
              return std::make_shared<VseppFn>(c.params.real("margin"), c.params.text("measure"), c.params.flag("max_violation"),
                                               c.loss.logitScale, c.loss.learnLogitScale);
          });
}

}  // namespace gw

// SPDX-License-Identifier: GPL-3.0-or-later
// The `attributes` domain module: shimmer-ssd's attribute VAE for Simple Shapes (SSD
// `shimmer_ssd/modules/domains/attribute.py`, class AttributeDomainModule; docs/gw-semantics.md 6.3).
//
// Data: the 11-value attribute vector (B, 11) float of `gw import simple-shapes` (docs/simple-shapes.md):
// one-hot class (3), then x̂, ŷ, ŝ, cos θ, sin θ, r̂, ĝ, b̂ in [−1, 1].
// Encoder: Linear(11→H) ReLU Linear(H→H) ReLU Linear(H→L) ReLU, then q_mean and q_logvar Linear(L→L).
// Decoder: Linear(L→H) ReLU Linear(H→H) ReLU, then two heads: Linear(H→3) class logits and
// Linear(H→8) + tanh for the continuous values.
// VAE loss (per batch, divided by B as the other VAEs here): coef_categories · CE(sum) +
// coef_attributes · Σ gaussian_nll(values, log σ = 0) + β · KL. The GW compares latents by MSE.
#include <cmath>

#include "data/shapes.h"
#include "model/domains/domain_module.h"
#include "model/core/registry.h"

namespace gw {
namespace {

namespace F = torch::nn::functional;
constexpr int64_t kIn = 11, kClasses = 3, kValues = 8;

/// Errors of decoded attributes against the true vectors, in the data's units (docs/simple-shapes.md):
/// category_accuracy (fraction), attribute_error (mean |Δ| over the 8 normalised values, range 2),
/// position_error (px, mean |Δx|,|Δy|), size_error (px), rotation_error (degrees, the angle between the
/// predicted and the true direction), colour_error (mean |Δ| per channel, 0..255).
TensorMap attributeErrors(const torch::Tensor& logits, const torch::Tensor& values, const torch::Tensor& x) {
    torch::NoGradGuard ng;
    TensorMap m;
    const auto cls = x.narrow(1, 0, kClasses).argmax(1);
    const auto t = x.narrow(1, kClasses, kValues), v = values.detach();
    const auto d = (v - t).abs();
    m.set("category_accuracy", logits.detach().argmax(1).eq(cls).to(torch::kFloat32).mean());
    m.set("attribute_error", d.mean());
    // x̂ = ((x − 7)/18)·2 − 1: 9 px per unit; ŝ = ((s − 7)/7)·2 − 1: 3.5 px per unit.
    constexpr double pxPerPosition = (shapes::kImageSize - 2 * shapes::kMargin) / 2.0;
    constexpr double pxPerSize = (shapes::kMaxSize - shapes::kMinSize) / 2.0;
    m.set("position_error", d.narrow(1, 0, 2).mean() * pxPerPosition);
    m.set("size_error", d.select(1, 2).mean() * pxPerSize);
    const auto angP = torch::atan2(v.select(1, 4), v.select(1, 3)), angT = torch::atan2(t.select(1, 4), t.select(1, 3));
    auto dAng = torch::remainder(angP - angT + M_PI, 2 * M_PI) - M_PI;
    m.set("rotation_error", dAng.abs().mean() * (180.0 / M_PI));
    m.set("colour_error", d.narrow(1, 5, 3).mean() * 127.5);     // r̂ = r/255·2 − 1
    return m;
}

class AttributesDomain : public DomainModule {
public:
    AttributesDomain(int64_t latent, int64_t hidden, double beta, double coefCategories, double coefAttributes)
        : DomainModule("attributes", latent), beta_(beta), coefCat_(coefCategories), coefAttr_(coefAttributes) {
        using namespace torch::nn;
        encoder_ = register_module("encoder", Sequential(Linear(kIn, hidden), ReLU(), Linear(hidden, hidden), ReLU(),
                                                         Linear(hidden, latent), ReLU()));
        qMean_ = register_module("q_mean", Linear(latent, latent));
        qLogvar_ = register_module("q_logvar", Linear(latent, latent));
        decoder_ = register_module("decoder", Sequential(Linear(latent, hidden), ReLU(), Linear(hidden, hidden), ReLU()));
        classHead_ = register_module("decoder_categories", Linear(hidden, kClasses));
        valueHead_ = register_module("decoder_attributes", Linear(hidden, kValues));
    }

    /// (B, 11) float -> float (B, 11). \throws std::invalid_argument naming the expected and found shape.
    torch::Tensor prepare(const torch::Tensor& raw) const override {
        if (raw.dim() != 2 || raw.size(1) != kIn)
            throw std::invalid_argument("attributes domain: expected Simple Shapes attribute vectors of shape (B, 11) "
                                        "(gw import simple-shapes, dataset {split}/attr), found " + shapeString(raw));
        return raw.to(torch::kFloat32).contiguous();
    }
    torch::Tensor encode(const torch::Tensor& x) override { return posterior(x).first; }
    /// Latent (B, L) -> (B, 11): class probabilities (softmax of the logits), then the 8 values.
    torch::Tensor decodeRaw(const torch::Tensor& z) override {
        auto [logits, values] = heads(z);
        return torch::cat({torch::softmax(logits, 1), values}, 1);
    }
    std::optional<LossOutput> computeDomainLoss(const torch::Tensor& x) override {
        auto [mean, logvar] = posterior(x);
        auto z = mean + torch::exp(0.5 * logvar) * torch::randn_like(mean);
        auto [logits, values] = heads(z);
        const double b = static_cast<double>(x.size(0));
        const auto cls = x.narrow(1, 0, kClasses).argmax(1);
        auto ce = F::cross_entropy(logits, cls, F::CrossEntropyFuncOptions().reduction(torch::kSum)) / b;
        auto nll = gaussianNll(values, torch::zeros({}, values.options()), x.narrow(1, kClasses, kValues)).sum() / b;
        auto kl = klDivergenceLoss(mean, logvar) / b;
        TensorMap m = attributeErrors(logits, values, x);
        m.set("categories", ce.detach());
        m.set("reconstruction", nll.detach());
        m.set("kl", kl.detach());
        return LossOutput{coefCat_ * ce + coefAttr_ * nll + beta_ * kl, m};
    }
    TensorMap dataMetrics(const torch::Tensor& predLatent, const torch::Tensor& x) override {
        torch::NoGradGuard ng;
        auto [logits, values] = heads(predLatent);
        return attributeErrors(logits, values, x);
    }
    int64_t classCount() const override { return kClasses; }
    torch::Tensor classesOf(const torch::Tensor& x) const override { return x.narrow(1, 0, kClasses).argmax(1); }
    bool needsPretraining() const override { return true; }

private:
    std::pair<torch::Tensor, torch::Tensor> posterior(const torch::Tensor& x) {
        auto h = encoder_->forward(x);
        return {qMean_->forward(h), qLogvar_->forward(h)};
    }
    std::pair<torch::Tensor, torch::Tensor> heads(const torch::Tensor& z) {
        auto h = decoder_->forward(z);
        return {classHead_->forward(h), torch::tanh(valueHead_->forward(h))};
    }
    double beta_, coefCat_, coefAttr_;
    torch::nn::Sequential encoder_{nullptr}, decoder_{nullptr};
    torch::nn::Linear qMean_{nullptr}, qLogvar_{nullptr}, classHead_{nullptr}, valueHead_{nullptr};
};

}  // namespace

void registerAttributesModule(DomainModuleRegistry& r) {
    using T = ParamInfo::Type;
    r.add({"attributes",
           "Simple Shapes attribute VAE on (B, 11) vectors (shimmer-ssd's AttributeDomainModule); "
           "category accuracy and per-attribute errors",
           {{"latent_dim", T::Int, "10", 1, false, "", "latent size"},
            {"hidden_dim", T::Int, "64", 1, false, "", "hidden width"},
            {"beta", T::Real, "0.05", 0, false, "", "weight of the KL term in the VAE loss"},
            {"coef_categories", T::Real, "1", 0, false, "", "weight of the class cross-entropy"},
            {"coef_attributes", T::Real, "1", 0, false, "", "weight of the continuous values' Gaussian NLL"}},
           {"category_accuracy", "attribute_error", "position_error", "size_error", "rotation_error", "colour_error"}},
          [](const DomainModuleSpec& s, const Params& p) -> std::shared_ptr<DomainModule> {
              if (s.inputDim != 0 && s.inputDim != kIn)
                  throw std::invalid_argument("domain module 'attributes': expected 11 values per sample (the Simple "
                                              "Shapes attribute vector), found " + std::to_string(s.inputDim));
              return std::make_shared<AttributesDomain>(p.integer("latent_dim"), p.integer("hidden_dim"), p.real("beta"),
                                                        p.real("coef_categories"), p.real("coef_attributes"));
          });
}

}  // namespace gw

// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/domains/domain_module.h"

#include "model/core/registry.h"

#include "model/core/mlp.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace gw {
namespace F = torch::nn::functional;

std::string shapeString(const torch::Tensor& t) {
    std::ostringstream s;
    s << t.sizes();
    return s.str();
}

namespace {
int familyIndex(LossFamily f) { return static_cast<int>(f); }
}  // namespace

std::optional<LossOutput> DomainModule::computeLoss(const torch::Tensor& pred, const torch::Tensor& target,
                                                    const torch::Tensor&) {
    return LossOutput{torch::mse_loss(pred, target), {}};
}

std::optional<LossOutput> DomainModule::computeFamilyLoss(LossFamily family, const torch::Tensor& pred,
                                                          const torch::Tensor& target,
                                                          const torch::Tensor& rawTarget) {
    if (!familyOn_[familyIndex(family)]) return std::nullopt;
    return computeLoss(pred, target, rawTarget);
}

std::string DomainModule::describe() const {
    int64_t n = 0;
    for (const auto& p : parameters()) n += p.numel();
    return kind_ + ", latent " + std::to_string(latentDim_) + ", " + std::to_string(n) + " parameters";
}

void DomainModule::setFamilyEnabled(LossFamily family, bool enabled) { familyOn_[familyIndex(family)] = enabled; }
bool DomainModule::familyEnabled(LossFamily family) const { return familyOn_[familyIndex(family)]; }

void DomainModule::freeze() {
    for (auto& p : parameters()) p.set_requires_grad(false);
    eval();
    frozen_ = true;
}

void DomainModule::unfreeze() {
    for (auto& p : parameters()) p.set_requires_grad(true);
    train();
    frozen_ = false;
}

torch::Tensor klDivergenceLoss(const torch::Tensor& mean, const torch::Tensor& logvar) {
    return -0.5 * torch::sum(1 + logvar - mean.pow(2) - logvar.exp());
}

torch::Tensor gaussianNll(const torch::Tensor& mu, const torch::Tensor& logSigma, const torch::Tensor& x) {
    return 0.5 * ((x - mu) / logSigma.exp()).pow(2) + logSigma + 0.5 * std::log(2 * M_PI);
}

namespace {

torch::Tensor requireFloatVectors(const torch::Tensor& raw, int64_t dim, const char* kind) {
    torch::Tensor x = raw.dim() == 1 ? raw.unsqueeze(1) : raw;
    if (x.dim() != 2 || (dim > 0 && x.size(1) != dim))
        throw std::invalid_argument(std::string(kind) + " domain: expected samples of shape (B, " +
                                    std::to_string(dim) + "), found " + shapeString(raw));
    return x.to(torch::kFloat32);
}

/// Pre-computed latents: encode and decode are the identity (shimmer tutorial domains, SSD v_latents).
class IdentityDomain : public DomainModule {
public:
    explicit IdentityDomain(int64_t dim) : DomainModule("identity", dim) {}
    torch::Tensor prepare(const torch::Tensor& raw) const override {
        return requireFloatVectors(raw, latentDim(), "identity");
    }
    torch::Tensor encode(const torch::Tensor& x) override { return x; }
};

/// MLP autoencoder for vectors: Linear-ReLU-Linear-ReLU-Linear each way; MSE reconstruction loss.
class MlpAeDomain : public DomainModule {
public:
    MlpAeDomain(int64_t in, int64_t hidden, int64_t latent)
        : DomainModule("mlp_ae", latent), in_(in),
          encoder_(register_module("encoder", makeGWMlp(in, hidden, latent, 1))),
          decoder_(register_module("decoder", makeGWMlp(latent, hidden, in, 1))) {}
    torch::Tensor prepare(const torch::Tensor& raw) const override { return requireFloatVectors(raw, in_, "mlp_ae"); }
    torch::Tensor encode(const torch::Tensor& x) override { return encoder_->forward(x); }
    torch::Tensor decodeRaw(const torch::Tensor& z) override { return decoder_->forward(z); }
    std::optional<LossOutput> computeDomainLoss(const torch::Tensor& x) override {
        auto loss = torch::mse_loss(decoder_->forward(encoder_->forward(x)), x);
        TensorMap m;
        m.set("reconstruction", loss.detach());
        return LossOutput{loss, m};
    }
    bool needsPretraining() const override { return true; }

private:
    int64_t in_;
    torch::nn::Sequential encoder_, decoder_;
};

/// Shared VAE objective (SSD domain modules): Σ gaussian_nll(x̂, log σ = 0, x) + β·KL, both sums,
/// divided here by the batch size so that the value does not scale with B (pre-training only).
LossOutput vaeLoss(const torch::Tensor& recon, const torch::Tensor& x, const torch::Tensor& mean,
                   const torch::Tensor& logvar, double beta) {
    const double b = static_cast<double>(x.size(0));
    auto nll = gaussianNll(recon, torch::zeros({}, recon.options()), x).sum() / b;
    auto kl = klDivergenceLoss(mean, logvar) / b;
    TensorMap m;
    m.set("reconstruction", nll.detach());
    m.set("kl", kl.detach());
    m.set("mse", torch::mse_loss(recon, x).detach());
    return LossOutput{nll + beta * kl, m};
}

torch::Tensor reparameterize(const torch::Tensor& mean, const torch::Tensor& logvar) {
    return mean + torch::exp(0.5 * logvar) * torch::randn_like(mean);
}

/// MLP VAE for vectors; encode returns the posterior mean.
class MlpVaeDomain : public DomainModule {
public:
    MlpVaeDomain(int64_t in, int64_t hidden, int64_t latent, double beta)
        : DomainModule("mlp_vae", latent), in_(in), beta_(beta),
          encoder_(register_module("encoder", makeGWMlp(in, hidden, hidden, 0))),
          qMean_(register_module("q_mean", torch::nn::Linear(hidden, latent))),
          qLogvar_(register_module("q_logvar", torch::nn::Linear(hidden, latent))),
          decoder_(register_module("decoder", makeGWMlp(latent, hidden, in, 1))) {}
    torch::Tensor prepare(const torch::Tensor& raw) const override { return requireFloatVectors(raw, in_, "mlp_vae"); }
    torch::Tensor encode(const torch::Tensor& x) override {
        return qMean_->forward(torch::relu(encoder_->forward(x)));
    }
    torch::Tensor decodeRaw(const torch::Tensor& z) override { return decoder_->forward(z); }
    std::optional<LossOutput> computeDomainLoss(const torch::Tensor& x) override {
        auto h = torch::relu(encoder_->forward(x));
        auto mean = qMean_->forward(h), logvar = qLogvar_->forward(h);
        return vaeLoss(decoder_->forward(reparameterize(mean, logvar)), x, mean, logvar, beta_);
    }
    bool needsPretraining() const override { return true; }

private:
    int64_t in_;
    double beta_;
    torch::nn::Sequential encoder_;
    torch::nn::Linear qMean_, qLogvar_;
    torch::nn::Sequential decoder_;
};

}  // namespace

torch::Tensor prepareImages(const torch::Tensor& raw, int64_t channels, int64_t size, const std::string& kind) {
    torch::Tensor x = raw;
    if (x.dim() == 3 && channels == 1) x = x.unsqueeze(1);
    else if (x.dim() == 4 && x.size(3) == channels && x.size(1) != channels) x = x.permute({0, 3, 1, 2});
    if (x.dim() != 4 || x.size(1) != channels || x.size(2) != size || x.size(3) != size) {
        const std::string s = std::to_string(size), c = std::to_string(channels);
        throw std::invalid_argument(kind + " domain: expected images of shape (B, " + s + ", " + s + (channels == 1 ? "" : ", " + c) +
                                    ") or (B, " + c + ", " + s + ", " + s + "), found " + shapeString(raw));
    }
    if (x.scalar_type() == torch::kUInt8) return x.to(torch::kFloat32).div_(255.0).contiguous();
    return x.to(torch::kFloat32).contiguous();
}

namespace {

/// The convolutional VAE of docs/gw-semantics.md 6.3 (SSD VisualDomainModule): 4 × [Conv k4 s2 p1, BN, ReLU]
/// 32→2 px, flatten 1024 → mean/logvar; decoder ConvT k8 to 8×8, two ConvT k4 s2 to 32×32, ZeroPad,
/// Conv k4, sigmoid. 28-pixel images are zero-padded to 32 on the way in and cropped on the way out.
class ConvVaeDomain : public DomainModule {
public:
    ConvVaeDomain(int64_t channels, int64_t imageSize, int64_t latent, int64_t aeDim, double beta)
        : DomainModule("conv_vae", latent), channels_(channels), size_(imageSize), aeDim_(aeDim), beta_(beta) {
        using namespace torch::nn;
        Sequential enc;
        int64_t c = channels;
        for (int64_t out : {aeDim / 8, aeDim / 4, aeDim / 2, aeDim}) {
            enc->push_back(Conv2d(Conv2dOptions(c, out, 4).stride(2).padding(1).bias(false)));
            enc->push_back(BatchNorm2d(out));
            enc->push_back(ReLU());
            c = out;
        }
        encoder_ = register_module("encoder", enc);
        qMean_ = register_module("q_mean", Linear(aeDim * 4, latent));
        qLogvar_ = register_module("q_logvar", Linear(aeDim * 4, latent));
        Sequential dec;
        dec->push_back(ConvTranspose2d(ConvTranspose2dOptions(latent, aeDim, 8).stride(1)));
        dec->push_back(BatchNorm2d(aeDim));
        dec->push_back(ReLU());
        dec->push_back(ConvTranspose2d(ConvTranspose2dOptions(aeDim, aeDim / 2, 4).stride(2).padding(1)));
        dec->push_back(BatchNorm2d(aeDim / 2));
        dec->push_back(ReLU());
        dec->push_back(ConvTranspose2d(ConvTranspose2dOptions(aeDim / 2, aeDim / 4, 4).stride(2).padding(1)));
        dec->push_back(BatchNorm2d(aeDim / 4));
        dec->push_back(ReLU());
        dec->push_back(ZeroPad2d(ZeroPad2dOptions({0, 1, 0, 1})));
        dec->push_back(Conv2d(Conv2dOptions(aeDim / 4, channels, 4).stride(1).padding(1)));
        dec->push_back(Sigmoid());
        decoder_ = register_module("decoder", dec);
    }

    torch::Tensor prepare(const torch::Tensor& raw) const override { return prepareImages(raw, channels_, size_, "conv_vae"); }
    torch::Tensor encode(const torch::Tensor& x) override { return posterior(x).first; }
    torch::Tensor decodeRaw(const torch::Tensor& z) override {
        auto y = decoder_->forward(z.view({z.size(0), z.size(1), 1, 1}));
        if (size_ == 28) y = y.narrow(2, 2, 28).narrow(3, 2, 28);
        return y;
    }
    std::optional<LossOutput> computeDomainLoss(const torch::Tensor& x) override {
        auto [mean, logvar] = posterior(x);
        return vaeLoss(decodeRaw(reparameterize(mean, logvar)), x, mean, logvar, beta_);
    }
    TensorMap dataMetrics(const torch::Tensor& predLatent, const torch::Tensor& x) override {
        torch::NoGradGuard ng;
        TensorMap m;
        m.set("image_mse", torch::mse_loss(decodeRaw(predLatent), x));
        return m;
    }
    bool needsPretraining() const override { return true; }
    /// For the hand-written pre-training step (convVaeShapeOf below).
    void shape(int64_t& channels, int64_t& imageSize, int64_t& aeDim, double& beta) const {
        channels = channels_;
        imageSize = size_;
        aeDim = aeDim_;
        beta = beta_;
    }

private:
    std::pair<torch::Tensor, torch::Tensor> posterior(const torch::Tensor& x) {
        auto in = size_ == 28 ? F::pad(x, F::PadFuncOptions({2, 2, 2, 2})) : x;
        auto h = encoder_->forward(in).flatten(1);
        return {qMean_->forward(h), qLogvar_->forward(h)};
    }
    int64_t channels_, size_, aeDim_;
    double beta_;
    torch::nn::Sequential encoder_{nullptr}, decoder_{nullptr};
    torch::nn::Linear qMean_{nullptr}, qLogvar_{nullptr};
};

/// Class labels: raw class index (B,) -> one-hot latent (B, C). The GW decoder's output is read as
/// logits: loss = cross-entropy against the index, metric `accuracy` (argmax equals the index).
class ClassLabelDomain : public DomainModule {
public:
    explicit ClassLabelDomain(int64_t classes) : DomainModule("class_label", classes) {}
    torch::Tensor prepare(const torch::Tensor& raw) const override {
        torch::Tensor x = raw;
        if (x.dim() == 2 && x.size(1) == 1) x = x.squeeze(1);
        if (x.dim() != 1)
            throw std::invalid_argument("class_label domain: expected class indices of shape (B,), found " +
                                        shapeString(raw));
        if (torch::isFloatingType(x.scalar_type()) && !torch::equal(x, x.round()))
            throw std::invalid_argument("class_label domain: expected whole-number class indices, found fractions");
        x = x.to(torch::kInt64);
        if (x.numel() > 0) {
            const int64_t lo = x.min().item<int64_t>(), hi = x.max().item<int64_t>();
            if (lo < 0 || hi >= latentDim())
                throw std::invalid_argument("class_label domain: expected class indices in [0, " +
                                            std::to_string(latentDim()) + "), found values from " +
                                            std::to_string(lo) + " to " + std::to_string(hi));
        }
        return x;
    }
    torch::Tensor encode(const torch::Tensor& x) override {
        return F::one_hot(x, latentDim()).to(torch::kFloat32);
    }
    torch::Tensor decodeRaw(const torch::Tensor& z) override { return z.argmax(1); }
    torch::Tensor display(const torch::Tensor& z) override { return torch::softmax(z, 1); }
    torch::Tensor displayInput(const torch::Tensor& x) override { return F::one_hot(x, latentDim()).to(torch::kFloat32); }
    int64_t classCount() const override { return latentDim(); }
    torch::Tensor classesOf(const torch::Tensor& x) const override { return x; }
    bool lossNeedsInput() const override { return true; }
    LatentLossKind latentLossKind() const override { return LatentLossKind::CrossEntropy; }
    std::optional<LossOutput> computeLoss(const torch::Tensor& pred, const torch::Tensor&,
                                          const torch::Tensor& rawTarget) override {
        TensorMap m;
        m.set("accuracy", pred.detach().argmax(1).eq(rawTarget).to(torch::kFloat32).mean());
        return LossOutput{torch::cross_entropy_loss(pred, rawTarget), m};
    }
};

}  // namespace

namespace {
void need(const DomainModuleSpec& s, bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("domain module '" + s.kind + "': " + what);
}
using T = ParamInfo::Type;
ParamInfo latentParam(const std::string& dflt, const std::string& doc) {
    return {"latent_dim", T::Int, dflt, 0, false, "", doc};
}
ParamInfo hiddenParam(const std::string& dflt) { return {"hidden_dim", T::Int, dflt, 1, false, "", "hidden width"}; }
ParamInfo betaParam() { return {"beta", T::Real, "0.1", 0, false, "", "weight of the KL term in the VAE loss"}; }

std::shared_ptr<DomainModule> makeMlp(const DomainModuleSpec& s, const Params& p, bool vae) {
    need(s, s.inputDim > 0, "input dimension must be positive, found " + std::to_string(s.inputDim));
    const int64_t latent = p.integer("latent_dim"), hidden = p.integer("hidden_dim");
    need(s, latent > 0, "latent_dim must be positive, found " + std::to_string(latent));
    if (!vae) return std::make_shared<MlpAeDomain>(s.inputDim, hidden, latent);
    return std::make_shared<MlpVaeDomain>(s.inputDim, hidden, latent, p.real("beta"));
}
}  // namespace

void registerIdentityModule(DomainModuleRegistry& r) {
    r.add({"identity", "the data are the latents (B, F) float; MSE", {latentParam("0", "0: the data's width F")}},
          [](const DomainModuleSpec& s, const Params& p) -> std::shared_ptr<DomainModule> {
              const int64_t d = p.integer("latent_dim") > 0 ? p.integer("latent_dim") : s.inputDim;
              need(s, d > 0, "latent_dim must be positive (or known from the data), found " + std::to_string(d));
              return std::make_shared<IdentityDomain>(d);
          });
}

void registerMlpAeModule(DomainModuleRegistry& r) {
    r.add({"mlp_ae", "MLP auto-encoder on vectors (B, F), pre-trained on its own data",
           {latentParam("16", "latent size"), hiddenParam("64")}},
          [](const DomainModuleSpec& s, const Params& p) { return makeMlp(s, p, false); });
}

void registerMlpVaeModule(DomainModuleRegistry& r) {
    r.add({"mlp_vae", "MLP VAE on vectors (B, F); its latent is the posterior mean",
           {latentParam("16", "latent size"), hiddenParam("64"), betaParam()}},
          [](const DomainModuleSpec& s, const Params& p) { return makeMlp(s, p, true); });
}

void registerConvVaeModule(DomainModuleRegistry& r) {
    r.add({"conv_vae", "convolutional VAE on images (B, H, W[, C]) uint8 or float (shimmer-ssd's visual VAE)",
           {latentParam("8", "latent size"), {"hidden_dim", T::Int, "256", 8, false, "", "ae_dim, a multiple of 8"},
            {"channels", T::Int, "1", 1, false, "", "1 or 3"},
            {"image_size", T::Int, "28", 1, false, "pixels", "28 or 32"}, betaParam()},
           {"image_mse"}},
          [](const DomainModuleSpec& s, const Params& p) -> std::shared_ptr<DomainModule> {
              const int64_t channels = p.integer("channels"), size = p.integer("image_size");
              const int64_t aeDim = p.integer("hidden_dim"), latent = p.integer("latent_dim");
              need(s, channels == 1 || channels == 3, "channels must be 1 or 3, found " + std::to_string(channels));
              need(s, size == 28 || size == 32, "image_size must be 28 or 32, found " + std::to_string(size));
              need(s, aeDim % 8 == 0, "hidden_dim (ae_dim) must be a multiple of 8, found " + std::to_string(aeDim));
              need(s, latent > 0, "latent_dim must be positive, found " + std::to_string(latent));
              return std::make_shared<ConvVaeDomain>(channels, size, latent, aeDim, p.real("beta"));
          });
}

void registerClassLabelModule(DomainModuleRegistry& r) {
    r.add({"class_label", "class indices (B,) as one-hot latents; cross-entropy and accuracy",
           {{"num_classes", T::Int, "0", 0, false, "", "0: the dataset's num_classes attribute"}}},
          [](const DomainModuleSpec& s, const Params& p) -> std::shared_ptr<DomainModule> {
              const int64_t n = p.integer("num_classes") > 0 ? p.integer("num_classes") : s.dataClasses;
              if (n == 0)
                  throw std::invalid_argument("num_classes: expected the class count (the dataset has no num_classes "
                                              "attribute), found nothing");
              need(s, n >= 2, "num_classes must be at least 2, found " + std::to_string(n));
              return std::make_shared<ClassLabelDomain>(n);
          });
}

// Declared in model/cpu_step/conv_vae_step.h, which may include this folder (not the other way round).
bool convVaeShapeOf(DomainModule& m, int64_t& channels, int64_t& imageSize, int64_t& aeDim, double& beta) {
    const auto* c = dynamic_cast<const ConvVaeDomain*>(&m);
    if (c) c->shape(channels, imageSize, aeDim, beta);
    return c != nullptr;
}

std::vector<std::string> domainModuleKinds() { return domainModuleRegistry().names(); }

std::shared_ptr<DomainModule> makeDomainModule(const DomainModuleSpec& s) {
    const auto& entry = domainModuleRegistry().at(s.kind, "domain module");
    return entry.impl(s, checkParams(entry.info, "domain module", s.params, "domain module '" + s.kind + "'"));
}

}  // namespace gw

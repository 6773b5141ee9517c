// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file domain_module.h
/// Domain modules: the unimodal encoders/decoders that turn a domain's raw data into the latent vectors
/// the GW works on (shimmer `DomainModule`, docs/gw-semantics.md 1.6; the VAEs of sections 5 and 6.3).
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/core/metric_names.h"
#include "model/core/ordered_map.h"
#include "model/core/torch_fwd.h"

namespace gw {

/// The loss families a domain module takes part in (docs/gw-semantics.md 2.2): those of the metric
/// vocabulary (model/core/metric_names.h) marked `perDomain` (demi-cycle, cycle, translation, fused).
/// Each may be switched off, and then the module's compute_*_loss returns nothing and the term and its
/// metric are skipped.
using LossFamily = metrics::Family;

/// A domain module's own code failed at run time (a TorchScript module raised): names the module's file,
/// the method and the message its code gave. The engine adds the domain and the step (TrainingError).
class DomainModuleError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// What computeLoss computes, for the hand-written CPU steps (model/cpu_step/latent_losses.h), which need the
/// gradient in closed form: Mse (the default), CrossEntropy (class logits (B, C) against the class
/// indices of rawTarget (B,) int64, with an `accuracy` metric), or Custom (autograd only).
enum class LatentLossKind { Mse, CrossEntropy, Custom };

/// Base class of every domain module (shimmer `DomainModule`).
///
/// Shapes: raw data (B, ...) as read from HDF5 (any dtype); `prepare` turns it into the module's input
/// (float (B, ...), or int64 (B,) for classes); latents are float (B, latentDim()).
class DomainModule : public torch::nn::Module {
public:
    DomainModule(std::string kind, int64_t latentDim) : kind_(std::move(kind)), latentDim_(latentDim) {}
    ~DomainModule() override = default;

    const std::string& kind() const { return kind_; }
    int64_t latentDim() const { return latentDim_; }

    /// Raw HDF5 batch -> module input (scaling uint8 images to [0, 1], labels to int64).
    /// \throws std::invalid_argument naming the expected and the found shape.
    virtual torch::Tensor prepare(const torch::Tensor& raw) const { return raw.to(torch::kFloat32); }
    /// Prepared input (B, ...) -> latent (B, latentDim()). Deterministic (a VAE returns its mean).
    virtual torch::Tensor encode(const torch::Tensor& x) = 0;
    /// Latent (B, latentDim()) -> prediction in the latent space's target form (B, latentDim()).
    /// The GW compares decoded latents, so for every shipped module decode of a latent is that latent
    /// (identity); decodeRaw maps back to data space.
    virtual torch::Tensor decodeRaw(const torch::Tensor& z) { return z; }

    /// GW loss between a predicted latent (B, L) and a target latent (B, L); rawTarget is the prepared
    /// input the target came from. Default: MSE (mean) with no extra metrics (shimmer's compute_loss).
    virtual std::optional<LossOutput> computeLoss(const torch::Tensor& pred, const torch::Tensor& target,
                                                  const torch::Tensor& rawTarget);
    /// The closed form of computeLoss. A module that overrides computeLoss must override this too
    /// (Custom when it is neither shimmer's MSE nor a class cross-entropy).
    virtual LatentLossKind latentLossKind() const { return LatentLossKind::Mse; }
    /// Per-family entry points (compute_dcy_loss ...): computeLoss unless that family is switched off.
    std::optional<LossOutput> computeFamilyLoss(LossFamily family, const torch::Tensor& pred,
                                                const torch::Tensor& target, const torch::Tensor& rawTarget);
    void setFamilyEnabled(LossFamily family, bool enabled);
    bool familyEnabled(LossFamily family) const;

    /// Unimodal loss on prepared input (B, ...): the pre-training objective, and the end-to-end term
    /// added to the GW loss when the module is not frozen (shimmer compute_domain_loss). None if the
    /// module has nothing to learn on its own.
    virtual std::optional<LossOutput> computeDomainLoss(const torch::Tensor& x) { return std::nullopt; }
    /// Classes the samples of this domain carry (class_label: its class count; attributes: the 3 shapes),
    /// 0 when none. The explorer picks samples per class and colours the workspace view by them.
    virtual int64_t classCount() const { return 0; }
    /// The class of each prepared sample x (B, ...) as int64 (B,); only when classCount() > 0.
    virtual torch::Tensor classesOf(const torch::Tensor& x) const { return {}; }
    /// Quality of a predicted latent (B, L) in data space against the prepared input x (B, ...) it should
    /// decode to, for evaluation only (`gw eval`, the pairs curve of docs/results.md): conv_vae gives
    /// `image_mse` (mean squared pixel error, pixels in [0, 1]); attributes gives category_accuracy,
    /// attribute_error, position_error (px), size_error (px), rotation_error (degrees) and colour_error
    /// (0..255). Default: none. Values are () tensors; no gradient. Every name it returns must be declared
    /// in its kind's registration (KindInfo::dataScores, model/core/registry.h): the dashboard and the
    /// metric parser know data-space scores from there alone.
    virtual TensorMap dataMetrics(const torch::Tensor& predLatent, const torch::Tensor& x) { return {}; }
    /// A predicted latent (B, L) as the explorer shows it, in data space: decodeRaw by default; class
    /// labels as probabilities (B, C). No gradient needed.
    virtual torch::Tensor display(const torch::Tensor& z) { return decodeRaw(z); }
    /// A prepared input (B, ...) as the explorer shows it beside the decodings: itself by default; class
    /// indices one-hot (B, C).
    virtual torch::Tensor displayInput(const torch::Tensor& x) { return x; }
    /// The kind whose explorer renderer draws this module's cells: its own kind by default; a module whose
    /// kind says nothing of its data (torchscript) names the one its output calls for ("class_label"), or
    /// its own kind to let the renderer follow the shape (images (B, C, H, W) or (B, H, W), else vectors).
    virtual std::string rendersAs() const { return kind(); }
    /// One line for the experiment form: what the module is (its file, methods, latent size,
    /// parameter count). Default: the kind, the latent size and the parameter count.
    virtual std::string describe() const;
    /// For a run folder `runDir` being started or resumed: copies into it whatever file the module was
    /// read from, and returns the parameters that the run's config.yaml must hold instead (torchscript:
    /// `script` -> the copy, `sha256` -> its digest), so that the run no longer depends on the original.
    /// Default: none. \throws WriteError naming the file.
    virtual OrderedMap<std::string> keepInRun(const std::string& runDir, const std::string& domain) { return {}; }
    /// `gw export`: writes the module, with its current weights, in its own format to `path`
    /// (torchscript: a TorchScript file that torch.jit.load reads). Returns false when the module has no
    /// such format (every built-in kind: their weights are in the GW's state dict). \throws WriteError.
    virtual bool saveOwnFile(const std::string& path) { return false; }
    /// True when computeLoss reads rawTarget (so batches must carry prepared inputs).
    virtual bool lossNeedsInput() const { return false; }
    /// True when the module has weights that must be trained on its own data before GW training.
    virtual bool needsPretraining() const { return false; }

    /// shimmer freeze(): requires_grad off and eval mode. Frozen latents are computed once and cached.
    void freeze();
    void unfreeze();
    bool isFrozen() const { return frozen_; }

protected:
    /// For kinds that learn their latent size from the data (torchscript), before the module is used.
    void setLatentDim(int64_t d) { latentDim_ = d; }

private:
    std::string kind_;
    int64_t latentDim_;
    bool frozen_ = false;
    bool familyOn_[5] = {true, true, true, true, true};  // by metrics::Family
};

/// What a domain module is built from: its registered kind, its parameters as the experiment file
/// gives them (docs/experiment-format.md; the kinds and their parameters are in model/core/kinds.cpp and
/// `gw kinds`), and what the data say.
struct DomainModuleSpec {
    std::string kind = "identity";   ///< a registered domain-module kind
    OrderedMap<std::string> params;  ///< parameter -> YAML text; missing ones take the kind's defaults
    int64_t inputDim = 0;            ///< from the data: values per sample (the product of a sample's shape)
    int64_t dataClasses = 0;         ///< from the data: the dataset's `num_classes` attribute (0: none)
    std::string domain;              ///< the domain's name, for messages ("" when not known)
    /// From the data: the first few samples of the training split as stored (B, ...), for kinds that
    /// learn their sizes by running the module (torchscript). Undefined when no data are at hand
    /// (`gw export` rebuilding a module from a checkpoint): such a kind then skips its checks.
    torch::Tensor probe;

    DomainModuleSpec() = default;
    explicit DomainModuleSpec(std::string k, OrderedMap<std::string> p = {}) : kind(std::move(k)), params(std::move(p)) {}
    /// Sets one parameter (numbers are written as YAML text).
    DomainModuleSpec& set(const std::string& key, const std::string& value) { params.set(key, value); return *this; }
    DomainModuleSpec& set(const std::string& key, int64_t value) { return set(key, std::to_string(value)); }
};

/// Builds a domain module of a registered kind. \throws std::invalid_argument for an unknown kind
/// (listing the known ones), an unknown or ill-typed parameter, or a value the kind refuses, each
/// naming the parameter and the value.
std::shared_ptr<DomainModule> makeDomainModule(const DomainModuleSpec& spec);

/// Names of the shipped domain-module kinds, for messages and the GUI.
std::vector<std::string> domainModuleKinds();

/// Images as an image domain module takes them: (B, S, S) (one channel), (B, S, S, C) or (B, C, S, S),
/// uint8 [0, 255] or float [0, 1] -> float (B, C, S, S) in [0, 1], contiguous.
/// \throws std::invalid_argument "KIND domain: expected images of shape ..., found [...]".
torch::Tensor prepareImages(const torch::Tensor& raw, int64_t channels, int64_t size, const std::string& kind);

/// A tensor's shape as error messages show it, e.g. "[4, 12]".
std::string shapeString(const torch::Tensor& t);

/// VAE helpers (shimmer `shimmer/modules/vae.py`, docs/gw-semantics.md 5).
/// KL(N(mean, exp(logvar)) || N(0, 1)) summed over batch and dims: −0.5 Σ(1 + logvar − mean² − exp(logvar)).
torch::Tensor klDivergenceLoss(const torch::Tensor& mean, const torch::Tensor& logvar);
/// Element-wise Gaussian negative log-likelihood 0.5((x−μ)/exp(logσ))² + logσ + 0.5 log 2π.
torch::Tensor gaussianNll(const torch::Tensor& mu, const torch::Tensor& logSigma, const torch::Tensor& x);

}  // namespace gw

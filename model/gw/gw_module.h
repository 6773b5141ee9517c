// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file gw_module.h
/// GW encoders and decoders and fusion into the workspace state (shimmer `gw_module.py`;
/// docs/gw-semantics.md 1.2, 1.3). Selections: model/gw/selections/selection.h.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/core/mlp.h"
#include "model/domains/domain_module.h"
#include "model/gw/selections/selection.h"
#include "model/core/torch_fwd.h"

namespace gw {

/// Sizes of one GW encoder or decoder.
struct MlpSize {
    int64_t hidden = 32;  ///< hidden width
    int nLayers = 3;      ///< extra hidden layers (shimmer n_layers)
};

/// The shape of the GW encoders and decoders and the fusion's activation (the workspace section's
/// `linear`, `linear_bias` and `fusion_activation_fn`).
struct GWShape {
    MlpSize encoder, decoder;
    /// One Linear per encoder and decoder, no hidden layer (shimmer-ssd `global_workspace.linear_domains`,
    /// shimmer_ssd/modules/domains/pretrained.py load_pretrained_domain): state-dict keys
    /// `gw_encoders.{d}.weight` (W, L_d) and, with `linearBias`, `gw_encoders.{d}.bias` (W).
    bool linear = false;
    bool linearBias = false;  ///< shimmer-ssd `linear_domains_use_bias` (default false)
    /// Applied to the weighted sum at fusion (shimmer GWModule `fusion_activation_fn`, torch.tanh by default).
    FusionActivation activation = FusionActivation::Tanh;
};

/// shimmer GWModule: domain modules, one GW encoder and decoder per domain, workspace dimension W and
/// the fusion (tanh by default). Registered names follow shimmer's state dict: `domain_mods.{d}.*`,
/// `gw_encoders.{d}.{i}.*`, `gw_decoders.{d}.{i}.*` (linear ones: `gw_encoders.{d}.weight`, ...).
class GWModule : public torch::nn::Module {
public:
    /// \param domains domain name -> domain module, in the order that fixes metric names.
    /// \throws std::invalid_argument for an empty domain list, a repeated name or W <= 0.
    GWModule(const OrderedMap<std::shared_ptr<DomainModule>>& domains, int64_t workspaceDim, const GWShape& shape);

    const std::vector<std::string>& domainNames() const { return names_; }
    int64_t workspaceDim() const { return workspaceDim_; }
    DomainModule& domainModule(const std::string& d) const;
    torch::nn::Sequential& encoder(const std::string& d);
    torch::nn::Sequential& decoder(const std::string& d);

    /// Pre-fusion encodings e_d = Enc_d(u_d): (B, L_d) -> (B, W) for each domain of `latents`.
    TensorMap encode(const TensorMap& latents);
    const GWShape& shape() const { return shape_; }
    /// The fusion's activation f applied to x (B, W): tanh(x), x, sigmoid(x) or relu(x).
    torch::Tensor activate(const torch::Tensor& x) const;
    /// Workspace state z = f(Σ_d s_d ⊙ e_d) (B, W), f the fusion activation (tanh by default), summed in
    /// the order of `scores`.
    torch::Tensor fuse(const TensorMap& preFusion, const TensorMap& scores);
    /// select and fuse: the GW state (B, W) of latents (B, L_d) whose pre-fusion encodings (B, W) are
    /// `preFusion`. One domain under a selection whose scores are then constant ones
    /// (Selection::constantForOneSource) gives f(e), and no score is computed (nor random number drawn).
    torch::Tensor selectAndFuse(const TensorMap& latents, const TensorMap& preFusion, Selection& selection);
    /// encode, select, fuse: the GW state of a group of latents (B, W), as selectAndFuse.
    torch::Tensor encodeAndFuse(const TensorMap& latents, Selection& selection);
    /// Decoded latents Dec_d(z) (B, L_d) for `domains` (every domain when empty).
    TensorMap decode(const torch::Tensor& state, const std::vector<std::string>& domains = {});

    // Hooks for flavours whose GW module holds more than shimmer's GWModule (variational, bayesian;
    // registered by GWLosses::attach). two_domains and fusion use none of them.

    /// A flavour's own fusion: latents (B, L_d) and their pre-fusion encodings (B, W) of the domains to
    /// fuse, and the GW's selection -> the GW state (B, W).
    using FusionHook = std::function<torch::Tensor(const TensorMap& latents, const TensorMap& preFusion, Selection& selection)>;
    /// Makes selectAndFuse (and so encodeAndFuse) call `hook` instead of the selection and the tanh fusion.
    void setFusionHook(FusionHook hook) { fusionHook_ = std::move(hook); }
    bool hasFusionHook() const { return static_cast<bool>(fusionHook_); }
    /// One trainable parameter per domain, registered as `{name}.{d}` (as shimmer's nn.ParameterDict
    /// registers them: bayesian's `precisions.{d}`, shape (W,)); `init(d)` gives each its first value.
    /// Returns them by domain (the registered tensors: AdamW trains them, checkpoints keep them).
    /// \throws std::invalid_argument when `name` is already a submodule.
    OrderedMap<torch::Tensor> addDomainParameters(const std::string& name,
                                                  const std::function<torch::Tensor(const std::string& d)>& init);
    /// Puts `wrapper` in the module tree in place of domain d's GW encoder, so that the state dict names
    /// the encoder `gw_encoders.{d}.{its name inside wrapper}.*`, beside the wrapper's own tensors
    /// (variational: `gw_encoders.{d}.layers.{i}.*` and `gw_encoders.{d}.uncertainty_level`). encoder(d)
    /// and encode() go on using the MLP, which the wrapper must hold as a submodule.
    /// \throws std::out_of_range for a domain the GW does not have.
    void wrapEncoder(const std::string& d, std::shared_ptr<torch::nn::Module> wrapper);

private:
    std::vector<std::string> names_;
    int64_t workspaceDim_;
    GWShape shape_;
    OrderedMap<std::shared_ptr<DomainModule>> domainMods_;
    OrderedMap<torch::nn::Sequential> encoders_, decoders_;
    FusionHook fusionHook_;  ///< empty: the selection and tanh
};

}  // namespace gw

// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file global_workspace.h
/// The trainable whole: GW module, loss module and selection (shimmer GlobalWorkspace2Domains,
/// docs/gw-semantics.md 1.5 and 2.6), with its state dict in shimmer's key layout.
#include <memory>
#include <string>

#include "model/experiment/config.h"
#include "model/gw/gw_module.h"
#include "model/gw/flavours/hand_written_step.h"
#include "model/gw/flavours/losses.h"

namespace gw {

/// Sizes and loss settings of a GW (the workspace part of an experiment).
struct GWSettings {
    int64_t workspaceDim = 12;
    MlpSize encoder, decoder;
    bool linear = false;       ///< one Linear per GW encoder and decoder (GWShape::linear)
    bool linearBias = false;   ///< with a bias (GWShape::linearBias)
    FusionActivation activation = FusionActivation::Tanh;  ///< the fusion's activation (GWShape::activation)
    std::string flavour = "two_domains";          ///< a registered GW flavour (model/core/kinds.cpp)
    Params flavourParams;                          ///< its parameters (workspace.flavour_params): checked by the parser, or given by hand (checked then)
    std::string selection;                         ///< a registered selection; "" = the flavour's default
    Params selectionParams;                        ///< its parameters: checked by the parser, or given by hand (checked then)
    LossSettings loss;                             ///< coefficients (none by default), logit scale
};

/// The GW part of an experiment file.
GWSettings gwSettingsOf(const ExperimentConfig& cfg);

/// GlobalWorkspace: submodules `gw_mod` (GWModule), `loss_mod` (the flavour's GWLosses, holding
/// `contrastive_fn.logit_scale`) and `selection_mod` (the selection), so that
/// named_parameters()/named_buffers() carry shimmer's names (`gw_mod.gw_encoders.{d}.{i}.weight`,
/// `selection_mod.query_layer.weight`, ...; docs/gw-semantics.md 4.1) without the `loss_mod.*` twins, which
/// interop.h adds for Python. shimmer GlobalWorkspace2Domains (flavour two_domains),
/// GlobalWorkspaceFusion (flavour fusion), 0.4.0's VariationalGlobalWorkspace (flavour variational:
/// `gw_mod.gw_encoders.{d}.layers.{i}.*` and `gw_mod.gw_encoders.{d}.uncertainty_level`) and v0.5.1's
/// GlobalWorkspaceBayesian (flavour bayesian: `gw_mod.precisions.{d}`); see GWLossesVariational and
/// GWLossesBayesian. The loss module is in eval mode but during trainingStep's autograd step (the
/// variational flavour draws its states only then).
class GlobalWorkspace : public torch::nn::Module {
public:
    /// \throws std::invalid_argument for a bad size, an empty domain list, an unknown flavour or
    /// selection (listing the known ones), a bad selection parameter, or a selection that does not
    /// suit the domains (dynamic_query_attention: every latent size must equal the workspace size).
    GlobalWorkspace(const OrderedMap<std::shared_ptr<DomainModule>>& domains, const GWSettings& settings);

    GWModule& gwMod() { return *gw_; }
    GWLosses& lossMod() { return *loss_; }
    Selection& selection() { return *selection_; }
    /// Checks the settings against domains of the given latent sizes without building anything large
    /// (flavour, selection and its parameters, sizes), so that a bad experiment fails before
    /// pre-training. \throws std::invalid_argument as the constructor.
    static void checkSettings(const GWSettings& settings, const OrderedMap<int64_t>& latentDims);

    /// One loss step on a batch of groups (docs/gw-semantics.md 2.6): the GW losses, plus the unimodal
    /// losses of non-frozen domain modules on single-domain groups, logged as
    /// `domain_loss/{d}/{k}` and `domain_loss/loss` and added to the total.
    StepLosses step(const std::vector<GroupBatch>& groups);
    /// A training step: step()'s losses and metrics, with the gradient of the loss added into every
    /// trainable parameter's .grad (zero them first: FlatAdamW::zeroGrad). When the flavour registers
    /// a hand-written step (FlavourImpl::handWritten), the step is on and it can take the batch (CPU,
    /// float32, frozen domain modules; see HandWrittenStep::unsupported), it runs the hand-written
    /// step; otherwise step() and autograd's backward. Either way the returned loss has no graph left
    /// to backpropagate.
    StepLosses trainingStep(const std::vector<GroupBatch>& groups);
    /// Switches the hand-written step on (default, unless the environment sets GW_CPU_STEP=0) or off.
    void setCpuStep(bool on) { cpuOn_ = on; }
    bool cpuStep() const { return cpuOn_; }
    /// "" when trainingStep may run the hand-written step on models like this one (the step is on, the
    /// flavour has one, and its model-level checks pass: HandWrittenStep::unsupportedModel);
    /// otherwise the reason ("switched off", "flavour 'x' has no hand-written step", ...). For choosing
    /// a thread count before training.
    std::string handWrittenUnsupported() const;
    /// The same for one batch ("" when trainingStep(groups) would run the hand-written step).
    std::string handWrittenUnsupported(const std::vector<GroupBatch>& groups) const;
    /// How the last trainingStep ran: "hand-written" or "autograd (reason)"; empty before the first.
    const std::string& lastStepPath() const { return lastPath_; }

    /// Parameters that train (requires_grad), in registration order.
    std::vector<torch::Tensor> trainableParameters() const;
    /// Parameters and buffers by shimmer name.
    OrderedMap<torch::Tensor> stateDict() const;
    /// Copies tensors by name. \throws std::invalid_argument listing missing, extra and mis-shaped keys,
    /// or naming a tensor that is not finite (loadModuleState); first, when the tensors are those of
    /// another kind of GW than this one's flavour (stateFlavour), saying which flavour they hold.
    void loadStateDict(const OrderedMap<torch::Tensor>& state);
    /// The kind of GW a state dict (our names, as stateDict) holds, read from its keys: "variational"
    /// (`gw_mod.gw_encoders.{d}.uncertainty_level`), "bayesian" (`gw_mod.precisions.{d}`), or "" for the
    /// deterministic flavours (two_domains, fusion), whose tensors are the same.
    static std::string stateFlavour(const OrderedMap<torch::Tensor>& state);

private:
    std::shared_ptr<GWModule> gw_;
    std::shared_ptr<GWLosses> loss_;
    std::shared_ptr<Selection> selection_;
    std::unique_ptr<HandWrittenStep> hand_;  ///< null: the flavour has none
    bool cpuOn_ = true;
    std::string lastPath_;
};

/// Copies `state` into `module`'s parameters and buffers by name; all keys must match in name and shape.
/// \throws std::invalid_argument listing missing, extra, mis-shaped and mistyped (integer for floating
/// point) keys, each written with `keyPrefix` before it, the list prefixed by `what`; and a floating-point
/// tensor holding NaN or infinite values, naming it and the count (nothing is loaded then).
void loadModuleState(torch::nn::Module& module, const OrderedMap<torch::Tensor>& state, const std::string& what,
                     const std::string& keyPrefix = "");
/// A module's parameters and buffers by name.
OrderedMap<torch::Tensor> moduleState(const torch::nn::Module& module);

}  // namespace gw

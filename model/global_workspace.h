// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file global_workspace.h
/// The trainable whole: GW module, loss module and selection (shimmer GlobalWorkspace2Domains,
/// gw-reference 1.5 and 2.6), with its state dict in shimmer's key layout.
#include <memory>
#include <string>

#include "model/fused_step.h"
#include "model/gw_module.h"
#include "model/losses.h"

namespace gw {

/// Sizes and loss settings of a GW (the workspace part of an experiment).
struct GWSettings {
    int64_t workspaceDim = 12;
    MlpSize encoder, decoder;
    std::string selection = "single_domain";
    double selectionTemperature = 0.2;
    LossCoefs coefs;
    double logitScale = 2.6592600369327779;
    bool learnLogitScale = false;
};

/// GlobalWorkspace: submodules `gw_mod` (GWModule) and `loss_mod` (GWLosses, holding
/// `contrastive_fn.logit_scale`), so that named_parameters()/named_buffers() carry shimmer's names
/// (`gw_mod.gw_encoders.{d}.{i}.weight`, ...; gw-reference 4.1) without the `loss_mod.gw_mod` twins.
class GlobalWorkspace : public torch::nn::Module {
public:
    /// \throws std::invalid_argument for a bad size, selection or empty domain list.
    GlobalWorkspace(const OrderedMap<std::shared_ptr<DomainModule>>& domains, const GWSettings& settings);

    GWModule& gwMod() { return *gw_; }
    GWLosses& lossMod() { return *loss_; }
    Selection& selection() { return *selection_; }

    /// One loss step on a batch of groups (gw-reference 2.6): the GW losses, plus the unimodal
    /// losses of non-frozen domain modules on single-domain groups, logged as
    /// `domain_loss/{d}/{k}` and `domain_loss/loss` and added to the total.
    StepLosses step(const std::vector<GroupBatch>& groups);
    /// A training step: step()'s losses and metrics, with the gradient of the loss added into every
    /// trainable parameter's .grad (zero them first: FlatAdamW::zeroGrad). When FusedGWStep can take
    /// the batch (CPU, float32, frozen domain modules; see FusedGWStep::unsupported) and the fused
    /// step is on, it runs the hand-written step; otherwise step() and autograd's backward. Either
    /// way the returned loss has no graph left to backpropagate.
    StepLosses trainingStep(const std::vector<GroupBatch>& groups);
    /// Switches the fused step on (default, unless the environment sets GW_FUSED_STEP=0) or off.
    void setFusedStep(bool on) { fusedOn_ = on; }
    bool fusedStep() const { return fusedOn_; }
    /// How the last trainingStep ran: "fused" or "autograd (reason)"; empty before the first.
    const std::string& lastStepPath() const { return lastPath_; }

    /// Parameters that train (requires_grad), in registration order.
    std::vector<torch::Tensor> trainableParameters() const;
    /// Parameters and buffers by shimmer name.
    OrderedMap<torch::Tensor> stateDict() const;
    /// Copies tensors by name. \throws std::invalid_argument listing missing, extra and mis-shaped keys.
    void loadStateDict(const OrderedMap<torch::Tensor>& state);

private:
    std::shared_ptr<GWModule> gw_;
    std::shared_ptr<GWLosses> loss_;
    std::unique_ptr<Selection> selection_;
    std::unique_ptr<FusedGWStep> fused_;
    bool fusedOn_ = true;
    std::string lastPath_;
};

/// Copies `state` into `module`'s parameters and buffers by name; all keys must match in name and shape.
/// \throws std::invalid_argument listing missing, extra, mis-shaped and mistyped (integer for floating
/// point) keys, each written with `keyPrefix` before it, the list prefixed by `what`.
void loadModuleState(torch::nn::Module& module, const OrderedMap<torch::Tensor>& state, const std::string& what,
                     const std::string& keyPrefix = "");
/// A module's parameters and buffers by name.
OrderedMap<torch::Tensor> moduleState(const torch::nn::Module& module);

}  // namespace gw

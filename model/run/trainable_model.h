// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file trainable_model.h
/// What a trainable model kind (registry.h ModelKindImpl, the experiment's `model:` key) gives the
/// Engine: the parts of preparation, the training step, the state kept in checkpoints and evaluation
/// that differ between a Global Workspace (`gw`, model/models/gw_model.cpp) and a model such as GLOM
/// (`glom`, model/models/glom_model.cpp). The Engine keeps what every kind shares: data, domain modules
/// and their weights, groups and samplers, AdamW + OneCycle over the parameters the kind returns,
/// data-parallel all-reduce, checkpoints, metrics, the run folder.
///
/// A kind reaches the Engine's parts through EngineAccess (the Engine's friend), so that nothing of the
/// Engine's private state becomes public API. Only model kinds include this header.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/run/engine_internal.h"

namespace gw {

/// A model kind's view of the Engine it is part of.
class EngineAccess {
public:
    using Domain = Engine::DomainState;
    using Group = Engine::Group;
    explicit EngineAccess(Engine& e) : e_(e) {}

    const ExperimentConfig& cfg() const { return e_.cfg_; }
    torch::Device device() const { return e_.device_; }
    /// Writes a line to the engine's log (nothing without one).
    void log(const std::string& line) const {
        if (e_.log_) e_.log_(line);
    }
    bool logs() const { return static_cast<bool>(e_.log_); }
    std::vector<std::unique_ptr<Domain>>& domains() { return e_.domains_; }
    std::vector<Group>& groups() { return e_.groups_; }
    /// The split's name in the data ("train" -> training.train_split ...).
    std::string splitName(const std::string& which) const { return e_.splitName(which); }
    /// Raw rows `idx` of a domain's split (B, ...) on the CPU.
    torch::Tensor rawRows(Domain& d, const std::string& split, const std::vector<int64_t>& idx) {
        return e_.rawRows(d, split, idx);
    }
    /// A group's batch of samples `idx`: latents from the caches, inputs where a loss reads them.
    GroupBatch makeBatch(const std::vector<std::string>& domains, const std::string& split, const std::vector<int64_t>& idx,
                         bool training) {
        return e_.makeBatch(domains, split, idx, training);
    }
    /// This step's sample indices of a group (this rank's share of the batch).
    std::vector<int64_t> drawIndices(Group& g) { return e_.drawIndices(g); }
    /// Pre-trains a domain module on its own data and keeps its weights (engine_pretrain.cpp).
    void pretrain(Domain& d) { e_.pretrainModule(d); }
    /// Computes a frozen module's latents of every split once (no grad, eval mode) onto the device.
    void cacheLatents(Domain& d) { e_.cacheLatents(d); }

private:
    Engine& e_;
};

/// The Engine's part that depends on the model kind. One per Engine, built by the kind's `make`.
class TrainableModel {
public:
    virtual ~TrainableModel() = default;

    /// The Global Workspace it trains; null for a model without one (GLOM).
    virtual GlobalWorkspace* workspace() { return nullptr; }

    /// After the domain modules are built, before any weights are read or pre-trained: checks the
    /// experiment against them (a GW's selection against the latent sizes).
    /// \throws ConfigError naming the experiment file.
    virtual void check(EngineAccess& e) {}
    /// True when a domain module whose weights file is missing is pre-trained on its own data (a GW);
    /// false when it starts from values drawn with the experiment's seed (GLOM trains it here).
    virtual bool pretrainsMissingWeights() const = 0;
    /// True when prepareDomain gives every domain module its weights from elsewhere (an attention run: the
    /// GW run's), so that the Engine does not announce the values it drew for them meanwhile.
    virtual bool domainWeightsFromElsewhere() const { return false; }
    /// After domain `d` has its weights: its training mode, its device, its latent cache.
    virtual void prepareDomain(EngineAccess& e, EngineAccess::Domain& d) = 0;
    /// After every domain: builds what trains and returns the parameters that AdamW trains.
    virtual std::vector<torch::Tensor> build(EngineAccess& e) = 0;
    /// After the optimiser exists (the thread count for the steps, ...). Default: nothing.
    virtual void afterBuild(EngineAccess& e) {}

    /// One training step on this rank's batches (EngineAccess::drawIndices): forward, loss and the
    /// gradient added into every trained parameter's .grad (the Engine zeroed them). The loss carries no
    /// graph afterwards. \throws DomainModuleError from a module's own code (the Engine adds the step).
    virtual StepLosses step(EngineAccess& e) = 0;
    /// Said once, after the first step (the step's path, coefficients that select nothing).
    virtual void firstStepNotes(EngineAccess& e, const StepLosses& first) {}

    /// The trained tensors as a checkpoint keeps them (a GW: shimmer's names; a lone domain module:
    /// under gw_mod.domain_mods.NAME.*, where Engine::prepare(from) reads a domain's weights).
    virtual OrderedMap<torch::Tensor> state() const = 0;
    /// \throws std::invalid_argument naming missing, extra or mis-shaped keys (the Engine adds the file).
    virtual void loadState(const OrderedMap<torch::Tensor>& state, const std::string& path) = 0;

    /// Before an evaluation's first batch (the RNG is saved and restored around it by the Engine).
    virtual void beginEvaluation(EngineAccess& e) {}
    /// The metrics of one evaluation batch (samples `idx` of `split`, every domain paired): `add(name,
    /// value)` for each, the Engine weighting by the batch size; "loss" among them. With `dataSpace`,
    /// the data-space metrics too (Engine::evaluate).
    virtual void evaluateBatch(EngineAccess& e, const std::string& split, const std::vector<int64_t>& idx, bool dataSpace,
                               const std::function<void(const std::string&, const torch::Tensor&)>& add) = 0;
};

}  // namespace gw

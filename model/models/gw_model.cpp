// SPDX-License-Identifier: GPL-3.0-or-later
/// \file gw_model.cpp
/// Model kind `gw` (the default): a Global Workspace over the experiment's domains (shimmer
/// GlobalWorkspace2Domains / GlobalWorkspaceFusion; docs/gw-semantics.md). Domain modules are
/// pre-trained when their weights are missing, frozen ones have their latents cached, the GW (its
/// flavour, selection and losses: model/gw/) is what AdamW trains, and a checkpoint holds its state dict
/// under shimmer's names.
#include <algorithm>

#include "model/core/registry.h"
#include "model/run/interop.h"
#include "model/run/trainable_model.h"

namespace gw {
namespace {

class GWModel : public TrainableModel {
public:
    GlobalWorkspace* workspace() override { return gw_.get(); }

    // The GW's settings against the latent sizes, before any pre-training (a selection that needs
    // equal sizes fails here, not minutes later).
    void check(EngineAccess& e) override {
        OrderedMap<int64_t> dims;
        for (auto& d : e.domains()) dims.set(d->cfg.name, d->module->latentDim());
        try {
            GlobalWorkspace::checkSettings(gwSettingsOf(e.cfg()), dims);
        } catch (const std::invalid_argument& x) {
            throw ConfigError(e.cfg().sourcePath + ": " + x.what());
        }
    }

    bool pretrainsMissingWeights() const override { return true; }

    void prepareDomain(EngineAccess& e, EngineAccess::Domain& d) override {
        if (d.cfg.frozen) d.module->freeze();
        else d.module->unfreeze();
        d.module->to(e.device());
        e.cacheLatents(d);
    }

    std::vector<torch::Tensor> build(EngineAccess& e) override {
        const GWSettings s = gwSettingsOf(e.cfg());
        OrderedMap<std::shared_ptr<DomainModule>> mods;
        for (auto& d : e.domains()) mods.set(d->cfg.name, d->module);
        torch::manual_seed(e.cfg().seed);
        gw_ = std::make_shared<GlobalWorkspace>(mods, s);
        gw_->to(e.device());
        for (auto& d : e.domains())  // `to` keeps modes, but be explicit: frozen modules evaluate
            if (d->module->isFrozen()) d->module->eval();
        return gw_->trainableParameters();
    }

    void afterBuild(EngineAccess& e) override {
        const auto& cfg = e.cfg();
        if (cfg.threads > 0 || !e.device().is_cpu()) return;
        // Data loading, pre-training and latent caching ran on every core; the GW steps may run
        // faster on one (autoGwThreads). A trainable convolution keeps every core.
        int64_t widest = 0;
        bool convolution = false;
        for (const auto& p : gw_->trainableParameters()) {
            if (p.dim() == 2) widest = std::max(widest, p.numel());
            if (p.dim() > 2) convolution = true;
        }
        // The paired group holds every domain, and the hand-written step takes groups of two at most.
        const bool handwritten = e.domains().size() <= 2 && gw_->handWrittenUnsupported().empty();
        const int t = convolution ? configureThreads(0) : configureThreads(autoGwThreads(cfg.batchSize, widest, handwritten));
        e.log("GW steps on " + std::to_string(t) + (t == 1 ? " thread" : " threads") +
              " (threads: 0 chooses by size; set threads to override)");
    }

    StepLosses step(EngineAccess& e) override {
        std::vector<GroupBatch> batch;
        batch.reserve(e.groups().size());
        for (auto& g : e.groups()) batch.push_back(e.makeBatch(g.domains, e.cfg().trainSplit, e.drawIndices(g), true));
        return gw_->trainingStep(batch);
    }

    void firstStepNotes(EngineAccess& e, const StepLosses& r) override {
        e.log("GW step: " + gw_->lastStepPath());
        for (const auto& [name, c] : e.cfg().loss.coefficients)
            if (c > 0 && !r.out.metrics.contains(name))
                e.log("warning: loss.coefficients." + name + " names no metric this experiment computes; it adds nothing to the loss");
        for (const auto& f : r.skipped) e.log("note: no group of this batch has a term for '" + f + "' (skipped, as every step will be)");
    }

    OrderedMap<torch::Tensor> state() const override { return gw_->stateDict(); }
    void loadState(const OrderedMap<torch::Tensor>& state, const std::string&) override { gw_->loadStateDict(state); }

    void evaluateBatch(EngineAccess& e, const std::string& split, const std::vector<int64_t>& idx, bool dataSpace,
                       const std::function<void(const std::string&, const torch::Tensor&)>& add) override {
        std::vector<std::string> names;
        for (auto& d : e.domains()) names.push_back(d->cfg.name);
        std::vector<GroupBatch> groups;
        for (const auto& name : names) groups.push_back(e.makeBatch({name}, split, idx, false));
        if (names.size() >= 2) groups.push_back(e.makeBatch(names, split, idx, false));
        StepLosses r = gw_->step(groups);
        add(metrics::kLoss, r.out.loss);
        for (const auto& [k, v] : r.out.metrics) add(k, v);
        if (!dataSpace || names.size() < 2) return;
        // Translations decoded to data space: a's state (the fusion activation of its GW encoding) decoded for b, then
        // b's module compares the prediction with b's actual input.
        auto& gw = gw_->gwMod();
        const EvalModeScope evalMode(e.domains());
        TensorMap inputs, latents;
        for (auto& d : e.domains()) {
            inputs.set(d->cfg.name, d->module->prepare(e.rawRows(*d, split, idx)).to(e.device()));
            latents.set(d->cfg.name, d->module->encode(inputs.at(d->cfg.name)));
        }
        for (auto& a : e.domains()) {
            const auto state = workspaceState(gw, a->cfg.name, latents.at(a->cfg.name));
            for (auto& b : e.domains()) {
                if (a.get() == b.get()) continue;
                const auto pred = gw.decode(state, {b->cfg.name}).at(b->cfg.name);
                for (const auto& [k, v] : b->module->dataMetrics(pred, inputs.at(b->cfg.name)))
                    add(metrics::extraOf(metrics::translation(a->cfg.name, b->cfg.name), k), v);
            }
        }
    }

private:
    std::shared_ptr<GlobalWorkspace> gw_;
};

}  // namespace

void registerGWModel(ModelRegistry& r) {
    ModelKindImpl impl;
    impl.sections = {"workspace", "loss"};
    impl.explorerView = "translations";
    impl.checkExperiment = [](const ExperimentConfig&) {};
    impl.make = [](const ExperimentConfig&) { return std::make_shared<GWModel>(); };
    impl.exportWeights = exportShimmerLayout;
    r.add({"gw", "a Global Workspace over the domains (docs/gw-semantics.md)", {}}, std::move(impl));
}

}  // namespace gw

// SPDX-License-Identifier: GPL-3.0-or-later
/// \file glom_model.cpp
/// Model kind `glom`: the experiment's one domain, of module `glom` (model/glom/), is what trains, on its
/// denoising loss (glom-pytorch's README; docs/glom.md). Its weights file is read when it exists, else
/// its initial values are drawn with the experiment's seed (no pre-training); no freezing, no latent
/// cache, no GW. A checkpoint keeps the module's tensors under gw_mod.domain_mods.NAME.*, where a GW run
/// keeps a domain module's, so that Engine::prepare(from) and `gw export` find them.
#include "model/models/glom_model.h"

#include "model/core/registry.h"
#include "model/cpu_step/glom_step.h"
#include "model/run/interop.h"
#include "model/run/trainable_model.h"

namespace gw {

namespace {

class GlomModel : public TrainableModel {
public:
    bool pretrainsMissingWeights() const override { return false; }

    void prepareDomain(EngineAccess& e, EngineAccess::Domain& d) override {
        d.module->unfreeze();  // the module is what trains
        d.module->to(e.device());
    }

    std::vector<torch::Tensor> build(EngineAccess& e) override {
        domain_ = e.domains().front().get();
        return domain_->module->parameters();
    }

    StepLosses step(EngineAccess& e) override {
        auto& d = *domain_;
        const torch::Tensor x = d.module->prepare(e.rawRows(d, e.cfg().trainSplit, e.drawIndices(e.groups().front()))).to(e.device());
        d.module->train();
        // The hand-written CPU step where it takes the module and batch, else autograd (the reason logged once).
        auto* g = dynamic_cast<GlomDomain*>(d.module.get());
        if (!g) throw std::logic_error("model: glom: the domain's module is not a GLOM");
        StepLosses r;
        r.out = step_.run(*g, x);
        if (step_.lastPath() != loggedPath_) {
            e.log("  glom step: " + step_.lastPath());
            loggedPath_ = step_.lastPath();
        }
        return r;
    }

    OrderedMap<torch::Tensor> state() const override {
        OrderedMap<torch::Tensor> s;
        for (const auto& [k, t] : moduleState(*domain_->module)) s.set(prefix() + k, t);
        return s;
    }
    void loadState(const OrderedMap<torch::Tensor>& state, const std::string& path) override {
        OrderedMap<torch::Tensor> sub;
        for (const auto& [k, t] : state)
            if (k.rfind(prefix(), 0) == 0) sub.set(k.substr(prefix().size()), t);
        loadModuleState(*domain_->module, sub, path, prefix());
    }

    // The same noise at every evaluation: the generator is seeded alike each time (and restored after).
    void beginEvaluation(EngineAccess& e) override { torch::manual_seed(e.cfg().seed + 1000003); }

    void evaluateBatch(EngineAccess& e, const std::string& split, const std::vector<int64_t>& idx, bool,
                       const std::function<void(const std::string&, const torch::Tensor&)>& add) override {
        auto& d = *domain_;
        const EvalModeScope evalMode(e.domains());
        auto out = d.module->computeDomainLoss(d.module->prepare(e.rawRows(d, split, idx)).to(e.device()));
        add(metrics::kLoss, out->loss);
        for (const auto& [k, v] : out->metrics) add(k, v);
    }

private:
    std::string prefix() const { return "gw_mod.domain_mods." + domain_->cfg.name + "."; }
    EngineAccess::Domain* domain_ = nullptr;
    cpu::GlomDomainStep step_;
    std::string loggedPath_;
};

void checkGlomExperiment(const ExperimentConfig& c) {
    if (c.domains.size() != 1 || c.domains.front().module != "glom")
        throw std::invalid_argument("domains: a model: glom experiment trains one domain of module glom; found " +
                                    std::to_string(c.domains.size()) + (c.domains.size() == 1 ? " domain" : " domains") +
                                    (c.domains.empty() ? std::string()
                                                       : " (" + c.domains.front().name + ": module " + c.domains.front().module + ")"));
}

/// glom-pytorch's layout, not shimmer's (exportGlomWeights); exportForPython writes the experiment beside it.
void exportGlom(const Checkpoint&, const std::string& checkpoint, const std::string& out, ExportResult& r) {
    const GlomExportResult g = exportGlomWeights(checkpoint, out);
    r.tensors = g.tensors;
    r.moduleFiles = {g.toPixels};
    r.layout = "domain " + g.domain + "'s GLOM as glom-pytorch's state_dict";
    r.holds = "glom-pytorch's " + g.constructor + ".state_dict() (docs/glom.md)";
    for (const auto& line : glomExportNotes(g)) r.notes.push_back(line);
}

}  // namespace

GlomDomain& glomOf(Engine& engine) {
    if (engine.config().model != "glom")  // the kind's own accessor
        throw std::logic_error("not a model: glom experiment (model: " + engine.config().model + ")");
    engine.prepare();
    EngineAccess e(engine);
    auto* g = dynamic_cast<GlomDomain*>(e.domains().front()->module.get());
    if (!g) throw std::logic_error("model: glom: the domain's module is not a GLOM");
    return *g;
}

GlomView exploreGlom(Engine& engine, const std::string& which, int64_t index, int64_t iterations, uint64_t seed) {
    GlomDomain& g = glomOf(engine);
    EngineAccess e(engine);
    const std::string split = e.splitName(which);
    auto& d = *e.domains().front();
    if (!engine.hasSplit(which))
        throw data::DataError("split '" + split + "' is missing (expected " + d.cfg.dataset + " with {split} = " + split + ")");
    const int64_t n = d.arrays.at(split)->rows();
    if (index < 0 || index >= n)
        throw data::DataError("split '" + split + "': sample " + std::to_string(index) + " is out of range (it has " +
                              std::to_string(n) + " samples)");
    const torch::Tensor x = g.prepare(e.rawRows(d, split, {index})).to(e.device());
    GlomView v = glomView(g, x[0], iterations, seed);
    v.index = index;
    v.split = split;
    return v;
}

void registerGlomModel(ModelRegistry& r) {
    ModelKindImpl impl;
    impl.sections = {};
    impl.explorerView = "islands";
    impl.checkExperiment = checkGlomExperiment;
    impl.make = [](const ExperimentConfig&) { return std::make_shared<GlomModel>(); };
    impl.exportWeights = exportGlom;
    r.add({"glom", "one glom domain alone, denoising (docs/glom.md)", {}}, std::move(impl));
}

}  // namespace gw

// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/gw/global_workspace.h"

#include "model/core/metric_names.h"
#include "model/core/registry.h"

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace gw {

GWSettings gwSettingsOf(const ExperimentConfig& cfg) {
    GWSettings s;
    s.workspaceDim = cfg.workspaceDim;
    s.encoder = {cfg.encoderHidden, cfg.encoderLayers};
    s.decoder = {cfg.decoderHidden, cfg.decoderLayers};
    s.linear = cfg.linearGW;
    s.linearBias = cfg.linearGWBias;
    s.activation = fusionActivationOf(cfg.fusionActivation);
    s.flavour = cfg.flavour;
    s.flavourParams = cfg.flavourParams;
    s.selection = cfg.selection;
    s.selectionParams = cfg.selectionParams;
    s.loss = cfg.loss;
    return s;
}

namespace {
/// The flavour's parameters: as the parser checked them for it, or checked now.
Params flavourParams(const GWSettings& s, const KindInfo& info) {
    if (s.flavourParams.checkedFor() == "flavour " + info.name) return s.flavourParams;
    return checkParams(info, "flavour", s.flavourParams.values(), "workspace.flavour_params");
}

std::shared_ptr<Selection> selectionFor(const GWSettings& s, const std::vector<std::string>& names,
                                        const std::vector<int64_t>& dims) {
    const auto& flavour = flavourRegistry().at(s.flavour, "workspace.flavour");
    return makeSelection(s.selection.empty() ? flavour.impl.defaultSelection : s.selection, names, dims,
                         s.workspaceDim, s.selectionParams);
}
}  // namespace

void GlobalWorkspace::checkSettings(const GWSettings& s, const OrderedMap<int64_t>& latentDims) {
    if (s.workspaceDim <= 0)
        throw std::invalid_argument("workspace.dim: expected a positive size, found " + std::to_string(s.workspaceDim));
    std::vector<std::string> names;
    std::vector<int64_t> dims;
    for (const auto& [d, n] : latentDims) {
        names.push_back(d);
        dims.push_back(n);
    }
    flavourParams(s, flavourRegistry().at(s.flavour, "workspace.flavour").info);
    selectionFor(s, names, dims);
}

GlobalWorkspace::GlobalWorkspace(const OrderedMap<std::shared_ptr<DomainModule>>& domains, const GWSettings& s) {
    gw_ = register_module("gw_mod", std::make_shared<GWModule>(domains, s.workspaceDim,
                                                                  GWShape{s.encoder, s.decoder, s.linear, s.linearBias, s.activation}));
    const auto& flavour = flavourRegistry().at(s.flavour, "workspace.flavour");
    loss_ = register_module("loss_mod", flavour.impl.make(FlavourContext{s.loss, flavourParams(s, flavour.info)}));
    loss_->attach(*gw_);
    if (gw_->hasFusionHook() && s.activation != FusionActivation::Tanh)
        throw std::invalid_argument(std::string("workspace.fusion_activation_fn: the ") + s.flavour +
                                    " flavour fuses as its shimmer version did; expected tanh (the default), found '" +
                                    fusionActivationName(s.activation) + "'");
    loss_->eval();  // trainingStep switches it to training mode for its step
    std::vector<int64_t> dims;
    for (const auto& [d, m] : domains) dims.push_back(m->latentDim());
    selection_ = selectionFor(s, gw_->domainNames(), dims);
    register_module("selection_mod", selection_);  // a parameter-free selection adds no tensor
    if (flavour.impl.handWritten) hand_ = flavour.impl.handWritten();
    const char* env = std::getenv("GW_CPU_STEP");
    cpuOn_ = !(env && std::strcmp(env, "0") == 0);
}

std::string GlobalWorkspace::handWrittenUnsupported() const {
    if (!cpuOn_) return "switched off";
    if (!hand_) return "flavour '" + loss_->flavour() + "' has no hand-written step";
    if (loss_->contrastive().kind() != "clip") return "contrastive '" + loss_->contrastive().kind() + "' has no hand-written form";
    return hand_->unsupportedModel(*gw_, *loss_, *selection_);
}

std::string GlobalWorkspace::handWrittenUnsupported(const std::vector<GroupBatch>& groups) const {
    if (!cpuOn_) return "switched off";
    if (!hand_) return "flavour '" + loss_->flavour() + "' has no hand-written step";
    if (loss_->contrastive().kind() != "clip") return "contrastive '" + loss_->contrastive().kind() + "' has no hand-written form";
    return hand_->unsupported(*gw_, *loss_, *selection_, groups);
}

StepLosses GlobalWorkspace::trainingStep(const std::vector<GroupBatch>& groups) {
    std::string why = handWrittenUnsupported(groups);
    if (why.empty()) {
        lastPath_ = "hand-written";
        return hand_->run(*gw_, *loss_, *selection_, groups);
    }
    lastPath_ = "autograd (" + why + ")";
    struct TrainingMode {  // the loss module trains for this step only
        GWLosses& losses;
        explicit TrainingMode(GWLosses& l) : losses(l) { losses.train(true); }
        ~TrainingMode() { losses.train(false); }
    } mode(*loss_);
    StepLosses r = step(groups);
    r.out.loss.backward();
    r.out.loss = r.out.loss.detach();
    return r;
}

StepLosses GlobalWorkspace::step(const std::vector<GroupBatch>& groups) {
    StepLosses r = loss_->step(*gw_, *selection_, groups);
    std::vector<torch::Tensor> unimodal;
    for (const auto& g : groups) {
        if (g.domains.size() != 1) continue;
        const auto& d = g.domains[0];
        auto& mod = gw_->domainModule(d);
        if (mod.isFrozen()) continue;
        if (auto l = mod.computeDomainLoss(g.inputs.at(d))) {
            for (auto& [k, v] : l->metrics) r.out.metrics.set(metrics::domainLoss(d, k), v);
            unimodal.push_back(l->loss);
        }
    }
    if (!unimodal.empty()) {
        auto sum = torch::stack(unimodal).sum();
        r.out.metrics.set(std::string(metrics::kDomainLoss) + "/" + metrics::kLoss, sum);
        r.out.loss = r.out.loss + sum;
    }
    return r;
}

std::vector<torch::Tensor> GlobalWorkspace::trainableParameters() const {
    std::vector<torch::Tensor> out;
    for (const auto& p : parameters())
        if (p.requires_grad()) out.push_back(p);
    return out;
}

OrderedMap<torch::Tensor> moduleState(const torch::nn::Module& module) {
    OrderedMap<torch::Tensor> s;
    for (const auto& p : module.named_parameters()) s.set(p.key(), p.value());
    for (const auto& b : module.named_buffers()) s.set(b.key(), b.value());
    return s;
}

void loadModuleState(torch::nn::Module& module, const OrderedMap<torch::Tensor>& state, const std::string& what,
                     const std::string& keyPrefix) {
    auto own = moduleState(module);
    std::ostringstream err;
    for (const auto& [k, t] : own) {
        const auto* src = state.find(k);
        if (!src) err << "\n  missing key " << keyPrefix << k << " (expected shape " << t.sizes() << ")";
        else if (src->sizes() != t.sizes())
            err << "\n  key " << keyPrefix << k << ": expected shape " << t.sizes() << ", found " << src->sizes();
        else if (src->is_floating_point() != t.is_floating_point())
            err << "\n  key " << keyPrefix << k << ": expected " << t.scalar_type() << ", found " << src->scalar_type();
    }
    for (const auto& [k, t] : state)
        if (!own.contains(k)) err << "\n  unexpected key " << keyPrefix << k << " (shape " << t.sizes() << ")";
    if (!err.str().empty()) throw std::invalid_argument(what + ": the weights do not fit the model:" + err.str());
    for (const auto& [k, t] : own) {
        const auto& src = state.at(k);
        if (!src.is_floating_point() || src.numel() == 0) continue;
        const int64_t bad = src.numel() - torch::isfinite(src).sum().item<int64_t>();
        if (bad > 0)
            throw std::invalid_argument(what + ": tensor " + keyPrefix + k + " holds " + std::to_string(bad) + " NaN or infinite " +
                                        (bad == 1 ? "value" : "values") + " of " + std::to_string(src.numel()) +
                                        ": the run that wrote it diverged, or the file was damaged; nothing was loaded");
    }
    torch::NoGradGuard noGrad;
    for (auto& [k, t] : own) t.copy_(state.at(k));
}

OrderedMap<torch::Tensor> GlobalWorkspace::stateDict() const { return moduleState(*this); }

std::string GlobalWorkspace::stateFlavour(const OrderedMap<torch::Tensor>& state) {
    auto endsWith = [](const std::string& s, const std::string& tail) {
        return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
    };
    for (const auto& [k, t] : state) {
        if (k.rfind("gw_mod.gw_encoders.", 0) == 0 && endsWith(k, ".uncertainty_level")) return "variational";
        if (k.rfind("gw_mod.precisions.", 0) == 0) return "bayesian";
    }
    return "";
}

void GlobalWorkspace::loadStateDict(const OrderedMap<torch::Tensor>& state) {
    const std::string theirs = stateFlavour(state), ours = stateFlavour(stateDict());
    if (theirs != ours) {
        auto describe = [](const std::string& f) {
            return f.empty() ? std::string("a deterministic GW (flavour two_domains or fusion)") : "a " + f + " GW (flavour " + f + ")";
        };
        throw std::invalid_argument("GW: the weights hold " + describe(theirs) + ", but this experiment's flavour is '" +
                                    loss_->flavour() + "' (" + describe(ours) + "); set workspace.flavour" +
                                    (theirs.empty() ? " to two_domains or fusion" : ": " + theirs) + " to use them");
    }
    loadModuleState(*this, state, "GW");
}

}  // namespace gw

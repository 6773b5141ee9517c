// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/global_workspace.h"

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace gw {

GlobalWorkspace::GlobalWorkspace(const OrderedMap<std::shared_ptr<DomainModule>>& domains, const GWSettings& s) {
    gw_ = register_module("gw_mod", std::make_shared<GWModule>(domains, s.workspaceDim, s.encoder, s.decoder));
    loss_ = register_module("loss_mod", std::make_shared<GWLosses>(s.coefs, s.logitScale, s.learnLogitScale));
    selection_ = makeSelection(s.selection, s.selectionTemperature);
    fused_ = std::make_unique<FusedGWStep>();
    const char* env = std::getenv("GW_FUSED_STEP");
    fusedOn_ = !(env && std::strcmp(env, "0") == 0);
}

StepLosses GlobalWorkspace::trainingStep(const std::vector<GroupBatch>& groups) {
    std::string why = fusedOn_ ? FusedGWStep::unsupported(*gw_, *selection_, groups) : "switched off";
    if (why.empty()) {
        lastPath_ = "fused";
        return fused_->run(*gw_, *loss_, groups);
    }
    lastPath_ = "autograd (" + why + ")";
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
            for (auto& [k, v] : l->metrics) r.out.metrics.set("domain_loss/" + d + "/" + k, v);
            unimodal.push_back(l->loss);
        }
    }
    if (!unimodal.empty()) {
        auto sum = torch::stack(unimodal).sum();
        r.out.metrics.set("domain_loss/loss", sum);
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
    torch::NoGradGuard noGrad;
    for (auto& [k, t] : own) t.copy_(state.at(k));
}

OrderedMap<torch::Tensor> GlobalWorkspace::stateDict() const { return moduleState(*this); }

void GlobalWorkspace::loadStateDict(const OrderedMap<torch::Tensor>& state) { loadModuleState(*this, state, "GW"); }

}  // namespace gw

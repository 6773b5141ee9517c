// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/gw/gw_module.h"

#include <stdexcept>

namespace gw {

GWModule::GWModule(const OrderedMap<std::shared_ptr<DomainModule>>& domains, int64_t workspaceDim, const GWShape& shape)
    : workspaceDim_(workspaceDim), shape_(shape), domainMods_(domains) {
    if (domains.empty()) throw std::invalid_argument("GW: at least one domain is needed, found none");
    if (workspaceDim <= 0) throw std::invalid_argument("GW: workspace dimension must be positive, found " +
                                                       std::to_string(workspaceDim));
    using Entries = std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>>;
    Entries mods, encs, decs;
    for (const auto& [name, mod] : domains) {
        if (encoders_.contains(name)) throw std::invalid_argument("GW: domain '" + name + "' is given twice");
        names_.push_back(name);
        auto e = shape.linear ? makeGWLinear(mod->latentDim(), workspaceDim, shape.linearBias)
                              : makeGWMlp(mod->latentDim(), shape.encoder.hidden, workspaceDim, shape.encoder.nLayers);
        auto d = shape.linear ? makeGWLinear(workspaceDim, mod->latentDim(), shape.linearBias)
                              : makeGWMlp(workspaceDim, shape.decoder.hidden, mod->latentDim(), shape.decoder.nLayers);
        mods.emplace_back(name, mod);
        // A linear encoder is a plain nn.Linear in shimmer-ssd: its Linear is registered, not the Sequential
        // around it, so that its keys carry no `.0.` (the Sequential shares the Linear's tensors).
        encs.emplace_back(name, shape.linear ? e->ptr(0) : std::shared_ptr<torch::nn::Module>(e.ptr()));
        decs.emplace_back(name, shape.linear ? d->ptr(0) : std::shared_ptr<torch::nn::Module>(d.ptr()));
        encoders_.set(name, e);
        decoders_.set(name, d);
    }
    register_module("domain_mods", torch::nn::ModuleDict(mods));
    register_module("gw_encoders", torch::nn::ModuleDict(encs));
    register_module("gw_decoders", torch::nn::ModuleDict(decs));
}

DomainModule& GWModule::domainModule(const std::string& d) const { return *domainMods_.at(d); }
torch::nn::Sequential& GWModule::encoder(const std::string& d) { return encoders_.at(d); }
torch::nn::Sequential& GWModule::decoder(const std::string& d) { return decoders_.at(d); }

TensorMap GWModule::encode(const TensorMap& latents) {
    TensorMap out;
    for (const auto& [d, u] : latents) out.set(d, encoders_.at(d)->forward(u));
    return out;
}

torch::Tensor GWModule::activate(const torch::Tensor& x) const {
    switch (shape_.activation) {
        case FusionActivation::Tanh: return torch::tanh(x);
        case FusionActivation::Identity: return x;
        case FusionActivation::Sigmoid: return torch::sigmoid(x);
        case FusionActivation::Relu: return torch::relu(x);
    }
    return torch::tanh(x);
}

torch::Tensor GWModule::fuse(const TensorMap& pre, const TensorMap& scores) {
    std::vector<torch::Tensor> terms;
    for (const auto& [d, s] : scores) terms.push_back(s.unsqueeze(1) * pre.at(d));
    return activate(torch::stack(terms).sum(0));
}

torch::Tensor GWModule::selectAndFuse(const TensorMap& latents, const TensorMap& pre, Selection& selection) {
    if (fusionHook_) return fusionHook_(latents, pre, selection);  // a flavour's own fusion
    if (pre.size() == 1 && selection.constantForOneSource())
        return activate(pre.begin()->second);  // the scores would be all ones
    return fuse(pre, selection.scores(latents, pre));
}

torch::Tensor GWModule::encodeAndFuse(const TensorMap& latents, Selection& selection) {
    return selectAndFuse(latents, encode(latents), selection);
}

TensorMap GWModule::decode(const torch::Tensor& state, const std::vector<std::string>& domains) {
    TensorMap out;
    const auto& which = domains.empty() ? names_ : domains;
    for (const auto& d : which) out.set(d, decoders_.at(d)->forward(state));
    return out;
}

OrderedMap<torch::Tensor> GWModule::addDomainParameters(const std::string& name,
                                                        const std::function<torch::Tensor(const std::string&)>& init) {
    for (const auto& child : named_children())
        if (child.key() == name) throw std::invalid_argument("GW: the GW module already has a '" + name + "'");
    torch::nn::ParameterDict dict;
    OrderedMap<torch::Tensor> out;
    for (const auto& d : names_) out.set(d, dict->insert(d, init(d).requires_grad_(true)));
    register_module(name, dict);
    return out;
}

void GWModule::wrapEncoder(const std::string& d, std::shared_ptr<torch::nn::Module> wrapper) {
    encoders_.at(d);  // throws for an unknown domain
    for (const auto& child : named_children())
        if (child.key() == "gw_encoders") child.value()->replace_module(d, std::move(wrapper));
}

}  // namespace gw

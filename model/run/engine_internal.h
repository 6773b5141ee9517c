// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file engine_internal.h
/// The Engine's private structs, shared by the units that define its member functions: engine.cpp
/// (preparation, data, latent caches, batches), engine_pretrain.cpp, engine_train.cpp and
/// engine_eval.cpp. Only those include it.
#include <memory>
#include <string>
#include <vector>

#include "data/h5_array.h"
#include "data/sampler.h"
#include "model/run/engine.h"
#include "model/gw/gw_module.h"

namespace gw {

/// One domain: its module, its data per split, and its frozen-latent caches.
struct Engine::DomainState {
    DomainConfig cfg;
    std::string file;  // resolved HDF5 file
    std::shared_ptr<DomainModule> module;
    OrderedMap<std::shared_ptr<data::H5Array>> arrays;  // split -> array
    OrderedMap<torch::Tensor> raw;                      // split -> all rows (when small enough)
    OrderedMap<std::vector<torch::Tensor>> aux;         // split -> the module's auxiliary datasets (auxiliary_data.h)
    OrderedMap<torch::Tensor> latents;                  // split -> (N, L) on device (frozen)
    OrderedMap<torch::Tensor> inputs;                   // split -> prepared inputs on device (frozen, loss needs them)
};

struct Engine::Group {
    std::vector<std::string> domains;
    std::unique_ptr<data::GroupSampler> sampler;
};

/// The workspace state of one domain's latent (B, L) -> (B, W): the fusion activation (tanh by default) of
/// its GW encoding, as the explorer and the data-space evaluation read it (docs/gw-semantics.md 1.3).
inline torch::Tensor workspaceState(GWModule& gw, const std::string& domain, const torch::Tensor& latent) {
    TensorMap one;
    one.set(domain, latent);
    return gw.activate(gw.encode(one).at(domain));
}

/// Puts every domain module in eval mode (batch norm on its running statistics) for a scope, and gives
/// each its previous mode back at the end. Modules trained end to end are otherwise in training mode.
class EvalModeScope {
public:
    template <class Domains>
    explicit EvalModeScope(Domains& domains) {
        for (auto& d : domains) {
            modules_.push_back(d->module.get());
            training_.push_back(d->module->is_training());
            d->module->eval();
        }
    }
    ~EvalModeScope() {
        for (size_t i = 0; i < modules_.size(); ++i) modules_[i]->train(training_[i]);
    }
    EvalModeScope(const EvalModeScope&) = delete;
    EvalModeScope& operator=(const EvalModeScope&) = delete;

private:
    std::vector<DomainModule*> modules_;
    std::vector<bool> training_;
};

}  // namespace gw

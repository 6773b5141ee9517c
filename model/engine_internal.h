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
#include "model/engine.h"

namespace gw {

/// One domain: its module, its data per split, and its frozen-latent caches.
struct Engine::DomainState {
    DomainConfig cfg;
    std::string file;  // resolved HDF5 file
    std::shared_ptr<DomainModule> module;
    OrderedMap<std::shared_ptr<data::H5Array>> arrays;  // split -> array
    OrderedMap<torch::Tensor> raw;                      // split -> all rows (when small enough)
    OrderedMap<torch::Tensor> latents;                  // split -> (N, L) on device (frozen)
    OrderedMap<torch::Tensor> inputs;                   // split -> prepared inputs on device (frozen, loss needs them)
};

struct Engine::Group {
    std::vector<std::string> domains;
    std::unique_ptr<data::GroupSampler> sampler;
};

}  // namespace gw

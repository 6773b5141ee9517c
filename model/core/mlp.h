// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file mlp.h
/// The MLP stack shared by the GW encoders and decoders (model/gw/gw_module.h) and the MLP domain
/// modules (model/domains/domain_module.cpp): shimmer `gw_module.py` GWEncoder / GWDecoder.
#include <cstdint>
#include <string>
#include <vector>

#include "model/core/torch_fwd.h"

namespace gw {

/// The activation applied to the weighted sum of the pre-fusion encodings (shimmer GWModule
/// `fusion_activation_fn`): tanh (shimmer's default), identity, sigmoid, relu.
enum class FusionActivation { Tanh, Identity, Sigmoid, Relu };
/// "tanh", "identity", "sigmoid", "relu".
const char* fusionActivationName(FusionActivation a);
/// The names above, in that order (the experiment key's allowed values).
const std::vector<std::string>& fusionActivationNames();
/// \throws std::invalid_argument "expected tanh, identity, sigmoid or relu, found 'x'".
FusionActivation fusionActivationOf(const std::string& name);

/// One Linear(in, out), with or without bias, as a Sequential of one child (a linear GW encoder or
/// decoder). Its Linear is what a GWModule registers, so its keys are `weight` and `bias`.
/// \throws std::invalid_argument when a size is not positive.
torch::nn::Sequential makeGWLinear(int64_t in, int64_t out, bool bias);

/// shimmer GWEncoder / GWDecoder: Linear(in, hidden), ReLU, [Linear(hidden, hidden), ReLU] × nLayers,
/// Linear(hidden, out). nLayers counts the *extra* hidden layers, so there are nLayers + 2 Linears,
/// at Sequential indices 0, 2, ..., 2(nLayers + 1) (state-dict keys `{i}.weight`, `{i}.bias`). No
/// output activation: the tanh is applied at fusion. Input (B, in) -> output (B, out).
/// \throws std::invalid_argument when a size is not positive or nLayers < 0.
torch::nn::Sequential makeGWMlp(int64_t in, int64_t hidden, int64_t out, int nLayers);

}  // namespace gw

// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file mlp.h
/// The MLP stack shared by the GW encoders and decoders (model/gw/gw_module.h) and the MLP domain
/// modules (model/domains/domain_module.cpp): shimmer `gw_module.py` GWEncoder / GWDecoder.
#include <cstdint>

#include "model/core/torch_fwd.h"

namespace gw {

/// shimmer GWEncoder / GWDecoder: Linear(in, hidden), ReLU, [Linear(hidden, hidden), ReLU] × nLayers,
/// Linear(hidden, out). nLayers counts the *extra* hidden layers, so there are nLayers + 2 Linears,
/// at Sequential indices 0, 2, ..., 2(nLayers + 1) (state-dict keys `{i}.weight`, `{i}.bias`). No
/// output activation: the tanh is applied at fusion. Input (B, in) -> output (B, out).
/// \throws std::invalid_argument when a size is not positive or nLayers < 0.
torch::nn::Sequential makeGWMlp(int64_t in, int64_t hidden, int64_t out, int nLayers);

}  // namespace gw

// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file torch_fwd.h
/// The one LibTorch include of the engine's headers. It is precompiled (GW_USE_PCH), so keep every
/// other header of model/ and data/ including this rather than <torch/torch.h> piecemeal.
#include <torch/torch.h>

#include "model/core/ordered_map.h"

namespace gw {
/// Domain name -> tensor, in insertion order (shimmer's LatentsDomainGroupT).
using TensorMap = OrderedMap<torch::Tensor>;

/// shimmer's LossOutput: a scalar loss and named scalar metrics ("loss" is not a metric name).
struct LossOutput {
    torch::Tensor loss;  ///< () float, differentiable
    TensorMap metrics;   ///< name -> () tensor, detached or not
};
}  // namespace gw

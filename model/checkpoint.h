// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file checkpoint.h
/// GW Studio checkpoints (format: docs/checkpoint-format.md). A LibTorch archive (zip) holding the
/// format version, the experiment YAML, the step, the model's tensors under shimmer's names, the
/// AdamW state, the RNG states and the samplers' states: all a resumed run needs to continue exactly.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/torch_fwd.h"

namespace gw {

/// The format this build writes. Older versions load through migrations (none yet: version 1 is the first).
constexpr int64_t kCheckpointFormatVersion = 1;

/// A checkpoint that cannot be read: names the file and what was expected and found.
class CheckpointError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Checkpoint {
    std::string kind = "gw";    ///< "gw" (a training run) or "domain_module" (pre-trained weights)
    int64_t formatVersion = kCheckpointFormatVersion;
    std::string configYaml;     ///< the resolved experiment (gw); the domain's settings (domain_module)
    int64_t step = 0;           ///< optimiser steps done
    OrderedMap<torch::Tensor> state;  ///< model tensors by name (CPU)
    torch::Tensor adamExpAvg, adamExpAvgSq;  ///< flat AdamW moments (numel,), undefined when absent
    int64_t adamStep = 0;
    torch::Tensor cpuRngState;  ///< torch's CPU generator state (uint8)
    std::vector<std::string> samplerStates;  ///< one per training group
    std::string note;           ///< free text (e.g. which domain module a weights file holds)
};

/// Writes atomically: a temporary file in the same folder, flushed to disk, then renamed over `path`.
/// A failure leaves any previous file at `path` intact. \throws CheckpointError naming the file.
void saveCheckpoint(const std::string& path, const Checkpoint& ckpt);

/// Reads a checkpoint. \throws CheckpointError for a missing, truncated, corrupt or foreign file or a
/// format newer than this build, naming the file and the field.
Checkpoint loadCheckpoint(const std::string& path);

}  // namespace gw

// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file torch_file.h
/// Dictionaries of tensors in the file format of Python's `torch.save` (a zip archive holding a
/// protocol-2 pickle, `data.pkl`, and one record per storage, `data/N`), so that weights travel between
/// GW Studio and Python (docs/checkpoint-format.md, "Python state dicts").
///
/// Reading runs no pickled code: a small unpickler of our own understands dictionaries (plain and
/// `collections.OrderedDict`, as `Module.state_dict()` returns), lists, tuples, numbers, strings and
/// tensors (`torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`); any other pickled object is kept
/// as an opaque placeholder and is an error only where a tensor was expected. LibTorch's own
/// `torch::pickle_load` cannot be used: it turns every OrderedDict into None.
#include <string>
#include <vector>

#include "model/io/checkpoint.h"

namespace gw {

/// Where in the file the tensors were found.
struct StateDictFile {
    OrderedMap<torch::Tensor> tensors;  ///< name -> CPU tensor (any shape, the file's dtype)
    std::string foundAt;                ///< "" (the whole file is the dictionary) or "state_dict"
    /// A Lightning checkpoint's top-level "_migrate-ckpt-migrations" (shimmer's SaveMigrations callback):
    /// the names of the checkpoint migrations already applied, oldest first.
    std::vector<std::string> migrations;
    bool migrationsRecorded = false;    ///< the key is there (an empty list still counts)
};

/// Reads a `torch.save`d dictionary of tensors: a state dict (dict or OrderedDict of str -> Tensor),
/// or a dictionary holding one under "state_dict" (a Lightning checkpoint saved whole).
/// \throws CheckpointError naming the file and what was expected and found, for a missing,
/// truncated or corrupt file, a legacy (pre-1.6) or TorchScript/GW Studio archive, a big-endian
/// file, a storage smaller than its tensor, or an entry that is not a tensor.
StateDictFile readStateDict(const std::string& path);

/// Writes `tensors` as a plain dict of str -> Tensor that `torch.load(path)` returns (also with
/// `weights_only=True`), in the given order, atomically (see saveCheckpoint).
/// \throws CheckpointError naming the file.
void writeStateDict(const std::string& path, const OrderedMap<torch::Tensor>& tensors);

}  // namespace gw

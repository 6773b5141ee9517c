// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file interop.h
/// Weights that travel between GW Studio and Python: shimmer's state-dict layout
/// (docs/gw-semantics.md 4.1), `gw export` and `gw import-weights` (docs/checkpoint-format.md).
#include <string>
#include <vector>

#include "model/engine.h"
#include "model/torch_file.h"

namespace gw {

/// Our model tensors (GlobalWorkspace::stateDict names) in the layout of shimmer's
/// GlobalWorkspace2Domains.state_dict(): `gw_mod.*`, then the loss module's twins
/// `loss_mod.gw_mod.*` and `loss_mod.domain_mods.{d}.*` (the same tensors), then the rest
/// (`loss_mod.contrastive_fn.logit_scale`, shape (1,); a learnable selection's `selection_mod.*`),
/// then the selection's twins `loss_mod.selection_mod.*`. The same layout serves
/// GlobalWorkspaceFusion, whose loss module registers the same submodules.
OrderedMap<torch::Tensor> toShimmerLayout(const OrderedMap<torch::Tensor>& state);

/// The reverse: drops each `loss_mod.gw_mod.*`, `loss_mod.domain_mods.*` and `loss_mod.selection_mod.*`
/// twin after checking that it equals its original (twins are optional). Other keys pass unchanged.
/// \throws CheckpointError naming `path` and every twin that is alone or differs (max |difference|).
OrderedMap<torch::Tensor> fromShimmerLayout(const OrderedMap<torch::Tensor>& state, const std::string& path);

struct ExportResult {
    std::string weights, config;  ///< the .pt and the .yaml written
    size_t tensors = 0;           ///< entries in the .pt
    /// Domain modules read from a file of their own (torchscript), each written back with the
    /// checkpoint's (trained) weights as OUT's stem + ".{domain}.pt" (e.g. gw.pt -> gw.image.pt), a
    /// TorchScript file that torch.jit.load reads.
    std::vector<std::string> moduleFiles;
};
/// `gw export`: a GW checkpoint's weights in shimmer's layout as OUT (a dict that torch.load reads)
/// and its experiment beside it as OUT with the extension .yaml. A domain-module weights file
/// exports its module's state dict as it is. \throws CheckpointError naming the file (and the domain
/// whose module cannot be rebuilt from its file).
ExportResult exportForPython(const std::string& checkpoint, const std::string& out);

/// `gw import-weights`: a torch.save'd state dict in shimmer's layout (or a Lightning checkpoint
/// holding one under "state_dict", of any shimmer generation: the key changes of shimmer's checkpoint
/// migrations it does not record as applied are made first, each logged by name; shimmer_migrations.h)
/// loaded into the experiment's GW, returned as a checkpoint at
/// step 0 (fresh optimiser state) that `gw eval` and the GUI open. With `keepDomainModules`, the
/// file's `gw_mod.domain_mods.*` tensors are ignored and the domain modules come from the
/// experiment (its pre-trained weights files); otherwise the file must hold them under our names.
/// \throws CheckpointError naming the file and every missing, extra, mis-shaped or mistyped key;
/// data::DataError and ConfigError as Engine::prepare.
Checkpoint importShimmerWeights(const std::string& stateDict, const ExperimentConfig& cfg, bool keepDomainModules,
                                LogFn log = {});

}  // namespace gw

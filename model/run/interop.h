// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file interop.h
/// Weights that travel between GW Studio and Python: shimmer's state-dict layout
/// (docs/gw-semantics.md 4.1), `gw export` and `gw import-weights` (docs/checkpoint-format.md).
#include <string>
#include <vector>

#include "model/glom/glom.h"
#include "model/run/engine.h"
#include "model/io/torch_file.h"

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
    std::string layout;              ///< what the .pt holds, for messages ("shimmer's state_dict layout")
    std::string holds;               ///< the same as the .yaml's header says it, with where it is documented
    std::vector<std::string> notes;  ///< lines for the user: other files written, how Python loads them
};
/// `gw export`: a training checkpoint's weights as its model kind exports them (ModelKindImpl::exportWeights:
/// a GW in shimmer's layout, a GLOM run as glom-pytorch's state_dict) as OUT (a dict that torch.load
/// reads) and its experiment beside it as OUT with the extension .yaml. A domain-module weights file
/// exports its module's state dict as it is. \throws CheckpointError naming the file (and the domain
/// whose module cannot be rebuilt from its file).
ExportResult exportForPython(const std::string& checkpoint, const std::string& out);
/// The `gw` model kind's export (exportForPython's work for a GW checkpoint `c` read from `checkpoint`):
/// OUT in shimmer's layout and domain modules with files of their own written back (exportForPython
/// writes the experiment beside them).
void exportShimmerLayout(const Checkpoint& c, const std::string& checkpoint, const std::string& out, ExportResult& r);

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

/// The domain of `cfg` whose module is `glom`: `domain` when given, else the only one.
/// \throws ConfigError naming the experiment file when there is none, several (and `domain` is
/// empty), or `domain` is not a glom domain.
const DomainConfig& glomDomainOf(const ExperimentConfig& cfg, const std::string& domain);

/// `gw glom import-weights`: a glom-pytorch `Glom` state_dict saved with torch.save (glom_pytorch.py,
/// class Glom; keys init_levels, image_to_tokens.1.weight, ...) loaded into the GLOM of `cfg`'s glom
/// domain, returned as a domain-module weights file (kind "domain_module") that the domain's
/// `weights` key takes. With `toPixels`, the README's `patches_to_images` state_dict (0.weight
/// (p·p·C, d), 0.bias) is loaded too; without it that layer keeps its seeded initial values.
/// \throws CheckpointError naming the file, the key and the expected and found shapes (a state dict of
/// another configuration), or every missing and unexpected key; ConfigError as glomDomainOf.
Checkpoint importGlomWeights(const std::string& stateDict, const ExperimentConfig& cfg, const std::string& domain,
                             const std::string& toPixels = "");

struct GlomExportResult {
    std::string weights;      ///< the Glom state_dict (glom-pytorch's Glom(...).load_state_dict takes it)
    std::string toPixels;     ///< OUT's stem + ".to_pixels.pt": the README's patches_to_images state_dict
    std::string domain;       ///< the domain exported
    size_t tensors = 0;       ///< entries in `weights`
    std::string constructor;  ///< the Python call that builds a Glom of these sizes
    GlomOptions options;
};
/// `gw glom export`: the GLOM of a checkpoint (a `model: glom` run, or a GW run with a glom domain:
/// `domain`, else the only one) as glom-pytorch's state_dict. \throws CheckpointError naming the file;
/// ConfigError as glomDomainOf.
GlomExportResult exportGlomWeights(const std::string& checkpoint, const std::string& out, const std::string& domain = "");
/// The lines that tell the user what else was written and how Python loads an exported GLOM.
std::vector<std::string> glomExportNotes(const GlomExportResult& r);

}  // namespace gw

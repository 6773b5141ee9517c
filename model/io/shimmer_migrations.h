// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file shimmer_migrations.h
/// shimmer's checkpoint migrations (shimmer `shimmer/ckpt_migrations/*.py`, applied by the migrate-ckpt
/// package in file-name order), restated over a flat state dict, so that `gw import-weights` takes a
/// Lightning checkpoint of any shimmer generation (docs/checkpoint-format.md, "Import"):
///
///   1_add_gw_interfaces               pre-0.4 `gw_mod.encoders|decoders.resnet|bge` ->
///                                     `gw_mod.gw_interfaces.{resnet,bge}.encoder|decoder` (those two
///                                     domain names only, as shimmer's file has them)
///   2_del_gw_interfaces_hparam        hyper-parameters only: nothing in the state dict changes
///   3_del_gw_interfaces               `gw_mod.gw_interfaces.X.encoder.*` -> `gw_mod.gw_encoders.X.*`,
///                                     decoders alike; the interfaces' copies of domain modules and any
///                                     other `gw_interfaces` key dropped
///   4_del_buffers_put_models_in_gw_mod  `loss_coefs.buffer*` dropped; top-level `domain_mods.*` moved
///                                     under `gw_mod.`; each `gw_mod.domain_mods*` key gets its
///                                     `loss_mod.gw_mod.domain_mods*` twin
///   5_del_coef_buffers                keys holding `coef_buffers.` dropped
///
/// Every pattern is a substring (replace every occurrence) unless "prefix" is said, as in shimmer; key
/// order is kept. Torch-free but for the tensor type.
#include <string>
#include <vector>

#include "model/core/torch_fwd.h"

namespace gw {

/// One migration: its name (shimmer's file stem) and what it does to a state dict.
struct ShimmerMigration {
    std::string name;
    void (*apply)(OrderedMap<torch::Tensor>& state);
};

/// The five migrations, in the order shimmer applies them.
const std::vector<ShimmerMigration>& shimmerMigrations();

/// The migrations a checkpoint still needs, by migrate-ckpt's rule: every one when the checkpoint
/// records none (`recordedPresent` false, or no recorded name is known); otherwise those after the
/// latest migration it records (earlier gaps are not filled, as migrate-ckpt does not fill them).
std::vector<ShimmerMigration> pendingShimmerMigrations(const std::vector<std::string>& recorded, bool recordedPresent);

/// Applies the pending migrations to `state` in order; returns one line per migration applied, e.g.
/// "3_del_gw_interfaces: 48 keys renamed, 1 key dropped" ("no key changed" when it had nothing to do).
std::vector<std::string> applyShimmerMigrations(OrderedMap<torch::Tensor>& state, const std::vector<std::string>& recorded,
                                                bool recordedPresent);

}  // namespace gw

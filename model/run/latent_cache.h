// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file latent_cache.h
/// Frozen domain modules' latents kept on disk between runs (the idea of shimmer-ssd's pre-computed
/// `v_latents`): encoding 500,000 Simple Shapes images takes 20 to 25 s of every GW run, and a sweep's
/// runs encode the same images with the same module. A cache entry is one file per (module weights,
/// data split), named by the SHA-256 of everything the latents depend on:
///
/// - a format line (kLatentCacheFormat; bump it when a module kind's encode or prepare changes),
/// - the module's kind and parameters, and every tensor of its state (name, dtype, shape, bytes),
/// - the data: the HDF5 file's real path, size, modification time (ns) and inode, the dataset and its shape,
/// - the device type the latents were computed on (CPU and CUDA round differently).
///
/// Changing the weights (a new pre-training) or the data file (a new import) changes the name, so a
/// stale entry is never read; it stays on disk until removed (`rm -r ~/.cache/gw-studio/latents` is
/// always safe). Only latents are kept, for modules whose GW losses do not read the prepared inputs.
///
/// Where: $GW_LATENT_CACHE_DIR, else $XDG_CACHE_HOME/gw-studio/latents, else ~/.cache/gw-studio/latents;
/// GW_LATENT_CACHE=0 turns the cache off. Files are written atomically, so concurrent runs of a sweep
/// may write the same entry.
#include <optional>
#include <string>

#include "model/core/torch_fwd.h"

namespace gw {

class DomainModule;
namespace data {
class H5Array;
}

/// Bumped whenever a module kind's `prepare` or `encode` changes what it computes.
constexpr const char* kLatentCacheFormat = "gw-studio latent cache 1";

/// The cache folder, or "" when the cache is off (GW_LATENT_CACHE=0, or no home folder).
std::string latentCacheFolder();

/// The part of an entry's name that comes from the module: the SHA-256 of the format line, `kind`, its
/// parameters `params` (YAML text of each, in order) and every tensor of `mod`'s state (name, dtype,
/// shape, bytes). Computed once per module, for all its splits.
std::string latentModuleDigest(const DomainModule& mod, const std::string& kind, const OrderedMap<std::string>& params);

/// The entry's file (folder + "/" + 64 hex digits + ".pt") for a module of digest `moduleDigest`
/// (latentModuleDigest) encoding the split read from `arr`, on a device of type `deviceType` ("cpu",
/// "cuda"). "" when the cache is off.
/// \throws std::runtime_error naming the data file when it cannot be stat'ed.
std::string latentCacheFile(const std::string& moduleDigest, const data::H5Array& arr, const std::string& deviceType);

/// The cached latents (rows, latentDim) float32 on the CPU, or nothing when the entry is missing. An
/// entry that is unreadable or has another shape is a miss too, and `why` says what was wrong with it
/// (it will be written anew).
std::optional<torch::Tensor> readCachedLatents(const std::string& file, int64_t rows, int64_t latentDim, std::string& why);

/// Writes an entry (atomically). A failure (a full disk, a read-only cache) is not an error of the
/// run: it returns the reason, "" on success.
std::string writeCachedLatents(const std::string& file, const torch::Tensor& latents);

}  // namespace gw

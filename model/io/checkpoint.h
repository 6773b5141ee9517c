// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file checkpoint.h
/// GW Studio checkpoints (format: docs/checkpoint-format.md). A LibTorch archive (zip) holding the
/// format version, the experiment YAML, the step, the model's tensors under shimmer's names, the
/// AdamW state, the RNG states and the samplers' states: all a resumed run needs to continue exactly.
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/atomic_file.h"
#include "model/core/torch_fwd.h"

namespace gw {

/// The format this build writes. Older versions load through the chain of migrations
/// (checkpointMigrations(); docs/checkpoint-format.md lists what each changed).
constexpr int64_t kCheckpointFormatVersion = 2;

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
    std::vector<std::string> migrations;  ///< names of the migrations applied to it, oldest first
};

/// One step of the format's history: rewrites a checkpoint read at `from` into `from + 1`.
struct CheckpointMigration {
    int64_t from;
    std::string name;  ///< "{to}_{what}", recorded in Checkpoint::migrations
};
/// Every migration, oldest first.
const std::vector<CheckpointMigration>& checkpointMigrations();

/// Writes `ckpt` to `path` through writeAtomically: a failure leaves any previous file at `path`
/// intact. \throws WriteError naming the file.
void saveCheckpoint(const std::string& path, const Checkpoint& ckpt);

/// Reads a checkpoint of any format version up to ours; an older one comes back migrated
/// (formatVersion == kCheckpointFormatVersion, `migrations` extended), the file itself untouched.
/// \param foundVersion if given, receives the version stored in the file.
/// Every record is checked against its CRC-32 first (checkRecords): a damaged byte anywhere in a
/// tensor is an error naming the record, never other numbers.
/// \throws CheckpointError for a missing, truncated, corrupt or foreign file or a format newer than
/// this build, naming the file and the field (or the damaged record).
Checkpoint loadCheckpoint(const std::string& path, int64_t* foundVersion = nullptr);

/// Compares every record of the zip archive at `path` (a checkpoint, a torch.save file, a TorchScript
/// module) with the CRC-32 the archive carries for it (data/zip_check.h), before anything is read from it.
/// \throws CheckpointError "PATH: record 'last.ckpt/data/3' is damaged (CRC-32 ..., expected ...): the
/// file changed after it was written ..." naming the record; "PATH: not a readable WHAT (...)" for a file
/// that is no zip archive.
void checkRecords(const std::string& path, const std::string& what);

/// What `gw migrate` did.
struct MigrationResult {
    int64_t fromVersion = 0, toVersion = 0;
    std::vector<std::string> applied;  ///< migration names, empty when the file was current
    std::string backup;                ///< the untouched original, "{stem}-{n}{ext}" (n = 1, 2, ...)
};
/// Rewrites an older checkpoint in the current format after keeping the original as a backup beside
/// it (as shimmer's migrate-ckpt does, docs/gw-semantics.md 4.2). A current file is left alone.
/// \throws CheckpointError as loadCheckpoint, or when the backup or the new file cannot be written.
MigrationResult migrateCheckpointFile(const std::string& path);

}  // namespace gw

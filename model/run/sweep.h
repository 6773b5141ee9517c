// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file sweep.h
/// Sweeps: one base experiment and axes over its dotted keys, expanded to points (runs), kept in a
/// sweep folder that any number of `gw` processes, local or Slurm array tasks, work through. Qt-free
/// and torch-free: `gw sweep` (app/sweep_backends.cpp) launches the points; the window reads the same
/// folders. Format and layout: docs/sweeps.md.
///
/// A sweep folder holds plan.yaml (the sweep resolved: base experiment, overrides, every point with its
/// name and overrides), runs/NAME/ (one run folder per point, as runTraining writes it, with its
/// status.yaml), summary.csv (each point's state and final metrics, rewritten from the run folders) and
/// .finals-cache (what sweepRows has read of each point's metrics.csv).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/experiment/config.h"

namespace gw {

/// One swept key and its values, as YAML scalars ("0.5", "1000", "true", "conv_vae").
struct SweepAxis {
    std::string key;                  ///< a dotted experiment key, as an override takes it (+key too)
    std::vector<std::string> values;  ///< grid: every value; random: the choices (when no range)
    bool range = false;               ///< random only: draw from [low, high] instead of `values`
    double low = 0, high = 0;         ///< random range bounds (inclusive)
    bool log = false;                 ///< random range: uniform in log space (low > 0)
    bool integer = false;             ///< random range: whole numbers (both bounds whole, not log)
    /// A variant axis (`axes.NAME: {VARIANT: {key: value, ...}, ...}`): `values` are the variants'
    /// names and `variants[i]` the overrides ("key=value") that values[i] stands for; empty otherwise.
    std::vector<std::vector<std::string>> variants;
};

/// Slurm settings of a sweep: each becomes an #SBATCH line of the array job (docs/sweeps.md).
struct SlurmOptions {
    std::string partition;           ///< --partition ("" = the cluster's default)
    std::string time;                ///< --time, e.g. "02:00:00" ("" = the partition's default)
    int cpusPerTask = 0;             ///< --cpus-per-task, also each point's threads (0 = not given)
    int gpus = 0;                    ///< --gpus-per-task (0 = none)
    std::string mem;                 ///< --mem, e.g. "8G" ("" = not given)
    std::string account, qos;        ///< --account, --qos
    int maxParallel = 0;             ///< the array's %N: at most N points at once (0 = no limit)
    std::vector<std::string> extra;  ///< further lines, written as "#SBATCH LINE"
};

/// A sweep file, read and checked.
struct SweepSpec {
    std::string path;                    ///< the sweep file read
    std::string name = "sweep";          ///< names the sweep folder
    std::string experiment;              ///< the base experiment file (absolute)
    std::vector<std::string> overrides;  ///< applied to every point, before its own
    std::string method = "grid";         ///< grid | random
    int64_t count = 0;                   ///< random: points drawn
    uint64_t seed = 0;                   ///< random: the draw's seed
    std::vector<SweepAxis> axes;
    std::string folder;                  ///< the sweep folder (absolute): out/NAME
    SlurmOptions slurm;
};

/// One run of a sweep.
struct SweepPoint {
    int index = 0;                                             ///< 0-based; the Slurm array index
    std::string name;                                          ///< "003-paired_count=500,seed=1"
    std::vector<std::pair<std::string, std::string>> values;   ///< axis key -> value, in axis order
    /// Variant axes' overrides: axis name -> the "key=value" overrides its value stands for (kept in
    /// plan.yaml with the point, so that a Slurm task reads them back without the sweep file).
    std::vector<std::pair<std::string, std::vector<std::string>>> sets;
    /// The overrides that make this point: the sweep's own, then key=value per axis (a variant axis:
    /// the variant's overrides, in the order the sweep file gives them).
    std::vector<std::string> overrides(const SweepSpec& spec) const;
};

/// Reads a sweep file (format: docs/sweeps.md). `outFolder` ("" = the file's `out`, default "sweeps"
/// beside the file) is the parent of the sweep folder; `extraOverrides` are added to the file's
/// `overrides`. \throws ConfigError naming the file and the key: an unknown key, an empty axis, a
/// range without bounds, a random sweep without a count.
SweepSpec loadSweep(const std::string& path, const std::vector<std::string>& extraOverrides = {},
                     const std::string& outFolder = "");
/// Every point: grid = the product of the axes (first axis outermost), random = `count` draws with
/// `seed` (std::mt19937_64, 53-bit uniforms: the same points on every machine). Names are the index
/// and each axis's last key part (the whole key where two axes share it) with its value.
std::vector<SweepPoint> expandSweep(const SweepSpec& spec);
/// Parses the base experiment with every point's overrides, so that a bad key or value stops the sweep
/// before anything runs. \throws ConfigError "SWEEP: point 3 (seed=1,...): EXPERIMENT: key: ...".
void checkSweepPoints(const SweepSpec& spec, const std::vector<SweepPoint>& points, const UserSettings* settings);

/// SWEEP_DIR/plan.yaml, SWEEP_DIR/summary.csv, SWEEP_DIR/runs/NAME.
std::string sweepPlanPath(const std::string& folder);
std::string sweepSummaryPath(const std::string& folder);
std::string sweepRunDir(const std::string& folder, const SweepPoint& point);

/// Writes plan.yaml in `spec.folder`, or checks the one there: a sweep folder keeps its plan, so a
/// re-run finds its points and never retrains a finished one under another meaning.
/// \throws ConfigError naming plan.yaml and the first difference (base experiment, overrides, a point)
/// when the folder was planned from another sweep; WriteError when it cannot be written.
void writeOrCheckPlan(const SweepSpec& spec, const std::vector<SweepPoint>& points);
/// Reads a sweep folder's plan.yaml back. \throws ConfigError naming the file when missing or damaged.
std::pair<SweepSpec, std::vector<SweepPoint>> readPlan(const std::string& folder);

/// One row of summary.csv.
struct SweepRow {
    SweepPoint point;
    std::string state;                                   ///< RunStatus::state, "pending" without a run
    int64_t step = 0, totalSteps = 0;
    std::vector<std::pair<std::string, double>> finals;  ///< each metric's last value in metrics.csv
};
/// Each point's state and final metrics, read from its run folder. What was read of each metrics.csv is
/// kept in SWEEP_DIR/.finals-cache (the file's inode, size and time, the bytes read, the last value of
/// each metric), so that a later call reads only the lines appended since, and an unchanged file not
/// at all; a point without a run folder is pending without a look inside. The same rows as reading every
/// metrics.csv whole, except that a last line still being written is left for the next call.
std::vector<SweepRow> sweepRows(const SweepSpec& spec, const std::vector<SweepPoint>& points);
/// Writes summary.csv (index, name, state, step, one column per axis, then every metric any run logged,
/// in first-seen order; empty cells where a run has none) atomically. \throws WriteError.
void writeSweepSummary(const SweepSpec& spec, const std::vector<SweepRow>& rows);

}  // namespace gw

// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file config.h
/// Experiment files: the YAML that `gw` reads and the GUI saves (format: docs/experiment-format.md).
/// Qt-free and torch-free, so that any front end can read and check one. Flavours, selections and
/// domain-module kinds, with their parameters, come from the registries of registry.h.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "model/core/loss_settings.h"
#include "model/core/metric_names.h"
#include "model/core/ordered_map.h"
#include "model/core/registry.h"

namespace gw {

/// A configuration error: names the file, the key path, what was expected and what was found.
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Pre-training of one domain module on its own data (`gw pretrain`).
struct PretrainConfig {
    int64_t steps = 3000;
    int64_t batchSize = 128;
    double lr = 1e-3;
    double weightDecay = 1e-5;
};

/// One domain: its data and its domain module.
struct DomainConfig {
    std::string name;
    std::string module = "identity";  ///< a registered domain-module kind (registry.h; `gw kinds`)
    std::string file;                 ///< HDF5 file ("" = data.file); relative to the experiment file
    std::string dataset;              ///< dataset path, "{split}" replaced by the split name
    /// The kind's parameters (latent_dim, hidden_dim, ...), every one of them, checked against its
    /// registration: key -> YAML text.
    OrderedMap<std::string> params;
    std::string weights;              ///< pre-trained weights file; made by `gw pretrain` when missing
    bool frozen = true;               ///< frozen: latents computed once; else trained end to end
    std::vector<std::string> losses = metrics::perDomainTerms();  ///< families on (demi_cycle, cycle, translation, fused)
    PretrainConfig pretrain;
};

/// One group of domains seen together in training (`data.groups`; shimmer-ssd's domain proportions):
/// exactly one of proportion (of the training samples, floored as shimmer-ssd does) and count is set.
struct GroupConfig {
    std::vector<std::string> domains;
    double proportion = -1;  ///< in [0, 1], or -1 when `count` is given
    int64_t count = -1;      ///< >= 0, or -1 when `proportion` is given
};

/// The `attention:` section of a `model: attention` experiment: a selection trained on top of a
/// trained, frozen GW whose paired latents are corrupted (shimmer AttentionBase,
/// shimmer/modules/attention_module.py at d729e5e; docs/gw-semantics.md 9).
struct AttentionConfig {
    /// The trained GW: a run folder (its checkpoints/last.ckpt) or a checkpoint file of a `model: gw`
    /// run whose domains are the experiment's; relative to the experiment file.
    std::string gwRun;
    std::string selection = "dynamic_query_attention";  ///< the selection trained (a registered one with parameters)
    Params selectionParams;  ///< every parameter of the selection, checked for it by the parser
    /// "" : each paired row has one side drawn uniformly (shimmer's default); else the domain always corrupted.
    std::string corruptSingleSide;
    bool corruptSides = false;  ///< every domain of each paired row corrupted (shimmer apply_two_sided_corruption)
    /// The levels one is drawn from per batch (per domain with corrupt_sides); empty: the level 1.
    std::vector<double> corruptionScaling{};
    /// One vector of the latent size used for every row instead of fresh N(0, 1) draws; empty: drawn.
    std::vector<double> fixedCorruptionVector{};
    /// With corrupt_sides: each domain's fixed level (shimmer two_sided_corruption); empty: drawn.
    OrderedMap<double> twoSidedCorruption{};
};

/// A whole experiment. Defaults follow shimmer/shimmer-ssd (docs/gw-semantics.md 6.4) where they exist.
struct ExperimentConfig {
    std::string name = "experiment";
    /// What is trained: "gw" (a Global Workspace over the domains), "glom" (the one domain's GLOM
    /// module on its own, denoising; docs/glom.md) or "attention" (a selection over a trained, frozen GW
    /// on corrupted latents: the `attention` section). A glom experiment has exactly one domain, of module
    /// `glom`; the workspace and loss keys are not used.
    std::string model = "gw";
    uint64_t seed = 0;
    std::string device = "cpu";  ///< cpu | cuda | cuda:N
    int threads = 0;             ///< intra-op threads; 0 = every core

    // data
    std::string dataFile;          ///< default HDF5 file of the domains
    std::string dataImport;        ///< dataset made at dataFile when it is missing: "fashion-mnist" (imported) or "simple-shapes" (generated, 500,000 / 1,000 / 1,000, seed 0)
    std::string trainSplit = "train", valSplit = "val", testSplit = "test";
    double pairedFraction = 1.0;   ///< fraction of training samples in the paired group
    int64_t pairedCount = -1;      ///< exact paired count (overrides the fraction when >= 0)
    std::string pairedDataset;     ///< dataset of paired indices in dataFile ("" = drawn with the seed)
    /// The groups and their sizes (data.groups); empty: each domain alone with every sample, and every
    /// domain together on the paired subset above. Given, they replace the paired_* keys.
    std::vector<GroupConfig> groups;
    /// A domain split of the public Simple Shapes dataset (data.groups_file: a `domain_splits*/...npy` of
    /// `shapesd create`, {frozenset of domain names: int64 indices}), read as it is: its groups and
    /// their indices replace data.groups and the paired_* keys.
    std::string groupsFile;
    int64_t cacheMb = 4096;        ///< a dataset larger than this streams from disk batch by batch
    std::vector<DomainConfig> domains;

    // workspace
    int64_t workspaceDim = 12;
    int64_t encoderHidden = 32, decoderHidden = 32;
    int encoderLayers = 3, decoderLayers = 3;
    bool linearGW = false;       ///< workspace.linear: one Linear per GW encoder/decoder (shimmer-ssd linear_domains)
    bool linearGWBias = false;   ///< workspace.linear_bias (shimmer-ssd linear_domains_use_bias)
    std::string fusionActivation = "tanh";  ///< workspace.fusion_activation_fn: tanh | identity | sigmoid | relu
    std::string flavour = "two_domains";   ///< a registered GW flavour (registry.h): two_domains | fusion | variational | bayesian
    Params flavourParams;  ///< every parameter of the flavour (workspace.flavour_params), checked for it once, here
    std::string selection = "single_domain";  ///< a registered selection; the flavour's default when absent
    Params selectionParams;  ///< every parameter of the selection, checked for it once, here (registry.h Params)

    // loss: coefficients (family means by default), logit scale; one value on its way to the loss
    LossSettings loss;

    // optimiser (AdamW) and schedule
    double lr = 1e-3, weightDecay = 0.0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    std::string scheduler = "one_cycle";  ///< one_cycle | none
    double maxLr = 0;                      ///< 0 = lr
    double pctStart = 0.3, divFactor = 25.0, finalDivFactor = 1e4;
    double startLr = 0, endLr = 0;         ///< shimmer-ssd variant when > 0
    bool cycleMomentum = true;

    // training
    int64_t steps = 5000;
    int64_t batchSize = 256;        ///< per group and step
    int64_t valEvery = 500, checkpointEvery = 1000, logEvery = 50;
    int64_t valBatchSize = 1024;
    /// Validation also scores each translation in the target's data space (DomainModule::dataMetrics:
    /// `val/translation_v_to_attr_category_accuracy`, `val/translation_v_to_t_caption_accuracy`, ...).
    bool valDataMetrics = true;
    std::string outDir = "runs";

    /// model: attention only (written only for that kind).
    AttentionConfig attention{};

    std::string sourcePath;  ///< the file read (for messages and relative paths); not saved
    /// The files pulled in by `include:` (absolute, in the order read, nested ones first); not saved:
    /// the experiment holds their keys already.
    std::vector<std::string> includes;

    ExperimentConfig();
    /// The domain named `name`. \throws ConfigError when absent.
    const DomainConfig& domain(const std::string& name) const;
    /// `path` resolved against the experiment file's folder, with a leading ~ expanded.
    std::string resolvePath(const std::string& path) const;
};

/// The per-user settings that complete every experiment a front end opens (device, threads, the data
/// folder, the runs folder): a YAML file shaped like an experiment that may hold only `device`,
/// `threads`, `data.dir` and `training.out`. It is the lowest layer: an experiment's own keys win.
/// The window's Settings dialog writes it; `gw` reads it (docs/experiment-format.md, "Layers").
struct UserSettings {
    std::string path;     ///< the file read or to write
    std::string device;   ///< "" = not set; else cpu | cuda | cuda:N
    int threads = -1;     ///< -1 = not set; 0 = every core
    std::string dataDir;  ///< "" = not set; folder that relative data files resolve against (absolute)
    std::string runsDir;  ///< "" = not set; `training.out`, the parent of run and sweep folders (absolute)
    bool empty() const { return device.empty() && threads < 0 && dataDir.empty() && runsDir.empty(); }
};
/// $GW_STUDIO_SETTINGS when set, else $XDG_CONFIG_HOME/gw-studio/settings.yaml, else
/// ~/.config/gw-studio/settings.yaml.
std::string userSettingsPath();
/// Reads the settings file at `path` (a missing file gives empty settings with `path` set). Relative
/// folders and a leading ~ are made absolute against the file's folder and $HOME.
/// \throws ConfigError naming the file and the key for any other key or a bad value.
UserSettings loadUserSettings(const std::string& path);
/// Writes `s` to `s.path` atomically (only the keys that are set). \throws WriteError naming the file.
void saveUserSettings(const UserSettings& s);

/// Reads an experiment file and applies `key=value` overrides (dotted keys: `training.steps=100`,
/// `domains.image.latent_dim=8`, `loss.coefficients.cycles=0`). Layers, lowest first: `settings` (when
/// given), the files named by `include:` (in order, each composed the same way; maps merge key by key,
/// any other value is replaced), the file itself, then the overrides. Hydra's forms are accepted:
/// `key=value` sets a key, `+key=value` adds one that no layer sets, `++key=value` sets or adds,
/// `~key` removes a key (back to its default; `~key=value` only when it holds that value). Relative
/// paths in an included file resolve against that file's folder. Unknown keys, wrong types and bad
/// values are rejected. \throws ConfigError naming the file (and the files it includes), the key, the
/// expected and the found value; an include cycle names every file of the cycle.
ExperimentConfig loadExperiment(const std::string& path, const std::vector<std::string>& overrides = {},
                                const UserSettings* settings = nullptr);
/// The same from YAML text (`sourceName` for messages; relative paths and includes resolve against
/// `baseDir`).
ExperimentConfig parseExperiment(const std::string& yamlText, const std::string& sourceName,
                                 const std::vector<std::string>& overrides = {}, const std::string& baseDir = ".",
                                 const UserSettings* settings = nullptr);
/// The resolved experiment as YAML (every key written; parseExperiment reads it back equal).
std::string experimentToYaml(const ExperimentConfig& cfg);

}  // namespace gw

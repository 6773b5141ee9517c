// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file engine.h
/// The training engine behind `gw` and the GUI's worker: an experiment's data, domain modules
/// (pre-trained when their weights are missing), frozen-latent caches, the GW, AdamW + OneCycle, the
/// training step, evaluation and checkpoints. Qt-free; one Engine is used from one thread.
///
/// Defined across units with one job each: engine.cpp (prepare: data, domain modules, latent caches,
/// groups, batches), engine_pretrain.cpp (pre-training), engine_train.cpp (the step, checkpoint
/// state, runTraining and the run folder), engine_eval.cpp (evaluate, explore); their shared private
/// structs are in engine_internal.h. Process set-up (threads, OpenMP, allocator, device names) is
/// in process.h; opening runs and checkpoints, and listing devices, in runs.h.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/io/checkpoint.h"
#include "model/experiment/config.h"
#include "model/gw/global_workspace.h"
#include "model/core/optim.h"
#include "model/core/process.h"

namespace gw {

namespace data {
class H5Array;
class GroupSampler;
}  // namespace data

/// A failed run (NaN loss, bad data discovered late): the last checkpoint is kept.
class TrainingError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A run stopped on request before it had anything to keep (during pre-training).
class RunStopped : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Log sink for human-readable progress lines (stdout in `gw`, the log panel in the GUI).
using LogFn = std::function<void(const std::string&)>;

struct ProgressReport;

/// What the translation explorer shows of some samples (docs/gw-semantics.md 1.3 helpers translation, cycle),
/// in data space: images (B, C, H, W) in [0, 1]-ish floats, class domains as probabilities (B, C)
/// (inputs one-hot), vectors (B, F). All on the CPU.
struct ExploreResult {
    struct Domain {
        std::string name, kind;
        int64_t classes = 0;  ///< DomainModule::classCount(): class_label: its class count, attributes: 3
        std::string rendersAs;  ///< DomainModule::rendersAs(): the kind whose renderer draws the cells
        /// Flavour variational: the mean σ = exp(½ uncertainty_level) of the domain's GW encoder, the
        /// spread of its workspace state; -1 for the other flavours.
        double uncertainty = -1;
    };
    std::string split;
    std::vector<int64_t> indices;  ///< the samples, rows of every tensor below
    std::vector<Domain> domains;
    /// "input/{d}", "demi_cycle/{d}", "translation/{d}/{e}" (d's state decoded into e) and
    /// "cycle/{d}/{e}" (d -> e -> d), each (B, ...); and "pca_input/{d}" (M, ...), the inputs of the
    /// workspace view's samples (what hovering a point shows).
    OrderedMap<torch::Tensor> cells;
    torch::Tensor labels;  ///< (B,) int64 class of each sample (the first class domain), undefined if none
    /// Names of those classes, from the class domain's `class_names` HDF5 attribute ("Ankle boot", ...);
    /// empty when the data do not name them (then "class 9").
    std::vector<std::string> classNames;
    /// Workspace view: single-domain workspace states of `pcaIndices` for each domain, projected on
    /// their first two principal components. Rows: domain-major (all of domain 0, then domain 1, ...).
    torch::Tensor pcaCoords;        ///< (D * M, 2)
    std::vector<int64_t> pcaIndices;  ///< (M) sample indices
    torch::Tensor pcaLabels;        ///< (M,) class of each, undefined if no class domain
    std::vector<double> pcaExplained;  ///< share of variance of the two components
    /// The domains fused for "broadcast/{e}" cells (in the GW's domain order); empty when none asked.
    std::vector<std::string> broadcastFrom;
};

class ProcessGroup;
class TrainableModel;

class Engine {
public:
    /// \param cfg an experiment (loadExperiment); \param log progress sink (may be empty).
    explicit Engine(ExperimentConfig cfg, LogFn log = {});
    ~Engine();

    const ExperimentConfig& config() const { return cfg_; }

    /// For a GUI: `pretrainProgress` receives pre-training metrics every 20 steps
    /// (`pretrain/{domain}/loss` and the module's own, e.g. `pretrain/image/kl`), and `stopRequested`
    /// is polled between pre-training steps (it may block, to pause); when it returns true,
    /// pre-training throws RunStopped and keeps no weights.
    void setHooks(std::function<void(const ProgressReport&)> pretrainProgress, std::function<bool()> stopRequested);
    /// The run folder this engine will train into (before prepare): a domain module pre-trained for
    /// want of weights, whose experiment gives no `weights` path, keeps them in RUN_DIR/pretrained/NAME.pt
    /// (and the run's config.yaml names that file). Without one, such a module is an error before
    /// pre-training starts.
    void setRunDir(const std::string& runDir) { runDir_ = runDir; }
    /// Data-parallel training (distributed.h): each step this rank trains on its share of each group's
    /// batch (rank r of R takes rows [r·B/R, (r+1)·B/R) of the B indices every rank draws alike), and
    /// the flat gradient is summed over the ranks and divided by R before AdamW, so R ranks take the
    /// step one process would take on the whole batch (to float rounding, for losses that are means
    /// over samples; the contrastive loss sees only the rank's share, as under PyTorch's DDP). Set
    /// before prepare(). \throws ConfigError when training.batch_size is not a multiple of R.
    void setProcessGroup(std::shared_ptr<ProcessGroup> group);
    ProcessGroup* processGroup() const { return group_.get(); }
    /// True on rank 0, or without a process group: the rank that writes the run folder.
    bool leads() const;
    /// Rank 0's weights into every rank (after prepare() and restore()). \throws DistributedError.
    void broadcastParameters();
    torch::Device device() const { return device_; }

    /// Opens the data (importing it when the experiment names a source and the file is missing),
    /// builds the domain modules, loads or pre-trains their weights, caches frozen latents, builds
    /// the GW and its optimiser. With `from` (a run being resumed or evaluated) the domain modules take
    /// their weights from that checkpoint instead. \throws data::DataError, ConfigError,
    /// CheckpointError with the file, field, expected and found value.
    void prepare(const Checkpoint* from = nullptr);
    /// Pre-trains every domain module that needs it (all of them with `force`), saving the weights
    /// files; no GW is built. Returns the validation metrics of each ({domain}/{metric}).
    OrderedMap<double> pretrainDomains(bool force, const std::vector<std::string>& only = {});

    /// The GW. \throws std::logic_error for a model kind without one (`model: glom`; its module:
    /// models/glom_model.h glomOf) or before prepare().
    GlobalWorkspace& model();
    /// The explorer view the experiment's model kind answers: "translations" (explore()) or "islands"
    /// (models/glom_model.h exploreGlom). Registry: ModelKindImpl::explorerView.
    const std::string& explorerView() const;
    int64_t step() const { return step_; }
    int64_t totalSteps() const { return cfg_.steps; }
    /// Learning rate and beta1 used by the next step.
    double currentLr() const;

    /// One optimisation step on one batch per group. The returned tensors are not synchronised. After
    /// the first step the log names any positive coefficient that selects no metric and any family
    /// with no term (for example translations when no sample is paired).
    StepLosses trainStep();
    /// Every metric on a split (train, val or test by the experiment's names), over fully paired
    /// batches (each domain alone and all together, docs/gw-semantics.md 2.6), weighted by batch size, with
    /// names `{split}/{metric}`. `maxSamples` < 0: the whole split. Leaves the RNG as it was.
    /// With `dataSpace` (gw eval), also each translation's quality in the target's data space
    /// (DomainModule::dataMetrics), as `{split}/translation_{a}_to_{b}_{metric}`, e.g.
    /// `test/translation_attr_to_v_image_mse`, `test/translation_v_to_attr_category_accuracy`.
    OrderedMap<double> evaluate(const std::string& split, int64_t maxSamples = -1, bool dataSpace = false);
    /// The explorer's view of `indices` of a split (train, val or test) and a PCA of the workspace
    /// states of `pcaSamples` evenly spaced samples. No gradients; the RNG is left as it was.
    /// \throws data::DataError for a missing split or an index out of range (naming both).
    /// With `broadcastFrom` (some of the GW's domains), also "broadcast/{e}" for every domain e: the
    /// samples of those domains fused with the GW's selection (encode, select, fuse; docs/gw-semantics.md
    /// 1.3 `broadcast`) and decoded into e, in data space.
    /// \throws std::invalid_argument naming a broadcast domain the GW does not have.
    ExploreResult explore(const std::string& split, const std::vector<int64_t>& indices, int64_t pcaSamples = 300,
                          const std::vector<std::string>& broadcastFrom = {});
    /// Samples for the explorer: `mode` "random" (`count` seeded by `seed`), "per_class" (`count` of
    /// each class of the first class domain, the first ones in the split), or "first".
    std::vector<int64_t> pickSamples(const std::string& split, const std::string& mode, int64_t count, uint64_t seed);
    /// True when the split exists for every domain.
    bool hasSplit(const std::string& split) const;

    /// For runTraining: lets each domain module copy the file it was read from into `runDir`
    /// (DomainModule::keepInRun; a TorchScript module's file goes to RUN_DIR/domain_modules/NAME.pt) and
    /// points the experiment at the copies, with their SHA-256, so that config.yaml and every checkpoint
    /// of the run name them. \throws WriteError naming the file.
    void keepFilesIn(const std::string& runDir);

    Checkpoint makeCheckpoint() const;
    /// Restores weights, optimiser, step, RNG and samplers (after prepare()).
    /// \throws CheckpointError when the checkpoint is of another experiment's shape.
    void restore(const Checkpoint& ckpt, const std::string& path);

    /// Paired and unpaired sample counts of the training groups, for reports.
    std::vector<std::pair<std::string, int64_t>> groupSizes() const;

private:
    friend class EngineAccess;  // a model kind's view of the engine (trainable_model.h)
    struct DomainState;
    struct Group;
    void openData();
    void buildModules();
    void pretrainModule(DomainState& d);
    void cacheLatents(DomainState& d);
    torch::Tensor rawRows(DomainState& d, const std::string& split, const std::vector<int64_t>& idx);
    GroupBatch makeBatch(const std::vector<std::string>& domains, const std::string& split,
                         const std::vector<int64_t>& idx, bool training);
    std::string splitName(const std::string& which) const;
    std::vector<int64_t> drawIndices(Group& g);  // this step's batch of a group (this rank's share)
    OneCycleSchedule schedule() const;

    ExperimentConfig cfg_;
    LogFn log_;
    torch::Device device_;
    std::vector<std::unique_ptr<DomainState>> domains_;
    std::shared_ptr<TrainableModel> trainable_;  // the model kind's part (ModelKindImpl::make)
    std::unique_ptr<FlatAdamW> optim_;
    std::vector<Group> groups_;
    int64_t step_ = 0;
    bool prepared_ = false;
    bool warned_ = false;  // coefficients that select nothing, skipped families: said once
    std::function<void(const ProgressReport&)> pretrainProgress_;
    std::function<bool()> stopRequested_;
    std::string runDir_;
    std::shared_ptr<ProcessGroup> group_;
    /// Where pre-trained weights of `d` go: its `weights` path, else RUN_DIR/pretrained/NAME.pt; checked
    /// writable. \throws ConfigError naming the key and the path, before any pre-training.
    std::string pretrainTarget(const DomainState& d) const;
};

/// What `runTraining` reports after each logged step and each validation.
struct ProgressReport {
    int64_t step = 0, totalSteps = 0;
    double stepsPerSecond = 0, etaSeconds = 0;
    OrderedMap<double> metrics;  ///< `train/...` or `val/...`
    bool validation = false;
};

struct RunCallbacks {
    std::function<void(const ProgressReport&)> progress;
    std::function<bool()> stopRequested;  ///< polled between steps; a stop saves a checkpoint
};

struct RunResult {
    int64_t step = 0;
    bool stopped = false;
    std::string checkpoint;  ///< path of the last checkpoint
    double collectiveSeconds = 0;  ///< data-parallel: time this rank spent in all-reduces and broadcasts
    int64_t collectiveCalls = 0;   ///< data-parallel: how many
};

/// Trains `engine` (prepared, possibly restored) to its total steps in `runDir`: writes config.yaml
/// (resolved), appends metrics.csv (`step,metric,value`; rows past the current step are dropped on
/// resume) and checkpoints/last.ckpt every checkpoint_every steps, at a stop and at the end.
/// \throws TrainingError on a non-finite loss (the last checkpoint stays as it was).
RunResult runTraining(Engine& engine, const std::string& runDir, const RunCallbacks& callbacks = {});

/// What a domain of `cfg` is built from: its kind and parameters, with file-path parameters
/// (ParamInfo::Type::Path) resolved against the experiment file's folder. The data's part (input size,
/// classes, probe batch) is the engine's to add.
DomainModuleSpec domainModuleSpec(const ExperimentConfig& cfg, const DomainConfig& domain);

/// Where the experiment's data.file is read from: itself, except when it is to be imported (data.import)
/// and its folder cannot be written (an experiment installed read-only): then a file of the same name in
/// the user's data folder (runs.h userDataDir), where the import goes.
std::string dataFileFor(const ExperimentConfig& cfg);

/// A new run folder for `cfg`: training.out/NAME-YYYYmmdd-HHMMSS (local time); when training.out cannot
/// be written (an experiment installed read-only), USER_DATA/runs/NAME-... instead (runs.h userDataDir).
std::string defaultRunDir(const ExperimentConfig& cfg);

/// The experiment with every path made absolute (as saved in a run folder).
ExperimentConfig withAbsolutePaths(const ExperimentConfig& cfg);

}  // namespace gw

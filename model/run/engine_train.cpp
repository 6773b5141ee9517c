// SPDX-License-Identifier: GPL-3.0-or-later
// Engine: the training step (AdamW + OneCycle), the training state in and out of checkpoints, and
// runTraining's loop over a run folder (config.yaml, metrics.csv, checkpoints/last.ckpt).
#include "model/run/engine.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <optional>
#include <sstream>

#include <unistd.h>

#include "data/atomic_file.h"
#include "data/tensorboard.h"
#include "model/run/distributed.h"
#include "model/run/engine_internal.h"
#include "model/run/trainable_model.h"
#include "model/core/registry.h"
#include "model/run/runs.h"

namespace gw {
namespace fs = std::filesystem;

OneCycleSchedule Engine::schedule() const {
    OneCycleSchedule s;
    s.maxLr = cfg_.maxLr > 0 ? cfg_.maxLr : cfg_.lr;
    s.totalSteps = cfg_.steps;
    s.pctStart = cfg_.pctStart;
    s.divFactor = cfg_.startLr > 0 ? s.maxLr / cfg_.startLr : cfg_.divFactor;
    s.finalDivFactor = cfg_.endLr > 0 ? s.maxLr / cfg_.endLr : cfg_.finalDivFactor;
    s.cycleMomentum = cfg_.cycleMomentum;
    return s;
}

double Engine::currentLr() const {
    if (cfg_.scheduler == "none") return cfg_.lr;
    return schedule().lr(std::min(step_, cfg_.steps - 1));
}

std::vector<int64_t> Engine::drawIndices(Group& g) {
    std::vector<int64_t> idx = g.sampler->next(cfg_.batchSize);
    if (group_) {  // every rank draws the same indices and keeps its share
        const size_t share = idx.size() / static_cast<size_t>(group_->size());
        const size_t from = share * static_cast<size_t>(group_->rank());
        idx = std::vector<int64_t>(idx.begin() + static_cast<std::ptrdiff_t>(from),
                                   idx.begin() + static_cast<std::ptrdiff_t>(from + share));
    }
    return idx;
}

StepLosses Engine::trainStep() {
    if (!prepared_) prepare();
    if (step_ >= cfg_.steps)
        throw TrainingError("the run has done its " + std::to_string(cfg_.steps) + " steps (raise training.steps to go on)");
    EngineAccess access(*this);
    StepLosses r;
    try {
        optim_->zeroGrad();
        r = trainable_->step(access);
    } catch (const DomainModuleError& e) {
        throw TrainingError("step " + std::to_string(step_ + 1) + ": " + e.what());
    }
    if (group_) {
        torch::Tensor g = optim_->flatGrads();
        try {
            group_->allreduceSum(g);
        } catch (const DistributedError& e) {
            throw DistributedError("step " + std::to_string(step_ + 1) + ": " + e.what());
        }
        g.div_(static_cast<double>(group_->size()));
    }
    if (cfg_.scheduler == "none") optim_->step(cfg_.lr, cfg_.beta1);
    else {
        const auto s = schedule();
        optim_->step(s.lr(step_), s.beta1(step_));
    }
    ++step_;
    if (!warned_ && log_) {
        warned_ = true;
        trainable_->firstStepNotes(access, r);
    }
    return r;
}

void Engine::setProcessGroup(std::shared_ptr<ProcessGroup> group) {
    if (group && cfg_.batchSize % group->size() != 0)
        throw ConfigError(cfg_.sourcePath + ": training.batch_size: expected a multiple of the " + std::to_string(group->size()) +
                          " ranks (each rank takes an equal share of every group's batch), found " + std::to_string(cfg_.batchSize));
    group_ = std::move(group);
}

bool Engine::leads() const { return !group_ || group_->rank() == 0; }

void Engine::broadcastParameters() {
    if (!group_) return;
    torch::Tensor p = optim_->flatParams();
    group_->broadcast(p, 0);
}

GlobalWorkspace& Engine::model() {
    GlobalWorkspace* g = trainable_ ? trainable_->workspace() : nullptr;
    if (!g)
        throw std::logic_error(trainable_ ? "a model: " + cfg_.model + " experiment has no GW"
                                          : std::string("the engine is not prepared (no GW yet)"));
    return *g;
}

const std::string& Engine::explorerView() const { return modelRegistry().at(cfg_.model, "model").impl.explorerView; }

Checkpoint Engine::makeCheckpoint() const {
    Checkpoint c;
    c.kind = "gw";
    c.configYaml = experimentToYaml(withAbsolutePaths(cfg_));
    c.step = step_;
    c.state = trainable_->state();
    c.adamExpAvg = optim_->expAvg();
    c.adamExpAvgSq = optim_->expAvgSq();
    c.adamStep = optim_->stepCount();
    c.cpuRngState = at::detail::getDefaultCPUGenerator().get_state();
    for (const auto& g : groups_) c.samplerStates.push_back(g.sampler->saveState());
    return c;
}

void Engine::restore(const Checkpoint& c, const std::string& path) {
    if (!prepared_) prepare();
    if (c.kind != "gw") throw CheckpointError(path + ": expected a GW training checkpoint, found kind '" + c.kind + "'");
    try {
        trainable_->loadState(c.state, path);
        if (c.adamExpAvg.defined()) optim_->loadState(c.adamExpAvg.to(device_), c.adamExpAvgSq.to(device_), c.adamStep);
    } catch (const std::invalid_argument& e) {
        throw CheckpointError(path + ": " + e.what());
    }
    if (c.samplerStates.size() != groups_.size())
        throw CheckpointError(path + ": expected " + std::to_string(groups_.size()) + " sampler states, found " +
                              std::to_string(c.samplerStates.size()));
    for (size_t i = 0; i < groups_.size(); ++i) {
        try {
            groups_[i].sampler->loadState(c.samplerStates[i]);
        } catch (const std::invalid_argument& e) {
            throw CheckpointError(path + ": group " + groupName(groups_[i].domains) + ": " + e.what());
        }
    }
    if (c.cpuRngState.defined()) {
        auto gen = at::detail::getDefaultCPUGenerator();
        gen.set_state(c.cpuRngState);
    }
    step_ = c.step;
}

std::string defaultRunDir(const ExperimentConfig& cfg) {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
    std::string base = cfg.resolvePath(cfg.outDir);
    // An experiment read from a read-only place (an installed one under /usr/share): its runs go to the
    // user's data folder, never beside it.
    if (!writableFolder(base)) base = (fs::path(userDataDir()) / "runs").string();
    return (fs::path(base) / (cfg.name + "-" + buf)).string();
}

ExperimentConfig withAbsolutePaths(const ExperimentConfig& cfg) {
    ExperimentConfig c = cfg;
    auto abs = [&](const std::string& p) { return p.empty() ? p : fs::absolute(cfg.resolvePath(p)).lexically_normal().string(); };
    c.dataFile = abs(cfg.dataFile);
    c.groupsFile = abs(cfg.groupsFile);
    for (auto& d : c.domains) {
        d.file = abs(d.file);
        d.weights = abs(d.weights);
        if (const auto* kind = domainModuleRegistry().find(d.module))
            for (const auto& p : kind->info.params)
                if (p.type == ParamInfo::Type::Path)
                    if (const std::string* v = d.params.find(p.key)) d.params.set(p.key, abs(*v));
    }
    c.outDir = abs(cfg.outDir);
    c.attention.gwRun = abs(cfg.attention.gwRun);
    return c;
}

namespace {
std::string fmt(double v) {
    std::ostringstream s;
    s << std::setprecision(9) << v;
    return s.str();
}

/// Keeps the rows of metrics.csv up to `step` (a resumed run rewrites what came after).
void truncateMetrics(const fs::path& csv, int64_t step) {
    if (!fs::exists(csv)) return;
    std::ifstream in(csv);
    std::string line, kept;
    while (std::getline(in, line)) {
        if (line.rfind("step,", 0) == 0) { kept += line + "\n"; continue; }
        const auto comma = line.find(',');
        if (comma == std::string::npos) continue;
        try {
            if (std::stoll(line.substr(0, comma)) <= step) kept += line + "\n";
        } catch (const std::exception&) {
        }
    }
    in.close();
    writeFileAtomically(csv.string(), kept);
}
}  // namespace

RunResult runTraining(Engine& engine, const std::string& runDir, const RunCallbacks& cb) {
    engine.prepare();
    // Data-parallel: every rank trains; rank 0 alone writes the run folder and validates.
    ProcessGroup* group = engine.processGroup();
    const bool lead = engine.leads();
    const fs::path dir(runDir);
    const fs::path csvPath = dir / "metrics.csv";
    AppendFile csv;
    std::unique_ptr<data::EventWriter> events;
    if (lead) {
        fs::create_directories(dir / "checkpoints");
        engine.keepFilesIn(runDir);
        writeFileAtomically(runConfigPath(runDir), experimentToYaml(withAbsolutePaths(engine.config())));
        truncateMetrics(csvPath, engine.step());
        const bool fresh = !fs::exists(csvPath);
        csv = AppendFile(csvPath.string());
        if (fresh) csv.append("step,metric,value\n");
        // The same rows as TensorBoard events (docs/run-format): one new file per start; a resumed run says
        // where it restarts, so that TensorBoard drops the steps an interrupted file recorded after it.
        events = std::make_unique<data::EventWriter>(runDir);
        if (!fresh) events->restartAt(engine.step() + 1);
    }
    auto record = [&](int64_t step, const OrderedMap<double>& metrics) {
        if (!lead) return;
        std::string rows;
        for (const auto& [k, v] : metrics) {
            rows += std::to_string(step) + "," + k + "," + fmt(v) + "\n";
            events->addScalar(k, step, v);
        }
        csv.append(rows);  // all or nothing: a full disk cuts no row in two
        events->flush();
    };
    const auto& cfg = engine.config();
    RunResult result;
    result.checkpoint = runCheckpointPath(runDir);
    // RUN_DIR/status.yaml: what sweeps and the Runs panel read (runs.h RunStatus).
    RunStatus status;
    status.state = "running";
    status.step = engine.step();
    status.totalSteps = engine.totalSteps();
    status.pid = static_cast<long>(::getpid());
    status.started = utcNow();
    // A crash signal on the way (a fault in a library) still leaves "failed" and the signal in status.yaml.
    std::optional<RunCrashRecorder> crash;
    if (lead) {
        crash.emplace(runDir);
        crash->update(status);
        writeRunStatus(runDir, status);
    }
    // The step of the checkpoint on disk, for the message of a write that fails.
    int64_t savedStep = fs::exists(result.checkpoint) ? engine.step() : -1;
    auto cannotWrite = [&](const WriteError& e) {
        std::error_code ec;
        const bool kept = savedStep >= 0 && fs::exists(result.checkpoint, ec);
        const bool room = e.errorNumber() == ENOSPC || e.errorNumber() == EDQUOT;
        return TrainingError("step " + std::to_string(engine.step()) + ": " + e.what() + "; the run stops as failed" +
                             (kept ? " and keeps its previous checkpoint (step " + std::to_string(savedStep) + "); once " +
                                         (room ? "there is room" : "that is mended") + ", gw train --resume " + runDir +
                                         " goes on from it"
                              : savedStep >= 0 ? " (its checkpoint is gone too)"
                                               : " before its first checkpoint"));
    };
    auto save = [&] {
        if (!lead) return;
        try {
            saveCheckpoint(result.checkpoint, engine.makeCheckpoint());
        } catch (const WriteError& e) {
            throw cannotWrite(e);
        }
        savedStep = engine.step();
        status.step = engine.step();
        crash->update(status);  // first: a crash is never recorded with less than status.yaml says
        writeRunStatus(runDir, status);
    };
    try {
        engine.broadcastParameters();  // one start for every rank (a resumed run restored the same checkpoint)
        auto t0 = std::chrono::steady_clock::now();
        int64_t stepsAtT0 = engine.step();
        bool stopAll = false;
        while (engine.step() < engine.totalSteps()) {
            // Alone, a stop is seen before any step; with ranks, they agree on it at logged steps.
            if (!group && cb.stopRequested && cb.stopRequested()) {
                result.stopped = true;
                break;
            }
            StepLosses r = engine.trainStep();
            const int64_t step = engine.step();
            const bool last = step == engine.totalSteps();
            if (step % cfg.logEvery == 0 || last) {
                ProgressReport rep;
                rep.step = step;
                rep.totalSteps = engine.totalSteps();
                double loss = r.out.loss.item<double>();
                std::vector<std::pair<std::string, double>> values;
                for (const auto& [k, v] : r.out.metrics) values.emplace_back(k, v.item<double>());
                if (group) {  // the mean over the ranks' shares, and whether any rank was asked to stop
                    torch::Tensor packed = torch::empty({static_cast<int64_t>(values.size()) + 2}, torch::kFloat64);
                    auto* p = packed.data_ptr<double>();
                    p[0] = loss;
                    for (size_t i = 0; i < values.size(); ++i) p[i + 1] = values[i].second;
                    p[values.size() + 1] = cb.stopRequested && cb.stopRequested() ? 1.0 : 0.0;
                    group->allreduceSum(packed);
                    const double n = static_cast<double>(group->size());
                    loss = p[0] / n;
                    for (size_t i = 0; i < values.size(); ++i) values[i].second = p[i + 1] / n;
                    stopAll = p[values.size() + 1] > 0;
                }
                rep.metrics.set("train/loss", loss);
                for (const auto& [k, v] : values) rep.metrics.set("train/" + k, v);
                rep.metrics.set("train/lr", engine.currentLr());
                if (!std::isfinite(loss))
                    throw TrainingError("step " + std::to_string(step) + ": the loss is " + fmt(loss) + "; the run stops" +
                                        (fs::exists(result.checkpoint)
                                             ? " and keeps its last checkpoint (" + result.checkpoint + ")"
                                             : " before its first checkpoint (lower optimizer.lr, or check the data for NaN)"));
                const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                rep.stepsPerSecond = el > 0 ? static_cast<double>(step - stepsAtT0) / el : 0;
                rep.etaSeconds = rep.stepsPerSecond > 0 ? static_cast<double>(rep.totalSteps - step) / rep.stepsPerSecond : 0;
                record(step, rep.metrics);
                if (cb.progress && lead) cb.progress(rep);
            }
            if (lead && ((cfg.valEvery > 0 && step % cfg.valEvery == 0) || last)) {
                if (engine.hasSplit("val")) {
                    ProgressReport rep;
                    rep.step = step;
                    rep.totalSteps = engine.totalSteps();
                    rep.validation = true;
                    try {
                        rep.metrics = engine.evaluate("val", -1, cfg.valDataMetrics);
                    } catch (const DomainModuleError& e) {
                        throw TrainingError("validation at step " + std::to_string(step) + ": " + e.what());
                    }
                    record(step, rep.metrics);
                    if (cb.progress) cb.progress(rep);
                }
            }
            if ((cfg.checkpointEvery > 0 && step % cfg.checkpointEvery == 0) || last) {
                if (last) status.state = "finished";
                save();
            }
            if (stopAll && !last) {
                result.stopped = true;
                break;
            }
        }
        if (result.stopped) {
            status.state = "stopped";
            save();
        } else if (status.state != "finished") {  // resumed from a finished checkpoint: nothing to train
            status.state = "finished";
            status.step = engine.step();
            if (lead) writeRunStatus(runDir, status);
        }
    } catch (const std::exception& e) {
        // metrics.csv, the events file or status.yaml that cannot be written: the same words as a checkpoint's.
        const auto* write = dynamic_cast<const WriteError*>(&e);
        const std::string message = write ? cannotWrite(*write).what() : e.what();
        status.state = "failed";
        status.error = message;
        try {
            if (lead) writeRunStatus(runDir, status);
        } catch (const std::exception&) {
            // the original error matters more than the status file
        }
        if (write) throw TrainingError(message);
        throw;
    }
    result.step = engine.step();
    if (group) {
        result.collectiveSeconds = group->collectiveSeconds();
        result.collectiveCalls = group->collectiveCalls();
    }
    return result;
}

}  // namespace gw

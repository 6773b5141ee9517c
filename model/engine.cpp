// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/engine.h"

#include <dlfcn.h>
#include <malloc.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <thread>

#include "data/fashion_mnist.h"
#include "data/h5_array.h"
#include "data/sampler.h"
#include "model/runs.h"

namespace gw {
namespace fs = std::filesystem;

int configureThreads(int threads) {
    const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    torch::set_num_threads(n);
    // OpenBLAS (Debian's libopenblas0-pthread) keeps its own pool, which LibTorch does not size:
    // left at every core it spins beside LibTorch's threads. Found at run time, so that the reference
    // BLAS or MKL work too.
    using SetThreads = void (*)(int);
    if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
    return n;
}

int autoGwThreads(int64_t batch, int64_t widestLayer, bool cpuStep) {
    // Measured on 2 cores (docs/benchmarks.md). Autograd: one thread wins below 64 M (tutorial 840
    // against 730 steps/s, ssd 22 against 17.6), every core above it (wide: a single 1024^3 product
    // runs at 208 against 107 GFLOP/s). Hand-written step: see the header.
    const int64_t kSmall = cpuStep ? int64_t(512) << 10 : int64_t(64) << 20;
    if (batch * widestLayer < kSmall) return 1;
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void ensurePassiveOpenMP(char** argv) {
    if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GW_NO_REEXEC")) return;
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    setenv("GW_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);  // returns only on failure: go on with the spinning policy
}

void tuneAllocator() {
    // glibc's largest mmap threshold (32 MiB on 64-bit; larger values are refused): the tensors of a
    // GW step then come from the heap and are reused, instead of being mapped, faulted in and unmapped
    // on every step. Trimming is raised to match, so that freed memory stays for the next step.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_TOP_PAD, 16 << 20);
    mallopt(M_ARENA_MAX, 2);
}

torch::Device parseDevice(const std::string& name) {
    if (name == "cpu") return torch::Device(torch::kCPU);
    if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
        if (!torch::cuda::is_available())
            throw std::invalid_argument("device '" + name + "': this LibTorch has no CUDA device (built without CUDA, "
                                        "or no GPU is visible); use device: cpu");
        int index = 0;
        if (name.size() > 5) {
            try {
                index = std::stoi(name.substr(5));
            } catch (const std::exception&) {
                throw std::invalid_argument("device '" + name + "': expected cuda:N with N a number");
            }
        }
        const auto count = static_cast<int>(torch::cuda::device_count());
        if (index < 0 || index >= count)
            throw std::invalid_argument("device '" + name + "': expected an index below " + std::to_string(count) +
                                        " (CUDA devices found), found " + std::to_string(index));
        return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
    }
    throw std::invalid_argument("device '" + name + "': expected cpu, cuda or cuda:N");
}

std::string defaultRunDir(const ExperimentConfig& cfg) {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
    return (fs::path(cfg.resolvePath(cfg.outDir)) / (cfg.name + "-" + buf)).string();
}

ExperimentConfig withAbsolutePaths(const ExperimentConfig& cfg) {
    ExperimentConfig c = cfg;
    auto abs = [&](const std::string& p) { return p.empty() ? p : fs::absolute(cfg.resolvePath(p)).lexically_normal().string(); };
    c.dataFile = abs(cfg.dataFile);
    for (auto& d : c.domains) {
        d.file = abs(d.file);
        d.weights = abs(d.weights);
    }
    c.outDir = abs(cfg.outDir);
    return c;
}

/// One domain: its module, its data per split, and its frozen-latent caches.
struct Engine::DomainState {
    DomainConfig cfg;
    std::string file;  // resolved HDF5 file
    std::shared_ptr<DomainModule> module;
    OrderedMap<std::shared_ptr<data::H5Array>> arrays;  // split -> array
    OrderedMap<torch::Tensor> raw;                      // split -> all rows (when small enough)
    OrderedMap<torch::Tensor> latents;                  // split -> (N, L) on device (frozen)
    OrderedMap<torch::Tensor> inputs;                   // split -> prepared inputs on device (frozen, loss needs them)
};

struct Engine::Group {
    std::vector<std::string> domains;
    std::unique_ptr<data::GroupSampler> sampler;
};

Engine::Engine(ExperimentConfig cfg, LogFn log) : cfg_(std::move(cfg)), log_(std::move(log)), device_(torch::kCPU) {}
Engine::~Engine() = default;

std::string Engine::splitName(const std::string& which) const {
    if (which == "train") return cfg_.trainSplit;
    if (which == "val") return cfg_.valSplit;
    if (which == "test") return cfg_.testSplit;
    return which;
}

bool Engine::hasSplit(const std::string& split) const {
    const std::string s = splitName(split);
    for (const auto& d : domains_)
        if (!d->arrays.contains(s)) return false;
    return !domains_.empty();
}

void Engine::prepare(const Checkpoint* from) {
    if (prepared_) return;
    const int threads = configureThreads(cfg_.threads);
    device_ = parseDevice(cfg_.device);
    torch::manual_seed(cfg_.seed);
    if (log_) log_("device " + device_.str() + ", " + std::to_string(threads) + " threads");
    openData();
    buildModules();
    for (auto& d : domains_) {
        if (from) {
            const std::string prefix = "gw_mod.domain_mods." + d->cfg.name + ".";
            OrderedMap<torch::Tensor> sub;
            for (const auto& [k, t] : from->state)
                if (k.rfind(prefix, 0) == 0) sub.set(k.substr(prefix.size()), t);
            loadModuleState(*d->module, sub, "checkpoint, domain " + d->cfg.name, prefix);
        } else if (d->module->needsPretraining()) {
            const std::string w = cfg_.resolvePath(d->cfg.weights);
            if (fs::exists(w)) {
                Checkpoint c = loadCheckpoint(w);
                if (c.kind != "domain_module")
                    throw CheckpointError(w + ": expected pre-trained domain-module weights, found a '" + c.kind + "' checkpoint");
                loadModuleState(*d->module, c.state, w);
                if (log_) log_("domain " + d->cfg.name + ": weights from " + w);
            } else {
                pretrainModule(*d);
            }
        }
        if (d->cfg.frozen) d->module->freeze();
        else d->module->unfreeze();
        d->module->to(device_);
        cacheLatents(*d);
    }
    const GWSettings s = gwSettingsOf(cfg_);
    OrderedMap<std::shared_ptr<DomainModule>> mods;
    for (auto& d : domains_) mods.set(d->cfg.name, d->module);
    torch::manual_seed(cfg_.seed);
    model_ = std::make_shared<GlobalWorkspace>(mods, s);
    model_->to(device_);
    for (auto& d : domains_)  // `to` keeps modes, but be explicit: frozen modules evaluate
        if (d->module->isFrozen()) d->module->eval();
    optim_ = std::make_unique<FlatAdamW>(model_->trainableParameters(), cfg_.lr, cfg_.beta1, cfg_.beta2, cfg_.eps,
                                         cfg_.weightDecay);
    schedule().validate();
    if (cfg_.threads <= 0 && device_.is_cpu()) {
        // Data loading, pre-training and latent caching ran on every core; the GW steps may run
        // faster on one (autoGwThreads). A trainable convolution keeps every core.
        int64_t widest = 0;
        bool convolution = false;
        for (const auto& p : model_->trainableParameters()) {
            if (p.dim() == 2) widest = std::max(widest, p.numel());
            if (p.dim() > 2) convolution = true;
        }
        // The paired group holds every domain (below), and the hand-written step takes groups of two at most.
        const bool handwritten = model_->cpuStep() && domains_.size() <= 2 &&
                           CpuGWStep::unsupportedModel(model_->gwMod(), model_->lossMod(), model_->selection()).empty();
        const int t = convolution ? configureThreads(0) : configureThreads(autoGwThreads(cfg_.batchSize, widest, handwritten));
        if (log_)
            log_("GW steps on " + std::to_string(t) + (t == 1 ? " thread" : " threads") +
                 " (threads: 0 chooses by size; set threads to override)");
    }

    // Groups: every domain alone (all its training samples), then all domains paired.
    const int64_t n = domains_.front()->arrays.at(cfg_.trainSplit)->rows();
    std::vector<int64_t> all(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
    std::vector<int64_t> paired;
    if (!cfg_.pairedDataset.empty()) {
        data::H5Array idx(cfg_.resolvePath(cfg_.dataFile), cfg_.pairedDataset);
        auto t = idx.readAll().to(torch::kInt64).reshape({-1});
        paired.assign(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
        for (auto i : paired)
            if (i < 0 || i >= n)
                throw data::DataError(idx.file() + ":" + idx.dataset() + ": paired index " + std::to_string(i) +
                                      " is outside the training split's " + std::to_string(n) + " samples");
    } else {
        paired = data::pairedSubset(n, cfg_.pairedFraction, cfg_.pairedCount, cfg_.seed);
    }
    uint64_t seed = cfg_.seed * 1000003ULL + 17;
    for (auto& d : domains_) {
        Group g;
        g.domains = {d->cfg.name};
        g.sampler = std::make_unique<data::GroupSampler>(all, n, seed++);
        groups_.push_back(std::move(g));
    }
    if (domains_.size() >= 2 && !paired.empty()) {
        Group g;
        for (auto& d : domains_) g.domains.push_back(d->cfg.name);
        g.sampler = std::make_unique<data::GroupSampler>(paired, n, seed++);
        groups_.push_back(std::move(g));
    }
    if (log_) {
        std::ostringstream s;
        s << "groups:";
        for (const auto& [name, size] : groupSizes()) s << " " << name << " " << size;
        log_(s.str());
    }
    prepared_ = true;
}

std::vector<std::pair<std::string, int64_t>> Engine::groupSizes() const {
    std::vector<std::pair<std::string, int64_t>> r;
    for (const auto& g : groups_) r.emplace_back(groupName(g.domains), g.sampler->size());
    return r;
}

void Engine::openData() {
    const std::string dataFile = cfg_.resolvePath(cfg_.dataFile);
    if (!cfg_.dataImport.empty() && !dataFile.empty() && !fs::exists(dataFile)) {
        if (log_) log_("importing " + cfg_.dataImport + " into " + dataFile);
        data::importFashionMnist(data::kFashionMnistDir, dataFile);
    }
    for (const auto& dc : cfg_.domains) {
        auto d = std::make_unique<DomainState>();
        d->cfg = dc;
        d->file = cfg_.resolvePath(dc.file.empty() ? cfg_.dataFile : dc.file);
        for (const std::string& split : {cfg_.trainSplit, cfg_.valSplit, cfg_.testSplit}) {
            std::string path = dc.dataset;
            if (auto p = path.find("{split}"); p != std::string::npos) path.replace(p, 7, split);
            if (split != cfg_.trainSplit && !data::H5Array::exists(d->file, path)) continue;  // optional splits
            auto arr = std::make_shared<data::H5Array>(d->file, path);
            if (arr->rows() == 0) throw data::DataError(d->file + ":" + path + ": expected samples, found an empty dataset");
            const double mb = static_cast<double>(arr->rows() * arr->rowBytes()) / (1 << 20);
            if (mb <= static_cast<double>(cfg_.cacheMb)) d->raw.set(split, arr->readAll());
            d->arrays.set(split, arr);
        }
        domains_.push_back(std::move(d));
    }
    // Paired data: every domain of a split has the same sample count.
    for (const std::string& split : {cfg_.trainSplit, cfg_.valSplit, cfg_.testSplit}) {
        const data::H5Array* first = nullptr;
        for (const auto& d : domains_) {
            const auto* a = d->arrays.find(split);
            if (!a) continue;
            if (!first) first = a->get();
            else if ((*a)->rows() != first->rows())
                throw data::DataError("split '" + split + "': expected the same sample count in every domain, found " +
                                      std::to_string(first->rows()) + " in " + first->file() + ":" + first->dataset() +
                                      " and " + std::to_string((*a)->rows()) + " in " + (*a)->file() + ":" + (*a)->dataset());
        }
    }
}

void Engine::buildModules() {
    for (auto& d : domains_) {
        const auto& arr = *d->arrays.at(cfg_.trainSplit);
        DomainModuleSpec spec(d->cfg.module, d->cfg.params);
        int64_t features = 1;
        for (size_t i = 1; i < arr.shape().size(); ++i) features *= arr.shape()[i];
        spec.inputDim = features;
        spec.dataClasses = arr.intAttribute("num_classes", 0);
        try {
            d->module = makeDomainModule(spec);
            d->module->prepare(rawRows(*d, cfg_.trainSplit, {0}));  // checks the data's shape and dtype
        } catch (const std::invalid_argument& e) {
            throw ConfigError(cfg_.sourcePath + ": domains." + d->cfg.name + " (" + arr.file() + ":" + arr.dataset() +
                              ", stored " + arr.storedType() + "): " + e.what());
        }
        const std::pair<const char*, LossFamily> fams[] = {{"demi_cycle", LossFamily::DemiCycle}, {"cycle", LossFamily::Cycle},
                                                           {"translation", LossFamily::Translation}, {"fused", LossFamily::Fused}};
        for (const auto& [name, fam] : fams) {
            bool on = false;
            for (const auto& l : d->cfg.losses) on = on || l == name;
            d->module->setFamilyEnabled(fam, on);
        }
    }
    // The GW's settings against the latent sizes, before any pre-training (a selection that needs
    // equal sizes fails here, not minutes later).
    OrderedMap<int64_t> dims;
    for (auto& d : domains_) dims.set(d->cfg.name, d->module->latentDim());
    try {
        GlobalWorkspace::checkSettings(gwSettingsOf(cfg_), dims);
    } catch (const std::invalid_argument& e) {
        throw ConfigError(cfg_.sourcePath + ": " + e.what());
    }
}

torch::Tensor Engine::rawRows(DomainState& d, const std::string& split, const std::vector<int64_t>& idx) {
    if (const auto* all = d.raw.find(split))
        return all->index_select(0, torch::tensor(idx, torch::kInt64));
    return d.arrays.at(split)->readRows(idx);
}

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

void Engine::setHooks(std::function<void(const ProgressReport&)> pretrainProgress, std::function<bool()> stopRequested) {
    pretrainProgress_ = std::move(pretrainProgress);
    stopRequested_ = std::move(stopRequested);
}

void Engine::pretrainModule(DomainState& d) {
    const auto& pc = d.cfg.pretrain;
    if (pc.steps <= 0)
        throw ConfigError(cfg_.sourcePath + ": domains." + d.cfg.name + ".weights: expected a pre-trained weights file (" +
                          cfg_.resolvePath(d.cfg.weights) + ") or pretrain.steps > 0, found neither");
    auto& mod = *d.module;
    mod.unfreeze();
    mod.to(device_);
    const std::string& split = cfg_.trainSplit;
    const int64_t n = d.arrays.at(split)->rows();
    std::vector<int64_t> all(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
    data::GroupSampler sampler(all, n, cfg_.seed + 7);
    torch::manual_seed(cfg_.seed);
    FlatAdamW opt(mod.parameters(), pc.lr, 0.9, 0.999, 1e-8, pc.weightDecay);
    OneCycleSchedule sch;
    sch.maxLr = pc.lr;
    sch.totalSteps = pc.steps;
    if (log_) log_("pre-training domain " + d.cfg.name + " (" + mod.kind() + ") for " + std::to_string(pc.steps) + " steps");
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t s = 0; s < pc.steps; ++s) {
        auto x = mod.prepare(rawRows(d, split, sampler.next(pc.batchSize))).to(device_);
        auto out = mod.computeDomainLoss(x);
        if (!out) throw ConfigError("domain " + d.cfg.name + ": module " + mod.kind() + " has nothing to pre-train");
        opt.zeroGrad();
        out->loss.backward();
        opt.step(sch.lr(s), sch.beta1(s));
        if (stopRequested_ && stopRequested_())
            throw RunStopped("stopped while pre-training domain " + d.cfg.name + " (step " + std::to_string(s + 1) + ")");
        if (pretrainProgress_ && ((s + 1) % 20 == 0 || s + 1 == pc.steps)) {
            ProgressReport r;
            r.step = s + 1;
            r.totalSteps = pc.steps;
            const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            r.stepsPerSecond = (s + 1) / std::max(el, 1e-9);
            r.etaSeconds = (pc.steps - s - 1) / std::max(r.stepsPerSecond, 1e-9);
            const std::string prefix = "pretrain/" + d.cfg.name + "/";
            r.metrics.set(prefix + "loss", out->loss.item<double>());
            for (const auto& [k, v] : out->metrics) r.metrics.set(prefix + k, v.item<double>());
            pretrainProgress_(r);
        }
        if (log_ && ((s + 1) % 200 == 0 || s + 1 == pc.steps)) {
            const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::ostringstream line;
            line << "  pretrain " << d.cfg.name << " step " << (s + 1) << "/" << pc.steps << "  loss "
                 << out->loss.item<double>() << "  " << std::fixed << std::setprecision(1) << (s + 1) / el << " steps/s";
            log_(line.str());
        }
    }
    mod.eval();
    Checkpoint c;
    c.kind = "domain_module";
    c.step = pc.steps;
    c.note = d.cfg.name + " " + mod.kind();
    c.state = moduleState(mod);
    const std::string w = cfg_.resolvePath(d.cfg.weights);
    if (w.empty())
        throw ConfigError(cfg_.sourcePath + ": domains." + d.cfg.name + ".weights: expected a file to keep the pre-trained weights in, found nothing");
    saveCheckpoint(w, c);
    if (log_) log_("domain " + d.cfg.name + ": weights saved to " + w);
}

OrderedMap<double> Engine::pretrainDomains(bool force, const std::vector<std::string>& only) {
    configureThreads(cfg_.threads);
    device_ = parseDevice(cfg_.device);
    if (domains_.empty()) {
        openData();
        buildModules();
    }
    OrderedMap<double> report;
    for (auto& d : domains_) {
        if (!only.empty() && std::find(only.begin(), only.end(), d->cfg.name) == only.end()) continue;
        if (!d->module->needsPretraining()) continue;
        if (!force && fs::exists(cfg_.resolvePath(d->cfg.weights))) {
            if (log_) log_("domain " + d->cfg.name + ": weights exist (" + cfg_.resolvePath(d->cfg.weights) + "); --force retrains");
            continue;
        }
        pretrainModule(*d);
        // Validation of the unimodal objective on the val split (or train when there is none).
        const std::string split = d->arrays.contains(cfg_.valSplit) ? cfg_.valSplit : cfg_.trainSplit;
        torch::NoGradGuard ng;
        const int64_t n = std::min<int64_t>(d->arrays.at(split)->rows(), 5000);
        OrderedMap<double> sums;
        for (int64_t s = 0; s < n; s += 500) {
            std::vector<int64_t> idx;
            for (int64_t i = s; i < std::min(n, s + 500); ++i) idx.push_back(i);
            auto out = d->module->computeDomainLoss(d->module->prepare(rawRows(*d, split, idx)).to(device_));
            for (auto& [k, v] : out->metrics) {
                const double w = v.item<double>() * static_cast<double>(idx.size());
                if (auto* p = sums.find(k)) *p += w;
                else sums.set(k, w);
            }
        }
        for (auto& [k, v] : sums) report.set(d->cfg.name + "/" + k, v / static_cast<double>(n));
    }
    return report;
}

void Engine::cacheLatents(DomainState& d) {
    if (!d.module->isFrozen()) return;
    torch::NoGradGuard ng;
    auto& mod = *d.module;
    for (const auto& [split, arr] : d.arrays) {
        const int64_t n = arr->rows();
        std::vector<torch::Tensor> lat, in;
        for (int64_t s = 0; s < n; s += 2048) {
            std::vector<int64_t> idx;
            for (int64_t i = s; i < std::min(n, s + 2048); ++i) idx.push_back(i);
            auto x = mod.prepare(rawRows(d, split, idx)).to(device_);
            lat.push_back(mod.encode(x));
            if (mod.lossNeedsInput()) in.push_back(x);
        }
        d.latents.set(split, torch::cat(lat));
        if (!in.empty()) d.inputs.set(split, torch::cat(in));
    }
}

GroupBatch Engine::makeBatch(const std::vector<std::string>& domains, const std::string& split,
                             const std::vector<int64_t>& idx, bool training) {
    GroupBatch b;
    b.domains = domains;
    torch::Tensor index;
    for (const auto& name : domains) {
        DomainState* d = nullptr;
        for (auto& x : domains_)
            if (x->cfg.name == name) d = x.get();
        auto& mod = *d->module;
        if (mod.isFrozen()) {
            if (!index.defined()) index = torch::tensor(idx, torch::kInt64).to(device_);
            b.latents.set(name, d->latents.at(split).index_select(0, index));
            if (const auto* in = d->inputs.find(split)) b.inputs.set(name, in->index_select(0, index));
            else b.inputs.set(name, torch::Tensor());
        } else {
            auto x = mod.prepare(rawRows(*d, split, idx)).to(device_);
            if (training) mod.train();
            else mod.eval();
            b.latents.set(name, mod.encode(x));
            b.inputs.set(name, x);
        }
    }
    return b;
}

StepLosses Engine::trainStep() {
    if (!prepared_) prepare();
    if (step_ >= cfg_.steps)
        throw TrainingError("the run has done its " + std::to_string(cfg_.steps) + " steps (raise training.steps to go on)");
    std::vector<GroupBatch> batch;
    batch.reserve(groups_.size());
    for (auto& g : groups_) batch.push_back(makeBatch(g.domains, cfg_.trainSplit, g.sampler->next(cfg_.batchSize), true));
    optim_->zeroGrad();
    StepLosses r = model_->trainingStep(batch);
    if (cfg_.scheduler == "none") optim_->step(cfg_.lr, cfg_.beta1);
    else {
        const auto s = schedule();
        optim_->step(s.lr(step_), s.beta1(step_));
    }
    ++step_;
    if (!warned_ && log_) {
        warned_ = true;
        log_("GW step: " + model_->lastStepPath());
        for (const auto& [name, c] : cfg_.coefficients)
            if (c > 0 && !r.out.metrics.contains(name))
                log_("warning: loss.coefficients." + name + " names no metric this experiment computes; it adds nothing to the loss");
        for (const auto& f : r.skipped)
            log_("note: no group of this batch has a term for '" + f + "' (skipped, as every step will be)");
    }
    return r;
}

OrderedMap<double> Engine::evaluate(const std::string& which, int64_t maxSamples) {
    if (!prepared_) prepare();
    const std::string split = splitName(which);
    if (!hasSplit(which))
        throw data::DataError("split '" + split + "' is missing for some domain (expected " +
                              domains_.front()->cfg.dataset + " with {split} = " + split + ")");
    const std::string prefix = (which == "train" || which == "val" || which == "test") ? which : split;
    auto cpuGen = at::detail::getDefaultCPUGenerator();
    torch::Tensor rng = cpuGen.get_state();
    torch::NoGradGuard ng;
    const int64_t n = maxSamples >= 0 ? std::min(maxSamples, domains_.front()->arrays.at(split)->rows())
                                      : domains_.front()->arrays.at(split)->rows();
    OrderedMap<double> sums;
    std::vector<std::string> names;
    for (auto& d : domains_) names.push_back(d->cfg.name);
    for (int64_t s = 0; s < n; s += cfg_.valBatchSize) {
        std::vector<int64_t> idx;
        for (int64_t i = s; i < std::min(n, s + cfg_.valBatchSize); ++i) idx.push_back(i);
        std::vector<GroupBatch> groups;
        for (const auto& name : names) groups.push_back(makeBatch({name}, split, idx, false));
        if (names.size() >= 2) groups.push_back(makeBatch(names, split, idx, false));
        StepLosses r = model_->step(groups);
        const double w = static_cast<double>(idx.size());
        auto add = [&](const std::string& k, const torch::Tensor& v) {
            const double x = v.item<double>() * w;
            if (auto* p = sums.find(k)) *p += x;
            else sums.set(k, x);
        };
        add("loss", r.out.loss);
        for (const auto& [k, v] : r.out.metrics) add(k, v);
    }
    cpuGen.set_state(rng);
    OrderedMap<double> out;
    for (const auto& [k, v] : sums) out.set(prefix + "/" + k, v / static_cast<double>(n));
    return out;
}

std::vector<int64_t> Engine::pickSamples(const std::string& which, const std::string& mode, int64_t count, uint64_t seed) {
    if (!prepared_) prepare();
    const std::string split = splitName(which);
    if (!hasSplit(which)) throw data::DataError("split '" + split + "' is missing for some domain");
    const int64_t n = domains_.front()->arrays.at(split)->rows();
    std::vector<int64_t> out;
    if (mode == "random") {
        auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
        auto perm = torch::randperm(n, g, torch::kLong);
        for (int64_t i = 0; i < std::min(count, n); ++i) out.push_back(perm[i].item<int64_t>());
    } else if (mode == "per_class") {
        DomainState* cls = nullptr;
        for (auto& d : domains_)
            if (d->module->kind() == "class_label") cls = d.get();
        if (!cls) throw std::invalid_argument("per_class: the experiment has no class_label domain");
        const int64_t classes = cls->module->latentDim();
        std::vector<int64_t> taken(static_cast<size_t>(classes), 0);
        for (int64_t s = 0; s < n && int64_t(out.size()) < count * classes; s += 1024) {
            std::vector<int64_t> idx;
            for (int64_t i = s; i < std::min(n, s + 1024); ++i) idx.push_back(i);
            auto labels = cls->module->prepare(rawRows(*cls, split, idx));
            for (size_t k = 0; k < idx.size(); ++k) {
                const int64_t c = labels[static_cast<int64_t>(k)].item<int64_t>();
                if (c >= 0 && c < classes && taken[static_cast<size_t>(c)] < count) {
                    ++taken[static_cast<size_t>(c)];
                    out.push_back(idx[k]);
                }
            }
        }
        std::stable_sort(out.begin(), out.end(), [&](int64_t a, int64_t b) { return a < b; });
    } else if (mode == "first") {
        for (int64_t i = 0; i < std::min(count, n); ++i) out.push_back(i);
    } else {
        throw std::invalid_argument("sample mode '" + mode + "': expected random, per_class or first");
    }
    return out;
}

ExploreResult Engine::explore(const std::string& which, const std::vector<int64_t>& indices, int64_t pcaSamples) {
    if (!prepared_) prepare();
    const std::string split = splitName(which);
    if (!hasSplit(which)) throw data::DataError("split '" + split + "' is missing for some domain");
    const int64_t n = domains_.front()->arrays.at(split)->rows();
    for (auto i : indices)
        if (i < 0 || i >= n)
            throw data::DataError("sample " + std::to_string(i) + " is out of range: split '" + split + "' has " +
                                  std::to_string(n) + " samples");
    torch::NoGradGuard ng;
    auto cpuGen = at::detail::getDefaultCPUGenerator();
    const torch::Tensor rng = cpuGen.get_state();
    ExploreResult r;
    r.split = which;
    r.indices = indices;
    auto& gw = model_->gwMod();
    // Domain modules trained end to end are in training mode: batch norm must not use (or update)
    // batch statistics here.
    std::vector<bool> training;
    for (auto& d : domains_) {
        training.push_back(d->module->is_training());
        d->module->eval();
    }
    auto view = [&](DomainState& d, const torch::Tensor& z) {  // latent -> data space, CPU
        if (d.module->kind() == "class_label") return torch::softmax(z, 1).cpu();
        return d.module->decodeRaw(z).cpu();
    };
    TensorMap latents;
    for (auto& d : domains_) {
        r.domains.push_back({d->cfg.name, d->module->kind(), d->module->kind() == "class_label" ? d->module->latentDim() : 0});
        if (indices.empty()) continue;
        auto x = d->module->prepare(rawRows(*d, split, indices));
        if (d->module->kind() == "class_label") {
            if (!r.labels.defined()) r.labels = x.cpu();
            r.cells.set("input/" + d->cfg.name, torch::one_hot(x, d->module->latentDim()).to(torch::kFloat32).cpu());
        } else {
            r.cells.set("input/" + d->cfg.name, x.cpu());
        }
        latents.set(d->cfg.name, d->module->encode(x.to(device_)));
    }
    auto stateOf = [&](const std::string& d, const torch::Tensor& u) {
        TensorMap one;
        one.set(d, u);
        return torch::tanh(gw.encode(one).at(d));
    };
    if (!indices.empty()) {
        for (auto& d : domains_) {
            const std::string& name = d->cfg.name;
            const auto state = stateOf(name, latents.at(name));
            r.cells.set("demi_cycle/" + name, view(*d, gw.decode(state, {name}).at(name)));
            for (auto& e : domains_) {
                if (e.get() == d.get()) continue;
                const auto tr = gw.decode(state, {e->cfg.name}).at(e->cfg.name);
                r.cells.set("translation/" + name + "/" + e->cfg.name, view(*e, tr));
                const auto back = gw.decode(stateOf(e->cfg.name, tr), {name}).at(name);
                r.cells.set("cycle/" + name + "/" + e->cfg.name, view(*d, back));
            }
        }
    }
    if (pcaSamples > 0) {
        const int64_t m = std::min(pcaSamples, n);
        for (int64_t i = 0; i < m; ++i) r.pcaIndices.push_back(i * n / m);
        std::vector<torch::Tensor> states;
        for (auto& d : domains_) {
            auto x = d->module->prepare(rawRows(*d, split, r.pcaIndices));
            if (d->module->kind() == "class_label") {
                if (!r.pcaLabels.defined()) r.pcaLabels = x.cpu();
                r.cells.set("pca_input/" + d->cfg.name, torch::one_hot(x, d->module->latentDim()).to(torch::kFloat32).cpu());
            } else {
                r.cells.set("pca_input/" + d->cfg.name, x.cpu());
            }
            states.push_back(stateOf(d->cfg.name, d->module->encode(x.to(device_))).cpu().to(torch::kDouble));
        }
        auto all = torch::cat(states, 0);
        auto centred = all - all.mean(0, true);
        auto svd = torch::linalg_svd(centred, false);
        const auto& sv = std::get<1>(svd);
        const auto vh = std::get<2>(svd);
        const int64_t k = std::min<int64_t>(2, vh.size(0));
        r.pcaCoords = torch::zeros({all.size(0), 2}, torch::kDouble);
        r.pcaCoords.narrow(1, 0, k).copy_(centred.matmul(vh.narrow(0, 0, k).t()));
        r.pcaCoords = r.pcaCoords.to(torch::kFloat32);
        const double total = sv.pow(2).sum().item<double>();
        for (int64_t i = 0; i < k; ++i) r.pcaExplained.push_back(total > 0 ? sv[i].pow(2).item<double>() / total : 0);
    }
    for (size_t i = 0; i < domains_.size(); ++i) domains_[i]->module->train(training[i]);
    cpuGen.set_state(rng);
    return r;
}

Checkpoint Engine::makeCheckpoint() const {
    Checkpoint c;
    c.kind = "gw";
    c.configYaml = experimentToYaml(withAbsolutePaths(cfg_));
    c.step = step_;
    c.state = model_->stateDict();
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
        model_->loadStateDict(c.state);
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
    const fs::path dir(runDir);
    fs::create_directories(dir / "checkpoints");
    writeFileAtomically(runConfigPath(runDir), experimentToYaml(withAbsolutePaths(engine.config())));
    const fs::path csvPath = dir / "metrics.csv";
    truncateMetrics(csvPath, engine.step());
    const bool fresh = !fs::exists(csvPath);
    std::ofstream csv(csvPath, std::ios::app);
    if (fresh) csv << "step,metric,value\n";
    const auto& cfg = engine.config();
    RunResult result;
    result.checkpoint = runCheckpointPath(runDir);
    auto save = [&] { saveCheckpoint(result.checkpoint, engine.makeCheckpoint()); };

    auto t0 = std::chrono::steady_clock::now();
    int64_t stepsAtT0 = engine.step();
    while (engine.step() < engine.totalSteps()) {
        if (cb.stopRequested && cb.stopRequested()) {
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
            const double loss = r.out.loss.item<double>();
            rep.metrics.set("train/loss", loss);
            for (const auto& [k, v] : r.out.metrics) rep.metrics.set("train/" + k, v.item<double>());
            rep.metrics.set("train/lr", engine.currentLr());
            if (!std::isfinite(loss))
                throw TrainingError("step " + std::to_string(step) + ": the loss is " + fmt(loss) + "; the run stops" +
                                    (fs::exists(result.checkpoint)
                                         ? " and keeps its last checkpoint (" + result.checkpoint + ")"
                                         : " before its first checkpoint (lower optimizer.lr, or check the data for NaN)"));
            const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            rep.stepsPerSecond = el > 0 ? static_cast<double>(step - stepsAtT0) / el : 0;
            rep.etaSeconds = rep.stepsPerSecond > 0 ? static_cast<double>(rep.totalSteps - step) / rep.stepsPerSecond : 0;
            for (const auto& [k, v] : rep.metrics) csv << step << "," << k << "," << fmt(v) << "\n";
            csv.flush();
            if (cb.progress) cb.progress(rep);
        }
        if ((cfg.valEvery > 0 && step % cfg.valEvery == 0) || last) {
            if (engine.hasSplit("val")) {
                ProgressReport rep;
                rep.step = step;
                rep.totalSteps = engine.totalSteps();
                rep.validation = true;
                rep.metrics = engine.evaluate("val");
                for (const auto& [k, v] : rep.metrics) csv << step << "," << k << "," << fmt(v) << "\n";
                csv.flush();
                if (cb.progress) cb.progress(rep);
            }
        }
        if ((cfg.checkpointEvery > 0 && step % cfg.checkpointEvery == 0) || last) save();
    }
    if (result.stopped) save();
    result.step = engine.step();
    return result;
}

}  // namespace gw

// SPDX-License-Identifier: GPL-3.0-or-later
// Engine: pre-training domain modules on their own data (before a run, or `gw pretrain`), with the
// window's progress and stop hooks.
#include "model/run/engine.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "data/file_hash.h"
#include "model/cpu_step/conv_vae_step.h"
#include "model/cpu_step/glom_step.h"
#include "model/glom/glom.h"
#include "model/run/engine_internal.h"

namespace gw {
namespace fs = std::filesystem;

void Engine::setHooks(std::function<void(const ProgressReport&)> pretrainProgress, std::function<bool()> stopRequested) {
    pretrainProgress_ = std::move(pretrainProgress);
    stopRequested_ = std::move(stopRequested);
}

std::string Engine::pretrainTarget(const DomainState& d) const {
    const std::string key = cfg_.sourcePath + ": domains." + d.cfg.name + ".weights: ";
    std::string w = cfg_.resolvePath(d.cfg.weights);
    if (w.empty()) {
        if (runDir_.empty())
            throw ConfigError(key + "expected a file to keep the pre-trained weights in, found nothing (set weights, "
                                    "or pre-train within a run, which keeps them in its folder)");
        w = (fs::path(runDir_) / "pretrained" / (d.cfg.name + ".pt")).string();
    }
    // Before minutes of pre-training: the folder must exist or be creatable, and take a file.
    std::error_code ec;
    const fs::path parent = fs::absolute(w).parent_path();
    fs::create_directories(parent, ec);
    if (fs::is_directory(w)) throw ConfigError(key + w + " is a folder; expected a file name for the weights");
    const std::string probe = w + ".partial";
    const bool existed = fs::exists(probe);
    std::ofstream f(probe, std::ios::app);
    if (!f)
        throw ConfigError(key + "cannot write the pre-trained weights to " + w + " (" + std::strerror(errno) +
                          "); choose a writable place for them");
    f.close();
    if (!existed) fs::remove(probe, ec);
    return w;
}

void Engine::pretrainModule(DomainState& d) {
    const auto& pc = d.cfg.pretrain;
    if (pc.steps <= 0)
        throw ConfigError(cfg_.sourcePath + ": domains." + d.cfg.name + ".weights: expected a pre-trained weights file (" +
                          cfg_.resolvePath(d.cfg.weights) + ") or pretrain.steps > 0, found neither");
    const std::string w = pretrainTarget(d);
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
    cpu::PretrainStep step;  // the hand-written CPU step where it covers the module, else autograd
    cpu::GlomDomainStep glomStep;
    auto* glom = dynamic_cast<GlomDomain*>(&mod);
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t s = 0; s < pc.steps; ++s) {
        auto x = mod.prepare(rawRows(d, split, sampler.next(pc.batchSize))).to(device_);
        std::optional<LossOutput> out;
        if (glom) {  // GLOM's own hand-written step (or autograd, with the reason)
            opt.zeroGrad();
            out = glomStep.run(*glom, x);
            opt.step(sch.lr(s), sch.beta1(s));
        } else {
            out = step.run(mod, x, opt, sch.lr(s), sch.beta1(s));
        }
        if (!out) throw ConfigError("domain " + d.cfg.name + ": module " + mod.kind() + " has nothing to pre-train");
        if (log_ && s == 0) log_("  pretrain " + d.cfg.name + " step: " + (glom ? glomStep.lastPath() : step.lastPath()));
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
    saveCheckpoint(w, c);
    data::writeSha256Sidecar(w);
    if (d.cfg.weights.empty()) {  // kept in the run folder: the run's config.yaml names them
        const std::string abs = fs::absolute(w).lexically_normal().string();
        d.cfg.weights = abs;
        for (auto& dc : cfg_.domains)
            if (dc.name == d.cfg.name) dc.weights = abs;
    }
    if (log_) log_("domain " + d.cfg.name + ": weights saved to " + w);
}

OrderedMap<double> Engine::pretrainDomains(bool force, const std::vector<std::string>& only) {
    configureThreads(cfg_.threads);
    device_ = parseDevice(cfg_.device);
    if (domains_.empty()) {
        // Seeded before the modules draw their initial weights, as Engine::prepare does: LibTorch seeds
        // its default generator from the system's entropy, so without this `gw pretrain` gave other
        // weights on every run whatever the experiment's seed.
        torch::manual_seed(cfg_.seed);
        openData();
        buildModules();
    }
    OrderedMap<double> report;
    auto wanted = [&](const DomainState& d) {
        return (only.empty() || std::find(only.begin(), only.end(), d.cfg.name) != only.end()) && d.module->needsPretraining();
    };
    for (auto& d : domains_)  // every destination, before the first pre-training starts
        if (wanted(*d) && (force || !fs::exists(cfg_.resolvePath(d->cfg.weights)))) pretrainTarget(*d);
    for (auto& d : domains_) {
        if (!wanted(*d)) continue;
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
            const auto x = d->module->prepare(rawRows(*d, split, idx)).to(device_);
            auto metrics = d->module->computeDomainLoss(x)->metrics;
            // and in data space: the module's reading of its own posterior mean (a caption's greedy
            // decoding, an image's reconstruction), as validation scores a translation into it
            for (auto& [k, v] : d->module->dataMetrics(d->module->encode(x), x)) metrics.set(k, v);
            for (auto& [k, v] : metrics) {
                const double w = v.item<double>() * static_cast<double>(idx.size());
                if (auto* p = sums.find(k)) *p += w;
                else sums.set(k, w);
            }
        }
        for (auto& [k, v] : sums) report.set(d->cfg.name + "/" + k, v / static_cast<double>(n));
    }
    return report;
}

}  // namespace gw

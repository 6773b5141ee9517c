// SPDX-License-Identifier: GPL-3.0-or-later
#include "app/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>

#include "model/cpu_step/conv_vae_step.h"
#include "model/run/engine.h"
#include "model/glom/glom.h"

namespace gw {
namespace {

struct BenchConfig {
    const char* name;
    int64_t dimA, dimB, workspace, hidden;
    int layers;
    int64_t batch;
};
const BenchConfig kConfigs[] = {{"tutorial", 8, 16, 16, 64, 1, 32}, {"ssd", 11, 8, 12, 32, 3, 2056}, {"wide", 512, 512, 256, 1024, 2, 1024}};

double seconds(std::chrono::steady_clock::time_point a) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
}

void sync(const torch::Device& d) {
#ifdef GW_WITH_CUDA
    if (d.is_cuda()) torch::cuda::synchronize();
#endif
    (void)d;
}

/// Multiply-accumulates of one GW MLP pass per sample.
double mlpMacs(int64_t in, int64_t hidden, int64_t out, int layers) {
    return static_cast<double>(in * hidden + layers * hidden * hidden + hidden * out);
}

struct Result {
    double stepsPerSecond, loss, gflopPerStep;
    double referenceStepsPerSecond = 0, referenceTunedStepsPerSecond = 0;
    std::string path;  ///< GlobalWorkspace::lastStepPath
    double peak = 0;   ///< median matrix-product GFLOP/s, measured before each repeat (0: not measured)
};

double matmulGflops(const torch::Device& dev);

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

/// One run of the Python reference; its steps/s, or 0 when it failed. `tuned`: with our OpenMP and
/// allocator settings; otherwise as a user runs it (the settings `gw` gave itself removed).
/// Runs a reference script's command line; the number after its "steps/s ", or 0 when it failed.
double referenceStepsPerSecond(const std::string& cmd) {
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return 0;
    std::string out;
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    const int rc = pclose(p);
    const auto at = out.find("steps/s ");
    if (rc != 0 || at == std::string::npos) {
        std::cerr << "reference failed (" << cmd << "):\n" << out << "\n";
        return 0;
    }
    return std::stod(out.substr(at + 8));
}

double runReference(const BenchConfig& c, const BenchOptions& o, int threads, bool tuned) {
    std::string env = tuned ? "env OMP_WAIT_POLICY=PASSIVE MALLOC_MMAP_THRESHOLD_=33554432 "
                            : "env -u OMP_WAIT_POLICY -u GW_NO_REEXEC ";
    return referenceStepsPerSecond(env + o.python + " '" + o.reference + "' " + c.name + " --steps " +
                                   std::to_string(o.steps) + " --threads " + std::to_string(threads) + " --device " +
                                   (o.device == "cpu" ? "cpu" : "cuda") + " --flavour " + o.flavour + " 2>&1");
}

Result benchOne(const BenchConfig& c, const BenchOptions& o, const torch::Device& dev, int threads) {
    torch::manual_seed(0);
    OrderedMap<std::shared_ptr<DomainModule>> mods;
    DomainModuleSpec sa, sb;
    sa.set("latent_dim", c.dimA);
    sb.set("latent_dim", c.dimB);
    mods.set("a", makeDomainModule(sa));
    mods.set("b", makeDomainModule(sb));
    for (auto& [n, m] : mods) m->freeze();
    GWSettings s;
    s.workspaceDim = c.workspace;
    s.encoder = {c.hidden, c.layers};
    s.decoder = {c.hidden, c.layers};
    s.loss.coefficients = defaultCoefficients();  // and fused 1 for fusion, as the reference's step
    if (o.flavour == "fusion") s.loss.coefficients.set(metrics::info(metrics::Family::Fused).mean, 1.0);
    s.flavour = o.flavour;  // fusion: its default selection, random with temperature 0.2, as the reference
    GlobalWorkspace gwm(mods, s);
    gwm.to(dev);
    gwm.setCpuStep(!o.autograd);
    FlatAdamW opt(gwm.trainableParameters(), 1e-3);
    OneCycleSchedule sch;
    sch.maxLr = 1e-3;
    sch.totalSteps = 10 + static_cast<int64_t>(o.steps) * o.repeats;
    const int64_t B = c.batch;
    auto da = torch::randn({4 * B, c.dimA}, torch::TensorOptions().device(dev));
    auto db = torch::randn({4 * B, c.dimB}, torch::TensorOptions().device(dev));
    int64_t k = 0;
    auto step = [&](int64_t i) {
        auto a = da.narrow(0, (i % 4) * B, B), b = db.narrow(0, (i % 4) * B, B);
        std::vector<GroupBatch> g(3);
        g[0].domains = {"a"};
        g[0].latents.set("a", a);
        g[0].inputs.set("a", a);
        g[1].domains = {"b"};
        g[1].latents.set("b", b);
        g[1].inputs.set("b", b);
        auto pa = a.roll(1, 0), pb = b.roll(1, 0);
        g[2].domains = {"a", "b"};
        g[2].latents.set("a", pa);
        g[2].latents.set("b", pb);
        g[2].inputs.set("a", pa);
        g[2].inputs.set("b", pb);
        opt.zeroGrad();
        auto r = gwm.trainingStep(g);
        opt.step(sch.lr(k), sch.beta1(k));
        ++k;
        return r.out.loss;
    };
    for (int i = 0; i < 10; ++i) step(i);
    sync(dev);
    std::vector<double> rates, ref, refTuned;
    torch::Tensor loss;
    std::vector<double> peaks;
    for (int r = 0; r < o.repeats; ++r) {
        if (!o.skipMatmul) {
            // The machine's matrix-product rate drifts by 10% over a minute here, so it is measured
            // beside each repeat, on every core (or the forced count), and the step's count restored.
            configureThreads(o.threads);
            peaks.push_back(matmulGflops(dev));
            configureThreads(threads);
        }
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < o.steps; ++i) loss = step(i);
        const double l = loss.item<double>();  // synchronises
        (void)l;
        rates.push_back(o.steps / seconds(t0));
        if (!o.reference.empty()) {
            ref.push_back(runReference(c, o, threads, false));
            if (o.referenceTuned) refTuned.push_back(runReference(c, o, threads, true));
        }
    }
    // Passes the engine runs per step: 6 encoder and 6 decoder passes of B samples (demi-cycle and
    // cycle share the unpaired state; translation and contrastive share the paired encodings).
    const double macs = 3 * (mlpMacs(c.dimA, c.hidden, c.workspace, c.layers) + mlpMacs(c.dimB, c.hidden, c.workspace, c.layers)) +
                        3 * (mlpMacs(c.workspace, c.hidden, c.dimA, c.layers) + mlpMacs(c.workspace, c.hidden, c.dimB, c.layers));
    return {median(rates), loss.item<double>(), 6.0 * macs * static_cast<double>(B) / 1e9, median(ref), median(refTuned),
            gwm.lastStepPath(), median(peaks)};
}

double matmulGflops(const torch::Device& dev) {
    auto a = torch::randn({1024, 1024}, torch::TensorOptions().device(dev));
    auto b = torch::randn({1024, 1024}, torch::TensorOptions().device(dev));
    auto c = torch::mm(a, b);
    std::vector<double> r;
    for (int rep = 0; rep < 5; ++rep) {
        sync(dev);
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < 10; ++i) torch::mm_out(c, a, b);
        sync(dev);
        r.push_back(10 * 2.0 * 1024 * 1024 * 1024 / seconds(t0) / 1e9);
    }
    std::sort(r.begin(), r.end());
    return r[r.size() / 2];
}

/// `gw bench pretrain`: one pre-training step of the conv VAE of the Fashion-MNIST image domain (1 channel,
/// 32 px, ae_dim 64, latent 12, beta 0.1, batch 128) with FlatAdamW + OneCycle, as Engine::pretrainModule
/// runs it, on random images; the reference is pytorch_vae_reference.py with the same sizes and threads.
int benchPretrain(const BenchOptions& o, const torch::Device& dev) {
    const int threads = configureThreads(o.threads);
    std::vector<double> ours, ref;
    double loss = 0;
    for (int rep = 0; rep < o.repeats; ++rep) {
        torch::manual_seed(0);
        DomainModuleSpec spec("conv_vae");
        spec.set("channels", 1).set("image_size", 32).set("hidden_dim", 64).set("latent_dim", 12).set("beta", "0.1");
        auto m = makeDomainModule(spec);
        m->unfreeze();
        m->to(dev);
        FlatAdamW opt(m->parameters(), 2e-3, 0.9, 0.999, 1e-8, 1e-5);
        OneCycleSchedule sch;
        sch.maxLr = 2e-3;
        sch.totalSteps = 5 + o.steps;
        const int64_t B = 128;
        auto data = torch::rand({4 * B, 1, 32, 32}, torch::TensorOptions().device(dev));
        auto step = [&, ps = cpu::PretrainStep()](int64_t i) mutable { return ps.run(*m, data.narrow(0, (i % 4) * B, B), opt, sch.lr(i), sch.beta1(i))->loss; };
        for (int64_t i = 0; i < 5; ++i) step(i);
        sync(dev);
        const auto t0 = std::chrono::steady_clock::now();
        torch::Tensor last;
        for (int64_t i = 5; i < 5 + o.steps; ++i) last = step(i);
        loss = last.item<double>();
        ours.push_back(o.steps / seconds(t0));
        if (!o.reference.empty()) {
            const double r = referenceStepsPerSecond("env -u OMP_WAIT_POLICY -u GW_NO_REEXEC " + o.python + " '" + o.reference +
                                                     "' --steps " + std::to_string(o.steps) + " --threads " +
                                                     std::to_string(threads) + " --device " + (dev.is_cpu() ? "cpu" : "cuda") +
                                                     " 2>&1");
            if (r > 0) ref.push_back(r);
        }
    }
    const double s = median(ours), r = median(ref);
    if (o.json) {
        std::cout << "{\"config\": \"pretrain\", \"steps_per_s\": " << s << ", \"images_per_s\": " << s * 128
                  << ", \"loss\": " << loss << ", \"threads\": " << threads << ", \"reference_steps_per_s\": " << r << "}\n";
    } else {
        std::cout << "pretrain  steps/s " << std::fixed << std::setprecision(2) << s << "  images/s " << std::setprecision(0)
                  << s * 128 << "  loss " << std::setprecision(4) << loss << "  threads " << threads << " (median of "
                  << o.repeats << " x " << o.steps << " steps; conv VAE 1x32x32, ae_dim 64, latent 12, batch 128)\n";
        if (r > 0)
            std::cout << "          python reference steps/s " << std::setprecision(2) << r << "  ratio " << std::setprecision(2)
                      << s / r << "x\n";
    }
    return 0;
}

/// `gw bench glom`: glom-pytorch's README training step (docs/glom.md; denoising, AdamW) on random
/// images, at a size that runs here: dim 64, 4 levels, 28 px images of 1 channel in patches of 4 (49
/// columns), batch 16, 2·L = 8 iterations computed and state L + 1 = 5 read, as the reference script
/// (tests/python/glom_reference.py bench) does; and the same step computing only the 5 iterations the
/// loss reads (what GW Studio trains with).
int benchGlom(const BenchOptions& o, const torch::Device& dev) {
    const int threads = configureThreads(o.threads);
    const GlomOptions go{64, 4, 28, 4, 1, false, 0};
    const int64_t B = 16;
    std::vector<double> asRef, lean, ref;
    double loss = 0;
    for (int rep = 0; rep < o.repeats; ++rep) {
        for (int variant = 0; variant < 2; ++variant) {
            torch::manual_seed(0);
            GlomDenoiser m(go);
            m->to(dev);
            torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(1e-3));
            auto pool = torch::rand({4 * B, go.channels, go.imageSize, go.imageSize}, torch::TensorOptions().device(dev));
            auto step = [&](int64_t i) {
                const auto img = pool.narrow(0, (i % 4) * B, B);
                const auto recon = m->reconstruct(img + torch::randn_like(img), go.levels + 1, variant == 0 ? 2 * go.levels : -1);
                auto l = torch::mse_loss(recon, img);
                opt.zero_grad();
                l.backward();
                opt.step();
                return l;
            };
            for (int64_t i = 0; i < 3; ++i) step(i);
            sync(dev);
            const auto t0 = std::chrono::steady_clock::now();
            torch::Tensor last;
            for (int64_t i = 0; i < o.steps; ++i) last = step(i);
            loss = last.item<double>();
            (variant == 0 ? asRef : lean).push_back(o.steps / seconds(t0));
        }
        if (!o.reference.empty()) {
            const double r = referenceStepsPerSecond("env -u OMP_WAIT_POLICY -u GW_NO_REEXEC " + o.python + " '" + o.reference +
                                                     "' bench - --dim 64 --levels 4 --image 28 --patch 4 --channels 1 --batch 16"
                                                     " --steps " + std::to_string(o.steps) + " --threads " + std::to_string(threads) +
                                                     " 2>&1");
            if (r > 0) ref.push_back(r);
        }
    }
    const double a = median(asRef), l = median(lean), r = median(ref);
    if (o.json) {
        std::cout << "{\"config\": \"glom\", \"steps_per_s\": " << l << ", \"steps_per_s_all_iterations\": " << a
                  << ", \"loss\": " << loss << ", \"threads\": " << threads << ", \"reference_steps_per_s\": " << r << "}\n";
    } else {
        std::cout << std::fixed << std::setprecision(3) << "glom  steps/s " << a << " with the reference's 8 iterations, " << l
                  << " with the 5 the loss reads  threads " << threads << " (median of " << o.repeats << " x " << o.steps
                  << " steps; dim 64, 4 levels, 1x28x28, patch 4, batch 16)\n";
        if (r > 0)
            std::cout << "      python reference steps/s " << r << "  ratio " << std::setprecision(2) << a / r << "x (same iterations), "
                      << l / r << "x (as GW Studio trains)\n";
    }
    return 0;
}

}  // namespace

int runBench(const BenchOptions& o) {
    if (std::find(o.configs.begin(), o.configs.end(), "glom") != o.configs.end()) {
        if (o.configs.size() != 1) {
            std::cerr << "gw bench: glom times a different model; run it on its own\n";
            return 2;
        }
        return benchGlom(o, parseDevice(o.device));
    }
    if (std::find(o.configs.begin(), o.configs.end(), "pretrain") != o.configs.end()) {
        if (o.configs.size() != 1) {
            std::cerr << "gw bench: pretrain times a different step; run it on its own\n";
            return 2;
        }
        return benchPretrain(o, parseDevice(o.device));
    }
    const int threads = configureThreads(o.threads);  // the matrix product: every core unless told
    const torch::Device dev = parseDevice(o.device);
    double peak = 0;
    if (!o.skipMatmul) {
        peak = matmulGflops(dev);
        if (o.json) std::cout << "{\"config\": \"matmul\", \"gflops\": " << peak << ", \"threads\": " << threads << "}\n";
        else std::cout << "matmul 1024x1024x1024  " << std::fixed << std::setprecision(1) << peak << " GFLOP/s  threads "
                       << threads << "\n";
    }
    for (const auto& c : kConfigs) {
        if (!o.configs.empty() && std::find(o.configs.begin(), o.configs.end(), c.name) == o.configs.end()) continue;
        // `--threads 0` (the default) sizes the pools as the engine's `threads: 0` does for this GW,
        // and the Python reference gets the same count.
        const int64_t widest = std::max({c.dimA * c.hidden, c.dimB * c.hidden, c.hidden * c.hidden, c.hidden * c.workspace});
        const int threads = o.threads > 0 || !dev.is_cpu() ? configureThreads(o.threads)
                                                            : configureThreads(autoGwThreads(c.batch, widest, !o.autograd));
        const Result r = benchOne(c, o, dev, threads);
        const double gflops = r.stepsPerSecond * r.gflopPerStep;
        if (o.json) {
            std::cout << "{\"config\": \"" << c.name << "\", \"steps_per_s\": " << r.stepsPerSecond
                      << ", \"samples_per_s\": " << r.stepsPerSecond * 3 * c.batch << ", \"loss\": " << r.loss
                      << ", \"gflops\": " << gflops << ", \"matmul_gflops\": " << r.peak << ", \"threads\": " << threads
                      << ", \"reference_steps_per_s\": " << r.referenceStepsPerSecond
                      << ", \"reference_tuned_steps_per_s\": " << r.referenceTunedStepsPerSecond
                      << ", \"step\": \"" << r.path << "\"}\n";
        } else {
            std::cout << std::left << std::setw(9) << c.name << std::right << " steps/s " << std::fixed << std::setprecision(1)
                      << std::setw(8) << r.stepsPerSecond << "  samples/s " << std::setprecision(0) << std::setw(9)
                      << r.stepsPerSecond * 3 * c.batch << "  loss " << std::setprecision(4) << r.loss << "  "
                      << std::setprecision(1) << gflops << " GFLOP/s";
            if (r.peak > 0)
                std::cout << " (" << std::setprecision(0) << 100 * gflops / r.peak << "% of the " << std::setprecision(1)
                          << r.peak << " GFLOP/s matmul measured beside it)";
            std::cout << "  threads " << threads << " (median of " << o.repeats << " x " << o.steps << " steps)  step "
                      << r.path << "\n";
            if (r.referenceStepsPerSecond > 0)
                std::cout << "          python reference steps/s " << std::setprecision(1) << r.referenceStepsPerSecond
                          << "  ratio " << std::setprecision(2) << r.stepsPerSecond / r.referenceStepsPerSecond << "x\n";
            if (r.referenceTunedStepsPerSecond > 0)
                std::cout << "          python reference, tuned env, steps/s " << std::setprecision(1)
                          << r.referenceTunedStepsPerSecond << "  ratio " << std::setprecision(2)
                          << r.stepsPerSecond / r.referenceTunedStepsPerSecond << "x\n";
        }
    }
    return 0;
}

}  // namespace gw

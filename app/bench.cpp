// SPDX-License-Identifier: GPL-3.0-or-later
#include "app/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "model/cpu_step/blas.h"
#include "model/cpu_step/conv_vae_step.h"
#include "model/cpu_step/glom_step.h"
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

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
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
    return median(r);
}

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

/// The reference as a user runs it (the settings `gw` gave itself removed), or with them (`tuned`).
std::string pythonCommand(const BenchOptions& o, bool tuned) {
    return (tuned ? "env OMP_WAIT_POLICY=PASSIVE MALLOC_MMAP_THRESHOLD_=33554432 " : "env -u OMP_WAIT_POLICY -u GW_NO_REEXEC ") +
           o.python + " '" + o.reference + "' ";
}

/// What one timed repeat of our step gives: steps/s, a second rate where the benchmark has a variant
/// (GLOM: only the iterations the loss reads), and the last loss.
struct Timing {
    double rate = 0, rate2 = 0, loss = 0;
};

/// The measurements at one thread count, one entry per repeat.
struct Row {
    int threads = 1;
    std::vector<double> ours, ours2, ref, refTuned, peak;
    double loss = 0;
};

/// The thread counts to compare: the one forced by --threads, else each count from 1 to the cores, so
/// that each side is reported at its own best (on this 2-core VM PyTorch is about twice as slow on two
/// threads as on one, and the GW step's best count depends on its size).
std::vector<int> threadCounts(const BenchOptions& o, const torch::Device& dev) {
    if (o.threads > 0) return {o.threads};
    if (!dev.is_cpu()) return {configureThreads(0)};
    const int n = configureThreads(0);
    std::vector<int> v;
    for (int t = 1; t <= n; ++t) v.push_back(t);
    return v;
}

/// Interleaved repeats: in each repeat, every thread count (in alternating order, so that a drift of the
/// shared machine does not favour one count) times the matrix product, our step and the reference's.
std::vector<Row> measure(const BenchOptions& o, const torch::Device& dev, const std::vector<int>& counts,
                         const std::function<Timing(int)>& ours, const std::function<double(int, bool)>& reference) {
    std::vector<Row> rows;
    for (int t : counts) rows.push_back(Row{t, {}, {}, {}, {}, {}, 0});
    for (int rep = 0; rep < o.repeats; ++rep) {
        for (size_t k = 0; k < rows.size(); ++k) {
            Row& row = rows[rep % 2 == 0 ? k : rows.size() - 1 - k];
            configureThreads(row.threads);
            // The machine's matrix-product rate drifts by 10% over a minute here: measured beside each repeat.
            if (!o.skipMatmul) row.peak.push_back(matmulGflops(dev));
            const Timing tm = ours(row.threads);
            row.ours.push_back(tm.rate);
            if (tm.rate2 > 0) row.ours2.push_back(tm.rate2);
            row.loss = tm.loss;
            if (!o.reference.empty() && reference) {
                if (const double r = reference(row.threads, false); r > 0) row.ref.push_back(r);
                if (o.referenceTuned)
                    if (const double r = reference(row.threads, true); r > 0) row.refTuned.push_back(r);
            }
        }
    }
    return rows;
}

/// "median [min-max]" of the repeats, in steps/s.
std::string spread(const std::vector<double>& v, int precision) {
    if (v.empty()) return "-";
    std::ostringstream s;
    s << std::fixed << std::setprecision(precision) << median(v);
    if (v.size() > 1)
        s << " [" << *std::min_element(v.begin(), v.end()) << "-" << *std::max_element(v.begin(), v.end()) << "]";
    return s.str();
}

std::string jsonList(const std::vector<double>& v) {
    std::ostringstream s;
    s << "[";
    for (size_t i = 0; i < v.size(); ++i) s << (i ? ", " : "") << v[i];
    return s.str() + "]";
}

const Row* bestOf(const std::vector<Row>& rows, std::vector<double> Row::*field) {
    const Row* best = nullptr;
    for (const auto& r : rows)
        if (!(r.*field).empty() && (!best || median(r.*field) > median(best->*field))) best = &r;
    return best;
}

/// What a benchmark prints beside the shared columns.
struct Labels {
    std::string name;            ///< first word of each line ("tutorial", "pretrain", "glom")
    std::string what;            ///< the step, for the "(median of ...)" note
    double gflopPerStep = 0;     ///< FLOPs of one step of `ours`, in GFLOP (formula in docs/benchmarks.md)
    double gflopPerStep2 = 0;    ///< the same for ours2 (GLOM's lean variant)
    std::string rate2Name;       ///< label of ours2 ("" when none)
    int64_t samplesPerStep = 0;  ///< samples (or images) per step, for samples/s
    std::string extraText;       ///< appended to each of our lines (e.g. "step hand-written")
    std::string extraJson;       ///< appended to each JSON object (e.g. "\"step\": \"hand-written\"")
};

void report(const BenchOptions& o, const Labels& l, const std::vector<Row>& rows) {
    const int prec = l.gflopPerStep > 1 ? 2 : 1;
    const std::string kernels = cpu::blasCoreName();
    for (const auto& r : rows) {
        const double s = median(r.ours), peak = median(r.peak), gflops = s * l.gflopPerStep;
        if (o.json) {
            std::cout << "{\"config\": \"" << l.name << "\", \"threads\": " << r.threads << ", \"steps_per_s\": " << s
                      << ", \"steps_per_s_repeats\": " << jsonList(r.ours) << ", \"samples_per_s\": " << s * l.samplesPerStep
                      << ", \"loss\": " << r.loss << ", \"gflops\": " << gflops << ", \"matmul_gflops\": " << peak
                      << ", \"blas_kernels\": \"" << kernels << "\"";
            if (!l.rate2Name.empty())
                std::cout << ", \"steps_per_s_" << l.rate2Name << "\": " << median(r.ours2) << ", \"gflops_" << l.rate2Name
                          << "\": " << median(r.ours2) * l.gflopPerStep2;
            std::cout << ", \"reference_steps_per_s\": " << median(r.ref) << ", \"reference_steps_per_s_repeats\": " << jsonList(r.ref)
                      << ", \"reference_tuned_steps_per_s\": " << median(r.refTuned);
            if (!l.extraJson.empty()) std::cout << ", " << l.extraJson;
            std::cout << "}\n";
            continue;
        }
        std::cout << std::left << std::setw(9) << l.name << std::right << " steps/s " << spread(r.ours, prec);
        if (!l.rate2Name.empty()) std::cout << "  " << l.rate2Name << " steps/s " << spread(r.ours2, prec);
        std::cout << "  samples/s " << std::fixed << std::setprecision(0) << s * l.samplesPerStep << "  loss " << std::setprecision(4)
                  << r.loss << "  " << std::setprecision(1) << gflops << " GFLOP/s";
        if (peak > 0)
            std::cout << " (" << std::setprecision(0) << 100 * gflops / peak << "% of the " << std::setprecision(1) << peak
                      << " GFLOP/s matmul beside it"
                      << (kernels.empty() ? std::string() : ", OpenBLAS " + kernels + " kernels") << ")";
        if (!r.ours2.empty())
            std::cout << ", " << l.rate2Name << " " << std::setprecision(1) << median(r.ours2) * l.gflopPerStep2 << " GFLOP/s";
        std::cout << "  threads " << r.threads << " (median [min-max] of " << o.repeats << " x " << o.steps << " steps; " << l.what << ")";
        if (!l.extraText.empty()) std::cout << "  " << l.extraText;
        std::cout << "\n";
        if (!r.ref.empty())
            std::cout << "          python reference steps/s " << spread(r.ref, prec) << "  ratio " << std::fixed << std::setprecision(2)
                      << s / median(r.ref) << "x" << (r.ours2.empty() ? std::string() : ", " + l.rate2Name + " " + [&] {
                             std::ostringstream x;
                             x << std::fixed << std::setprecision(2) << median(r.ours2) / median(r.ref) << "x";
                             return x.str();
                         }()) << " at " << r.threads << (r.threads == 1 ? " thread" : " threads") << "\n";
        if (!r.refTuned.empty())
            std::cout << "          python reference, tuned env, steps/s " << spread(r.refTuned, prec) << "  ratio " << std::fixed
                      << std::setprecision(2) << s / median(r.refTuned) << "x\n";
    }
    const Row* ours = bestOf(rows, &Row::ours);
    const Row* ref = bestOf(rows, &Row::ref);
    if (ours && ref) {
        const double a = median(ours->ours), b = median(ref->ref);
        if (o.json) {
            std::cout << "{\"config\": \"" << l.name << "\", \"best\": true, \"steps_per_s\": " << a << ", \"threads\": " << ours->threads
                      << ", \"reference_steps_per_s\": " << b << ", \"reference_threads\": " << ref->threads << ", \"ratio\": " << a / b << "}\n";
        } else {
            auto on = [](int t) { return std::to_string(t) + (t == 1 ? " thread" : " threads"); };
            std::cout << "          best vs best: " << std::fixed << std::setprecision(prec) << a << " steps/s on " << on(ours->threads)
                      << " against the reference's " << b << " on " << on(ref->threads) << "  ratio " << std::setprecision(2) << a / b
                      << "x\n";
        }
    }
}

/// One GW of a configuration, built once and timed at each thread count.
class GwBench {
public:
    GwBench(const BenchConfig& c, const BenchOptions& o, const torch::Device& dev, int64_t totalSteps) : c_(c), dev_(dev) {
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
        gw_ = std::make_unique<GlobalWorkspace>(mods, s);
        gw_->to(dev);
        gw_->setCpuStep(!o.autograd);
        opt_ = std::make_unique<FlatAdamW>(gw_->trainableParameters(), 1e-3);
        sch_.maxLr = 1e-3;
        sch_.totalSteps = totalSteps;
        da_ = torch::randn({4 * c.batch, c.dimA}, torch::TensorOptions().device(dev));
        db_ = torch::randn({4 * c.batch, c.dimB}, torch::TensorOptions().device(dev));
    }
    torch::Tensor step() {
        const int64_t B = c_.batch, i = k_;
        auto a = da_.narrow(0, (i % 4) * B, B), b = db_.narrow(0, (i % 4) * B, B);
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
        opt_->zeroGrad();
        auto r = gw_->trainingStep(g);
        opt_->step(sch_.lr(std::min(k_, sch_.totalSteps - 1)), sch_.beta1(std::min(k_, sch_.totalSteps - 1)));
        ++k_;
        return r.out.loss;
    }
    Timing time(int steps, int warmup) {
        for (int i = 0; i < warmup; ++i) step();
        sync(dev_);
        if (steps <= 0) return {};
        const auto t0 = std::chrono::steady_clock::now();
        torch::Tensor loss;
        for (int i = 0; i < steps; ++i) loss = step();
        const double l = loss.item<double>();  // synchronises
        return {steps / seconds(t0), 0, l};
    }
    std::string path() const { return gw_->lastStepPath(); }

private:
    BenchConfig c_;
    torch::Device dev_;
    std::unique_ptr<GlobalWorkspace> gw_;
    std::unique_ptr<FlatAdamW> opt_;
    OneCycleSchedule sch_;
    torch::Tensor da_, db_;
    int64_t k_ = 0;
};

/// FLOPs of one forward pass of the conv VAE per image, as multiply-adds counted from the layers' shapes
/// (model/domains/domain_module.cpp ConvVaeDomain): a convolution costs Cin·Cout·k²·Hout·Wout, a
/// transposed one Cin·Cout·k²·Hin·Win, a linear layer in·out; batch-norm, ReLU, sigmoid and the loss are
/// left out (element-wise, under 1%).
double convVaeForwardMacs(int64_t channels, int64_t size, int64_t aeDim, int64_t latent) {
    double macs = 0;
    int64_t c = channels, s = size;
    for (int64_t out : {aeDim / 8, aeDim / 4, aeDim / 2, aeDim}) {  // Conv k4 s2 p1: s -> s/2
        s /= 2;
        macs += double(c) * out * 16 * s * s;
        c = out;
    }
    macs += 2.0 * (aeDim * s * s) * latent;                       // q_mean, q_logvar
    macs += double(latent) * aeDim * 64;                          // ConvT k8: 1x1 -> 8x8
    macs += double(aeDim) * (aeDim / 2) * 16 * 8 * 8;             // ConvT k4 s2: 8 -> 16
    macs += double(aeDim / 2) * (aeDim / 4) * 16 * 16 * 16;       // ConvT k4 s2: 16 -> 32
    macs += double(aeDim / 4) * channels * 16 * 32 * 32;          // pad to 33, Conv k4 p1: -> 32
    return macs;
}

/// `gw bench pretrain`: one pre-training step of the conv VAE of the Fashion-MNIST image domain (1 channel,
/// 32 px, ae_dim 64, latent 12, beta 0.1, batch 128) with FlatAdamW + OneCycle, as Engine::pretrainModule
/// runs it, on random images; the reference is pytorch_vae_reference.py with the same sizes and threads.
int benchPretrain(const BenchOptions& o, const torch::Device& dev) {
    const auto counts = threadCounts(o, dev);
    const int64_t B = 128;
    torch::manual_seed(0);
    DomainModuleSpec spec("conv_vae");
    spec.set("channels", 1).set("image_size", 32).set("hidden_dim", 64).set("latent_dim", 12).set("beta", "0.1");
    auto m = makeDomainModule(spec);
    m->unfreeze();
    m->to(dev);
    FlatAdamW opt(m->parameters(), 2e-3, 0.9, 0.999, 1e-8, 1e-5);
    OneCycleSchedule sch;
    sch.maxLr = 2e-3;
    sch.totalSteps = static_cast<int64_t>(o.repeats) * counts.size() * (o.steps + 2) + 5;
    auto data = torch::rand({4 * B, 1, 32, 32}, torch::TensorOptions().device(dev));
    int64_t k = 0;
    cpu::PretrainStep ps;  // the hand-written conv VAE step where it covers the module, as Engine::pretrainModule
    auto step = [&] {
        torch::Tensor loss;
        if (o.autograd) {
            auto out = m->computeDomainLoss(data.narrow(0, (k % 4) * B, B));
            opt.zeroGrad();
            out->loss.backward();
            opt.step(sch.lr(k), sch.beta1(k));
            loss = out->loss;
        } else {
            loss = ps.run(*m, data.narrow(0, (k % 4) * B, B), opt, sch.lr(k), sch.beta1(k))->loss;
        }
        ++k;
        return loss;
    };
    for (int i = 0; i < 3; ++i) step();
    const auto rows = measure(
        o, dev, counts,
        [&](int) {
            for (int i = 0; i < 2; ++i) step();  // after a change of thread count
            sync(dev);
            const auto t0 = std::chrono::steady_clock::now();
            torch::Tensor last;
            for (int i = 0; i < o.steps; ++i) last = step();
            const double l = last.item<double>();
            return Timing{o.steps / seconds(t0), 0, l};
        },
        [&](int threads, bool tuned) {
            return referenceStepsPerSecond(pythonCommand(o, tuned) + "--steps " + std::to_string(o.steps) + " --threads " +
                                           std::to_string(threads) + " --device " + (dev.is_cpu() ? "cpu" : "cuda") + " 2>&1");
        });
    Labels l;
    l.name = "pretrain";
    l.what = "conv VAE 1x32x32, ae_dim 64, latent 12, batch 128";
    l.gflopPerStep = 3 * 2 * convVaeForwardMacs(1, 32, 64, 12) * B / 1e9;
    l.samplesPerStep = B;
    l.extraText = "step " + (o.autograd ? std::string("autograd (--autograd)") : ps.lastPath());
    l.extraJson = "\"step\": \"" + (o.autograd ? std::string("autograd") : ps.lastPath()) + "\"";
    report(o, l, rows);
    return 0;
}

/// FLOPs of one GLOM iteration per image, as multiply-adds (model/glom/glom.cpp): the bottom-up MLPs of
/// the L levels and the top-down ones of L − 1, each d -> 4d -> d over the n columns, and the consensus
/// attention of each level (q·kᵀ and the weights times q: 2·n²·d).
double glomIterationMacs(const GlomOptions& g) {
    const double n = static_cast<double>(g.columns()), d = static_cast<double>(g.dim), L = static_cast<double>(g.levels);
    return (2 * L - 1) * n * 8 * d * d + L * 2 * n * n * d;
}

/// `gw bench glom`: glom-pytorch's README training step (docs/glom.md; denoising, AdamW) on random
/// images, at a size that runs here: dim 64, 4 levels, 28 px images of 1 channel in patches of 4 (49
/// columns), batch 16, 2·L = 8 iterations computed and state L + 1 = 5 read, as the reference script
/// (tests/python/glom_reference.py bench) does; and the same step computing only the 5 iterations the
/// loss reads (what GW Studio trains with).
int benchGlom(const BenchOptions& o, const torch::Device& dev) {
    const auto counts = threadCounts(o, dev);
    const GlomOptions go{64, 4, 28, 4, 1, false, 0};
    const int64_t B = 16;
    struct Variant {
        GlomDenoiser m{nullptr};
        std::unique_ptr<FlatAdamW> opt;
        cpu::GlomStep hand;  // the hand-written CPU step (model/cpu_step/glom_step.h)
        std::string path;
    };
    Variant v[2];
    for (auto& x : v) {
        torch::manual_seed(0);
        x.m = GlomDenoiser(go);
        x.m->to(dev);
        // torch.optim.AdamW's defaults, as the reference's step uses them (weight decay 0.01).
        x.opt = std::make_unique<FlatAdamW>(x.m->parameters(), 1e-3, 0.9, 0.999, 1e-8, 1e-2);
    }
    auto pool = torch::rand({4 * B, go.channels, go.imageSize, go.imageSize}, torch::TensorOptions().device(dev));
    int64_t k = 0;
    auto step = [&](int variant) {
        const auto img = pool.narrow(0, (k++ % 4) * B, B);
        const auto noisy = img + torch::randn_like(img);
        const int64_t compute = variant == 0 ? 2 * go.levels : -1;
        Variant& x = v[variant];
        x.opt->zeroGrad();
        const std::string why = o.autograd ? std::string("--autograd") : cpu::GlomStep::unsupported(*x.m, noisy, go.levels + 1);
        torch::Tensor l;
        if (why.empty()) {
            x.path = "hand-written";
            l = x.hand.run(*x.m, noisy, img, go.levels + 1, compute);
        } else {
            x.path = "autograd (" + why + ")";
            l = torch::mse_loss(x.m->reconstruct(noisy, go.levels + 1, compute), img);
            l.backward();
        }
        x.opt->step();
        return l;
    };
    auto timeVariant = [&](int variant, double* loss) {
        for (int i = 0; i < 2; ++i) step(variant);
        sync(dev);
        const auto t0 = std::chrono::steady_clock::now();
        torch::Tensor last;
        for (int i = 0; i < o.steps; ++i) last = step(variant);
        *loss = last.item<double>();
        return o.steps / seconds(t0);
    };
    const auto rows = measure(
        o, dev, counts,
        [&](int) {
            double loss = 0, unused = 0;
            const double all = timeVariant(0, &loss);
            const double lean = timeVariant(1, &unused);
            return Timing{all, lean, loss};
        },
        [&](int threads, bool tuned) {
            return referenceStepsPerSecond(pythonCommand(o, tuned) + "bench - --dim 64 --levels 4 --image 28 --patch 4 --channels 1 --batch 16"
                                                                     " --steps " + std::to_string(o.steps) + " --threads " +
                                           std::to_string(threads) + " 2>&1");
        });
    // The reference's step computes 2·L iterations forward and back-propagates through the L + 1 the loss
    // reads (twice a forward each); the lean one computes those L + 1 only. Patches in and out are added.
    const double it = glomIterationMacs(go);
    const double io = 2.0 * go.columns() * (go.patchSize * go.patchSize * go.channels) * go.dim;
    const double read = static_cast<double>(go.levels + 1);
    Labels l;
    l.name = "glom";
    l.what = "dim 64, 4 levels, 1x28x28, patch 4, batch 16; the reference's 8 iterations, then the 5 the loss reads";
    l.gflopPerStep = 2 * (it * (2 * go.levels + 2 * read) + 3 * io) * B / 1e9;
    l.gflopPerStep2 = 2 * (it * 3 * read + 3 * io) * B / 1e9;
    l.rate2Name = "lean";
    l.samplesPerStep = B;
    l.extraText = "step " + v[1].path;
    l.extraJson = "\"step\": \"" + v[1].path + "\"";
    report(o, l, rows);
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
    const torch::Device dev = parseDevice(o.device);
    const auto counts = threadCounts(o, dev);
    for (const auto& c : kConfigs) {
        if (!o.configs.empty() && std::find(o.configs.begin(), o.configs.end(), c.name) == o.configs.end()) continue;
        GwBench b(c, o, dev, 10 + static_cast<int64_t>(o.repeats) * counts.size() * (o.steps + 2));
        configureThreads(counts.front());
        b.time(0, 10);
        const auto rows = measure(
            o, dev, counts, [&](int) { return b.time(o.steps, 2); },
            [&](int threads, bool tuned) {
                return referenceStepsPerSecond(pythonCommand(o, tuned) + c.name + " --steps " + std::to_string(o.steps) + " --threads " +
                                               std::to_string(threads) + " --device " + (o.device == "cpu" ? "cpu" : "cuda") +
                                               " --flavour " + o.flavour + " 2>&1");
            });
        // Passes the engine runs per step: 6 encoder and 6 decoder passes of B samples (demi-cycle and
        // cycle share the unpaired state; translation and contrastive share the paired encodings); each
        // multiply-add is 2 FLOPs, and the backward pass costs twice the forward.
        const double macs = 3 * (mlpMacs(c.dimA, c.hidden, c.workspace, c.layers) + mlpMacs(c.dimB, c.hidden, c.workspace, c.layers)) +
                            3 * (mlpMacs(c.workspace, c.hidden, c.dimA, c.layers) + mlpMacs(c.workspace, c.hidden, c.dimB, c.layers));
        const int64_t widest = std::max({c.dimA * c.hidden, c.dimB * c.hidden, c.hidden * c.hidden, c.hidden * c.workspace});
        Labels l;
        l.name = c.name;
        l.what = o.flavour;
        l.gflopPerStep = 6.0 * macs * static_cast<double>(c.batch) / 1e9;
        l.samplesPerStep = 3 * c.batch;
        l.extraText = "step " + b.path();
        l.extraJson = "\"step\": \"" + b.path() + "\"";
        report(o, l, rows);
        if (!o.json && counts.size() > 1 && dev.is_cpu())
            std::cout << "          (a run's `threads: 0` trains this GW on " << autoGwThreads(c.batch, widest, !o.autograd) << ")\n";
    }
    return 0;
}

}  // namespace gw

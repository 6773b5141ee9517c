// SPDX-License-Identifier: GPL-3.0-or-later
// The hand-written CPU step (model/gw/flavours/*_cpu.cpp on the kernels of model/cpu_step/) against autograd: for each configuration, the same GW
// and batch give the same loss, the same metrics (names, order, values) and the same gradient of every
// parameter; a run of steps stays on the autograd run's losses; what it cannot take goes to autograd
// with the reason.
#include <QtTest/QtTest>

#include <cmath>
#include <map>
#include <stdexcept>

#include "model/run/engine.h"
#include "model/gw/global_workspace.h"
#include "model/core/optim.h"
#include "model/cpu_step/conv_vae_step.h"

using namespace gw;

namespace {

struct Setup {
    std::vector<std::string> kinds;  ///< per domain: identity or class_label
    std::vector<int64_t> dims;
    int64_t W = 16, hidden = 24;
    int layers = 1;
    std::vector<std::pair<std::string, double>> coefs{{"demi_cycles", 1}, {"cycles", 1}, {"translations", 1}, {"contrastives", 0.1}};
    std::string selection = "single_domain";
    std::string flavour = "two_domains";
    bool learnLogitScale = false;
    std::vector<std::vector<std::string>> groups;  ///< empty: {d} for each, then all pairs
    std::vector<std::pair<std::string, LossFamily>> off;
    int64_t batch = 12;
    double logitScale = 1.3;  ///< exp: 3.7, the contrastive's fixed-shift softmax; above log 40, each row's max
};

std::shared_ptr<GlobalWorkspace> makeGW(const Setup& s, uint64_t seed) {
    torch::manual_seed(seed);
    OrderedMap<std::shared_ptr<DomainModule>> mods;
    for (size_t i = 0; i < s.kinds.size(); ++i) {
        DomainModuleSpec spec;
        spec.kind = s.kinds[i];
        spec.set(spec.kind == "class_label" ? "num_classes" : "latent_dim", s.dims[i]);
        auto m = makeDomainModule(spec);
        m->freeze();
        mods.set(std::string(1, char('a' + i)), m);
    }
    for (const auto& [d, f] : s.off) mods.at(d)->setFamilyEnabled(f, false);
    GWSettings g;
    g.workspaceDim = s.W;
    g.encoder = {s.hidden, s.layers};
    g.decoder = {s.hidden, s.layers};
    for (const auto& [k, c] : s.coefs) g.loss.coefficients.set(k, c);
    g.selection = s.selection;
    g.flavour = s.flavour;
    g.loss.learnLogitScale = s.learnLogitScale;
    g.loss.logitScale = s.logitScale;
    return std::make_shared<GlobalWorkspace>(mods, g);
}

std::vector<GroupBatch> makeBatch(GlobalWorkspace& gw, const Setup& s, uint64_t seed) {
    torch::manual_seed(seed);
    const auto& names = gw.gwMod().domainNames();
    std::vector<std::vector<std::string>> groups = s.groups;
    if (groups.empty()) {
        for (const auto& d : names) groups.push_back({d});
        for (size_t i = 0; i < names.size(); ++i)
            for (size_t j = i + 1; j < names.size(); ++j) groups.push_back({names[i], names[j]});
    }
    std::vector<GroupBatch> out;
    for (const auto& g : groups) {
        GroupBatch b;
        b.domains = g;
        for (const auto& d : g) {
            auto& mod = gw.gwMod().domainModule(d);
            if (mod.kind() == "class_label") {
                auto cls = torch::randint(mod.latentDim(), {s.batch}, torch::kInt64);
                b.inputs.set(d, cls);
                b.latents.set(d, mod.encode(cls));
            } else {
                auto x = torch::randn({s.batch, mod.latentDim()});
                b.latents.set(d, x);
                b.inputs.set(d, x);
            }
        }
        out.push_back(std::move(b));
    }
    return out;
}

OrderedMap<torch::Tensor> grads(GlobalWorkspace& gw) {
    OrderedMap<torch::Tensor> g;
    for (const auto& p : gw.named_parameters())
        if (p.value().requires_grad()) {
            if (!p.value().grad().defined()) throw std::runtime_error("no gradient for " + p.key());
            g.set(p.key(), p.value().grad().clone());
            p.value().mutable_grad().zero_();
        }
    return g;
}

/// A conv_vae module in training mode, its weights drawn from `seed`.
std::shared_ptr<DomainModule> makeConvVae(int64_t channels, int64_t size, int64_t aeDim, int64_t latent, uint64_t seed) {
    torch::manual_seed(seed);
    DomainModuleSpec spec("conv_vae");
    spec.set("channels", channels).set("image_size", size).set("hidden_dim", aeDim).set("latent_dim", latent).set("beta", "0.1");
    auto m = makeDomainModule(spec);
    m->unfreeze();
    return m;
}

/// max |a − b| ≤ tol · max(1, max |a|): relative where the values are large.
bool near(const torch::Tensor& a, const torch::Tensor& b, double tol, const std::string& what) {
    const double scale = std::max(1.0, a.abs().max().item<double>());
    const double diff = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
    if (diff <= tol * scale) return true;
    qWarning("%s: max difference %g at scale %g", what.c_str(), diff, scale);
    return false;
}

/// The biases of the transposed convolutions that feed a batch norm: their gradient is zero but
/// for rounding (the norm subtracts the channel mean), so AdamW moves them by ±lr either way.
bool feedsBatchNorm(const std::string& name) {
    return name == "decoder.0.bias" || name == "decoder.3.bias" || name == "decoder.6.bias";
}

}  // namespace

class TestCpuStep : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void equalsAutograd_data() {
        QTest::addColumn<int>("which");
        const char* names[] = {"tutorial shape", "no extra hidden layer", "two extra hidden layers", "class label domain",
                               "three domains", "per-metric coefficients", "learnable logit scale", "families off",
                               "fixed_shared selection", "translations only", "unpaired groups only",
                               "Fashion-MNIST shape (B 256)", "fusion: tutorial shape, random selection",
                               "fusion: class label domain, fixed_shared", "fusion: a group of three domains",
                               "fusion: per-metric coefficients", "fusion: families off, learnable logit scale",
                               "fusion: single_domain selection, two layers",
                               "logit scale 66.7 (softmaxes shifted by their maxima), B 96",
                               "fusion: logit scale 66.7, learnable, B 96"};
        for (int i = 0; i < 20; ++i) QTest::newRow(names[i]) << i;
    }
    void equalsAutograd() {
        QFETCH(int, which);
        Setup s;
        s.kinds = {"identity", "identity"};
        s.dims = {8, 16};
        switch (which) {
        case 1: s.layers = 0; break;
        case 2: s.layers = 2; break;
        case 3: s.kinds = {"identity", "class_label"}; s.dims = {8, 5}; break;
        case 4: s.kinds = {"identity", "class_label", "identity"}; s.dims = {8, 4, 6}; break;
        case 5: s.coefs = {{"translation_a_to_b", 2}, {"cycle_b_through_a", 0.5}, {"demi_cycles", 1}, {"contrastive_a_and_b", 0.3},
                           {"contrastive_a_and_b_logit_scale", 0.01}, {"cycles", 0}};
            break;
        case 6: s.learnLogitScale = true; break;
        case 7: s.off = {{"a", LossFamily::DemiCycle}, {"b", LossFamily::Cycle}, {"a", LossFamily::Translation}}; break;
        case 8: s.selection = "fixed_shared"; break;
        case 9: s.coefs = {{"translations", 1}}; s.groups = {{"a", "b"}}; break;
        case 10: s.groups = {{"a"}, {"b"}}; break;
        case 11: s.kinds = {"identity", "class_label"}; s.dims = {12, 10}; s.W = 12; s.hidden = 64; s.layers = 2; s.batch = 256; break;
        case 18: s.logitScale = std::log(66.7); s.batch = 96; break;
        }
        if (which >= 12 && which != 18) {
            s.flavour = "fusion";
            s.selection = "random";
            s.coefs.push_back({"fused", 1});
        }
        switch (which) {
        case 13: s.kinds = {"identity", "class_label"}; s.dims = {8, 5}; s.selection = "fixed_shared"; break;
        case 14: s.kinds = {"identity", "class_label", "identity"}; s.dims = {8, 4, 6}; s.groups = {{"a"}, {"b"}, {"c"}, {"a", "b", "c"}}; break;
        case 15: s.coefs = {{"from_{a}_to_b_loss", 2}, {"from_{a,b}_to_a_loss", 1}, {"fused", 0.5}, {"contrastive_a_and_b", 0.3},
                            {"from_{b}_through_{a}_to_b_case_{b}_loss", 0.7}};
            break;
        case 16: s.off = {{"a", LossFamily::Fused}, {"b", LossFamily::Cycle}, {"a", LossFamily::Translation}}; s.learnLogitScale = true; break;
        case 17: s.selection = "single_domain"; s.layers = 2; break;
        case 19: s.logitScale = std::log(66.7); s.learnLogitScale = true; s.batch = 96; break;
        }
        auto gw = makeGW(s, 7);
        auto batch = makeBatch(*gw, s, 11);
        QVERIFY2(gw->handWrittenUnsupported(batch).empty(), gw->handWrittenUnsupported(batch).c_str());

        gw->setCpuStep(false);
        torch::manual_seed(123);  // random selection: both steps draw the same scores
        StepLosses a = gw->trainingStep(batch);
        QVERIFY(gw->lastStepPath().rfind("autograd", 0) == 0);
        auto ga = grads(*gw);
        gw->setCpuStep(true);
        torch::manual_seed(123);
        StepLosses f = gw->trainingStep(batch);
        QCOMPARE(QString::fromStdString(gw->lastStepPath()), QString("hand-written"));
        auto gf = grads(*gw);

        QCOMPARE(f.skipped, a.skipped);
        QCOMPARE(f.out.metrics.keys(), a.out.metrics.keys());
        for (const auto& [k, v] : a.out.metrics) {
            const double x = v.item<double>(), y = f.out.metrics.at(k).item<double>();
            QVERIFY2(std::abs(x - y) <= 1e-5 * std::max(1.0, std::abs(x)), (k + ": autograd " + std::to_string(x) + ", hand-written " + std::to_string(y)).c_str());
        }
        QVERIFY(std::abs(a.out.loss.item<double>() - f.out.loss.item<double>()) <= 1e-5);
        QCOMPARE(gf.keys(), ga.keys());
        double largest = 0;
        for (const auto& [k, g] : ga) {
            const double scale = std::max(g.abs().max().item<double>(), 1e-3);
            const double diff = (g - gf.at(k)).abs().max().item<double>();
            QVERIFY2(diff <= 2e-5 * scale, (k + ": largest gradient " + std::to_string(scale) + ", difference " + std::to_string(diff)).c_str());
            largest = std::max(largest, g.abs().max().item<double>());
        }
        QVERIFY(largest > 0);  // something did learn
        if (s.learnLogitScale)
            QVERIFY(gf.at("loss_mod.contrastive_fn.logit_scale").abs().item<double>() > 0);
    }

    void trainingFollowsAutograd() {
        // Two copies of one GW, one trained with each step for 200 steps of AdamW + OneCycle: the
        // losses stay together (rounding differences, no drift).
        Setup s;
        s.kinds = {"identity", "class_label"};
        s.dims = {8, 6};
        auto g1 = makeGW(s, 3), g2 = makeGW(s, 3);
        g2->setCpuStep(false);
        FlatAdamW o1(g1->trainableParameters(), 1e-3), o2(g2->trainableParameters(), 1e-3);
        OneCycleSchedule sch;
        sch.maxLr = 3e-3;
        sch.totalSteps = 200;
        double worst = 0, first = 0, last = 0;
        for (int i = 0; i < 200; ++i) {
            auto batch = makeBatch(*g1, s, 100 + i);
            o1.zeroGrad();
            o2.zeroGrad();
            const double l1 = g1->trainingStep(batch).out.loss.item<double>();
            const double l2 = g2->trainingStep(batch).out.loss.item<double>();
            o1.step(sch.lr(i), sch.beta1(i));
            o2.step(sch.lr(i), sch.beta1(i));
            worst = std::max(worst, std::abs(l1 - l2) / l2);
            if (i < 10) first += l1;
            if (i >= 190) last += l1;
        }
        QCOMPARE(QString::fromStdString(g1->lastStepPath()), QString("hand-written"));
        QVERIFY2(worst < 1e-3, std::to_string(worst).c_str());
        QVERIFY2(last < 0.8 * first, (std::to_string(first / 10) + " -> " + std::to_string(last / 10)).c_str());
    }

    void domainParallelEqualsOneThread() {
        // With two or more threads each domain's passes run on a thread of their own; the arithmetic
        // is the same, so the gradients are bit for bit those of one thread.
        Setup s;
        s.kinds = {"identity", "class_label", "identity"};
        s.dims = {8, 4, 6};
        s.groups = {{"a"}, {"b"}, {"c"}, {"a", "b"}, {"b", "c"}};
        s.batch = 40;
        const int before = at::get_num_threads();
        OrderedMap<torch::Tensor> g[2];
        double loss[2];
        for (int k = 0; k < 2; ++k) {
            at::set_num_threads(k == 0 ? 1 : 2);
            auto gw = makeGW(s, 5);
            auto batch = makeBatch(*gw, s, 6);
            loss[k] = gw->trainingStep(batch).out.loss.item<double>();
            QCOMPARE(QString::fromStdString(gw->lastStepPath()), QString("hand-written"));
            g[k] = grads(*gw);
        }
        at::set_num_threads(before);
        QCOMPARE(loss[0], loss[1]);
        for (const auto& [k, t] : g[0]) QVERIFY2(torch::equal(t, g[1].at(k)), k.c_str());
    }

    void unsupportedGoesToAutograd() {
        Setup s;
        s.kinds = {"identity", "identity"};
        s.dims = {8, 16};
        {
            s.selection = "random";
            auto gw = makeGW(s, 1);
            auto batch = makeBatch(*gw, s, 2);
            gw->trainingStep(batch);
            QCOMPARE(QString::fromStdString(gw->lastStepPath()), QString("autograd (selection 'random' draws random numbers at every fusion)"));
            s.selection = "single_domain";
        }
        {
            auto gw = makeGW(s, 1);
            gw->gwMod().domainModule("a").unfreeze();
            auto batch = makeBatch(*gw, s, 2);
            gw->trainingStep(batch);
            QCOMPARE(QString::fromStdString(gw->lastStepPath()), QString("autograd (domain module 'a' trains end to end)"));
        }
        {
            Setup t = s;
            t.kinds = {"identity", "identity", "identity"};
            t.dims = {4, 4, 4};
            t.groups = {{"a"}, {"a", "b", "c"}};
            auto gw = makeGW(t, 1);
            auto batch = makeBatch(*gw, t, 2);
            gw->trainingStep(batch);
            QCOMPARE(QString::fromStdString(gw->lastStepPath()), QString("autograd (a group of 3 domains)"));
        }
        {
            auto gw = makeGW(s, 1);
            gw->to(torch::kFloat64);
            auto batch = makeBatch(*gw, s, 2);
            for (auto& g : batch)
                for (auto& [d, t] : g.latents) t = t.to(torch::kFloat64);
            gw->trainingStep(batch);
            QVERIFY(gw->lastStepPath().rfind("autograd (", 0) == 0);
        }
    }

    void environmentSwitchesItOff() {
        // GW_CPU_STEP=0 at construction: every step goes to autograd (for A/B runs of `gw train`).
        Setup s;
        s.kinds = {"identity", "identity"};
        s.dims = {4, 4};
        auto gw = makeGW(s, 1);
        auto batch = makeBatch(*gw, s, 2);
        qputenv("GW_CPU_STEP", "0");
        auto off = makeGW(s, 1);
        qunsetenv("GW_CPU_STEP");
        off->trainingStep(batch);
        QCOMPARE(QString::fromStdString(off->lastStepPath()), QString("autograd (switched off)"));
        gw->trainingStep(batch);
        QCOMPARE(QString::fromStdString(gw->lastStepPath()), QString("hand-written"));
    }
    void convVaeEqualsAutograd_data() {
        QTest::addColumn<int>("channels");
        QTest::addColumn<int>("size");
        QTest::addColumn<int>("aeDim");
        QTest::addColumn<int>("latent");
        QTest::addColumn<int>("batch");
        QTest::addColumn<int>("threads");
        QTest::newRow("Fashion-MNIST (1 channel, 32 px, ae_dim 64)") << 1 << 32 << 64 << 12 << 8 << 1;
        QTest::newRow("Fashion-MNIST as shipped (28 px, padded)") << 1 << 28 << 16 << 12 << 5 << 1;
        QTest::newRow("Simple Shapes (3 channels, small ae_dim)") << 3 << 32 << 16 << 6 << 6 << 1;
        // Several batch chunks in the chunked layers (the sub-pixel transposed convolutions take 9
        // samples at a time at ae_dim 64, 18 and 9 at ae_dim 32), spread over two threads with
        // per-thread weight-gradient sums, then in order on one.
        QTest::newRow("two threads, several chunks a layer") << 1 << 32 << 64 << 12 << 20 << 2;
        QTest::newRow("one thread, several chunks a layer") << 1 << 28 << 32 << 12 << 40 << 1;
        // ae_dim 8: the last transposed convolution has 2 output channels, fewer than the direct
        // kernel's block of 4, and takes the four-product sub-pixel form.
        QTest::newRow("ae_dim 8 (sub-pixel products)") << 3 << 32 << 8 << 4 << 6 << 1;
    }

    void convVaeEqualsAutograd() {
        // The hand-written pre-training step of the conv VAE against computeDomainLoss + backward on
        // the same weights, images and noise: loss, metrics, every parameter's gradient, the batch
        // norms' running statistics, then one AdamW update and the next step's loss.
        QFETCH(int, channels);
        QFETCH(int, size);
        QFETCH(int, aeDim);
        QFETCH(int, latent);
        QFETCH(int, batch);
        QFETCH(int, threads);
        const int threadsBefore = at::get_num_threads();
        at::set_num_threads(threads);
        struct Restore {
            int n;
            ~Restore() { at::set_num_threads(n); }
        } restore{threadsBefore};
        auto ref = makeConvVae(channels, size, aeDim, latent, 3);
        auto mine = makeConvVae(channels, size, aeDim, latent, 3);
        torch::manual_seed(4);
        auto x = torch::rand({batch, channels, size, size});
        QCOMPARE(QString::fromStdString(cpu::ConvVaeStep::unsupported(*mine, x)), QString());

        torch::manual_seed(5);
        auto a = ref->computeDomainLoss(x);
        QVERIFY(a.has_value());
        a->loss.backward();
        torch::manual_seed(5);
        cpu::ConvVaeStep step;
        const LossOutput b = step.run(*mine, x);
        QVERIFY(near(a->loss.detach(), b.loss, 1e-5, "loss"));
        QCOMPARE(b.metrics.size(), a->metrics.size());
        for (const auto& [k, v] : a->metrics) {
            QVERIFY2(b.metrics.find(k), k.c_str());
            QVERIFY(near(v, *b.metrics.find(k), 1e-5, "metric " + k));
        }
        const auto pa = ref->named_parameters(), pb = mine->named_parameters();
        QCOMPARE(pa.size(), pb.size());
        for (const auto& item : pa) {
            const auto& gb = pb[item.key()].grad();
            QVERIFY2(item.value().grad().defined() && gb.defined(), item.key().c_str());
            QVERIFY(near(item.value().grad(), gb, 1e-5, "gradient of " + item.key()));
        }
        const auto ba = ref->named_buffers(), bb = mine->named_buffers();
        for (const auto& item : ba) {
            QVERIFY2(item.value().ne(0).any().item<bool>() || item.key().find("running_mean") != std::string::npos, item.key().c_str());
            QVERIFY(near(item.value().to(torch::kFloat64), bb[item.key()].to(torch::kFloat64), 1e-5, "buffer " + item.key()));
        }

        // One AdamW update from these gradients, then the next step's loss on both.
        const double lr = 1e-3;
        FlatAdamW oa(ref->parameters(), lr, 0.9, 0.999, 1e-8, 1e-5), ob(mine->parameters(), lr, 0.9, 0.999, 1e-8, 1e-5);
        // AdamW's first step moves each weight by lr·g/(|g| + 1e-8): where a gradient is float rounding
        // noise (|g| below 1e-6 of the largest, e.g. 1e-9 against 0.1 summed over a batch of 40) the
        // two steps' noise moves the weight by anything up to ±lr, as it does the biases before a norm.
        std::map<std::string, torch::Tensor> noiseGrad;
        for (const auto& item : pa) {
            const auto g = item.value().grad().abs();
            noiseGrad[item.key()] = g < 1e-6 * std::max(1.0, g.max().item<double>());
        }
        for (auto& item : pa) item.value().mutable_grad().zero_();
        for (auto& item : pb) item.value().mutable_grad().zero_();
        torch::manual_seed(5);
        ref->computeDomainLoss(x)->loss.backward();
        oa.step(lr, 0.9);
        torch::manual_seed(5);
        cpu::PretrainStep ps;
        ps.run(*mine, x, ob, lr, 0.9);
        QCOMPARE(QString::fromStdString(ps.lastPath()), QString("hand-written"));
        for (const auto& item : pa) {
            const double tol = feedsBatchNorm(item.key()) ? 2 * lr : 1e-5;
            const auto& noise = noiseGrad[item.key()];
            const auto va = item.value().detach(), vb = pb[item.key()].detach();
            QVERIFY(near(va.masked_fill(noise, 0), vb.masked_fill(noise, 0), tol, "updated " + item.key()));
            if (noise.any().item<bool>())
                QVERIFY(near(va.masked_select(noise), vb.masked_select(noise), 2 * lr, "updated " + item.key() + " (noise gradients)"));
        }
        torch::manual_seed(6);
        const double la = ref->computeDomainLoss(x)->loss.item<double>();
        torch::manual_seed(6);
        const double lb = step.run(*mine, x).loss.item<double>();
        QVERIFY2(std::abs(la - lb) <= 1e-4 * std::abs(la), (std::to_string(la) + " vs " + std::to_string(lb)).c_str());
    }

    void convVaeUnsupportedGoesToAutograd() {
        auto m = makeConvVae(1, 32, 16, 4, 1);
        auto x = torch::rand({4, 1, 32, 32});
        FlatAdamW opt(m->parameters(), 1e-3);
        cpu::PretrainStep ps;
        m->eval();
        QVERIFY(ps.run(*m, x, opt, 1e-3, 0.9).has_value());
        QCOMPARE(QString::fromStdString(ps.lastPath()), QString("autograd (the module is in eval mode)"));
        m->train();
        QVERIFY(cpu::ConvVaeStep::unsupported(*m, torch::rand({4, 1, 28, 28})).find("expected (B >= 2, C, S, S)") != std::string::npos);
        QVERIFY(cpu::ConvVaeStep::unsupported(*m, x.to(torch::kFloat64)).find("float32") != std::string::npos);
        qputenv("GW_CPU_STEP", "0");
        ps.run(*m, x, opt, 1e-3, 0.9);
        qunsetenv("GW_CPU_STEP");
        QCOMPARE(QString::fromStdString(ps.lastPath()), QString("autograd (switched off)"));
        ps.run(*m, x, opt, 1e-3, 0.9);
        QCOMPARE(QString::fromStdString(ps.lastPath()), QString("hand-written"));
        DomainModuleSpec spec("mlp_vae");
        spec.inputDim = 6;
        auto v = makeDomainModule(spec);
        v->unfreeze();
        FlatAdamW ov(v->parameters(), 1e-3);
        ps.run(*v, torch::rand({4, 6}), ov, 1e-3, 0.9);
        QVERIFY(ps.lastPath().find("no hand-written pre-training step") != std::string::npos);
    }
};

QTEST_GUILESS_MAIN(TestCpuStep)
#include "tst_cpu_step.moc"

// SPDX-License-Identifier: GPL-3.0-or-later
// Parity with shimmer: the reference values of docs/gw-semantics.md section 8 (P1 to P8),
// the shimmer bugs this project does not copy, and FlatAdamW against LibTorch's own AdamW.
#include <QtTest/QtTest>

#include <cmath>

#include "data/sampler.h"
#include "model/domains/domain_module.h"
#include "model/gw/global_workspace.h"
#include "model/gw/flavours/losses.h"
#include "model/core/optim.h"

using namespace gw;

namespace {
/// docs/gw-semantics.md 8: W[i][j] = 0.5 sin(s + 1 + i·n_in + j), b[i] = 0.1 cos(s + 1 + i).
void fill(torch::nn::Sequential& mlp, std::vector<int> seeds) {
    torch::NoGradGuard ng;
    size_t k = 0;
    for (auto& m : mlp->children()) {
        auto* lin = m->as<torch::nn::Linear>();
        if (!lin) continue;
        const int s = seeds.at(k++);
        auto& w = lin->weight;
        const int64_t nOut = w.size(0), nIn = w.size(1);
        for (int64_t i = 0; i < nOut; ++i) {
            for (int64_t j = 0; j < nIn; ++j) w[i][j] = 0.5 * std::sin(s + 1 + i * nIn + j);
            lin->bias[i] = 0.1 * std::cos(s + 1 + i);
        }
    }
    QCOMPARE(k, seeds.size());
}

torch::Tensor t2(std::vector<std::vector<double>> rows) {
    auto t = torch::empty({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())});
    for (size_t i = 0; i < rows.size(); ++i)
        for (size_t j = 0; j < rows[i].size(); ++j) t[i][j] = rows[i][j];
    return t;
}

void near(const torch::Tensor& got, double want, double tol = 2e-6) {
    const double g = got.item<double>();
    if (std::abs(g - want) > tol) QFAIL(qPrintable(QString("got %1, expected %2").arg(g, 0, 'g', 12).arg(want, 0, 'g', 12)));
}

/// The P2 workspace: identity domains v (3) and t (2), W = 2, hidden 4, n_layers 1, seeded weights.
std::shared_ptr<GlobalWorkspace> p2Workspace(LossCoefs coefs, const std::string& flavour = "two_domains",
                                             const std::string& selection = "") {
    OrderedMap<std::shared_ptr<DomainModule>> mods;
    DomainModuleSpec v, t;
    v.set("latent_dim", 3);
    t.set("latent_dim", 2);
    mods.set("v", makeDomainModule(v));
    mods.set("t", makeDomainModule(t));
    for (auto& [n, m] : mods) m->freeze();
    GWSettings s;
    s.workspaceDim = 2;
    s.encoder = {4, 1};
    s.decoder = {4, 1};
    s.loss.coefficients = std::move(coefs);
    s.flavour = flavour;
    s.selection = selection;
    auto gwm = std::make_shared<GlobalWorkspace>(mods, s);
    fill(gwm->gwMod().encoder("v"), {10, 11, 12});
    fill(gwm->gwMod().encoder("t"), {20, 21, 22});
    fill(gwm->gwMod().decoder("v"), {30, 31, 32});
    fill(gwm->gwMod().decoder("t"), {40, 41, 42});
    return gwm;
}

std::vector<GroupBatch> p2Batch() {
    std::vector<GroupBatch> g(3);
    g[0].domains = {"v"};
    g[0].latents.set("v", t2({{0.5, -1, 2}, {1.5, 0.25, -0.75}}));
    g[1].domains = {"t"};
    g[1].latents.set("t", t2({{0.3, -0.2}, {-1, 0.8}}));
    g[2].domains = {"v", "t"};
    g[2].latents.set("v", t2({{1, 0, -1}, {0.2, 0.4, 0.6}}));
    g[2].latents.set("t", t2({{0.5, 0.5}, {-0.5, 1}}));
    for (auto& gb : g)
        for (auto& [d, x] : gb.latents) gb.inputs.set(d, x);
    return g;
}

LossCoefs coefs(double dcy, double cy, double tr, double ct) {
    LossCoefs c;
    c.set("demi_cycles", dcy);
    c.set("cycles", cy);
    c.set("translations", tr);
    c.set("contrastives", ct);
    return c;
}
}  // namespace

class TestParity : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void p1_gwEncoder() {
        auto enc = makeGWMlp(3, 4, 2, 1);
        fill(enc, {0, 1, 2});
        // shimmer's Sequential indices: Linears at 0, 2, 4.
        QVERIFY(enc->named_parameters().contains("0.weight"));
        QVERIFY(enc->named_parameters().contains("4.bias"));
        auto out = enc->forward(t2({{0.5, -1, 2}, {1.5, 0.25, -0.75}}));
        near(out[0][0], -0.1029622302);
        near(out[0][1], -0.0730802729);
        near(out[1][0], -0.1359746491);
        near(out[1][1], -0.1067413579);
        auto th = torch::tanh(out);
        near(th[0][0], -0.1025999247);
        near(th[1][1], -0.1063378034);
    }

    void p2_globalWorkspace2Domains() {
        auto gwm = p2Workspace(coefs(1.0, 1.0, 1.0, 0.01));
        auto r = gwm->step(p2Batch());
        const auto& m = r.out.metrics;
        near(m.at("demi_cycle_v"), 1.3189094916);
        near(m.at("demi_cycle_t"), 0.4938516450);
        near(m.at("demi_cycles"), 0.9063805683);
        near(m.at("cycle_v_through_t"), 1.3276789921);
        near(m.at("cycle_t_through_v"), 0.5011938921);
        near(m.at("cycles"), 0.9144364421);
        near(m.at("translation_t_to_v"), 0.4136697225);
        near(m.at("translation_v_to_t"), 0.4383459004);
        near(m.at("translations"), 0.4260078115);
        near(m.at("contrastive_v_and_t"), 0.7801349258);
        near(m.at("contrastive_v_and_t_logit_scale"), 14.2857143, 1e-5);
        near(r.out.loss, 0.5636565428);  // mean of 4 weighted terms (a sum would be 2.2546261711)
        QVERIFY(r.skipped.empty());
        // Intermediates: the GW state of {v} and the pre-fusion encoding of the paired v.
        auto state = gwm->gwMod().encodeAndFuse(p2Batch()[0].latents, gwm->selection());
        near(state[0][0], 0.1895610614);
        near(state[1][1], -0.1367714616);
        auto pre = gwm->gwMod().encode(p2Batch()[2].latents).at("v");
        near(pre[0][0], 0.1955745899);
        near(pre[1][1], -0.0753172277);
        // shimmer's state-dict names.
        auto sd = gwm->stateDict();
        QVERIFY(sd.contains("gw_mod.gw_encoders.v.0.weight"));
        QVERIFY(sd.contains("gw_mod.gw_decoders.t.4.bias"));
        QVERIFY(sd.contains("loss_mod.contrastive_fn.logit_scale"));
    }

    void p2_gradientsReachEveryGWWeight() {
        auto gwm = p2Workspace(coefs(1.0, 1.0, 1.0, 0.01));
        auto r = gwm->step(p2Batch());
        r.out.loss.backward();
        for (const auto& p : gwm->named_parameters()) {
            if (!p.value().requires_grad()) continue;
            QVERIFY2(p.value().grad().defined() && p.value().grad().abs().sum().item<double>() > 0, p.key().c_str());
        }
    }

    /// P4: the broadcast loss (flavour fusion) on the P2 weights and batch with fixed_shared
    /// selection. Every per-key value is the reference's; the {v,t} group's demi-cycle of v, which
    /// shimmer writes over the {v} group's, keeps a key of its own, so the aggregates are the means of
    /// the distinct reference terms (computed here from the reference numbers, not from our output).
    void p4_broadcastLoss() {
        LossCoefs c;
        c.set("fused", 1.0);
        c.set("cycles", 1.0);
        c.set("demi_cycles", 1.0);
        c.set("translations", 1.0);
        c.set("contrastives", 0.1);
        auto gwm = p2Workspace(c, "fusion", "fixed_shared");
        auto r = gwm->step(p2Batch());
        const auto& m = r.out.metrics;
        const double dcyV = 1.3189094916, dcyT = 0.4938516450;  // the {v} and {t} groups (P2's demi-cycles)
        const std::pair<const char*, double> keys[] = {
            {"from_{v}_to_v_loss", dcyV},
            {"from_{t}_to_t_loss", dcyT},
            {"from_{v}_to_v_case_{t,v}_loss", 0.4103522142},
            {"from_{t}_to_t_case_{t,v}_loss", 0.4267163146},
            {"from_{t}_to_v_loss", 0.4136697225},
            {"from_{v}_to_t_loss", 0.4383459004},
            {"from_{t,v}_to_v_loss", 0.4119728969},
            {"from_{t,v}_to_t_loss", 0.4325273362},
            {"from_{v}_through_{t}_to_v_case_{v}_loss", 1.3276789921},
            {"from_{t}_through_{v}_to_t_case_{t}_loss", 0.5011938921},
            {"from_{t}_through_{v}_to_t_case_{t,v}_loss", 0.4392243602},
            {"from_{v}_through_{t}_to_v_case_{t,v}_loss", 0.4132279630},
            {"contrastive_v_and_t", 0.7801349258},
        };
        int losses = 0;
        for (const auto& [k, v] : keys) {
            QVERIFY2(m.contains(k), k);
            near(m.at(k), v);
        }
        for (const auto& k : m.keys()) losses += k.rfind("from_", 0) == 0;
        QCOMPARE(losses, 12);  // nothing overwritten, nothing extra
        const double dcy = (dcyV + dcyT + 0.4103522142 + 0.4267163146) / 4;
        const double cy = (1.3276789921 + 0.5011938921 + 0.4392243602 + 0.4132279630) / 4;
        const double tr = (0.4136697225 + 0.4383459004) / 2, fu = (0.4119728969 + 0.4325273362) / 2;
        near(m.at("demi_cycles"), dcy);
        near(m.at("cycles"), cy);
        near(m.at("translations"), tr);
        near(m.at("fused"), fu);
        near(m.at("contrastives"), 0.7801349258);
        // The reference's own aggregates for the three that shimmer's overwrite does not touch.
        near(m.at("cycles"), 0.6703313019);
        near(m.at("translations"), 0.4260078115);
        near(m.at("fused"), 0.4222501166);
        near(r.out.loss, (fu + cy + dcy + tr + 0.1 * 0.7801349258) / 5);
        near(m.at("broadcast_loss"), (fu + cy + dcy + tr) / 4);
        QVERIFY(r.skipped.empty());
    }

    void p3_contrastive_data() {
        QTest::addColumn<double>("logitScale");
        QTest::addColumn<double>("expected");
        QTest::newRow("log(1/0.07)") << std::log(1 / 0.07) << 3.7541071854;
        QTest::newRow("log(200) clamped to 100") << std::log(200.0) << 25.6531171580;
        QTest::newRow("0") << 0.0 << 0.9763671813;
    }
    void p3_contrastive() {
        QFETCH(double, logitScale);
        QFETCH(double, expected);
        auto x = t2({{1, 0}, {0, 1}, {1, 1}});
        auto y = t2({{1, 0.1}, {0.2, 1}, {-1, 1}});
        near(contrastiveLoss(x, y, torch::full({1}, logitScale)), expected, 5e-6);
    }

    void p5_combineLoss() {
        TensorMap m;
        m.set("demi_cycles", torch::tensor(0.5));
        m.set("cycles", torch::tensor(0.2));
        m.set("translations", torch::tensor(0.3));
        m.set("contrastives", torch::tensor(2.0));
        near(combineLoss(m, coefs(1.0, 1.0, 1.0, 0.1)), 0.3);
        // YAML `demi_cycles: 1` is a coefficient too (shimmer ignores ints and gives 0.2333).
        LossCoefs c = coefs(1, 1.0, 1.0, 0.1);
        near(combineLoss(m, c), 0.3);
        // Zero coefficients and unknown names are left out of the mean; any metric may be named.
        LossCoefs only;
        only.set("translations", 2.0);
        only.set("not_a_metric", 5.0);
        only.set("cycles", 0.0);
        near(combineLoss(m, only), 0.6);
        LossCoefs none;
        none.set("nothing", 1.0);
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, combineLoss(m, none));
    }

    void emptyFamilyIsSkipped() {
        // No paired group: shimmer crashes on an empty stack; we skip and report the families.
        auto gwm = p2Workspace(coefs(1.0, 1.0, 1.0, 0.01));
        auto batch = p2Batch();
        batch.pop_back();
        auto r = gwm->step(batch);
        QVERIFY(!r.out.metrics.contains("translations"));
        QVERIFY(!r.out.metrics.contains("contrastives"));
        QCOMPARE(r.skipped, (std::vector<std::string>{"translations", "contrastives"}));
        near(r.out.loss, (0.9063805683 + 0.9144364421) / 2);
    }

    void perMetricCoefficient() {
        LossCoefs c;
        c.set("translation_v_to_t", 5.0);
        auto r = p2Workspace(c)->step(p2Batch());
        near(r.out.loss, 5 * 0.4383459004, 1e-5);
    }

    void p6_selection() {
        torch::manual_seed(3);
        TensorMap pre;
        pre.set("a", torch::randn({64, 4}));
        pre.set("b", torch::randn({64, 4}));
        SingleDomainSelection single;
        auto s = single.scores(pre, pre);
        auto sum = s.at("a") + s.at("b");
        QVERIFY(torch::all(sum == 1).item<bool>());
        QVERIFY(torch::all((s.at("a") == 0) | (s.at("a") == 1)).item<bool>());
        QVERIFY(s.at("a").sum().item<double>() > 0 && s.at("b").sum().item<double>() > 0);  // both drawn
        FixedSharedSelection fixed;
        QVERIFY(torch::allclose(fixed.scores(pre, pre).at("b"), torch::full({64}, 0.5)));
        RandomSelection random(0.2);
        auto r = random.scores(pre, pre);
        QVERIFY(torch::allclose(r.at("a") + r.at("b"), torch::ones({64})));
        QVERIFY(r.at("a").min().item<double>() >= 0.0066929 - 1e-6);
        QVERIFY(r.at("a").max().item<double>() <= 0.9933071 + 1e-6);
        TensorMap one;
        one.set("a", pre.at("a"));
        QVERIFY(torch::all(single.scores(one, one).at("a") == 1).item<bool>());
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, makeSelection("attention", {"a"}, {3}, 3));
    }

    void p7_oneCycle() {
        OneCycleSchedule s;
        s.maxLr = 1e-3;
        s.totalSteps = 10;
        const double lr[] = {4.0e-5, 5.2e-4, 1.0e-3, 9.504846e-4, 8.117457e-4, 6.112620e-4, 3.887420e-4, 1.882583e-4, 4.951937e-5, 4.0e-9};
        const double b1[] = {0.95, 0.90, 0.85, 0.85495, 0.86883, 0.88887, 0.91113, 0.93117, 0.94505, 0.95};
        for (int i = 0; i < 10; ++i) {
            QVERIFY2(std::abs(s.lr(i) - lr[i]) <= 1e-6 * lr[i] + 1e-12, qPrintable(QString("lr step %1: %2").arg(i).arg(s.lr(i))));
            QVERIFY2(std::abs(s.beta1(i) - b1[i]) <= 1e-5, qPrintable(QString("beta1 step %1: %2").arg(i).arg(s.beta1(i))));
        }
        QVERIFY_THROWS_EXCEPTION(std::out_of_range, s.lr(10));  // T steps, no more (shimmer's T=1 default crashed)
        // shimmer-ssd: max 3e-3, start 8e-4, end 8e-4, pct 0.2.
        OneCycleSchedule ssd;
        ssd.maxLr = 3e-3;
        ssd.totalSteps = 10;
        ssd.pctStart = 0.2;
        ssd.divFactor = 3e-3 / 8e-4;
        ssd.finalDivFactor = 3e-3 / 8e-4;
        const double lr2[] = {8.0e-4, 3.0e-3, 2.893939e-3, 2.591902e-3, 2.139872e-3, 1.606667e-3, 1.073461e-3, 6.214312e-4, 3.193945e-4, 2.133333e-4};
        for (int i = 0; i < 10; ++i) QVERIFY(std::abs(ssd.lr(i) - lr2[i]) <= 1e-6 * lr2[i]);
    }

    void flatAdamWMatchesLibTorch_data() {
        QTest::addColumn<int>("dtype");
        QTest::newRow("float32: the hand-written AdamW pass") << int(torch::kFloat32);
        QTest::newRow("float64: the element-wise kernels (the CUDA path)") << int(torch::kFloat64);
    }
    void flatAdamWMatchesLibTorch() {
        QFETCH(int, dtype);
        const auto type = static_cast<torch::ScalarType>(dtype);
        auto make = [&] {
            torch::manual_seed(7);
            auto m = makeGWMlp(5, 8, 3, 1);
            m->to(type);
            return m;
        };
        auto a = make(), b = make();
        FlatAdamW mine(a->parameters(), 1e-2, 0.9, 0.999, 1e-8, 0.05);
        torch::optim::AdamW ref(b->parameters(), torch::optim::AdamWOptions(1e-2).weight_decay(0.05));
        torch::manual_seed(1);
        auto x = torch::randn({16, 5}, type), y = torch::randn({16, 3}, type);
        for (int i = 0; i < 20; ++i) {
            mine.zeroGrad();
            torch::mse_loss(a->forward(x), y).backward();
            mine.step();
            ref.zero_grad();
            torch::mse_loss(b->forward(x), y).backward();
            ref.step();
        }
        auto pa = a->parameters(), pb = b->parameters();
        for (size_t i = 0; i < pa.size(); ++i)
            QVERIFY2(torch::allclose(pa[i], pb[i], 1e-5, 1e-5), qPrintable(QString("max diff %1").arg((pa[i] - pb[i]).abs().max().item<double>())));
        QCOMPARE(mine.numel(), static_cast<int64_t>(5 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3));
    }

    void p8_repeatedDatasetAndVae() {
        QCOMPARE(data::repeatedLength(3, 10, false), int64_t(12));
        QCOMPARE(data::repeatedLength(3, 10, true), int64_t(10));
        // Item 11 of a repeated 3-sample group is item 2: each epoch holds every sample 4 times.
        data::GroupSampler g({100, 101, 102}, 10, 5);
        auto e = g.next(12);
        for (int64_t v : {100, 101, 102}) QCOMPARE(std::count(e.begin(), e.end(), v), 4L);
        near(klDivergenceLoss(torch::zeros({4, 3}), torch::zeros({4, 3})), 0.0);
        near(gaussianNll(torch::full({1}, 0.3), torch::zeros({1}), torch::full({1}, 0.3)), 0.9189385, 1e-6);
        DomainModuleSpec s;
        s.kind = "conv_vae";
        s.set("channels", 3).set("image_size", 32);
        auto vae = makeDomainModule(s);
        auto x = vae->prepare(torch::randint(0, 255, {2, 32, 32, 3}, torch::kUInt8));
        QCOMPARE(x.sizes().vec(), (std::vector<int64_t>{2, 3, 32, 32}));
        auto z = vae->encode(x);
        QCOMPARE(z.sizes().vec(), (std::vector<int64_t>{2, 8}));
        QCOMPARE(vae->decodeRaw(z).sizes().vec(), (std::vector<int64_t>{2, 3, 32, 32}));
        QVERIFY(vae->computeDomainLoss(x).has_value());
        s.set("channels", 1).set("image_size", 28);
        auto grey = makeDomainModule(s);
        QCOMPARE(grey->decodeRaw(grey->encode(grey->prepare(torch::zeros({3, 28, 28}, torch::kUInt8)))).sizes().vec(),
                 (std::vector<int64_t>{3, 1, 28, 28}));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, grey->prepare(torch::zeros({3, 32, 32})));
    }

    void classLabelDomain() {
        DomainModuleSpec s;
        s.kind = "class_label";
        s.set("num_classes", 4);
        auto m = makeDomainModule(s);
        auto idx = m->prepare(torch::tensor({0, 3, 1}));
        auto z = m->encode(idx);
        QVERIFY(torch::equal(z.argmax(1), idx));
        auto logits = torch::tensor({{5.0, 0.0, 0.0, 0.0}, {0.0, 0.0, 5.0, 0.0}, {0.0, 5.0, 0.0, 0.0}});
        auto out = m->computeLoss(logits, z, idx);
        near(out->metrics.at("accuracy"), 2.0 / 3.0);
        near(out->loss, torch::cross_entropy_loss(logits, idx).item<double>());
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, m->prepare(torch::tensor({0, 4})));
    }
};

QTEST_APPLESS_MAIN(TestParity)
#include "tst_parity.moc"

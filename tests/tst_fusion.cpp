// SPDX-License-Identifier: GPL-3.0-or-later
// The Fusion flavour and DynamicQueryAttention: against an independent float64 restatement in Python
// (tests/python/fusion_reference.py, which loads our export strictly in shimmer's layout), selection
// parameters in the state dict, AdamW and checkpoints, the hand-written step's gate, experiment files,
// and a Fusion run end to end.
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include <fstream>

#include "fixtures.h"
#include "model/run/engine.h"
#include "model/gw/global_workspace.h"
#include "model/run/interop.h"
#include "model/core/optim.h"
#include "model/core/registry.h"
#include "model/io/checkpoint.h"
#include "model/io/shimmer_migrations.h"
#include "model/io/torch_file.h"

using namespace gw;
using fixtures::errorOf;

namespace {
const QString kScript = QStringLiteral(GW_SOURCE_DIR "/tests/python/fusion_reference.py");
using fixtures::kPython;
using fixtures::pythonHasTorch;

struct Setup {
    std::vector<std::pair<std::string, int64_t>> domains;
    int64_t W = 4;
    std::string selection = "fixed_shared";
    OrderedMap<std::string> params;
    std::vector<std::vector<std::string>> groups;
    int64_t batch = 5;
    bool linear = false, linearBias = false;  ///< GWSettings::linear, linearBias
    std::string activation = "tanh";          ///< GWSettings::activation
};

std::shared_ptr<GlobalWorkspace> build(const Setup& s, const std::string& flavour = "fusion",
                                       const OrderedMap<std::string>& flavourParams = {}) {
    OrderedMap<std::shared_ptr<DomainModule>> mods;
    for (const auto& [d, n] : s.domains) {
        DomainModuleSpec spec;
        spec.set("latent_dim", n);
        auto m = makeDomainModule(spec);
        m->freeze();
        mods.set(d, m);
    }
    GWSettings g;
    g.workspaceDim = s.W;
    g.encoder = {6, 1};
    g.decoder = {5, 1};
    g.flavour = flavour;
    g.flavourParams = flavourParams;
    g.selection = s.selection;
    g.selectionParams = s.params;
    g.linear = s.linear;
    g.linearBias = s.linearBias;
    g.activation = fusionActivationOf(s.activation);
    g.loss.coefficients.set("demi_cycles", 1.0);
    g.loss.coefficients.set("cycles", 0.5);
    g.loss.coefficients.set("translations", 2.0);
    g.loss.coefficients.set("fused", 1.0);
    g.loss.coefficients.set("contrastives", 0.1);
    g.loss.coefficients.set("kl", 0.05);  // variational's; the other flavours log no `kl`
    g.loss.logitScale = 1.1;
    torch::manual_seed(7);
    return std::make_shared<GlobalWorkspace>(mods, g);
}

std::vector<GroupBatch> batchOf(const Setup& s, uint64_t seed = 1) {
    torch::manual_seed(seed);
    std::vector<GroupBatch> out;
    for (const auto& names : s.groups) {
        GroupBatch g;
        g.domains = names;
        for (const auto& d : names) {
            int64_t n = 0;
            for (const auto& [k, v] : s.domains)
                if (k == d) n = v;
            auto x = torch::randn({s.batch, n});
            g.latents.set(d, x);
            g.inputs.set(d, x);
        }
        out.push_back(std::move(g));
    }
    return out;
}

std::string specJson(const Setup& s) {
    std::string j = "{\"domains\": {";
    for (size_t i = 0; i < s.domains.size(); ++i)
        j += (i ? ", \"" : "\"") + s.domains[i].first + "\": " + std::to_string(s.domains[i].second);
    j += "}, \"workspace\": " + std::to_string(s.W) +
         ", \"encoder\": {\"hidden\": 6, \"layers\": 1}, \"decoder\": {\"hidden\": 5, \"layers\": 1}, \"selection\": \"" +
         s.selection + "\", \"head_size\": " + (s.params.contains("head_size") ? s.params.at("head_size") : "5") +
         ", \"n_steps\": " + (s.params.contains("n_steps") ? s.params.at("n_steps") : "1") +
         ", \"linear\": " + (s.linear ? "true" : "false") + ", \"linear_bias\": " + (s.linearBias ? "true" : "false") +
         ", \"activation\": \"" + s.activation + "\", \"groups\": [";
    for (size_t i = 0; i < s.groups.size(); ++i) {
        j += i ? ", [" : "[";
        for (size_t k = 0; k < s.groups[i].size(); ++k) j += (k ? ", \"" : "\"") + s.groups[i][k] + "\"";
        j += "]";
    }
    return j + "], \"coefs\": {\"demi_cycles\": 1.0, \"cycles\": 0.5, \"translations\": 2.0, \"fused\": 1.0, "
               "\"contrastives\": 0.1}}";
}

void closeTo(double got, double want, const std::string& what) {
    if (std::abs(got - want) > 2e-5 * std::max(1.0, std::abs(want)))
        QFAIL(qPrintable(QString("%1: ours %2, reference %3").arg(QString::fromStdString(what)).arg(got, 0, 'g', 10).arg(want, 0, 'g', 10)));
}

/// A spec for variational_reference.py: specJson's sizes, groups and coefficients, the flavour and its parameters.
std::string flavourSpecJson(const Setup& s, const std::string& flavour, const OrderedMap<std::string>& params) {
    std::string j = specJson(s);
    j.pop_back();  // the closing brace
    j += ", \"flavour\": \"" + flavour + "\", \"params\": {";
    bool first = true;
    for (const auto& [k, v] : params) {
        j += (first ? "\"" : ", \"") + k + "\": " + v;
        first = false;
    }
    j += "}}";
    return j.replace(j.find("\"contrastives\": 0.1}"), 20, "\"contrastives\": 0.1, \"kl\": 0.05}");
}

/// Runs tests/python/variational_reference.py with `args`; its output on failure.
QString runVariationalReference(const QStringList& args) {
    QProcess p;
    p.setProcessChannelMode(QProcess::MergedChannels);
    p.start(kPython, QStringList{QStringLiteral(GW_SOURCE_DIR "/tests/python/variational_reference.py")} + args);
    if (!p.waitForFinished(120000)) return "timed out";
    return p.exitCode() == 0 ? QString() : QString::fromUtf8(p.readAll());
}

/// Every metric of `r` and its loss against the reference's RESULT.pt at `refPath`, both ways (no metric
/// on one side only); returns the largest |difference|.
double compareWithReference(const StepLosses& r, const std::string& refPath, int* compared = nullptr) {
    const auto ref = readStateDict(refPath).tensors;
    double worst = 0;
    int n = 0;
    for (const auto& [k, t] : ref) {
        const auto* ours = k == "loss" ? &r.out.loss : r.out.metrics.find(k);
        if (!ours) {
            QTest::qFail(("reference metric " + k + " is not ours").c_str(), __FILE__, __LINE__);
            return 1e9;
        }
        const double got = ours->item<double>(), want = t.item<double>();
        worst = std::max(worst, std::abs(got - want));
        if (std::abs(got - want) > 2e-5 * std::max(1.0, std::abs(want))) {
            QTest::qFail(qPrintable(QString("%1: ours %2, reference %3").arg(QString::fromStdString(k)).arg(got, 0, 'g', 10).arg(want, 0, 'g', 10)),
                         __FILE__, __LINE__);
            return 1e9;
        }
        ++n;
    }
    for (const auto& k : r.out.metrics.keys())
        if (!ref.contains(k)) {
            QTest::qFail(("metric " + k + " is not in the reference").c_str(), __FILE__, __LINE__);
            return 1e9;
        }
    if (compared) *compared = n;
    return worst;
}

/// The batch as variational_reference.py reads it: "{i}/{domain}".
void writeBatch(const std::vector<GroupBatch>& batch, const std::string& path) {
    OrderedMap<torch::Tensor> flat;
    for (size_t i = 0; i < batch.size(); ++i)
        for (const auto& [name, x] : batch[i].latents) flat.set(std::to_string(i) + "/" + name, x);
    writeStateDict(path, flat);
}

/// The cases of the flavours' parity: setup, flavour, flavour parameters.
struct FlavourCase {
    Setup setup;
    std::string flavour;
    OrderedMap<std::string> params;
};
FlavourCase flavourCase(int which) {
    FlavourCase c;
    if (which == 0 || which == 2) {
        c.setup.domains = {{"v", 3}, {"t", 2}};
        c.setup.groups = {{"v"}, {"t"}, {"v", "t"}};
    } else {
        c.setup.domains = {{"a", 3}, {"b", 2}, {"c", 4}};
        c.setup.groups = {{"a"}, {"b"}, {"c"}, {"a", "b", "c"}};
    }
    c.flavour = which < 2 ? "variational" : "bayesian";
    if (which == 1) c.params.set("var_contrastive_loss", "true");
    if (which == 3) {
        c.params.set("precision_softmax_temp", "0.7");
        c.params.set("sensitivity_selection", "0.5");
        c.params.set("sensitivity_precision", "1.5");
    }
    return c;
}
}  // namespace

class TestFusion : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void matchesIndependentReference_data() {
        QTest::addColumn<int>("which");
        QTest::newRow("2 domains, fixed_shared") << 0;
        QTest::newRow("3 domains, fixed_shared") << 1;
        QTest::newRow("3 domains, dynamic_query_attention, 2 steps") << 2;
        QTest::newRow("2 domains, dynamic_query_attention, batch 1") << 3;
        QTest::newRow("2 domains, linear GW without bias, identity fusion") << 4;
        QTest::newRow("3 domains, linear GW with bias, sigmoid fusion") << 5;
        QTest::newRow("3 domains, dynamic_query_attention, relu fusion") << 6;
    }
    void matchesIndependentReference() {
        if (!pythonHasTorch()) GW_SKIP_MISSING("/usr/bin/python3 has no torch (install python3-torch)");
        QFETCH(int, which);
        Setup s;
        if (which == 0 || which == 4) {
            s.domains = {{"v", 3}, {"t", 2}};
            s.groups = {{"v"}, {"t"}, {"v", "t"}};
            s.linear = which == 4;
            if (which == 4) s.activation = "identity";
        } else if (which == 1 || which == 5) {
            s.linear = s.linearBias = which == 5;
            if (which == 5) s.activation = "sigmoid";
            s.domains = {{"a", 3}, {"b", 2}, {"c", 4}};
            s.groups = {{"a"}, {"b"}, {"c"}, {"a", "b", "c"}};
        } else {
            s.domains = which != 3 ? std::vector<std::pair<std::string, int64_t>>{{"a", 4}, {"b", 4}, {"c", 4}}
                                   : std::vector<std::pair<std::string, int64_t>>{{"v", 4}, {"t", 4}};
            s.groups = which != 3 ? std::vector<std::vector<std::string>>{{"a"}, {"b"}, {"c"}, {"a", "b", "c"}}
                                  : std::vector<std::vector<std::string>>{{"v"}, {"t"}, {"v", "t"}};
            s.selection = "dynamic_query_attention";
            s.params.set("head_size", "3");
            s.params.set("n_steps", which == 2 || which == 6 ? "2" : "1");
            if (which == 3) s.batch = 1;
            if (which == 6) s.activation = "relu";
        }
        auto gwm = build(s);
        const auto batch = batchOf(s);
        const auto r = gwm->step(batch);

        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        std::ofstream(d + "/spec.json") << specJson(s);
        writeStateDict(d + "/gw.pt", toShimmerLayout(gwm->stateDict()));
        OrderedMap<torch::Tensor> flat;
        for (size_t i = 0; i < batch.size(); ++i)
            for (const auto& [name, x] : batch[i].latents) flat.set(std::to_string(i) + "/" + name, x);
        writeStateDict(d + "/batch.pt", flat);
        QProcess p;
        p.setProcessChannelMode(QProcess::MergedChannels);
        p.start(kPython, {kScript, dir.path() + "/spec.json", dir.path() + "/gw.pt", dir.path() + "/batch.pt",
                          dir.path() + "/ref.pt"});
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitCode() == 0, p.readAll().constData());
        const auto ref = readStateDict(d + "/ref.pt").tensors;

        size_t compared = 0;
        for (const auto& [k, t] : ref) {
            if (k.rfind("scores/", 0) == 0) continue;
            const auto& ours = k == "loss" ? r.out.loss : r.out.metrics.at(k);
            closeTo(ours.item<double>(), t.item<double>(), k);
            ++compared;
        }
        for (const auto& k : r.out.metrics.keys())
            if (k.size() < 12 || k.substr(k.size() - 12) != "_logit_scale")
                QVERIFY2(ref.contains(k), ("metric " + k + " is not in the reference").c_str());
        QVERIFY(compared > 10);
        // The selection's scores of the last group's full subset.
        const auto& last = batch.back();
        TensorMap pre = gwm->gwMod().encode(last.latents);
        const auto scores = gwm->selection().scores(last.latents, pre);
        std::vector<std::string> sorted = last.domains;
        std::sort(sorted.begin(), sorted.end());
        for (const auto& [dname, sc] : scores) {
            const auto& want = ref.at("scores/" + groupName(sorted) + "/" + dname);
            QVERIFY(sc.sizes() == want.sizes());
            QVERIFY(torch::allclose(sc.to(torch::kFloat64), want, 1e-5, 1e-6));
        }
    }

    /// A Fusion GW with attention saved by Python (`state_dict()`, twins included) imports and computes
    /// the reference's own metrics.
    void importsWhatPythonSaved() {
        if (!pythonHasTorch()) GW_SKIP_MISSING("/usr/bin/python3 has no torch (install python3-torch)");
        Setup s;
        s.domains = {{"v", 4}, {"t", 4}};
        s.groups = {{"v"}, {"t"}, {"v", "t"}};
        s.selection = "dynamic_query_attention";
        s.params.set("head_size", "3");
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        std::ofstream(d + "/spec.json") << specJson(s);
        QProcess p;
        p.setProcessChannelMode(QProcess::MergedChannels);
        p.start(kPython, {kScript, "make", dir.path() + "/spec.json", dir.path() + "/state.pt"});
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitCode() == 0, p.readAll().constData());
        auto gwm = build(s);
        const auto file = readStateDict(d + "/state.pt");
        QVERIFY(file.tensors.contains("loss_mod.selection_mod.query_layer.weight"));
        gwm->loadStateDict(fromShimmerLayout(file.tensors, d + "/state.pt"));
        const auto batch = batchOf(s, 4);
        OrderedMap<torch::Tensor> flat;
        for (size_t i = 0; i < batch.size(); ++i)
            for (const auto& [name, x] : batch[i].latents) flat.set(std::to_string(i) + "/" + name, x);
        writeStateDict(d + "/batch.pt", flat);
        p.start(kPython, {kScript, dir.path() + "/spec.json", dir.path() + "/state.pt", dir.path() + "/batch.pt",
                          dir.path() + "/ref.pt"});
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitCode() == 0, p.readAll().constData());
        const auto ref = readStateDict(d + "/ref.pt").tensors;
        const auto r = gwm->step(batch);
        closeTo(r.out.loss.item<double>(), ref.at("loss").item<double>(), "loss");
        closeTo(r.out.metrics.at("fused").item<double>(), ref.at("fused").item<double>(), "fused");
        closeTo(r.out.metrics.at("from_{t,v}_to_v_loss").item<double>(), ref.at("from_{t,v}_to_v_loss").item<double>(),
                "from_{t,v}_to_v_loss");
    }

    void attentionIsAModuleThatTrains() {
        Setup s;
        s.domains = {{"v", 4}, {"t", 4}};
        s.groups = {{"v"}, {"t"}, {"v", "t"}};
        s.selection = "dynamic_query_attention";
        s.params.set("n_steps", "2");
        auto gwm = build(s);
        auto sd = gwm->stateDict();
        for (const char* k : {"selection_mod.query_layer.weight", "selection_mod.query_layer.bias",
                              "selection_mod.key_layers.v.weight", "selection_mod.key_layers.t.bias",
                              "selection_mod.initial_gw_state"})
            QVERIFY2(sd.contains(k), k);
        QVERIFY(sd.at("selection_mod.query_layer.weight").sizes() == (torch::IntArrayRef{5, 4}));  // head 5 (default) x W
        // AdamW moves them; the random initial state is a buffer and stays.
        const auto q0 = sd.at("selection_mod.query_layer.weight").clone();
        const auto k0 = sd.at("selection_mod.key_layers.t.weight").clone();
        const auto g0 = sd.at("selection_mod.initial_gw_state").clone();
        FlatAdamW opt(gwm->trainableParameters(), 1e-2);
        for (int i = 0; i < 3; ++i) {
            opt.zeroGrad();
            gwm->trainingStep(batchOf(s, 10 + i));
            opt.step();
        }
        QCOMPARE(QString::fromStdString(gwm->lastStepPath()),
                 QString("autograd (selection 'dynamic_query_attention' computes scores that need a gradient)"));
        QVERIFY(!torch::equal(q0, gwm->stateDict().at("selection_mod.query_layer.weight")));
        QVERIFY(!torch::equal(k0, gwm->stateDict().at("selection_mod.key_layers.t.weight")));
        QVERIFY(torch::equal(g0, gwm->stateDict().at("selection_mod.initial_gw_state")));
        // A fresh GW with another seed takes the trained tensors back and computes the same scores.
        torch::manual_seed(99);
        auto other = build(s);
        other->loadStateDict(gwm->stateDict());
        const auto b = batchOf(s, 5);
        auto pre = gwm->gwMod().encode(b.back().latents);
        auto a1 = gwm->selection().scores(b.back().latents, pre);
        auto a2 = other->selection().scores(b.back().latents, pre);
        QVERIFY(torch::equal(a1.at("v"), a2.at("v")));
        // Exported with shimmer's twins under loss_mod.
        auto shimmer = toShimmerLayout(gwm->stateDict());
        QVERIFY(shimmer.contains("loss_mod.selection_mod.key_layers.v.weight"));
        QVERIFY(torch::equal(shimmer.at("loss_mod.selection_mod.key_layers.v.weight"),
                             shimmer.at("selection_mod.key_layers.v.weight")));
        auto back = fromShimmerLayout(shimmer, "x.pt");
        QVERIFY(back.size() == gwm->stateDict().size());
        shimmer.at("loss_mod.selection_mod.query_layer.bias") = shimmer.at("loss_mod.selection_mod.query_layer.bias") + 1;
        QVERIFY(errorOf([&] { fromShimmerLayout(shimmer, "x.pt"); }).contains("loss_mod.selection_mod.query_layer.bias differs"));
    }

    void attentionInvariants() {
        // One domain: every score is 1 (P6); any batch size; the step limit caps the refinements.
        auto sel = makeSelection("dynamic_query_attention", {"a", "b"}, {3, 3}, 3, {});
        torch::manual_seed(3);
        TensorMap one;
        one.set("a", torch::randn({1, 3}));
        QVERIFY(torch::equal(sel->scores(one, one).at("a"), torch::ones({1})));
        TensorMap two = one;
        two.set("b", torch::randn({1, 3}));
        auto s1 = sel->scores(two, two);
        QVERIFY(s1.at("a").sizes() == (torch::IntArrayRef{1}));
        QVERIFY(std::abs((s1.at("a") + s1.at("b")).item<double>() - 1) < 1e-6);
        OrderedMap<std::string> p;
        p.set("n_steps", "3");
        p.set("step_limit", "0");
        torch::manual_seed(4);
        auto capped = makeSelection("dynamic_query_attention", {"a", "b"}, {3, 3}, 3, p);
        p.set("step_limit", "-1");
        torch::manual_seed(4);
        auto full = makeSelection("dynamic_query_attention", {"a", "b"}, {3, 3}, 3, p);
        p.set("n_steps", "0");
        torch::manual_seed(4);
        auto none = makeSelection("dynamic_query_attention", {"a", "b"}, {3, 3}, 3, p);
        TensorMap x;
        x.set("a", torch::randn({6, 3}));
        x.set("b", torch::randn({6, 3}));
        QVERIFY(torch::equal(capped->scores(x, x).at("a"), none->scores(x, x).at("a")));
        QVERIFY(!torch::allclose(full->scores(x, x).at("a"), none->scores(x, x).at("a")));
        // The static scores by hand: softmax over domains of K_d(u_d) · Q(g0), no scaling.
        auto sd = moduleState(*none);
        auto q = torch::addmm(sd.at("query_layer.bias"), sd.at("initial_gw_state").unsqueeze(0), sd.at("query_layer.weight").t());
        auto ka = torch::addmm(sd.at("key_layers.a.bias"), x.at("a"), sd.at("key_layers.a.weight").t());
        auto kb = torch::addmm(sd.at("key_layers.b.bias"), x.at("b"), sd.at("key_layers.b.weight").t());
        auto want = torch::softmax(torch::stack({(ka * q).sum(1), (kb * q).sum(1)}, 1), 1).select(1, 0);
        QVERIFY(torch::allclose(none->scores(x, x).at("a"), want, 1e-6, 1e-7));
    }

    /// Linear GW encoders and decoders (shimmer-ssd linear_domains) and the fusion activation: shimmer's
    /// keys, the state they compute, the hand-written step's gate, and that step equal to autograd
    /// where it runs (one Linear with a bias, tanh). The reference values are in matchesIndependentReference.
    void linearEncodersAndFusionActivation() {
        Setup s;
        s.domains = {{"v", 3}, {"t", 2}};
        s.groups = {{"v"}, {"t"}, {"v", "t"}};
        s.linear = true;
        auto noBias = build(s, "two_domains");
        const auto keys = noBias->stateDict();
        QVERIFY(keys.contains("gw_mod.gw_encoders.v.weight") && keys.contains("gw_mod.gw_decoders.t.weight"));
        QVERIFY(!keys.contains("gw_mod.gw_encoders.v.bias") && !keys.contains("gw_mod.gw_encoders.v.0.weight"));
        QCOMPARE(keys.at("gw_mod.gw_encoders.v.weight").sizes(), (torch::IntArrayRef{4, 3}));
        const auto u = torch::randn({5, 3});
        TensorMap one;
        one.set("v", u);
        QVERIFY(torch::allclose(noBias->gwMod().encode(one).at("v"), u.matmul(keys.at("gw_mod.gw_encoders.v.weight").t())));
        QVERIFY2(noBias->handWrittenUnsupported().find("no bias") != std::string::npos, noBias->handWrittenUnsupported().c_str());

        s.activation = "identity";
        auto identity = build(s);
        const auto pre = identity->gwMod().encode(one).at("v");
        TensorMap scores;
        scores.set("v", torch::full({5}, 0.5));
        TensorMap preMap;
        preMap.set("v", pre);
        QVERIFY(torch::allclose(identity->gwMod().fuse(preMap, scores), 0.5 * pre));
        QVERIFY(identity->handWrittenUnsupported().find("fusion activation 'identity'") != std::string::npos);
        QVERIFY(errorOf([] { fusionActivationOf("softsign"); }).contains("expected tanh, identity, sigmoid or relu, found 'softsign'"));
        for (const char* flavour : {"variational", "bayesian"})
            QVERIFY(errorOf([&] { build(s, flavour); })
                        .contains(QString("workspace.fusion_activation_fn: the %1 flavour fuses as its shimmer version did; "
                                          "expected tanh (the default), found 'identity'").arg(flavour)));

        // One Linear with a bias and tanh: the hand-written step runs and gives autograd's losses and gradients.
        s.activation = "tanh";
        s.linearBias = true;
        for (const std::string flavour : {"two_domains", "fusion"}) {
            auto hand = build(s, flavour);
            qputenv("GW_CPU_STEP", "0");
            auto autograd = build(s, flavour);
            qunsetenv("GW_CPU_STEP");
            QVERIFY2(hand->handWrittenUnsupported().empty(), hand->handWrittenUnsupported().c_str());
            const auto batch = batchOf(s, 3);
            const auto a = hand->trainingStep(batch);
            const auto b = autograd->trainingStep(batch);
            QCOMPARE(QString::fromStdString(hand->lastStepPath()), QString("hand-written"));
            QVERIFY(QString::fromStdString(autograd->lastStepPath()).startsWith("autograd"));
            closeTo(a.out.loss.item<double>(), b.out.loss.item<double>(), flavour + " loss");
            const auto pa = hand->named_parameters(), pb = autograd->named_parameters();
            size_t grads = 0;
            for (const auto& kv : pa) {
                if (!kv.value().grad().defined()) continue;
                QVERIFY2(torch::allclose(kv.value().grad(), pb[kv.key()].grad(), 1e-4, 1e-5), (flavour + " " + kv.key()).c_str());
                ++grads;
            }
            QVERIFY(grads >= 8);
        }
    }

    void badSettingsAreNamed() {
        const QString sizes = errorOf([] { makeSelection("dynamic_query_attention", {"image", "label"}, {8, 10}, 8, {}); });
        QVERIFY2(sizes.contains("workspace.dim (8)") && sizes.contains("label 10") && !sizes.contains("image 8"), qPrintable(sizes));
        OrderedMap<std::string> p;
        p.set("heads", "2");
        const QString unknown = errorOf([&] { makeSelection("dynamic_query_attention", {"a"}, {3}, 3, p); });
        QVERIFY2(unknown.contains("workspace.selection_params.heads: unknown parameter of selection 'dynamic_query_attention' "
                                  "(known: head_size, n_steps, step_limit)"),
                 qPrintable(unknown));
        p.clear();
        p.set("n_steps", "1");
        p.set("step_limit", "2");
        QVERIFY(errorOf([&] { makeSelection("dynamic_query_attention", {"a"}, {3}, 3, p); }).contains("at most n_steps (1), found 2"));
        p.clear();
        p.set("temperature", "0");
        QVERIFY(errorOf([&] { makeSelection("random", {"a"}, {3}, 3, p); }).contains("temperature: expected a number > 0, found '0'"));
        QVERIFY(errorOf([] { makeSelection("attention", {"a"}, {3}, 3, {}); })
                    .contains("unknown selection 'attention' (known: single_domain, fixed_shared, random, dynamic_query_attention, kq_fixed_q)"));
    }

    /// RandomSelection's binary_proportion (shimmer d8aaa0e): the first B - floor(B p) rows are
    /// softmax(U / temperature) of uniform draws, the last floor(B p) one-hot, domains in turn. Checked
    /// against the same draws in LibTorch and against PyTorch running that algorithm (restated from
    /// shimmer d8aaa0e's selection.py) with the same seed; p = 0 draws exactly what it drew before.
    void randomSelectionBinaryProportion() {
        OrderedMap<std::string> p;
        p.set("temperature", "0.5");
        p.set("binary_proportion", "0.45");
        auto sel = makeSelection("random", {"a", "b", "c"}, {3, 3, 3}, 3, p);
        TensorMap pre;
        for (const char* d : {"a", "b", "c"}) pre.set(d, torch::zeros({11, 3}));
        torch::manual_seed(7);
        const TensorMap got = sel->scores(pre, pre);
        // floor(11 * 0.45) = 4 one-hot rows: divmod(4, 3) = (1, 1), so a gets 2, b and c 1 each.
        torch::manual_seed(7);
        const auto soft = torch::softmax(torch::rand({7, 3}) / 0.5, 1);
        const auto all = torch::stack({got.at("a"), got.at("b"), got.at("c")}, 1);
        QVERIFY(torch::allclose(all.narrow(0, 0, 7), soft));
        const auto oneHot = torch::tensor({1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}, torch::kFloat32).view({4, 3});
        QVERIFY(torch::equal(all.narrow(0, 7, 4), oneHot));
        QVERIFY(torch::allclose(all.sum(1), torch::ones({11})));
        // p = 0: the draws of the selection without the parameter.
        p.set("binary_proportion", "0");
        torch::manual_seed(7);
        const TensorMap none = makeSelection("random", {"a", "b", "c"}, {3, 3, 3}, 3, p)->scores(pre, pre);
        torch::manual_seed(7);
        QVERIFY(torch::allclose(torch::stack({none.at("a"), none.at("b"), none.at("c")}, 1), torch::softmax(torch::rand({11, 3}) / 0.5, 1)));
        // Out of [0, 1]: the key, the bound and the value.
        p.set("binary_proportion", "1.5");
        const QString bad = errorOf([&] { makeSelection("random", {"a", "b"}, {3, 3}, 3, p); });
        QVERIFY2(bad.contains("binary_proportion: expected a number >= 0 and <= 1, found '1.5'"), qPrintable(bad));
        // PyTorch, the same seed, shimmer's algorithm.
        if (!pythonHasTorch()) GW_SKIP_MISSING("/usr/bin/python3 has no torch (install python3-torch)");
        const auto py = fixtures::python(
            {"-c", "import torch\n"
                   "torch.manual_seed(7)\n"
                   "b, d, p, t = 11, 3, 0.45, 0.5\n"
                   "nb = int(b * p)\n"
                   "each, extra = divmod(nb, d)\n"
                   "soft = torch.softmax(torch.rand(b - nb, d) / t, dim=1)\n"
                   "rows = [soft]\n"
                   "for i in range(d):\n"
                   "    z = torch.zeros(each + (1 if i < extra else 0), d)\n"
                   "    z[:, i] = 1\n"
                   "    rows.append(z)\n"
                   "print(' '.join('%.9g' % v for v in torch.cat(rows).flatten().tolist()))\n"});
        QVERIFY2(py.code == 0, qPrintable(py.out));
        const QStringList values = py.out.trimmed().split(' ');
        QCOMPARE(values.size(), 33);
        const auto flat = all.contiguous().view({-1});
        for (int i = 0; i < 33; ++i) QVERIFY2(std::abs(flat[i].item<double>() - values[i].toDouble()) < 1e-6, qPrintable(values[i]));
    }

    /// The contrastive losses of loss.contrastive against PyTorch running shimmer's info_nce and CLIP
    /// contrastive_loss (contrastive_loss.py) and shimmer-ssd's VSE++ (modules/contrastive_loss.py),
    /// restated, on the same tensors: cosine and order measures, with and without max_violation.
    void contrastiveKinds() {
        torch::manual_seed(5);
        const auto x = torch::randn({6, 4}), y = torch::randn({6, 4});
        LossSettings loss;
        loss.logitScale = 1.3;
        struct Case {
            const char* kind;
            std::vector<std::pair<std::string, std::string>> params;
            const char* python;  // the reference's expression
        };
        const std::vector<Case> cases = {
            {"clip", {}, "clip(x, y)"},
            {"info_nce", {}, "info_nce(x, y)"},
            {"vsepp", {}, "vsepp(x, y, 0.2, 'cosine', True)"},
            {"vsepp", {{"margin", "0.5"}, {"max_violation", "false"}}, "vsepp(x, y, 0.5, 'cosine', False)"},
            {"vsepp", {{"measure", "order"}}, "vsepp(x, y, 0.2, 'order', True)"},
            {"vsepp", {{"measure", "order"}, {"max_violation", "false"}}, "vsepp(x, y, 0.2, 'order', False)"},
        };
        std::vector<double> ours;
        QString expressions;
        for (const auto& c : cases) {
            loss.contrastive = c.kind;
            loss.contrastiveParams.clear();
            for (const auto& [k, v] : c.params) loss.contrastiveParams.set(k, v);
            auto fn = makeContrastive(loss);
            QCOMPARE(QString::fromStdString(fn->kind()), QString(c.kind));
            const LossOutput out = (*fn)(x, y);
            ours.push_back(out.loss.item<double>());
            if (std::string(c.kind) == "vsepp") {  // CLIP's value logged beside it, and its logit scale named as shimmer-ssd's
                QVERIFY(std::abs(out.metrics.at("clip").item<double>() - contrastiveLoss(x, y, torch::full({1}, 1.3)).item<double>()) < 1e-6);
                QVERIFY(fn->named_buffers().contains("clip_contrastive_loss.logit_scale"));
            } else {
                QVERIFY(fn->named_buffers().contains("logit_scale"));
            }
            expressions += QString(expressions.isEmpty() ? "" : ", ") + c.python;
        }
        // Bad settings name the key.
        loss.contrastive = "triplet";
        QVERIFY(errorOf([&] { makeContrastive(loss); }).contains("loss.contrastive: unknown contrastive loss 'triplet' (known: clip, info_nce, vsepp)"));
        loss.contrastive = "vsepp";
        loss.contrastiveParams.clear();
        loss.contrastiveParams.set("margin", "-1");
        QVERIFY(errorOf([&] { makeContrastive(loss); }).contains("loss.contrastive_params.margin: expected a number >= 0, found '-1'"));
        loss.contrastiveParams.clear();
        loss.contrastiveParams.set("measure", "euclid");
        QVERIFY(errorOf([&] { makeContrastive(loss); }).contains("loss.contrastive_params.measure: expected cosine or order, found 'euclid'"));
        QVERIFY(errorOf([] { VseppFn(0.2, "euclid", true, 1.3, false); }).contains("measure must be cosine or order, found 'euclid'"));
        if (!pythonHasTorch()) GW_SKIP_MISSING("/usr/bin/python3 has no torch (install python3-torch)");
        QTemporaryDir dir;
        OrderedMap<torch::Tensor> xy;
        xy.set("x", x);
        xy.set("y", y);
        writeStateDict(dir.filePath("xy.pt").toStdString(), xy);
        const QString script =
            "import sys, torch\n"
            "from torch.nn.functional import normalize, cross_entropy\n"
            "t = torch.load(sys.argv[1]); x, y = t['x'], t['y']\n"
            "scale = torch.tensor([1.3])\n"
            "def logits(a, b):\n"
            "    return torch.clamp(scale.exp(), max=100) * normalize(a) @ normalize(b).t()\n"
            "def info_nce(a, b):\n"
            "    return cross_entropy(logits(a, b), torch.arange(a.size(0)))\n"
            "def clip(a, b):\n"
            "    l = logits(a, b); n = torch.arange(a.size(0))\n"
            "    return 0.5 * (cross_entropy(l, n) + cross_entropy(l.t(), n))\n"
            "def vsepp(a, b, margin, measure, max_violation):\n"
            "    a, b = normalize(a), normalize(b)\n"
            "    if measure == 'order':\n"
            "        d = b.unsqueeze(1).expand(b.size(0), a.size(0), b.size(1)) - a.unsqueeze(0).expand(b.size(0), a.size(0), b.size(1))\n"
            "        s = -d.clamp(min=0).pow(2).sum(2).sqrt().t()\n"
            "    else:\n"
            "        s = a.mm(b.t())\n"
            "    diag = s.diag().view(a.size(0), 1)\n"
            "    cost_s = (margin + s - diag.expand_as(s)).clamp(min=0)\n"
            "    cost_im = (margin + s - diag.t().expand_as(s)).clamp(min=0)\n"
            "    mask = torch.eye(s.size(0)) > 0.5\n"
            "    cost_s = cost_s.masked_fill_(mask, 0); cost_im = cost_im.masked_fill_(mask, 0)\n"
            "    if max_violation:\n"
            "        cost_s = cost_s.max(1)[0]; cost_im = cost_im.max(0)[0]\n"
            "    return cost_s.sum() + cost_im.sum()\n"
            "print(' '.join('%.9g' % float(v) for v in [" + expressions + "]))\n";
        const auto py = fixtures::python({"-c", script, dir.filePath("xy.pt")});
        QVERIFY2(py.code == 0, qPrintable(py.out));
        const QStringList want = py.out.trimmed().split(' ');
        QCOMPARE(want.size(), int(cases.size()));
        for (size_t i = 0; i < cases.size(); ++i)
            closeTo(ours[i], want[int(i)].toDouble(), std::string(cases[i].kind) + " " + cases[i].python);
        QVERIFY(std::abs(ours[0] - ours[1]) > 1e-4);  // one direction is not both
    }

    // ---- The variational (shimmer 0.4.0) and bayesian (shimmer v0.5.1) flavours ----

    void flavoursMatchIndependentReference_data() {
        QTest::addColumn<int>("which");
        QTest::newRow("variational, 2 domains") << 0;
        QTest::newRow("variational, 3 domains, var_contrastive_loss") << 1;
        QTest::newRow("bayesian, 2 domains") << 2;
        QTest::newRow("bayesian, 3 domains, T 0.7, c1 0.5, c2 1.5") << 3;
    }
    /// Our metrics on a fixed batch (evaluation: variational's states are their means) against
    /// variational_reference.py, which loads our export strictly.
    void flavoursMatchIndependentReference() {
        if (!pythonHasTorch()) GW_SKIP_MISSING("/usr/bin/python3 has no torch (install python3-torch)");
        QFETCH(int, which);
        const FlavourCase c = flavourCase(which);
        auto gwm = build(c.setup, c.flavour, c.params);
        {  // the flavour's own tensors away from their initial values, so that each one counts
            torch::NoGradGuard no;
            torch::manual_seed(11);
            for (auto& [k, t] : gwm->stateDict())
                if (k.find("uncertainty_level") != std::string::npos) t.copy_(torch::randn_like(t) - 1);
        }
        const auto batch = batchOf(c.setup);
        const auto r = gwm->step(batch);
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        std::ofstream(d + "/spec.json") << flavourSpecJson(c.setup, c.flavour, c.params);
        writeStateDict(d + "/gw.pt", toShimmerLayout(gwm->stateDict()));
        writeBatch(batch, d + "/batch.pt");
        const QString err = runVariationalReference({dir.path() + "/spec.json", dir.path() + "/gw.pt", dir.path() + "/batch.pt",
                                                     dir.path() + "/ref.pt"});
        QVERIFY2(err.isEmpty(), qPrintable(err));
        int compared = 0;
        const double worst = compareWithReference(r, d + "/ref.pt", &compared);
        QVERIFY(worst <= 1.0);
        QVERIFY2(compared > (c.flavour == "variational" ? 12 : 15), qPrintable(QString::number(compared)));
        qInfo("%s: %d metrics, max |ours - reference| %.3g", QTest::currentDataTag(), compared, worst);
        // The metrics that make each flavour what it is.
        if (c.flavour == "variational") {
            const std::string a = c.setup.domains[0].first, b = c.setup.domains[1].first;
            QVERIFY(r.out.metrics.contains("kl") && r.out.metrics.contains("kl_" + a));
            QVERIFY(r.out.metrics.contains("translation_" + a + "_to_" + b));
            QCOMPARE(r.out.metrics.contains("contrastive_" + a + "_and_" + b + "_no_uncertainty"), which == 1);
        } else {
            QVERIFY(r.out.metrics.contains("unnorm_contrastive_" + c.setup.domains[0].first + "_and_" + c.setup.domains[1].first));
            QVERIFY(r.out.metrics.contains("broadcast_loss"));
        }
    }

    void flavoursImportWhatPythonSaved_data() { flavoursMatchIndependentReference_data(); }
    /// A GW of each flavour saved by Python (`state_dict()`, twins included) imports into ours and
    /// computes the reference's metrics.
    void flavoursImportWhatPythonSaved() {
        if (!pythonHasTorch()) GW_SKIP_MISSING("/usr/bin/python3 has no torch (install python3-torch)");
        QFETCH(int, which);
        const FlavourCase c = flavourCase(which);
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        std::ofstream(d + "/spec.json") << flavourSpecJson(c.setup, c.flavour, c.params);
        QString err = runVariationalReference({"make", dir.path() + "/spec.json", dir.path() + "/state.pt"});
        QVERIFY2(err.isEmpty(), qPrintable(err));
        const auto file = readStateDict(d + "/state.pt");
        auto gwm = build(c.setup, c.flavour, c.params);
        gwm->loadStateDict(fromShimmerLayout(file.tensors, d + "/state.pt"));
        if (c.flavour == "variational") {
            const std::string key = "gw_mod.gw_encoders." + c.setup.domains[0].first + ".uncertainty_level";
            QVERIFY(file.tensors.contains("loss_mod." + key));
            QVERIFY(torch::equal(gwm->stateDict().at(key), file.tensors.at(key)));
            QVERIFY(!torch::equal(gwm->stateDict().at(key), torch::full_like(file.tensors.at(key), 3.0)));
            QCOMPARE(file.tensors.contains("loss_mod.var_contrastive_fn.logit_scale"), which == 1);
        } else {
            QVERIFY(file.tensors.contains("loss_mod.gw_mod.precisions." + c.setup.domains[0].first));
        }
        const auto batch = batchOf(c.setup, 4);
        writeBatch(batch, d + "/batch.pt");
        err = runVariationalReference({dir.path() + "/spec.json", dir.path() + "/state.pt", dir.path() + "/batch.pt", dir.path() + "/ref.pt"});
        QVERIFY2(err.isEmpty(), qPrintable(err));
        const double worst = compareWithReference(gwm->step(batch), d + "/ref.pt");
        QVERIFY(worst <= 1.0);
        qInfo("%s: max |ours - reference| %.3g", QTest::currentDataTag(), worst);
    }

    /// A shimmer 0.4.0 Lightning checkpoint of a VariationalGlobalWorkspace (gw_interfaces layout, no
    /// migration recorded) goes through shimmer's migrations into the variational flavour's names.
    void variationalImportsShimmer040Layout() {
        if (!pythonHasTorch()) GW_SKIP_MISSING("/usr/bin/python3 has no torch (install python3-torch)");
        const FlavourCase c = flavourCase(0);
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        std::ofstream(d + "/spec.json") << flavourSpecJson(c.setup, c.flavour, c.params);
        QString err = runVariationalReference({"make", dir.path() + "/spec.json", dir.path() + "/state.pt"});
        QVERIFY2(err.isEmpty(), qPrintable(err));
        err = runVariationalReference({"old", dir.path() + "/spec.json", dir.path() + "/state.pt", dir.path() + "/old.ckpt"});
        QVERIFY2(err.isEmpty(), qPrintable(err));
        auto old = readStateDict(d + "/old.ckpt");
        QVERIFY(old.tensors.contains("gw_mod.gw_interfaces.v.encoder.uncertainty_level"));
        QVERIFY(old.tensors.contains("gw_mod.gw_interfaces.v.encoder.layers.0.weight"));
        const auto lines = applyShimmerMigrations(old.tensors, old.migrations, old.migrationsRecorded);
        QVERIFY(!lines.empty());
        auto fromOld = build(c.setup, c.flavour, c.params);
        fromOld->loadStateDict(fromShimmerLayout(old.tensors, d + "/old.ckpt"));
        auto direct = build(c.setup, c.flavour, c.params);
        direct->loadStateDict(fromShimmerLayout(readStateDict(d + "/state.pt").tensors, d + "/state.pt"));
        for (const auto& [k, t] : direct->stateDict()) QVERIFY2(torch::equal(t, fromOld->stateDict().at(k)), k.c_str());
    }

    /// `gw import-weights` of that 0.4.0 checkpoint into a variational experiment: the migrations are
    /// logged and the checkpoint holds Python's tensors; into a two_domains experiment it is refused,
    /// naming the file and the flavour.
    void variationalImportWeightsOf040Checkpoint() {
        if (!pythonHasTorch()) GW_SKIP_MISSING("/usr/bin/python3 has no torch (install python3-torch)");
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        const auto path = fixtures::makeExperiment(dir, 4);
        std::ofstream(d + "/spec.json")
            << "{\"flavour\": \"variational\", \"domains\": {\"vec\": 8, \"label\": 4}, \"workspace\": 6, "
               "\"encoder\": {\"hidden\": 16, \"layers\": 1}, \"decoder\": {\"hidden\": 16, \"layers\": 1}, "
               "\"coefs\": {\"demi_cycles\": 1.0, \"kl\": 0.1}, \"params\": {}}";
        QString err = runVariationalReference({"make", dir.path() + "/spec.json", dir.path() + "/state.pt"});
        QVERIFY2(err.isEmpty(), qPrintable(err));
        err = runVariationalReference({"old", dir.path() + "/spec.json", dir.path() + "/state.pt", dir.path() + "/old.ckpt"});
        QVERIFY2(err.isEmpty(), qPrintable(err));
        std::vector<std::string> log;
        const auto c = importShimmerWeights(d + "/old.ckpt", loadExperiment(path, {"workspace.flavour=variational"}), false,
                                            [&](const std::string& line) { log.push_back(line); });
        bool migrated = false;
        for (const auto& l : log) migrated = migrated || l.rfind("shimmer migration 3_del_gw_interfaces: ", 0) == 0;
        QVERIFY(migrated);
        const auto python = readStateDict(d + "/state.pt").tensors;
        for (const char* k : {"gw_mod.gw_encoders.vec.uncertainty_level", "gw_mod.gw_encoders.label.layers.2.weight",
                              "gw_mod.gw_decoders.vec.0.bias"})
            QVERIFY2(torch::equal(c.state.at(k), python.at(k)), k);
        const QString why = errorOf([&] { importShimmerWeights(d + "/old.ckpt", loadExperiment(path), false); });
        QVERIFY2(why.contains(QString::fromStdString(d + "/old.ckpt")) &&
                     why.contains("the weights hold a variational GW (flavour variational)"),
                 qPrintable(why));
    }

    /// The flavours' own tensors are registered: AdamW moves them, a fresh GW loads them back; the
    /// variational states are drawn in training steps only.
    void flavourTensorsTrainAndReload() {
        for (const std::string flavour : {"variational", "bayesian"}) {
            FlavourCase c = flavourCase(flavour == "variational" ? 0 : 2);
            if (flavour == "variational") c.params.set("sample", "true");  // the draw the 0.4.0 code meant
            auto gwm = build(c.setup, flavour, c.params);
            const std::string key = flavour == "variational" ? "gw_mod.gw_encoders.v.uncertainty_level" : "gw_mod.precisions.v";
            auto sd = gwm->stateDict();
            QVERIFY2(sd.contains(key), key.c_str());
            QVERIFY(sd.at(key).sizes() == (torch::IntArrayRef{c.setup.W}));
            if (flavour == "variational") {
                QVERIFY(torch::equal(sd.at(key), torch::full({c.setup.W}, 3.0)));
                QVERIFY(sd.contains("gw_mod.gw_encoders.v.layers.0.weight") && !sd.contains("gw_mod.gw_encoders.v.0.weight"));
            }
            bool trains = false;
            for (const auto& p : gwm->trainableParameters()) trains = trains || p.is_same(sd.at(key));
            QVERIFY2(trains, key.c_str());
            const auto before = sd.at(key).clone();
            const auto batch = batchOf(c.setup, 3);
            const auto evalLoss = gwm->step(batch).out.loss.item<double>();
            QCOMPARE(gwm->step(batch).out.loss.item<double>(), evalLoss);  // evaluation draws nothing
            FlatAdamW opt(gwm->trainableParameters(), 1e-2);
            std::vector<double> trainLoss;
            for (int i = 0; i < 3; ++i) {
                opt.zeroGrad();
                trainLoss.push_back(gwm->trainingStep(batch).out.loss.item<double>());
                opt.step();
            }
            QCOMPARE(QString::fromStdString(gwm->lastStepPath()),
                     QString::fromStdString("autograd (flavour '" + flavour + "' has no hand-written step)"));
            if (flavour == "variational") QVERIFY(trainLoss[0] != evalLoss);  // drawn: σ = exp(1.5) is large
            else QCOMPARE(trainLoss[0], evalLoss);
            QVERIFY(!torch::equal(before, gwm->stateDict().at(key)));
            torch::manual_seed(99);
            auto other = build(c.setup, flavour, c.params);
            QVERIFY(!torch::equal(other->stateDict().at(flavour == "variational" ? "gw_mod.gw_encoders.v.layers.0.weight" : key),
                                  gwm->stateDict().at(flavour == "variational" ? "gw_mod.gw_encoders.v.layers.0.weight" : key)));
            other->loadStateDict(gwm->stateDict());
            QCOMPARE(other->step(batch).out.loss.item<double>(), gwm->step(batch).out.loss.item<double>());
        }
        // sample: false, the default, is shimmer 0.4.0's behaviour: a training step computes the evaluation's loss.
        const FlavourCase c = flavourCase(0);
        auto gwm = build(c.setup, "variational", OrderedMap<std::string>{});
        const auto batch = batchOf(c.setup, 3);
        const double evalLoss = gwm->step(batch).out.loss.item<double>();
        QCOMPARE(gwm->trainingStep(batch).out.loss.item<double>(), evalLoss);
    }

    /// Weights of one kind of GW loaded into another: the error names the flavour the weights hold.
    void wrongFlavourWeightsAreNamed() {
        const FlavourCase c = flavourCase(0);
        auto det = build(c.setup, "two_domains");
        auto var = build(c.setup, "variational");
        auto bay = build(c.setup, "bayesian");
        QCOMPARE(GlobalWorkspace::stateFlavour(var->stateDict()), std::string("variational"));
        QCOMPARE(GlobalWorkspace::stateFlavour(bay->stateDict()), std::string("bayesian"));
        QCOMPARE(GlobalWorkspace::stateFlavour(det->stateDict()), std::string());
        QCOMPARE(errorOf([&] { det->loadStateDict(var->stateDict()); }),
                 QString("GW: the weights hold a variational GW (flavour variational), but this experiment's flavour is "
                         "'two_domains' (a deterministic GW (flavour two_domains or fusion)); set workspace.flavour: "
                         "variational to use them"));
        QVERIFY(errorOf([&] { var->loadStateDict(det->stateDict()); })
                    .contains("the weights hold a deterministic GW (flavour two_domains or fusion), but this experiment's "
                              "flavour is 'variational'"));
        QVERIFY(errorOf([&] { var->loadStateDict(bay->stateDict()); }).contains("the weights hold a bayesian GW (flavour bayesian)"));
        QVERIFY(errorOf([&] { bay->loadStateDict(det->stateDict()); }).contains("flavour is 'bayesian'"));
        // fusion and two_domains share their tensors: either loads the other's.
        build(c.setup, "fusion")->loadStateDict(det->stateDict());
    }

    /// A variational run's checkpoint resumed by a deterministic experiment, and the reverse: a
    /// CheckpointError naming the file and the flavour the checkpoint holds.
    void wrongFlavourCheckpointIsNamed() {
        QTemporaryDir dir;
        const auto path = fixtures::makeExperiment(dir, 4);
        const std::vector<std::string> variational = {"workspace.flavour=variational", "training.steps=4", "training.log_every=1",
                                                      "training.val_every=2", "workspace.flavour_params.var_contrastive_loss=true",
                                                      "loss.coefficients.kl=0.1"};
        auto cfg = loadExperiment(path, variational);
        QCOMPARE(cfg.flavourParams.text("var_contrastive_loss"), std::string("true"));
        Engine engine(cfg);
        engine.prepare();
        const auto run = dir.path().toStdString() + "/run";
        auto r = runTraining(engine, run);
        QCOMPARE(r.step, int64_t(4));
        const auto ckpt = loadCheckpoint(r.checkpoint);
        QVERIFY(ckpt.state.contains("gw_mod.gw_encoders.vec.uncertainty_level"));
        QVERIFY(ckpt.state.contains("loss_mod.var_contrastive_fn.logit_scale"));
        // The run's config keeps the flavour's parameters.
        QCOMPARE(parseExperiment(ckpt.configYaml, "config.yaml").flavourParams.text("var_contrastive_loss"), std::string("true"));
        {
            std::ifstream csv(run + "/metrics.csv");
            const std::string text((std::istreambuf_iterator<char>(csv)), std::istreambuf_iterator<char>());
            for (const char* k : {"train/kl", "train/kl_vec", "train/contrastive_vec_and_label_no_uncertainty", "val/kl"})
                QVERIFY2(text.find(k) != std::string::npos, k);
        }
        // gw export: 0.4.0's names, with the loss module's twins.
        const auto exported = exportForPython(r.checkpoint, dir.path().toStdString() + "/gw.pt");
        QVERIFY2(exported.holds.find("VariationalGlobalWorkspace") != std::string::npos, exported.holds.c_str());
        const auto written = readStateDict(exported.weights).tensors;
        for (const char* k : {"gw_mod.gw_encoders.vec.uncertainty_level", "loss_mod.gw_mod.gw_encoders.vec.uncertainty_level",
                              "gw_mod.gw_encoders.vec.layers.0.weight", "loss_mod.var_contrastive_fn.logit_scale"})
            QVERIFY2(written.contains(k), k);
        // The explorer shows each domain's spread beside its state: the mean σ of its encoder.
        const auto x = engine.explore("val", {0, 1}, 0);
        QCOMPARE(x.domains.size(), size_t(2));
        const double sigma = torch::exp(0.5 * ckpt.state.at("gw_mod.gw_encoders.label.uncertainty_level")).mean().item<double>();
        QVERIFY(std::abs(x.domains[1].uncertainty - sigma) < 1e-6);
        QVERIFY(std::abs(sigma - std::exp(1.5)) > 1e-4);  // trained away from exp(½ · 3)
        Engine det(loadExperiment(path, {"training.steps=4"}));
        det.prepare();
        QCOMPARE(det.explore("val", {0}, 0).domains[0].uncertainty, -1.0);
        const QString why = errorOf([&] { det.restore(ckpt, r.checkpoint); });
        QVERIFY2(why.startsWith(QString::fromStdString(r.checkpoint) + ": GW: the weights hold a variational GW (flavour variational)"),
                 qPrintable(why));
        QVERIFY2(why.contains("this experiment's flavour is 'two_domains'"), qPrintable(why));
        Engine bay(loadExperiment(path, {"training.steps=4", "workspace.flavour=bayesian"}));
        bay.prepare();
        QVERIFY(errorOf([&] { bay.restore(ckpt, r.checkpoint); }).contains("flavour is 'bayesian'"));
        // Resumed by a variational experiment it loads.
        Engine same(loadExperiment(path, variational));
        same.prepare();
        same.restore(ckpt, r.checkpoint);
        // Bad flavour parameters are named by the parser.
        QVERIFY(errorOf([&] { loadExperiment(path, {"workspace.flavour=bayesian", "workspace.flavour_params.precision_softmax_temp=0"}); })
                    .contains("workspace.flavour_params.precision_softmax_temp: expected a number > 0, found '0'"));
        QVERIFY(errorOf([&] { loadExperiment(path, {"workspace.flavour_params.sample=true"}); })
                    .contains("workspace.flavour_params.sample: unknown parameter of flavour 'two_domains'"));
    }

    void experimentFiles() {
        const std::string base = fixtures::experimentYaml();
        auto c = parseExperiment(base, "exp.yaml", {"workspace.flavour=fusion"});
        QCOMPARE(QString::fromStdString(c.selection), QString("random"));  // the flavour's default
        QCOMPARE(QString::fromStdString(c.selectionParams.text("temperature")), QString("0.2"));
        c = parseExperiment(base, "exp.yaml",
                            {"workspace.flavour=fusion", "workspace.selection=dynamic_query_attention",
                             "workspace.selection_params.n_steps=3"});
        auto again = parseExperiment(experimentToYaml(c), "again.yaml");
        QCOMPARE(QString::fromStdString(again.flavour), QString("fusion"));
        QCOMPARE(QString::fromStdString(again.selection), QString("dynamic_query_attention"));
        QVERIFY(again.selectionParams.values().keys() == (std::vector<std::string>{"head_size", "n_steps", "step_limit"}));
        QCOMPARE(QString::fromStdString(again.selectionParams.text("n_steps")), QString("3"));
        // Before selection_params, random read selection_temperature; run folders still hold it.
        c = parseExperiment(base, "exp.yaml", {"workspace.selection=random", "workspace.selection_temperature=0.5"});
        QCOMPARE(QString::fromStdString(c.selectionParams.text("temperature")), QString("0.5"));
        // The parser's check travels with the values (checked once); a value set afterwards is checked again.
        QCOMPARE(c.selectionParams.checkedFor(), std::string("selection random"));
        QCOMPARE(gwSettingsOf(c).selectionParams.checkedFor(), std::string("selection random"));
        QCOMPARE(makeSelection("random", {"a", "b"}, {3, 3}, 3, c.selectionParams)->name(), std::string("random"));
        Params edited = c.selectionParams;
        edited.set("temperature", "0");
        QVERIFY(edited.checkedFor().empty());
        QVERIFY(errorOf([&] { makeSelection("random", {"a"}, {3}, 3, edited); }).contains("temperature: expected a number > 0, found '0'"));
        // Checked for one selection, the values are checked again for another.
        QVERIFY(errorOf([&] { makeSelection("fixed_shared", {"a"}, {3}, 3, c.selectionParams); })
                    .contains("temperature: unknown parameter of selection 'fixed_shared'"));
        QCOMPARE(errorOf([&] { parseExperiment(base, "exp.yaml", {"workspace.flavour=fuzion"}); }),
                 QString("exp.yaml: workspace.flavour: unknown GW flavour 'fuzion' (known: two_domains, fusion, variational, bayesian)"));
        QVERIFY(errorOf([&] { parseExperiment(base, "exp.yaml", {"workspace.selection_params.tempreature=1"}); })
                    .contains("exp.yaml: workspace.selection_params.tempreature: unknown parameter of selection 'single_domain' (known: none)"));
        // Linear GW encoders and the fusion activation survive the writer; a bad activation is named.
        c = parseExperiment(base, "exp.yaml",
                            {"workspace.linear=true", "workspace.linear_bias=true", "workspace.fusion_activation_fn=identity"});
        again = parseExperiment(experimentToYaml(c), "again.yaml");
        QVERIFY(again.linearGW && again.linearGWBias);
        QCOMPARE(QString::fromStdString(again.fusionActivation), QString("identity"));
        QVERIFY(gwSettingsOf(again).activation == FusionActivation::Identity && gwSettingsOf(again).linear);
        QCOMPARE(errorOf([&] { parseExperiment(base, "exp.yaml", {"workspace.fusion_activation_fn=gelu"}); }),
                 QString("exp.yaml: workspace.fusion_activation_fn: expected one of tanh, identity, sigmoid, relu, found 'gelu'"));
        QVERIFY(errorOf([&] { parseExperiment(base, "exp.yaml", {"domains.vec.module=mlp"}); })
                    .contains("domains.vec.module: expected a domain module kind (identity, mlp_ae, mlp_vae, conv_vae, class_label, attributes, glom, torchscript, text), found 'mlp'"));
    }

    void fusionTrainsEndToEnd() {
        QTemporaryDir dir;
        const auto path = fixtures::makeExperiment(dir, 40);
        // Attention needs equal latent sizes: vec has 8, label 4. Said before any training.
        auto bad = loadExperiment(path, {"workspace.flavour=fusion", "workspace.selection=dynamic_query_attention"});
        Engine e0(bad);
        const QString why = errorOf([&] { e0.prepare(); });
        QVERIFY2(why.contains("tiny.yaml: workspace.selection: dynamic_query_attention needs every domain's latent size "
                              "equal to workspace.dim (6), found vec 8, label 4"),
                 qPrintable(why));

        auto cfg = loadExperiment(path, {"workspace.flavour=fusion", "training.steps=40"});
        Engine engine(cfg);
        engine.prepare();
        const auto run = dir.path().toStdString() + "/run";
        auto r = runTraining(engine, run);
        QCOMPARE(r.step, int64_t(40));
        std::ifstream csv(run + "/metrics.csv");
        std::string text((std::istreambuf_iterator<char>(csv)), std::istreambuf_iterator<char>());
        for (const char* k : {"train/broadcast_loss", "train/fused", "train/from_{vec}_to_label_loss",
                              "train/from_{vec}_to_vec_case_{label,vec}_loss", "val/from_{label,vec}_to_label_accuracy",
                              "train/from_{label}_through_{vec}_to_label_case_{label}_loss"})
            QVERIFY2(text.find(k) != std::string::npos, k);
        // Resume: the checkpoint holds the flavour; evaluation works on it.
        // The explorer's broadcast: the chosen domains fused and decoded into every domain.
        auto x = engine.explore("val", {0, 5}, 0, {"label", "vec"});
        QVERIFY(x.broadcastFrom == (std::vector<std::string>{"vec", "label"}));  // the GW's order
        QVERIFY(x.cells.at("broadcast/vec").sizes() == (torch::IntArrayRef{2, 8}));
        QVERIFY(x.cells.at("broadcast/label").sizes() == (torch::IntArrayRef{2, 4}));
        QVERIFY(torch::allclose(x.cells.at("broadcast/label").sum(1), torch::ones({2})));  // class probabilities
        auto one = engine.explore("val", {0, 5}, 0, {"label"});
        QVERIFY(!torch::allclose(one.cells.at("broadcast/vec"), x.cells.at("broadcast/vec")));
        QVERIFY(!engine.explore("val", {0}, 0).cells.contains("broadcast/vec"));
        QCOMPARE(errorOf([&] { engine.explore("val", {0}, 0, {"sound"}); }),
                 QString("broadcast from 'sound': no such domain (the GW has vec, label)"));
        auto m = engine.evaluate("val");
        QVERIFY(m.contains("val/broadcast_loss"));
        QVERIFY(std::isfinite(m.at("val/broadcast_loss")));
    }
};

QTEST_GUILESS_MAIN(TestFusion)
#include "tst_fusion.moc"

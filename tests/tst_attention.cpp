// SPDX-License-Identifier: GPL-3.0-or-later
// Model kind `attention` (shimmer AttentionBase, model/models/attention_model.cpp): one step against an
// independent float64 restatement in Python (tests/python/attention_reference.py), the corruption
// draws, a toy run that learns to look away from the corrupted side (and its checkpoint, eval table and
// export), and every error of the experiment's `attention` section.
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include <fstream>

#include "fixtures.h"
#include "model/core/registry.h"
#include "model/gw/global_workspace.h"
#include "model/io/torch_file.h"
#include "model/models/attention_model.h"
#include "model/run/engine.h"
#include "model/run/interop.h"
#include "model/run/runs.h"

using namespace gw;
using fixtures::errorOf;

namespace {
const QString kScript = QStringLiteral(GW_SOURCE_DIR "/tests/python/attention_reference.py");

const std::vector<std::string> kDomains = {"a", "b"};
constexpr int64_t kDim = 4;

std::shared_ptr<GlobalWorkspace> buildGw() {
    OrderedMap<std::shared_ptr<DomainModule>> mods;
    for (const auto& d : kDomains) {
        DomainModuleSpec spec;
        spec.params.set("latent_dim", std::to_string(kDim));
        auto m = makeDomainModule(spec);
        m->freeze();
        mods.set(d, m);
    }
    GWSettings g;
    g.workspaceDim = kDim;
    g.encoder = {6, 1};
    g.decoder = {5, 1};
    torch::manual_seed(7);
    auto gw = std::make_shared<GlobalWorkspace>(mods, g);
    for (auto& p : gw->parameters()) p.requires_grad_(false);
    return gw;
}

std::vector<GroupBatch> batchOf(int64_t b) {
    torch::manual_seed(1);
    std::vector<GroupBatch> out;
    for (const auto& names : std::vector<std::vector<std::string>>{{"a"}, {"b"}, {"a", "b"}}) {
        GroupBatch g;
        g.domains = names;
        for (const auto& d : names) {
            auto x = torch::randn({b, kDim});
            g.latents.set(d, x);
            g.inputs.set(d, x);
        }
        out.push_back(std::move(g));
    }
    return out;
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
    const auto at = s.find(from);
    if (at != std::string::npos) s.replace(at, from.size(), to);
    return s;
}

void closeTo(double got, double want, const std::string& what) {
    if (std::abs(got - want) > 2e-5 * std::max(1.0, std::abs(want)))
        QFAIL(qPrintable(QString("%1: ours %2, reference %3").arg(QString::fromStdString(what)).arg(got, 0, 'g', 10).arg(want, 0, 'g', 10)));
}

/// The toy data: a and b carry the same 4 numbers (b with a little noise).
void writeToyData(const std::string& file) {
    torch::manual_seed(5);
    for (const auto& [split, n] : std::vector<std::pair<std::string, int64_t>>{{"train", 512}, {"val", 128}, {"test", 128}}) {
        auto x = torch::randn({n, kDim});
        data::writeDataset(file, "/" + split + "/a", x, 4);
        data::writeDataset(file, "/" + split + "/b", x + 0.05 * torch::randn({n, kDim}), 4);
    }
}

std::string gwYaml() {
    return "name: toygw\nseed: 1\nthreads: 1\ndata: {file: data.h5}\n"
           "domains:\n  a: {module: identity}\n  b: {module: identity}\n"
           "workspace: {dim: 4, encoder: {hidden: 16, layers: 1}, decoder: {hidden: 16, layers: 1}}\n"
           "loss: {coefficients: {demi_cycles: 1.0, cycles: 1.0, translations: 1.0, contrastives: 0.01}}\n"
           "optimizer: {lr: 0.01}\n"
           "training: {steps: 300, batch_size: 64, val_every: 0, checkpoint_every: 0, log_every: 100, out: runs}\n";
}

std::string attentionYaml(const std::string& gwRun, const std::string& extra = "", const std::string& domains = "a, b") {
    std::string doms;
    for (const auto& d : QString::fromStdString(domains).split(", ")) doms += "  " + d.toStdString() + ": {module: identity}\n";
    return "name: toyatt\nmodel: attention\nseed: 2\nthreads: 1\ndata: {file: data.h5}\n"
           "domains:\n" + doms +
           "attention:\n  gw_run: " + gwRun + "\n  selection: dynamic_query_attention\n"
           "  selection_params: {head_size: 4, n_steps: 1}\n" + extra +
           "optimizer: {lr: 0.01}\n"
           "training: {steps: 300, batch_size: 64, val_every: 150, checkpoint_every: 150, log_every: 50, val_batch_size: 128, out: runs}\n";
}

}  // namespace

class TestAttention : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void matchesIndependentReference_data() {
        QTest::addColumn<int>("which");
        QTest::newRow("one side per row drawn, dynamic_query_attention 2 steps") << 0;
        QTest::newRow("corrupt_single_side b, fixed vector, kq_fixed_q") << 1;
        QTest::newRow("corrupt_sides with two_sided_corruption, dynamic_query_attention") << 2;
    }
    void matchesIndependentReference() {
        if (!fixtures::pythonHasTorch()) GW_SKIP_MISSING("/usr/bin/python3 has no torch (install python3-torch)");
        QFETCH(int, which);
        AttentionConfig a;
        std::string selection = "dynamic_query_attention";
        OrderedMap<std::string> params;
        params.set("head_size", "3");
        params.set("n_steps", which == 0 ? "2" : "1");
        a.corruptionScaling = {0.3, 1.0, 2.0};
        if (which == 1) {
            selection = "kq_fixed_q";
            params = OrderedMap<std::string>();
            params.set("head_size", "3");
            a.corruptSingleSide = "b";
            a.fixedCorruptionVector = {0.5, -1.0, 2.0, 0.25};
        } else if (which == 2) {
            a.corruptSides = true;
            a.twoSidedCorruption.set("a", 0.2);
            a.twoSidedCorruption.set("b", 1.5);
        }
        auto gwm = buildGw();
        torch::manual_seed(11);
        auto sel = makeSelection(selection, kDomains, {kDim, kDim}, kDim, params);
        const int64_t B = 6;
        const auto batch = batchOf(B);
        torch::manual_seed(3);
        const CorruptionDraw draw = drawCorruption(a, kDomains, B, kDim);
        const LossOutput r = attentionStep(gwm->gwMod(), *sel, batch, kDomains, draw);
        r.loss.backward();

        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        std::string spec = "{\"domains\": {\"a\": 4, \"b\": 4}, \"workspace\": 4, \"encoder\": {\"hidden\": 6, \"layers\": 1}, "
                           "\"decoder\": {\"hidden\": 5, \"layers\": 1}, \"selection\": \"" + selection +
                           "\", \"head_size\": 3, \"n_steps\": " + std::string(which == 0 ? "2" : "1") +
                           ", \"groups\": [[\"a\"], [\"b\"], [\"a\", \"b\"]], \"two_sided\": " + (draw.twoSided ? "true" : "false") +
                           ", \"levels\": [";
        for (size_t i = 0; i < draw.levels.size(); ++i) spec += (i ? ", " : "") + metrics::levelText(draw.levels[i]);
        spec += "]}";
        std::ofstream(d + "/spec.json") << spec;
        writeStateDict(d + "/gw.pt", toShimmerLayout(gwm->stateDict()));
        writeStateDict(d + "/att.pt", moduleState(*sel));
        OrderedMap<torch::Tensor> flat, draws;
        for (size_t i = 0; i < batch.size(); ++i)
            for (const auto& [name, x] : batch[i].latents) flat.set(std::to_string(i) + "/" + name, x);
        writeStateDict(d + "/batch.pt", flat);
        if (draw.side.defined()) draws.set("side", draw.side);
        for (size_t k = 0; k < draw.vectors.size(); ++k) draws.set("vector/" + std::to_string(k), draw.vectors[k]);
        writeStateDict(d + "/draws.pt", draws);
        const auto p = fixtures::python({kScript, dir.path() + "/spec.json", dir.path() + "/gw.pt", dir.path() + "/att.pt",
                                         dir.path() + "/batch.pt", dir.path() + "/draws.pt", dir.path() + "/ref.pt"});
        QVERIFY2(p.code == 0, qPrintable(p.out));
        const auto ref = readStateDict(d + "/ref.pt").tensors;

        double worst = 0;
        auto track = [&](const torch::Tensor& ours, const torch::Tensor& want) {
            worst = std::max(worst, (ours.to(torch::kFloat64) - want).abs().max().item<double>());
        };
        closeTo(r.loss.item<double>(), ref.at("loss").item<double>(), "loss");
        track(r.loss.detach(), ref.at("loss"));
        QCOMPARE(r.metrics.keys(), (std::vector<std::string>{"a_loss", "b_loss", "a,b_loss", "a_mean_attention_score",
                                                             "b_mean_attention_score"}));
        for (const auto& [k, v] : r.metrics) {
            closeTo(v.item<double>(), ref.at(k).item<double>(), k);
            track(v.detach(), ref.at(k));
        }
        // The scores of the paired group, row by row.
        const auto corrupted = corruptLatents(batch.back().latents, kDomains, draw);
        const auto scores = sel->scores(corrupted, gwm->gwMod().encode(corrupted));
        for (const auto& name : kDomains) {
            const auto& want = ref.at("scores/" + name);
            QVERIFY(torch::allclose(scores.at(name).detach().to(torch::kFloat64), want, 0, 2e-5));
            track(scores.at(name).detach(), want);
        }
        // The gradient of every selection parameter.
        size_t grads = 0;
        for (const auto& item : sel->named_parameters()) {
            const auto& want = ref.at("grad/" + item.key());
            QVERIFY2(torch::allclose(item.value().grad().to(torch::kFloat64), want, 1e-4, 2e-5), item.key().c_str());
            track(item.value().grad(), want);
            ++grads;
        }
        QVERIFY(grads >= 4);
        qInfo("largest absolute difference from the reference: %.3g", worst);
    }

    void drawsFollowTheSettings() {
        AttentionConfig a;
        a.corruptionScaling = {0.5, 2.0};
        torch::manual_seed(9);
        const auto one = drawCorruption(a, kDomains, 50, kDim);
        torch::manual_seed(9);
        const auto again = drawCorruption(a, kDomains, 50, kDim);
        QVERIFY(!one.twoSided);
        QVERIFY(torch::equal(one.side, again.side) && torch::equal(one.vectors[0], again.vectors[0]));
        QCOMPARE(one.levels, again.levels);
        QVERIFY(one.levels[0] == 0.5 || one.levels[0] == 2.0);
        QVERIFY(one.side.min().item<int64_t>() == 0 && one.side.max().item<int64_t>() == 1);  // both sides drawn
        // The corruption: mean 0, std 5·level per row of the corrupted side, nothing on the other.
        TensorMap clean;
        clean.set("a", torch::zeros({50, kDim}));
        clean.set("b", torch::zeros({50, kDim}));
        const auto c = corruptLatents(clean, kDomains, one);
        const auto rowsA = one.side.eq(0);
        QVERIFY(c.at("b").index({rowsA}).abs().max().item<double>() == 0);
        QVERIFY(c.at("a").index({rowsA.logical_not()}).abs().max().item<double>() == 0);
        const auto std = c.at("a").index({rowsA}).std(1);
        QVERIFY(torch::allclose(std, torch::full_like(std, 5 * one.levels[0]), 1e-5, 1e-5));
        QVERIFY(c.at("a").index({rowsA}).mean(1).abs().max().item<double>() < 1e-5);

        a.corruptSingleSide = "b";
        a.fixedCorruptionVector = {1, 2, 3, 4};
        const auto fixed = drawCorruption(a, kDomains, 7, kDim);
        QVERIFY(fixed.side.eq(1).all().item<bool>());
        QVERIFY(torch::equal(fixed.vectors[0][3], torch::tensor({1.f, 2.f, 3.f, 4.f})));

        AttentionConfig two;
        two.corruptSides = true;
        two.twoSidedCorruption.set("a", 0.0);
        two.twoSidedCorruption.set("b", 3.0);
        const auto t = drawCorruption(two, kDomains, 50, kDim);
        QVERIFY(t.twoSided && t.vectors.size() == 2 && !t.side.defined());
        QCOMPARE(t.levels, (std::vector<double>{0.0, 3.0}));
        const auto ct = corruptLatents(clean, kDomains, t);
        QVERIFY(ct.at("a").abs().max().item<double>() == 0);
        QVERIFY(ct.at("b").abs().max().item<double>() > 1);

        QVERIFY(errorOf([&] {
                    AttentionConfig bad;
                    bad.corruptSingleSide = "c";
                    drawCorruption(bad, kDomains, 3, kDim);
                }).contains("attention.corrupt_single_side"));
        QCOMPARE(evaluationLevels(a), (std::vector<double>{0.0, 0.5, 2.0}));
    }

    /// A GW trained on two copies of the same numbers, then attention on it with one side of each pair
    /// corrupted: the loss falls, and the score moves to the clean side whichever side is corrupted.
    void learnsToLookAwayFromTheCorruptedSide() {
        QTemporaryDir dir;
        const std::string root = dir.path().toStdString();
        writeToyData(root + "/data.h5");
        std::ofstream(root + "/gw.yaml") << gwYaml();
        {
            Engine g(loadExperiment(root + "/gw.yaml"));
            runTraining(g, root + "/gwrun");
        }
        std::ofstream(root + "/att.yaml") << attentionYaml("gwrun", "  corruption_scaling: [0.5, 1.0]\n");
        const ExperimentConfig cfg = loadExperiment(root + "/att.yaml");
        QCOMPARE(cfg.model, std::string("attention"));
        QCOMPARE(cfg.attention.corruptionScaling, (std::vector<double>{0.5, 1.0}));
        // The section is written and read back alike.
        const ExperimentConfig back = parseExperiment(experimentToYaml(cfg), "att.yaml", {}, root);
        QCOMPARE(back.attention.selection, cfg.attention.selection);
        QCOMPARE(back.attention.corruptionScaling, cfg.attention.corruptionScaling);
        QCOMPARE(back.attention.selectionParams.values().at("n_steps"), std::string("1"));

        Engine e(cfg);
        const auto before = e.evaluate("val");
        const auto result = runTraining(e, root + "/attrun");
        QCOMPARE(result.step, int64_t(300));
        const auto after = e.evaluate("val");
        auto at = [&](const OrderedMap<double>& m, const std::string& k) {
            const double* v = m.find(k);
            if (!v) throw std::runtime_error("no metric " + k);
            return *v;
        };
        qInfo("val/loss %.4f -> %.4f", at(before, "val/loss"), at(after, "val/loss"));
        for (const auto& side : kDomains)
            for (double level : evaluationLevels(cfg.attention))
                qInfo("%s corrupted %s: a %.3f b %.3f loss %.4f (before: a %.3f b %.3f loss %.4f)", side.c_str(),
                      metrics::levelText(level).c_str(),
                      at(after, "val/" + metrics::corruptedAt(side, level, "a_mean_attention_score")),
                      at(after, "val/" + metrics::corruptedAt(side, level, "b_mean_attention_score")),
                      at(after, "val/" + metrics::corruptedAt(side, level, "loss")),
                      at(before, "val/" + metrics::corruptedAt(side, level, "a_mean_attention_score")),
                      at(before, "val/" + metrics::corruptedAt(side, level, "b_mean_attention_score")),
                      at(before, "val/" + metrics::corruptedAt(side, level, "loss")));
        QVERIFY(at(after, "val/loss") < 0.8 * at(before, "val/loss"));
        for (const auto& side : kDomains) {
            const std::string other = side == "a" ? "b" : "a";
            const auto score = [&](const OrderedMap<double>& m, const std::string& d) {
                return at(m, "val/" + metrics::corruptedAt(side, 1.0, metrics::meanAttentionScore(d)));
            };
            QVERIFY2(score(after, other) > 0.7, qPrintable(QString::fromStdString(side + " corrupted: " + other + "'s score ") +
                                                           QString::number(score(after, other))));
            QVERIFY(score(after, side) < score(before, side));
        }
        // metrics.csv has shimmer's names under train/ and val/.
        std::ifstream csv(root + "/attrun/metrics.csv");
        const std::string text((std::istreambuf_iterator<char>(csv)), std::istreambuf_iterator<char>());
        for (const char* name : {",train/a,b_loss,", ",train/a_mean_attention_score,", ",train/loss,", ",val/b_mean_attention_score,",
                                 ",val/corrupt_b_1/a_mean_attention_score,"})
            QVERIFY2(text.find(name) != std::string::npos, name);

        // The checkpoint: evaluated again through gw eval's path, the same numbers; the table.
        const OpenedCheckpoint opened = openCheckpoint(root + "/attrun");
        Engine again(opened.config);
        again.prepare(&opened.checkpoint);
        again.restore(opened.checkpoint, opened.path);
        const auto re = again.evaluate("val");
        QVERIFY(std::abs(at(re, "val/loss") - at(after, "val/loss")) < 1e-6);
        const std::string table = attentionLevelsTable(re);
        QVERIFY2(table.find("b               1") != std::string::npos, table.c_str());
        const auto cli = fixtures::gwCli({"eval", QString::fromStdString(root + "/attrun"), "--split", "val"});
        QVERIFY2(cli.code == 0 && cli.out.contains("mean attention score per domain"), qPrintable(cli.out));

        // Stopped at step 150 and resumed from the run folder (gw train --resume): the same selection as
        // the run that went through (the corruption draws come from the checkpointed generator).
        const std::string part = root + "/part";
        {
            Engine first(cfg);
            RunCallbacks cb;
            cb.stopRequested = [&] { return first.step() >= 150; };
            QVERIFY(runTraining(first, part, cb).stopped);
        }
        OpenedRun resumed = openRun(part);
        Engine second(resumed.config);
        second.prepare(&resumed.checkpoint);
        second.restore(resumed.checkpoint, resumed.checkpointPath);
        QCOMPARE(second.step(), int64_t(150));
        runTraining(second, part);
        const auto whole = e.makeCheckpoint().state, rest = second.makeCheckpoint().state;
        QCOMPARE(whole.keys(), rest.keys());
        for (const auto& [k, t] : whole)
            QVERIFY2(torch::allclose(t, rest.at(k), 1e-5, 1e-6), k.c_str());

        // What needs the latent sizes fails in Engine::prepare, naming the key and the file.
        const QString fixedSize = errorOf([&] {
            Engine(loadExperiment(root + "/att.yaml", {"+attention.fixed_corruption_vector=[1, 2, 3]"})).prepare();
        });
        QVERIFY2(fixedSize.contains("att.yaml: attention.fixed_corruption_vector: expected 4 numbers (the latent size), found 3"),
                 qPrintable(fixedSize));
        const QString nothing = errorOf([&] {
            Engine(loadExperiment(root + "/att.yaml", {"attention.selection=fixed_shared", "~attention.selection_params"})).prepare();
        });
        QVERIFY2(nothing.contains("att.yaml: attention.selection: 'fixed_shared' has nothing to train"), qPrintable(nothing));

        // Export: the selection's state dict under shimmer's names.
        const ExportResult x = exportForPython(runCheckpointPath(root + "/attrun"), root + "/att.pt");
        const auto saved = readStateDict(x.weights).tensors;
        QVERIFY(saved.contains("query_layer.weight") && saved.contains("key_layers.a.weight") &&
                saved.contains("key_layers.b.bias") && saved.contains("initial_gw_state"));
        QCOMPARE(saved.size(), size_t(7));
    }

    void rejectsBadExperiments() {
        QTemporaryDir dir;
        const std::string root = dir.path().toStdString();
        // A GW run folder needs only its config.yaml for these checks; a GLOM one is not a GW run.
        QDir(dir.path()).mkpath("gwrun");
        QDir(dir.path()).mkpath("glomrun");
        QDir(dir.path()).mkpath("empty");
        std::ofstream(root + "/gwrun/config.yaml") << gwYaml();
        std::ofstream(root + "/glomrun/config.yaml")
            << "name: g\nmodel: glom\ndata: {file: data.h5}\ndomains:\n  image: {module: glom}\n";
        auto error = [&](const std::string& yaml) {
            std::ofstream(root + "/att.yaml") << yaml;
            return errorOf([&] { loadExperiment(root + "/att.yaml"); });
        };
        QCOMPARE(error(attentionYaml("gwrun")), QString());
        const QString file = QString::fromStdString(root + "/att.yaml: ");
        const std::pair<std::string, QString> cases[] = {
            {attentionYaml("glomrun"), "attention.gw_run: " + QString::fromStdString(root) + "/glomrun is a model: glom run, not a GW run (model: gw)"},
            {attentionYaml("empty"), "attention.gw_run: " + QString::fromStdString(root) + "/empty is not a run folder (it has no config.yaml)"},
            {attentionYaml("nowhere"), "attention.gw_run: expected a trained GW run folder or checkpoint, found nothing at"},
            {attentionYaml("gwrun", "", "a, c"), "attention.gw_run: the GW run's domains (a, b) differ from the experiment's (a, c)"},
            {attentionYaml("gwrun", "  corruption_scaling: []\n"),
             "attention.corruption_scaling: expected a non-empty list of corruption levels >= 0, found an empty list"},
            {attentionYaml("gwrun", "  corruption_scaling: [0.5, -1]\n"),
             "attention.corruption_scaling: expected a non-empty list of corruption levels >= 0, found the level -1"},
            {attentionYaml("gwrun", "  corrupt_single_side: c\n"),
             "attention.corrupt_single_side: expected a domain of the GW (a, b), found 'c'"},
            {attentionYaml("gwrun", "  corrupt_sides: true\n  two_sided_corruption: {a: 1}\n"),
             "attention.two_sided_corruption: expected a level for every domain (a, b); b has none"},
            {attentionYaml("gwrun", "  fixed_corruption_vector: [1, 1, 1, 1]\n"), "attention.fixed_corruption_vector: expected numbers that are not all equal"},
            {replaced(attentionYaml("gwrun"), "selection: dynamic_query_attention", "selection: dynamic_query"),
             "attention.selection: unknown selection 'dynamic_query'"},
            {replaced(attentionYaml("gwrun"), "n_steps: 1", "n_steps: -1"), "attention.selection_params.n_steps"},
            {gwYaml() + "attention: {gw_run: gwrun}\n", "attention: expected no attention section (it belongs to model: attention"},
        };
        for (const auto& [yaml, want] : cases) {
            const QString got = error(yaml);
            QVERIFY2(got.startsWith(file) && got.contains(want), qPrintable("expected '" + want + "', got '" + got + "'"));
        }
        // Sizes the parser cannot see fail in Engine::prepare, naming the key.
        writeToyData(root + "/data.h5");
        std::ofstream(root + "/att.yaml") << attentionYaml("gwrun", "  fixed_corruption_vector: [1, 2, 3]\n");
        // (gwrun has no checkpoint: the GW run is read first.)
        const QString noCkpt = errorOf([&] { Engine(loadExperiment(root + "/att.yaml")).prepare(); });
        QVERIFY2(noCkpt.contains("attention.gw_run"), qPrintable(noCkpt));
    }
};

QTEST_GUILESS_MAIN(TestAttention)
#include "tst_attention.moc"

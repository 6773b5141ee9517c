// SPDX-License-Identifier: GPL-3.0-or-later
// The `torchscript` domain-module kind: modules scripted by Debian's python3-torch
// (tests/python/torchscript_modules.py) run here with Python's numbers, train frozen and end to end
// under `gw train`, keep a copy in the run folder that survives the original's removal and refuses a
// changed one, go back to Python through `gw export`, and bad files get errors that name the file and
// what was expected.
#include <QtTest/QtTest>

#include <torch/script.h>

#include <filesystem>
#include <fstream>

#include "fixtures.h"
#include "model/domains/domain_module.h"
#include "model/run/engine.h"
#include "model/run/interop.h"
#include "model/run/runs.h"

using namespace gw;
namespace fs = std::filesystem;
using fixtures::errorOf;

namespace {
const QString kScript = QStringLiteral(GW_SOURCE_DIR "/tests/python/torchscript_modules.py");
using fixtures::gwCli;
using fixtures::Proc;
using fixtures::python;

/// The tiny experiment of fixtures.h with its vector domain read by a TorchScript module.
std::string experiment(const std::string& script, bool frozen, int64_t steps = 40) {
    std::string y = fixtures::experimentYaml(steps);
    const std::string from = "  vec: {module: identity}\n";
    y.replace(y.find(from), from.size(),
              "  vec: {module: torchscript, script: " + script + ", frozen: " + (frozen ? "true" : "false") + "}\n");
    return y;
}

double maxDiff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

/// The domain module `kind torchscript, script` over the fixture's vectors (probe: the first 4 rows).
std::shared_ptr<DomainModule> moduleOn(const std::string& script, const torch::Tensor& probe, const std::string& loss = "auto") {
    DomainModuleSpec spec("torchscript");
    spec.set("script", script).set("loss", loss);
    spec.domain = "vec";
    spec.probe = probe;
    return makeDomainModule(spec);
}
}  // namespace

class TestTorchScript : public QObject {
    Q_OBJECT
    QTemporaryDir modules_;  // what the Python script wrote
    std::string dir_;
    torch::Tensor probe_, labels_;

    std::string path(const char* name) const { return dir_ + "/" + name; }

private Q_SLOTS:
    void initTestCase() {
        if (!fixtures::pythonHasTorch()) GW_SKIP_MISSING("/usr/bin/python3 has no torch (install python3-torch)");
        dir_ = modules_.path().toStdString();
        const Proc p = python({kScript, "make", modules_.path()});
        QVERIFY2(p.code == 0, qPrintable(p.out));
        fixtures::writeVectorsAndLabels(dir_ + "/data.h5");
        probe_ = data::H5Array(dir_ + "/data.h5", "/train/vec").readRows({0, 1, 2, 3});
        labels_ = data::H5Array(dir_ + "/data.h5", "/train/label").readRows({0, 1, 2, 3});
    }

    /// encode and decode give Python's numbers on a fixed batch; the latent size comes from the probe.
    void encodeMatchesPython() {
        auto m = moduleOn(path("vec_ae.pt"), probe_);
        QCOMPARE(m->latentDim(), int64_t(5));
        const auto expected = readStateDict(path("expected.pt")).tensors;
        m->eval();
        torch::NoGradGuard ng;
        const auto z = m->encode(m->prepare(expected.at("x")));
        QCOMPARE(z.sizes(), expected.at("z").sizes());
        QVERIFY2(maxDiff(z, expected.at("z")) < 1e-6, qPrintable(QString::number(maxDiff(z, expected.at("z")))));
        QVERIFY(maxDiff(m->decodeRaw(z), expected.at("y")) < 1e-6);
        // The module's tensors are ours: 2 x (Linear 8-16, Linear 16-5 / 5-16, 16-8) = 389 parameters.
        int64_t n = 0;
        for (const auto& p : m->parameters()) n += p.numel();
        QCOMPARE(n, int64_t(8 * 16 + 16 + 16 * 5 + 5 + 5 * 16 + 16 + 16 * 8 + 8));
        QVERIFY(m->named_parameters().contains("enc.0.weight"));
        QVERIFY(QString::fromStdString(m->describe()).contains("latent 5"));
        QVERIFY(m->computeDomainLoss(m->prepare(expected.at("x"))).has_value());
        QVERIFY(m->latentLossKind() == LatentLossKind::Mse);
        // shimmer's compute_loss with the raw target is used when exported.
        auto custom = moduleOn(path("vec_smooth_l1.pt"), probe_);
        QVERIFY(custom->latentLossKind() == LatentLossKind::Custom);
        QVERIFY(custom->lossNeedsInput());
        const auto a = torch::randn({6, 5}), b = torch::randn({6, 5});
        const auto l = custom->computeLoss(a, b, torch::randn({6, 8}));
        QVERIFY(l.has_value());
        QVERIFY(maxDiff(l->loss, torch::smooth_l1_loss(a, b)) < 1e-6);
        // ... unless the experiment asks for MSE.
        QVERIFY(moduleOn(path("vec_smooth_l1.pt"), probe_, "mse")->latentLossKind() == LatentLossKind::Mse);
    }

    /// Class indices: int64 (B,) in, cross-entropy on the latent read as class scores, decode's indices
    /// shown one-hot by the class renderer.
    void classIndices() {
        DomainModuleSpec spec("torchscript");
        spec.set("script", path("label_code.pt"));
        spec.probe = labels_;
        spec.dataClasses = 4;
        auto m = makeDomainModule(spec);
        QCOMPARE(m->latentDim(), int64_t(4));
        QVERIFY(m->latentLossKind() == LatentLossKind::CrossEntropy);
        QCOMPARE(m->classCount(), int64_t(4));
        QCOMPARE(m->rendersAs(), std::string("class_label"));
        const auto x = m->prepare(labels_);
        QCOMPARE(x.scalar_type(), torch::kInt64);
        const auto shown = m->display(torch::eye(4));
        QVERIFY(torch::equal(shown, torch::eye(4)));  // decode gives argmax indices, shown one-hot
        // A latent narrower than the classes cannot be read as their scores.
        spec.dataClasses = 6;
        QVERIFY(errorOf([&] { makeDomainModule(spec); }).contains("4 values for 6 classes"));
    }

    void badFiles() {
        struct Case {
            const char* file;
            QStringList expect;
        };
        const Case cases[] = {
            {"state_dict.pt", {"state_dict.pt", "a torch.save file", "torch.jit.script(module).save"}},
            {"random.bin", {"random.bin", "not a TorchScript file", "zip"}},
            {"no_decode.pt", {"no_decode.pt", "no method decode", "decode(self, z: Tensor) -> Tensor", "the module has: forward, encode"}},
            {"wrong_signature.pt", {"wrong_signature.pt", "method encode has the signature", "scale", "expected encode(self, x: Tensor)"}},
            {"latent_3d.pt", {"latent_3d.pt", "encode must return a float latent (B, D)", "[4, 1, 5]", "probe batch x [4, 8] float32"}},
            {"decode_7.pt", {"decode_7.pt", "decode must return the samples' shape [4, 8]", "[4, 7]"}},
            {"list_out.pt", {"list_out.pt", "method encode has the signature", "Tensor[]"}},
            {"newer.pt", {"newer.pt", "saved by a newer torch", "version 99", "LibTorch 1.", "reads versions up to"}},
            {"missing.pt", {"missing.pt", "no such file"}},
        };
        for (const auto& c : cases) {
            const QString e = errorOf([&] { moduleOn(path(c.file), probe_); });
            for (const auto& want : c.expect) QVERIFY2(e.contains(want), qPrintable(QString(c.file) + ": " + e));
        }
        DomainModuleSpec empty("torchscript");
        QVERIFY(errorOf([&] { makeDomainModule(empty); }).contains("script: expected the path of a TorchScript file"));
        QVERIFY(errorOf([&] { moduleOn(path("vec_ae.pt"), probe_, "script"); }).contains("needs a method compute_loss"));
        QVERIFY(errorOf([&] { moduleOn(path("vec_ae.pt"), probe_, "cross_entropy"); }).contains("needs class indices"));
        QVERIFY(errorOf([&] { moduleOn(path("vec_ae.pt"), probe_, "l1"); }).contains("expected auto, mse, cross_entropy or script"));
        // Through the experiment parser and the engine: the file's problem under the domain's name.
        QTemporaryDir run;
        std::ofstream(run.path().toStdString() + "/e.yaml") << experiment(path("decode_7.pt"), true);
        fs::copy_file(path("data.h5"), run.path().toStdString() + "/data.h5");
        Engine engine(loadExperiment(run.path().toStdString() + "/e.yaml"));
        const QString e = errorOf([&] { engine.prepare(); });
        QVERIFY2(e.contains("domains.vec") && e.contains("decode_7.pt"), qPrintable(e));
    }

    /// An unfrozen module trains under `gw train` (its own loss included), its weights change, go
    /// into the checkpoint and out through `gw export` as a TorchScript file that Python loads and
    /// that computes what GW Studio computes; the run survives the original file's removal.
    void trainExportResume() {
        QTemporaryDir root;
        const std::string r = root.path().toStdString();
        fs::copy_file(path("data.h5"), r + "/data.h5");
        fs::copy_file(path("vec_ae.pt"), r + "/mine.pt");  // relative to the experiment file
        std::ofstream(r + "/e.yaml") << experiment("mine.pt", false, 40);
        const QString runDir = root.path() + "/run";
        Proc p = gwCli({"train", root.path() + "/e.yaml", "--out", runDir});
        QVERIFY2(p.code == 0, qPrintable(p.out));
        // The module's own loss (compute_domain_loss) joined the GW's.
        std::ifstream csv(runDir.toStdString() + "/metrics.csv");
        const std::string metrics((std::istreambuf_iterator<char>(csv)), {});
        QVERIFY(metrics.find("train/domain_loss/vec/loss") != std::string::npos);

        // The run keeps its copy, with its digest, and the config and checkpoint name it.
        const std::string copy = runDir.toStdString() + "/domain_modules/vec.pt";
        QVERIFY(fs::exists(copy));
        const auto cfg = loadExperiment(runConfigPath(runDir.toStdString()));
        QCOMPARE(cfg.domain("vec").params.at("script"), copy);
        QCOMPARE(cfg.domain("vec").params.at("sha256").size(), size_t(64));

        // The weights moved and are in the checkpoint.
        const Checkpoint ckpt = loadCheckpoint(runCheckpointPath(runDir.toStdString()));
        QCOMPARE(ckpt.step, int64_t(40));
        auto original = torch::jit::load(path("vec_ae.pt"));
        int64_t compared = 0;
        for (const auto& p : original.named_parameters()) {
            const auto* t = ckpt.state.find("gw_mod.domain_mods.vec." + p.name);
            QVERIFY2(t, p.name.c_str());
            QVERIFY2(maxDiff(*t, p.value) > 1e-4, p.name.c_str());
            ++compared;
        }
        QCOMPARE(compared, int64_t(8));

        // gw export: the module's own file beside the GW's weights, with the trained weights.
        const QString out = root.path() + "/export/gw.pt";
        p = gwCli({"export", runDir, out});
        QVERIFY2(p.code == 0, qPrintable(p.out));
        const std::string exported = r + "/export/gw.vec.pt";
        QVERIFY2(p.out.contains(QString::fromStdString(exported)), qPrintable(p.out));
        auto back = torch::jit::load(exported);
        for (const auto& p : back.named_parameters())
            QVERIFY2(torch::equal(p.value, ckpt.state.at("gw_mod.domain_mods.vec." + p.name)), p.name.c_str());
        // Python loads it and encodes as GW Studio does with the checkpoint's weights.
        p = python({kScript, "encode", QString::fromStdString(exported), QString::fromStdString(path("expected.pt")),
                          root.path() + "/z.pt"});
        QVERIFY2(p.code == 0, qPrintable(p.out));
        {
            const OpenedCheckpoint opened = openCheckpoint(runDir.toStdString());
            Engine e(opened.config);
            e.prepare(&opened.checkpoint);
            e.restore(opened.checkpoint, opened.path);
            auto& mod = e.model().gwMod().domainModule("vec");
            mod.eval();
            torch::NoGradGuard ng;
            const auto x = readStateDict(path("expected.pt")).tensors.at("x");
            const auto ours = mod.encode(mod.prepare(x));
            const auto theirs = readStateDict(r + "/z.pt").tensors.at("z");
            QVERIFY2(maxDiff(ours, theirs) < 1e-5, qPrintable(QString::number(maxDiff(ours, theirs))));
        }

        // The original goes away: resume, eval and explore use the run's copy.
        fs::remove(r + "/mine.pt");
        p = gwCli({"train", "--resume", runDir, "training.steps=60"});
        QVERIFY2(p.code == 0, qPrintable(p.out));
        QCOMPARE(loadCheckpoint(runCheckpointPath(runDir.toStdString())).step, int64_t(60));
        p = gwCli({"eval", runDir, "--json"});
        QVERIFY2(p.code == 0 && p.out.contains("test/translation_label_to_vec_data_mse"), qPrintable(p.out));

        // A changed copy is named, not used.
        std::ofstream(copy, std::ios::app) << "x";
        p = gwCli({"train", "--resume", runDir, "training.steps=80"});
        QVERIFY(p.code != 0);
        QVERIFY2(p.out.contains(QString::fromStdString(copy)) && p.out.contains("changed since"), qPrintable(p.out));
        QCOMPARE(loadCheckpoint(runCheckpointPath(runDir.toStdString())).step, int64_t(60));
    }

    /// A frozen module trains the GW on its cached latents and keeps its own weights.
    void frozenTrains() {
        QTemporaryDir root;
        const std::string r = root.path().toStdString();
        fs::copy_file(path("data.h5"), r + "/data.h5");
        std::ofstream(r + "/e.yaml") << experiment(path("vec_ae.pt"), true, 30);
        Engine e(loadExperiment(r + "/e.yaml"));
        e.prepare();
        QCOMPARE(e.model().gwMod().domainModule("vec").latentDim(), int64_t(5));
        for (int i = 0; i < 30; ++i) {
            const auto s = e.trainStep();
            QVERIFY(std::isfinite(s.out.loss.item<double>()));
        }
        // The frozen module's weights did not move.
        auto original = torch::jit::load(path("vec_ae.pt"));
        const auto state = e.model().stateDict();
        for (const auto& p : original.named_parameters())
            QVERIFY2(torch::equal(state.at("gw_mod.domain_mods.vec." + p.name), p.value), p.name.c_str());
    }

    /// A module that raises in the middle of a run: the message its code gave, the domain and the
    /// step; the last checkpoint stays usable.
    void raisesAtRunTime() {
        QTemporaryDir root;
        const std::string r = root.path().toStdString();
        fs::copy_file(path("data.h5"), r + "/data.h5");
        std::ofstream(r + "/e.yaml") << experiment(path("vec_raises.pt"), true, 200);
        const QString runDir = root.path() + "/run";
        const Proc p = gwCli({"train", root.path() + "/e.yaml", "--out", runDir});
        QVERIFY(p.code != 0);
        QVERIFY2(p.out.contains("loss exploded on purpose at call 151"), qPrintable(p.out));
        QVERIFY2(p.out.contains("domain vec") && p.out.contains("compute_loss raised") &&
                     QRegularExpression("step \\d+:").match(p.out).hasMatch(),
                 qPrintable(p.out));
        const Checkpoint c = loadCheckpoint(runCheckpointPath(runDir.toStdString()));
        QVERIFY(c.step >= 20 && c.step % 20 == 0);
    }
};

QTEST_GUILESS_MAIN(TestTorchScript)
#include "tst_torchscript.moc"

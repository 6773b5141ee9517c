// SPDX-License-Identifier: GPL-3.0-or-later
// Checkpoints that travel: torch.save files read and written without pickled code, round trips with
// Python (Debian's python3-torch under /usr/bin/python3) in shimmer's state-dict layout, import
// errors that name every bad key, the format version 1 -> 2 migration and `gw migrate`, and
// corrupted files that never crash.
#include <QtTest/QtTest>

#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "fixtures.h"
#include "model/run/interop.h"
#include "model/io/shimmer_migrations.h"

using namespace gw;
namespace fs = std::filesystem;
using fixtures::errorOf;

namespace {
const QString kLayoutScript = QStringLiteral(GW_SOURCE_DIR "/tests/python/shimmer_layout.py");
using fixtures::gwCli;
using fixtures::Proc;
using fixtures::python;
using fixtures::pythonHasTorch;
using fixtures::runProcess;

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

/// The GW computations of tests/python/shimmer_layout.py `outputs`, with our GWModule.
TensorMap outputsOf(GWModule& m, const TensorMap& batch) {
    torch::NoGradGuard noGrad;
    TensorMap out;
    const TensorMap enc = m.encode(batch);
    for (const auto& [d, u] : batch) {
        auto state = torch::tanh(enc.at(d));
        out.set("state_" + d, state);
        out.set("demi_cycle_" + d, m.decode(state, {d}).at(d));
        for (const auto& [e, v] : batch) {
            if (e == d) continue;
            auto tr = m.decode(state, {e}).at(e);
            out.set("translation_" + d + "_to_" + e, tr);
            TensorMap one;
            one.set(e, tr);
            out.set("cycle_" + d + "_through_" + e, m.decode(torch::tanh(m.encode(one).at(e)), {d}).at(d));
        }
    }
    TensorMap scores;
    for (const auto& [d, u] : batch) scores.set(d, torch::full({u.size(0)}, 1.0 / double(batch.size())));
    out.set("state_all", m.fuse(enc, scores));
    return out;
}

/// An Engine on checkpoint `path` (weights restored), for computing outputs.
std::unique_ptr<Engine> engineOn(const std::string& path) {
    Checkpoint c = loadCheckpoint(path);
    auto cfg = parseExperiment(c.configYaml, path, {}, "/");
    auto e = std::make_unique<Engine>(cfg);
    e->prepare(&c);
    e->restore(c, path);
    return e;
}

double maxDiff(const TensorMap& ours, const OrderedMap<torch::Tensor>& theirs, QStringList* names) {
    double worst = 0;
    for (const auto& [k, t] : ours) {
        const auto* p = theirs.find(k);
        if (!p) {
            names->append(QString::fromStdString(k));
            return INFINITY;
        }
        worst = std::max(worst, (t - p->to(t.dtype())).abs().max().item<double>());
    }
    return worst;
}
}  // namespace

class TestInterop : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void torchFilesRoundTrip() {
        QTemporaryDir dir;
        const std::string p = dir.path().toStdString() + "/t.pt";
        OrderedMap<torch::Tensor> in;
        in.set("z.float", torch::randn({3, 4}));
        in.set("a.double", torch::randn({2}, torch::kDouble));
        in.set("m.long", torch::arange(6, torch::kLong).reshape({2, 3}));
        in.set("b.byte", torch::randint(0, 255, {5}, torch::kByte));
        in.set("c.bool", torch::tensor({true, false, true}));
        in.set("h.half", torch::randn({4}).to(torch::kHalf));
        in.set("t.transposed", torch::randn({3, 5}).t());
        in.set("s.scalar", torch::tensor(2.5));
        in.set("e.empty", torch::empty({0, 7}));
        writeStateDict(p, in);
        const auto out = readStateDict(p);
        QCOMPARE(out.foundAt, std::string());
        QCOMPARE(out.tensors.keys(), in.keys());  // order kept
        for (const auto& [k, t] : in) {
            const auto& r = out.tensors.at(k);
            QVERIFY2(r.scalar_type() == t.scalar_type() && r.sizes() == t.sizes() && torch::equal(r, t), k.c_str());
        }
        QVERIFY(!fs::exists(p + ".partial"));
    }

    void readsWhatPythonSaves() {
        if (!pythonHasTorch()) GW_SKIP_MISSING("/usr/bin/python3 has no torch (install python3-torch)");
        QTemporaryDir dir;
        const QString d = dir.path();
        // An OrderedDict state dict with _metadata, views sharing one storage, float64 and int64,
        // and a Lightning checkpoint holding it beside pickled classes and functions.
        const auto r = python({"-c",
                               "import torch, collections\n"
                               "base = torch.arange(12, dtype=torch.float32)\n"
                               "m = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))\n"
                               "sd = m.state_dict()\n"
                               "sd['view.tail'] = base[4:].view(2, 4)\n"
                               "sd['view.strided'] = base.view(3, 4).t()\n"
                               "sd['d64'] = torch.linspace(0, 1, 5, dtype=torch.float64)\n"
                               "torch.save(sd, '" + d + "/sd.pt')\n"
                               "torch.save({'epoch': 1, 'state_dict': sd, 'hyper_parameters': {'act': torch.tanh, "
                               "'opt': torch.optim.AdamW}, 'loops': collections.OrderedDict(a=1.5)}, '" + d + "/l.ckpt')\n"
                               "torch.save({'w': torch.ones(2), 'note': 'text'}, '" + d + "/mixed.pt')\n"
                               "torch.save([torch.ones(2)], '" + d + "/list.pt')\n"
                               "torch.save(sd, '" + d + "/legacy.pt', _use_new_zipfile_serialization=False)\n"});
        QVERIFY2(r.code == 0, qPrintable(r.out));
        for (const char* name : {"/sd.pt", "/l.ckpt"}) {
            const auto f = readStateDict(d.toStdString() + name);
            QCOMPARE(f.foundAt, std::string(name[1] == 'l' ? "state_dict" : ""));
            QCOMPARE(f.tensors.keys(), (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                                                 "1.running_var", "1.num_batches_tracked", "view.tail",
                                                                 "view.strided", "d64"}));
            auto base = torch::arange(12, torch::kFloat);
            QVERIFY(torch::equal(f.tensors.at("view.tail"), base.slice(0, 4).view({2, 4})));
            QVERIFY(torch::equal(f.tensors.at("view.strided"), base.view({3, 4}).t()));
            QVERIFY(torch::equal(f.tensors.at("d64"), torch::linspace(0, 1, 5, torch::kDouble)));
            QCOMPARE(f.tensors.at("1.num_batches_tracked").scalar_type(), torch::kLong);
            QVERIFY(torch::equal(f.tensors.at("1.running_var"), torch::ones({2})));
        }
        const std::string base = d.toStdString();
        QVERIFY(errorOf([&] { readStateDict(base + "/mixed.pt"); }).contains("entry 'note': expected a tensor, found a string"));
        QVERIFY(errorOf([&] { readStateDict(base + "/list.pt"); }).contains("expected a dictionary of tensors (a state_dict), found a list"));
        QVERIFY(errorOf([&] { readStateDict(base + "/legacy.pt"); }).contains("legacy torch.save file"));
    }

    /// We write, Python reads: the export loads strictly into shimmer's module tree, and Python's
    /// states and translations of a batch equal ours.
    void exportLoadsIntoShimmerLayout() {
        if (!pythonHasTorch()) GW_SKIP_MISSING("/usr/bin/python3 has no torch (install python3-torch)");
        QTemporaryDir dir;
        const QString exp = QString::fromStdString(fixtures::makeExperiment(dir));
        const QString run = dir.path() + "/run";
        auto t = gwCli({"train", exp, "training.steps=40", "loss.learn_logit_scale=true", "--out", run});
        QVERIFY2(t.code == 0, qPrintable(t.out));
        auto x = gwCli({"export", run, dir.path() + "/gw.pt"});
        QVERIFY2(x.code == 0, qPrintable(x.out));
        QVERIFY(QFile::exists(dir.path() + "/gw.yaml"));
        const std::string yaml = slurp(dir.path().toStdString() + "/gw.yaml");
        QVERIFY(yaml.find("workspace:") != std::string::npos && yaml.find("# Exported by GW Studio") == 0);

        torch::manual_seed(11);
        TensorMap batch;
        batch.set("vec", torch::randn({9, 8}));
        batch.set("label", torch::randn({9, 4}));
        writeStateDict(dir.path().toStdString() + "/batch.pt", batch);
        auto py = python({kLayoutScript, "check", dir.path() + "/gw.pt", dir.path() + "/batch.pt", dir.path() + "/res.pt"});
        QVERIFY2(py.code == 0, qPrintable(py.out));
        QVERIFY(py.out.contains("loaded 49 tensors strictly"));

        auto engine = engineOn((run + "/checkpoints/last.ckpt").toStdString());
        const auto ours = outputsOf(engine->model().gwMod(), batch);
        QCOMPARE(ours.size(), size_t(9));
        QStringList missing;
        const double diff = maxDiff(ours, readStateDict(dir.path().toStdString() + "/res.pt").tensors, &missing);
        QVERIFY2(diff <= 1e-5, qPrintable(QString("max |ours - Python| %1 %2").arg(diff).arg(missing.join(","))));
        // The exported tensors are our weights, bit for bit, twins included.
        const auto exported = readStateDict(dir.path().toStdString() + "/gw.pt").tensors;
        for (const auto& [k, w] : engine->model().stateDict()) {
            QVERIFY2(torch::equal(exported.at(k), w.cpu()), k.c_str());
            if (k.rfind("gw_mod.", 0) == 0) QVERIFY(torch::equal(exported.at("loss_mod." + k), w.cpu()));
        }
    }

    /// Python writes, we read: a seeded shimmer-layout GW (plain state_dict and a whole Lightning
    /// checkpoint) becomes a checkpoint whose outputs equal Python's.
    void importsWhatPythonTrained() {
        if (!pythonHasTorch()) GW_SKIP_MISSING("/usr/bin/python3 has no torch (install python3-torch)");
        QTemporaryDir dir;
        const QString d = dir.path();
        const QString exp = QString::fromStdString(fixtures::makeExperiment(dir));
        std::ofstream(d.toStdString() + "/sizes.json")
            << R"({"dims": {"vec": 8, "label": 4}, "workspace": 6, "encoder": {"hidden": 16, "layers": 1},)"
            << R"( "decoder": {"hidden": 16, "layers": 1}, "learn_logit_scale": false, "logit_scale": 3.25, "batch": 7, "seed": 5})";
        auto py = python({kLayoutScript, "make", d + "/sizes.json", d + "/state.pt", d + "/lightning.ckpt", d + "/batch.pt",
                          d + "/res.pt"});
        QVERIFY2(py.code == 0, qPrintable(py.out));
        const auto batchFile = readStateDict(d.toStdString() + "/batch.pt").tensors;
        TensorMap batch;
        for (const auto& [k, t] : batchFile) batch.set(k, t);
        const auto theirs = readStateDict(d.toStdString() + "/res.pt").tensors;
        for (const QString& source : {QString("state.pt"), QString("lightning.ckpt")}) {
            const QString out = d + "/" + source + ".ckpt";
            auto r = gwCli({"import-weights", d + "/" + source, exp, "--out", out});
            QVERIFY2(r.code == 0, qPrintable(r.out));
            QVERIFY(r.out.contains("wrote " + out));
            const Checkpoint c = loadCheckpoint(out.toStdString());
            QCOMPARE(c.step, int64_t(0));
            QVERIFY(c.note.find("imported from") == 0);
            QCOMPARE(c.state.at("loss_mod.contrastive_fn.logit_scale").item<double>(), 3.25);
            auto engine = engineOn(out.toStdString());
            QStringList missing;
            const double diff = maxDiff(outputsOf(engine->model().gwMod(), batch), theirs, &missing);
            QVERIFY2(diff <= 1e-5, qPrintable(QString("%1: max |ours - Python| %2 %3").arg(source).arg(diff).arg(missing.join(","))));
            // gw eval runs on it.
            auto ev = gwCli({"eval", out, "--json", "--max-samples", "64"});
            QVERIFY2(ev.code == 0 && ev.out.contains("\"test/translation_vec_to_label_accuracy\""), qPrintable(ev.out));
        }
        // The output is not overwritten unless asked.
        auto again = gwCli({"import-weights", d + "/state.pt", exp, "--out", d + "/state.pt.ckpt"});
        QVERIFY(again.code != 0 && again.out.contains("exists"));

        // The same weights as a shimmer 0.4 checkpoint that records migrations 1 and 2: migrations 3 to 5
        // bring it to the current layout, each named, and it imports to the same tensors.
        py = python({kLayoutScript, "old", d + "/state.pt", d + "/old.ckpt"});
        QVERIFY2(py.code == 0, qPrintable(py.out));
        auto migrated = gwCli({"import-weights", d + "/old.ckpt", exp, "--out", d + "/old-imported.ckpt"});
        QVERIFY2(migrated.code == 0, qPrintable(migrated.out));
        for (const char* name : {"shimmer migration 3_del_gw_interfaces: ", "shimmer migration 4_del_buffers_put_models_in_gw_mod: ",
                                 "shimmer migration 5_del_coef_buffers: "})
            QVERIFY2(migrated.out.contains(name), qPrintable(migrated.out));
        QVERIFY2(!migrated.out.contains("1_add_gw_interfaces") && !migrated.out.contains("2_del_gw_interfaces_hparam"),
                 qPrintable(migrated.out));
        const Checkpoint current = loadCheckpoint(d.toStdString() + "/state.pt.ckpt");
        const Checkpoint fromOld = loadCheckpoint(d.toStdString() + "/old-imported.ckpt");
        QCOMPARE(fromOld.state.keys(), current.state.keys());
        for (const auto& [k, t] : current.state) QVERIFY2(torch::equal(fromOld.state.at(k), t), k.c_str());
        QVERIFY2(fromOld.note.find("shimmer migrations applied: 3_del_gw_interfaces 4_del_buffers_put_models_in_gw_mod "
                                   "5_del_coef_buffers") != std::string::npos,
                 fromOld.note.c_str());
    }

    /// Each of shimmer's checkpoint migrations on the keys it is about (rules of shimmer/ckpt_migrations),
    /// and which of them a checkpoint still needs by what it records (migrate-ckpt's rule).
    void shimmerMigrationsRestated() {
        auto keysAfter = [](const char* name, const std::vector<std::string>& keys) {
            OrderedMap<torch::Tensor> s;
            for (const auto& k : keys) s.set(k, torch::zeros({1}));
            for (const auto& m : shimmerMigrations())
                if (m.name == name) m.apply(s);
            return s.keys();
        };
        using V = std::vector<std::string>;
        QCOMPARE(keysAfter("1_add_gw_interfaces", {"gw_mod.encoders.resnet.0.weight", "loss_mod.gw_mod.decoders.bge.2.bias",
                                                   "gw_mod.encoders.v.0.weight"}),
                 (V{"gw_mod.gw_interfaces.resnet.encoder.0.weight", "loss_mod.gw_mod.gw_interfaces.bge.decoder.2.bias",
                    "gw_mod.encoders.v.0.weight"}));
        QCOMPARE(keysAfter("3_del_gw_interfaces",
                           {"gw_mod.gw_interfaces.v.encoder.0.weight", "loss_mod.gw_mod.gw_interfaces.t.decoder.4.bias",
                            "gw_mod.gw_interfaces.v.domain_module.w", "gw_mod.gw_interfaces.v.other", "gw_mod.gw_encoders.t.0.weight"}),
                 (V{"gw_mod.gw_encoders.v.0.weight", "loss_mod.gw_mod.gw_decoders.t.4.bias", "gw_mod.gw_encoders.t.0.weight"}));
        QCOMPARE(keysAfter("4_del_buffers_put_models_in_gw_mod", {"loss_coefs.buffer0", "domain_mods.v.w", "gw_mod.gw_encoders.v.0.bias"}),
                 (V{"loss_mod.gw_mod.domain_mods.v.w", "gw_mod.domain_mods.v.w", "gw_mod.gw_encoders.v.0.bias"}));
        QCOMPARE(keysAfter("5_del_coef_buffers", {"coef_buffers.cycles", "a.coef_buffers", "b"}), (V{"a.coef_buffers", "b"}));
        QCOMPARE(keysAfter("2_del_gw_interfaces_hparam", {"gw_mod.gw_interfaces.v.x"}), (V{"gw_mod.gw_interfaces.v.x"}));

        auto pending = [](const V& recorded, bool present) {
            V names;
            for (const auto& m : pendingShimmerMigrations(recorded, present)) names.push_back(m.name);
            return names;
        };
        QCOMPARE(pending({}, false).size(), size_t(5));
        QCOMPARE(pending({"something_else"}, true).size(), size_t(5));
        QCOMPARE(pending({"3_del_gw_interfaces"}, true), (V{"4_del_buffers_put_models_in_gw_mod", "5_del_coef_buffers"}));
        QCOMPARE(pending({"1_add_gw_interfaces", "5_del_coef_buffers"}, true), V{});  // gaps are not filled
        // A current state dict passes through all five unchanged.
        OrderedMap<torch::Tensor> current;
        current.set("gw_mod.gw_encoders.v.0.weight", torch::ones({2}));
        current.set("loss_mod.contrastive_fn.logit_scale", torch::ones({1}));
        const auto report = applyShimmerMigrations(current, {}, false);
        QCOMPARE(report.size(), size_t(5));
        QCOMPARE(report[2], std::string("3_del_gw_interfaces: no key changed"));
        QCOMPARE(current.keys(), (V{"gw_mod.gw_encoders.v.0.weight", "loss_mod.contrastive_fn.logit_scale"}));
    }

    void importErrorsNameEveryKey() {
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        const auto cfg = loadExperiment(fixtures::makeExperiment(dir), {"training.steps=3"});
        Engine e(cfg);
        e.prepare();
        const auto good = toShimmerLayout(e.model().stateDict());
        auto attempt = [&](const std::function<void(OrderedMap<torch::Tensor>&)>& edit) {
            OrderedMap<torch::Tensor> s;
            for (const auto& [k, t] : good) s.set(k, t.clone());
            edit(s);
            writeStateDict(d + "/bad.pt", s);
            return errorOf([&] { importShimmerWeights(d + "/bad.pt", cfg, false); });
        };
        QCOMPARE(attempt([](auto&) {}), QString());
        // Twins are optional, and the file's own order does not matter.
        QCOMPARE(attempt([](auto& s) {
                     OrderedMap<torch::Tensor> only;
                     auto keys = s.keys();
                     std::reverse(keys.begin(), keys.end());
                     for (const auto& k : keys)
                         if (k.rfind("loss_mod.gw_mod.", 0) != 0) only.set(k, s.at(k));
                     s = only;
                 }),
                 QString());
        const QString many = attempt([](auto& s) {
            OrderedMap<torch::Tensor> t;
            for (const auto& [k, v] : s)
                if (k != "gw_mod.gw_decoders.vec.2.bias" && k != "loss_mod.gw_mod.gw_decoders.vec.2.bias") t.set(k, v);
            t.set("gw_mod.gw_encoders.vec.4.weight", torch::zeros({7, 16}));
            t.set("loss_mod.gw_mod.gw_encoders.vec.4.weight", torch::zeros({7, 16}));
            t.set("gw_mod.gw_encoders.audio.0.weight", torch::zeros({2, 2}));
            t.set("gw_mod.gw_encoders.label.0.bias", torch::zeros({16}, torch::kLong));
            t.set("loss_mod.gw_mod.gw_encoders.label.0.bias", torch::zeros({16}, torch::kLong));
            s = t;
        });
        QVERIFY2(many.contains("bad.pt: ") && many.contains("missing key gw_mod.gw_decoders.vec.2.bias") &&
                     many.contains("key gw_mod.gw_encoders.vec.4.weight: expected shape [6, 16], found [7, 16]") &&
                     many.contains("unexpected key gw_mod.gw_encoders.audio.0.weight") &&
                     many.contains("key gw_mod.gw_encoders.label.0.bias: expected Float, found Long"),
                 qPrintable(many));
        const QString twin = attempt([](auto& s) { s.at("loss_mod.gw_mod.gw_decoders.label.4.bias").add_(0.5); });
        QVERIFY2(twin.contains("loss_mod.gw_mod.gw_decoders.label.4.bias differs from its twin gw_mod.gw_decoders.label.4.bias "
                               "(max |difference| 0.5)"),
                 qPrintable(twin));
        const QString alone = attempt([](auto& s) {
            OrderedMap<torch::Tensor> t;
            for (const auto& [k, v] : s)
                if (k != "gw_mod.gw_encoders.vec.0.bias") t.set(k, v);
            s = t;
        });
        QVERIFY2(alone.contains("loss_mod.gw_mod.gw_encoders.vec.0.bias has no twin gw_mod.gw_encoders.vec.0.bias"), qPrintable(alone));
        // A GW Studio checkpoint given where a state dict is expected.
        saveCheckpoint(d + "/ours.ckpt", e.makeCheckpoint());
        QVERIFY(errorOf([&] { importShimmerWeights(d + "/ours.ckpt", cfg, false); }).contains("use gw export"));
    }

    void keepDomainModulesIgnoresTheirTensors() {
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        // An mlp_ae domain module has tensors; the file's copies are ignored with --keep-domain-modules.
        fixtures::writeVectorsAndLabels(d + "/data.h5");
        std::string yaml = fixtures::experimentYaml(3);
        yaml.replace(yaml.find("vec: {module: identity}"), 23, "vec: {module: mlp_ae, latent_dim: 5, hidden_dim: 8, weights: ae.pt, frozen: false}");
        std::ofstream(d + "/ae.yaml") << yaml;
        const auto cfg = loadExperiment(d + "/ae.yaml");
        Engine e(cfg);
        e.prepare();
        // Weights that differ from any engine built from this experiment's seed, so that a file that
        // were ignored would show.
        auto state = toShimmerLayout(e.model().stateDict());
        for (auto& [k, t] : state)
            if (t.is_floating_point()) t = t * 1.5 + 0.25;
        OrderedMap<torch::Tensor> renamed;  // another library's names for the domain module
        for (const auto& [k, t] : state) {
            std::string key = k;
            const auto at = key.find("domain_mods.vec.");
            if (at != std::string::npos) key.replace(at, 16, "domain_mods.vec.vae.");
            renamed.set(key, t);
        }
        writeStateDict(d + "/other.pt", renamed);
        const QString err = errorOf([&] { importShimmerWeights(d + "/other.pt", cfg, false); });
        QVERIFY2(err.contains("unexpected key gw_mod.domain_mods.vec.vae.encoder.0.weight"), qPrintable(err));
        const Checkpoint c = importShimmerWeights(d + "/other.pt", cfg, true);
        for (const auto& [k, t] : c.state) {
            if (k.rfind("gw_mod.domain_mods.", 0) == 0) continue;  // kept from the experiment
            QVERIFY2(torch::equal(t, state.at(k)), k.c_str());
        }
        QVERIFY(!torch::equal(c.state.at("gw_mod.gw_decoders.vec.0.weight"), e.model().stateDict().at("gw_mod.gw_decoders.vec.0.weight")));
    }

    void version1CheckpointsMigrate() {
        const std::string fixture = GW_SOURCE_DIR "/tests/data/checkpoint-v1.ckpt";
        int64_t found = 0;
        const Checkpoint c = loadCheckpoint(fixture, &found);
        QCOMPARE(found, int64_t(1));
        QCOMPARE(c.formatVersion, kCheckpointFormatVersion);
        QCOMPARE(c.migrations, (std::vector<std::string>{"2_named_state_and_lists"}));
        QCOMPARE(c.step, int64_t(20));
        QCOMPARE(c.samplerStates.size(), size_t(3));
        // Every tensor equals what the version-1 reader saw (written beside the fixture when it was made).
        const auto expected = readStateDict(GW_SOURCE_DIR "/tests/data/checkpoint-v1-expected.pt").tensors;
        QCOMPARE(c.state.size(), size_t(25));
        for (const auto& [k, t] : c.state) QVERIFY2(torch::equal(t, expected.at(k)), k.c_str());
        QVERIFY(torch::equal(c.adamExpAvg, expected.at("adam.exp_avg")));
        QVERIFY(torch::equal(c.adamExpAvgSq, expected.at("adam.exp_avg_sq")));
        QCOMPARE(c.adamStep, expected.at("adam.step").item<int64_t>());
        QVERIFY(torch::equal(c.cpuRngState, expected.at("cpu_rng_state")));

        QTemporaryDir dir;
        const std::string copy = dir.path().toStdString() + "/last.ckpt";
        fs::copy_file(fixture, copy);
        auto r = gwCli({"migrate", QString::fromStdString(copy)});
        QVERIFY2(r.code == 0 && r.out.contains("from format_version 1 to 2 (2_named_state_and_lists)"), qPrintable(r.out));
        const std::string backup = dir.path().toStdString() + "/last-1.ckpt";
        QVERIFY(slurp(backup) == slurp(fixture));  // the original, byte for byte
        int64_t now = 0;
        const Checkpoint m = loadCheckpoint(copy, &now);
        QCOMPARE(now, kCheckpointFormatVersion);
        QCOMPARE(m.migrations, c.migrations);
        for (const auto& [k, t] : c.state) QVERIFY(torch::equal(t, m.state.at(k)));
        QCOMPARE(m.samplerStates, c.samplerStates);
        auto again = gwCli({"migrate", QString::fromStdString(copy)});
        QVERIFY(again.code == 0 && again.out.contains("nothing to do"));
        QVERIFY(!fs::exists(dir.path().toStdString() + "/last-2.ckpt"));

        // A format from the future is refused by name.
        torch::serialize::OutputArchive future;
        future.write("gw_studio_checkpoint", c10::IValue(std::string("GW Studio checkpoint")));
        future.write("format_version", c10::IValue(int64_t(99)));
        future.save_to(dir.path().toStdString() + "/future.ckpt");
        QVERIFY(errorOf([&] { loadCheckpoint(dir.path().toStdString() + "/future.ckpt"); })
                    .contains("format_version 99 is newer than this build reads (2)"));
    }

    /// A file cut anywhere is an error; 1,000 files, each with one byte flipped at random, are each
    /// rejected with an error naming the file or read bit for bit as written (a flip in a part of the
    /// zip that nothing reads): never other numbers. Every record carries its CRC-32.
    void corruptTorchFilesNeverCrash() {
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        OrderedMap<torch::Tensor> s;
        s.set("gw_mod.gw_encoders.a.0.weight", torch::randn({16, 8}));
        s.set("gw_mod.gw_encoders.a.0.bias", torch::randn({16}));
        s.set("loss_mod.contrastive_fn.logit_scale", torch::tensor({2.5}));
        writeStateDict(d + "/good.pt", s);
        const std::string bytes = slurp(d + "/good.pt");
        std::mt19937 rng(7);
        int rejected = 0, identical = 0;
        auto attempt = [&](const std::string& b) {
            std::ofstream(d + "/fuzz.pt", std::ios::binary | std::ios::trunc) << b;
            try {
                const auto f = readStateDict(d + "/fuzz.pt");
                QCOMPARE(f.tensors.keys(), s.keys());
                for (const auto& [k, t] : f.tensors) QVERIFY2(torch::equal(t, s.at(k)), k.c_str());
                ++identical;
            } catch (const CheckpointError& e) {
                QVERIFY2(QString(e.what()).startsWith(QString::fromStdString(d + "/fuzz.pt: ")), e.what());
                ++rejected;
            }
        };
        for (size_t cut = 0; cut + 1 < bytes.size(); cut += bytes.size() / 40 + 1) {
            const int before = rejected;
            attempt(bytes.substr(0, cut));
            QVERIFY2(rejected == before + 1, qPrintable(QString("cut at %1 read").arg(cut)));
        }
        rejected = 0;
        for (int i = 0; i < 1000; ++i) {
            std::string b = bytes;
            b[rng() % b.size()] ^= static_cast<char>(1 + rng() % 255);
            attempt(b);
        }
        QCOMPARE(rejected + identical, 1000);
        QVERIFY(rejected > 500);
        qInfo("state dict, 1,000 single-byte flips: %d rejected with an error, %d read bit-identical", rejected, identical);
    }

    /// The same for a GW Studio checkpoint: a damaged tensor record is named; `gw eval` never computes
    /// metrics from damaged weights.
    void corruptCheckpointsAreNamed() {
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        Engine e(loadExperiment(fixtures::makeExperiment(dir), {"training.steps=3"}));
        e.prepare();
        for (int i = 0; i < 3; ++i) e.trainStep();
        const Checkpoint good = e.makeCheckpoint();
        saveCheckpoint(d + "/good.ckpt", good);
        const std::string bytes = slurp(d + "/good.ckpt");
        std::mt19937 rng(11);
        int rejected = 0, identical = 0, namedRecord = 0;
        for (int i = 0; i < 1000; ++i) {
            std::string b = bytes;
            b[rng() % b.size()] ^= static_cast<char>(1 + rng() % 255);
            std::ofstream(d + "/fuzz.ckpt", std::ios::binary | std::ios::trunc) << b;
            try {
                const Checkpoint c = loadCheckpoint(d + "/fuzz.ckpt");
                QCOMPARE(c.configYaml, good.configYaml);
                QCOMPARE(c.step, good.step);
                QCOMPARE(c.kind, good.kind);
                QCOMPARE(c.note, good.note);
                QCOMPARE(c.samplerStates, good.samplerStates);
                QCOMPARE(c.adamStep, good.adamStep);
                QCOMPARE(c.state.keys(), good.state.keys());
                for (const auto& [k, t] : c.state) QVERIFY2(torch::equal(t, good.state.at(k)), k.c_str());
                QVERIFY(torch::equal(c.adamExpAvg, good.adamExpAvg) && torch::equal(c.adamExpAvgSq, good.adamExpAvgSq));
                QVERIFY(torch::equal(c.cpuRngState, good.cpuRngState));
                ++identical;
            } catch (const CheckpointError& err) {
                const QString m = err.what();
                QVERIFY2(m.startsWith(QString::fromStdString(d + "/fuzz.ckpt: ")), err.what());
                namedRecord += m.contains("record '") ? 1 : 0;
                ++rejected;
            }
        }
        QVERIFY(rejected > 500 && namedRecord > 0);
        qInfo("checkpoint, 1,000 single-byte flips: %d rejected (%d naming the damaged record), %d read bit-identical",
              rejected, namedRecord, identical);
        // Inside a tensor: the record is named, and gw eval refuses it.
        const size_t at = bytes.size() / 3;
        std::string b = bytes;
        b[at] ^= 0x10;
        std::ofstream(d + "/flipped.ckpt", std::ios::binary | std::ios::trunc) << b;
        const auto ev = gwCli({"eval", QString::fromStdString(d + "/flipped.ckpt"), "--json"});
        QVERIFY(ev.code != 0);
        QVERIFY2(ev.out.contains("flipped.ckpt: record '") && ev.out.contains("is damaged"), qPrintable(ev.out));
    }

    /// Weights that are not finite are refused by name, wherever they are loaded from.
    void nonFiniteWeightsAreRefused() {
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        Engine e(loadExperiment(fixtures::makeExperiment(dir), {"training.steps=3"}));
        e.prepare();
        Checkpoint c = e.makeCheckpoint();
        auto w = c.state.at("gw_mod.gw_decoders.label.0.weight").clone();
        w.view(-1)[3] = std::numeric_limits<float>::quiet_NaN();
        w.view(-1)[5] = std::numeric_limits<float>::infinity();
        c.state.set("gw_mod.gw_decoders.label.0.weight", w);
        saveCheckpoint(d + "/nan.ckpt", c);
        const auto ev = gwCli({"eval", QString::fromStdString(d + "/nan.ckpt"), "--json"});
        QVERIFY(ev.code != 0);
        QVERIFY2(ev.out.contains("nan.ckpt") && ev.out.contains("gw_mod.gw_decoders.label.0.weight holds 2 NaN or infinite values"),
                 qPrintable(ev.out));
        QVERIFY(!ev.out.contains("\"test/"));
    }
};

QTEST_GUILESS_MAIN(TestInterop)
#include "tst_interop.moc"

// SPDX-License-Identifier: GPL-3.0-or-later
// The training engine end to end on a small generated dataset: it learns, resumes exactly, streams
// from disk with the same result, rejects bad data and damaged checkpoints, and stops cleanly on NaN.
#include <QtTest/QtTest>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/atomic_file.h"
#include "data/file_hash.h"
#include "data/h5_array.h"
#include "data/sampler.h"
#include "data/zip_check.h"
#include "model/io/torch_file.h"
#include "fixtures.h"
#include "model/run/engine.h"
#include "model/run/runs.h"

using namespace gw;
namespace fs = std::filesystem;
using fixtures::errorOf;

namespace {
std::vector<double> losses(Engine& e, int steps) {
    std::vector<double> r;
    for (int i = 0; i < steps; ++i) r.push_back(e.trainStep().out.loss.item<double>());
    return r;
}

}  // namespace

class TestEngine : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void learnsTranslations() {
        QTemporaryDir dir;
        auto cfg = loadExperiment(fixtures::makeExperiment(dir), {"training.steps=300"});
        Engine e(cfg);
        e.prepare();
        const auto sizes = e.groupSizes();
        QCOMPARE(sizes.size(), size_t(3));
        QCOMPARE(sizes[2], (std::pair<std::string, int64_t>{"{vec,label}", 128}));  // 25% of 512 paired
        const auto before = e.evaluate("val");
        losses(e, 300);
        const auto after = e.evaluate("val");
        QVERIFY(after.at("val/loss") < 0.5 * before.at("val/loss"));
        QVERIFY2(after.at("val/translation_vec_to_label_accuracy") > 0.9,
                 qPrintable(QString::number(after.at("val/translation_vec_to_label_accuracy"))));
        for (const char* k : {"val/demi_cycle_vec", "val/cycle_label_through_vec", "val/contrastive_vec_and_label",
                              "val/translation_label_to_vec", "val/contrastives"})
            QVERIFY2(after.contains(k), k);
        // Evaluation is deterministic.
        QCOMPARE(e.evaluate("val").at("val/loss"), after.at("val/loss"));
    }

    void resumeContinuesExactly() {
        QTemporaryDir dir;
        auto cfg = loadExperiment(fixtures::makeExperiment(dir), {"training.steps=40", "workspace.selection=random"});
        Engine whole(cfg);
        whole.prepare();
        auto reference = losses(whole, 40);

        Engine first(cfg);
        first.prepare();
        auto head = losses(first, 20);
        first.evaluate("val");  // validation in between changes nothing
        const std::string path = dir.path().toStdString() + "/half.ckpt";
        saveCheckpoint(path, first.makeCheckpoint());

        Checkpoint c = loadCheckpoint(path);
        QCOMPARE(c.step, int64_t(20));
        Engine second(cfg);
        second.prepare(&c);
        second.restore(c, path);
        auto tail = losses(second, 20);
        head.insert(head.end(), tail.begin(), tail.end());
        QCOMPARE(head, reference);  // bit for bit
    }

    void streamingEqualsCached() {
        QTemporaryDir dir;
        const auto path = fixtures::makeExperiment(dir);
        Engine cached(loadExperiment(path, {"training.steps=15", "domains.vec.frozen=false"}));
        Engine streamed(loadExperiment(path, {"training.steps=15", "domains.vec.frozen=false", "data.cache_mb=0"}));
        cached.prepare();
        streamed.prepare();
        QCOMPARE(losses(streamed, 15), losses(cached, 15));
    }

    /// A frozen module's latents are kept on disk between runs (model/run/latent_cache.h): a second run
    /// reads them and evaluates to the same numbers; other weights or a rewritten data file are a miss;
    /// a damaged entry is named and written anew; GW_LATENT_CACHE=0 keeps nothing.
    void frozenLatentsAreKeptBetweenRuns() {
        QTemporaryDir dir;
        const auto path = fixtures::makeExperiment(dir);
        const std::string root = dir.path().toStdString(), cache = root + "/latents";
        qputenv("GW_LATENT_CACHE_DIR", QByteArray::fromStdString(cache));
        std::vector<std::string> opts = {"domains.vec.module=mlp_ae", "domains.vec.latent_dim=4", "domains.vec.pretrain.steps=20",
                                         "domains.vec.weights=" + root + "/vec.pt", "training.steps=4"};
        const auto run = [&](const std::vector<std::string>& o, std::string* lines = nullptr) {
            std::string log;
            Engine e(loadExperiment(path, o), [&](const std::string& l) { log += l + "\n"; });
            e.prepare();
            const auto m = e.evaluate("val");
            if (lines) *lines = log;
            return m.at("val/loss");
        };
        const auto entries = [&] {
            size_t n = 0;
            for (const auto& f : std::filesystem::directory_iterator(cache)) n += f.path().extension() == ".pt";
            return n;
        };
        std::string log;
        const double first = run(opts, &log);
        QVERIFY2(log.find("domain vec: train encoded (512 samples") != std::string::npos && log.find("kept in the latent cache") != std::string::npos,
                 log.c_str());
        QVERIFY2(log.find("domain label: train encoded") == std::string::npos, log.c_str());  // class labels: the loss reads inputs
        QCOMPARE(entries(), size_t(3));  // train, val, test of vec
        QCOMPARE(run(opts, &log), first);
        QVERIFY2(log.find("domain vec: val latents from the cache (" + cache + "/") != std::string::npos, log.c_str());
        QVERIFY(log.find("encoded") == std::string::npos);
        // Other weights (pre-trained longer): new entries.
        auto longer = opts;
        longer[2] = "domains.vec.pretrain.steps=30";
        longer[3] = "domains.vec.weights=" + root + "/vec30.pt";
        run(longer, &log);
        QVERIFY2(log.find("domain vec: val encoded") != std::string::npos, log.c_str());
        QCOMPARE(entries(), size_t(6));
        // A rewritten data file (same shapes, other values): new entries again.
        std::filesystem::remove(root + "/data.h5");
        fixtures::writeVectorsAndLabels(root + "/data.h5");
        run(opts, &log);
        QVERIFY2(log.find("domain vec: val encoded") != std::string::npos, log.c_str());
        QCOMPARE(entries(), size_t(9));
        // A damaged entry: named, encoded again, written anew, then read.
        for (const auto& f : std::filesystem::directory_iterator(cache))
            std::ofstream(f.path(), std::ios::trunc) << "not a tensor file";
        run(opts, &log);
        QVERIFY2(log.find("latent cache entry not used: " + cache + "/") != std::string::npos, log.c_str());
        QVERIFY2(log.find("domain vec: val encoded") != std::string::npos, log.c_str());
        run(opts, &log);
        QVERIFY2(log.find("domain vec: val latents from the cache") != std::string::npos, log.c_str());
        // Off: nothing read, nothing written.
        std::filesystem::remove_all(cache);
        qputenv("GW_LATENT_CACHE", "0");
        run(opts, &log);
        qunsetenv("GW_LATENT_CACHE");
        qunsetenv("GW_LATENT_CACHE_DIR");
        QVERIFY(!std::filesystem::exists(cache));
        QVERIFY(log.find("latent cache") == std::string::npos);
    }

    /// Groups with their own sizes (data.groups; shimmer-ssd's domain proportions, get_domain_alignment):
    /// a group's samples are also those of every group of some of its domains, larger sets first.
    void groupsWithTheirOwnProportions() {
        using data::alignGroups;
        auto has = [](const std::vector<int64_t>& big, const std::vector<int64_t>& small) {
            return std::includes(big.begin(), big.end(), small.begin(), small.end());
        };
        auto g = alignGroups(1000, {{{"v"}, 1000}, {{"t"}, 1000}, {{"v", "t"}, 500}}, 4);
        QCOMPARE(g[0].size(), size_t(1000));
        QCOMPARE(g[2].size(), size_t(500));
        g = alignGroups(1000, {{{"v"}, 200}, {{"t"}, 300}, {{"t", "v"}, 100}}, 4);
        QCOMPARE(g[0].size(), size_t(200));
        QCOMPARE(g[1].size(), size_t(300));
        QCOMPARE(g[2].size(), size_t(100));
        QVERIFY(has(g[0], g[2]) && has(g[1], g[2]));
        QVERIFY(std::adjacent_find(g[0].begin(), g[0].end()) == g[0].end());  // no sample twice
        QCOMPARE(alignGroups(1000, {{{"v"}, 200}, {{"t"}, 300}, {{"t", "v"}, 100}}, 4), g);  // seeded
        QVERIFY(alignGroups(1000, {{{"v"}, 200}, {{"t"}, 300}, {{"t", "v"}, 100}}, 5) != g);
        // Three levels: {a,b,c} inside {a,b} inside {a}.
        g = alignGroups(2000, {{{"a"}, 1000}, {{"a", "b"}, 400}, {{"a", "b", "c"}, 100}, {{"c"}, 150}}, 1);
        QVERIFY(has(g[0], g[1]) && has(g[1], g[2]) && has(g[3], g[2]));
        QCOMPARE(g[2].size(), size_t(100));
        QCOMPARE(g[3].size(), size_t(150));
        QCOMPARE(errorOf([] { alignGroups(1000, {{{"v"}, 50}, {{"v", "t"}, 100}}, 0); }),
                 QString("group {v}: asks for 50 samples, but group {t,v}, which holds its domains, already gives it 100 "
                         "(a group's samples are also those of every group of some of its domains)"));
        QVERIFY(errorOf([] { alignGroups(10, {{{"v"}, 11}}, 0); }).contains("asks for 11 samples, the training split has 10"));

        // In an experiment: the groups the engine trains on, their sizes, the writer, the errors.
        QTemporaryDir dir;
        const auto path = fixtures::makeExperiment(dir);
        const std::vector<std::string> groups = {
            "~data.paired_fraction",
            "data.groups=[{domains: [vec], proportion: 0.5}, {domains: [label], proportion: 1.0}, {domains: [label, vec], count: 64}]"};
        auto cfg = loadExperiment(path, groups);
        QCOMPARE(cfg.groups.size(), size_t(3));
        const auto again = parseExperiment(experimentToYaml(cfg), "again.yaml");
        QCOMPARE(again.groups.size(), size_t(3));
        QCOMPARE(again.groups[2].count, int64_t(64));
        QCOMPARE(again.groups[0].proportion, 0.5);
        Engine e(cfg);
        e.prepare();
        const auto sizes = e.groupSizes();
        QCOMPARE(sizes.size(), size_t(3));
        QCOMPARE(sizes[0].second, int64_t(256));
        QCOMPARE(sizes[1].second, int64_t(512));
        QCOMPARE(QString::fromStdString(sizes[2].first), QString("{vec,label}"));  // the experiment's domain order
        QCOMPARE(sizes[2].second, int64_t(64));
        for (int i = 0; i < 2; ++i) QVERIFY(std::isfinite(e.trainStep().out.loss.item<double>()));
        QVERIFY(errorOf([&] { loadExperiment(path, {"data.groups=[{domains: [vec], proportion: 0.5}]"}); })
                    .contains("data.paired_fraction: data.groups sets every group's samples, so this key would not be used: "
                              "remove it (or, on the command line, add ~data.paired_fraction)"));
        QVERIFY(errorOf([&] { loadExperiment(path, {"~data.paired_fraction", "data.groups=[{domains: [image], count: 3}]"}); })
                    .contains("data.groups[0].domains: expected domains of this experiment (vec, label), found 'image'"));
        QVERIFY(errorOf([&] { loadExperiment(path, {"~data.paired_fraction", "data.groups=[{domains: [vec], count: 3, proportion: 1}]"}); })
                    .contains("data.groups[0]: expected exactly one of proportion and count, found both"));
        QVERIFY(errorOf([&] { loadExperiment(path, {"~data.paired_fraction", "data.groups=[{domains: [vec], count: 3}, {domains: [vec], count: 4}]"}); })
                    .contains("data.groups[1].domains: expected a group not given before, found {vec} again"));
        QVERIFY(errorOf([&] {
                    Engine(loadExperiment(path, {"~data.paired_fraction", "data.groups=[{domains: [vec], count: 9000}]"})).prepare();
                }).contains("data.groups {vec}: count 9000 is more than the training split's 512 samples"));

        // A public domain split file (shapesd create's domain_splits_v2), read as it is: its groups and indices.
        const std::string split = GW_SOURCE_DIR "/tests/data/simple-shapes-sample/domain_splits_v2/"
                                                "train_t:1.0_t,v:0.5_v:1.0_seed:0_ms:4_domain_split.npy";
        const std::vector<std::string> public_ = {"~data.paired_fraction", "~domains.vec", "~domains.label",
                                                  "+domains.v={module: identity, dataset: \"/{split}/vec\"}",
                                                  "+domains.t={module: class_label, dataset: \"/{split}/label\", num_classes: 4}",
                                                  "data.groups_file=" + split};
        cfg = loadExperiment(path, public_);
        QCOMPARE(parseExperiment(experimentToYaml(cfg), "again.yaml").groupsFile, split);
        Engine fromFile(cfg);
        fromFile.prepare();
        const auto pub = fromFile.groupSizes();
        QCOMPARE(pub.size(), size_t(3));
        QCOMPARE(QString::fromStdString(pub[0].first + " " + std::to_string(pub[0].second) + ", " + pub[1].first + " " +
                                        std::to_string(pub[1].second) + ", " + pub[2].first + " " + std::to_string(pub[2].second)),
                 QString("{v} 4, {t} 4, {v,t} 2"));
        auto named = public_;
        named[3] = "+domains.image={module: identity, dataset: \"/{split}/vec\"}";
        const QString unknown = errorOf([&] { Engine(loadExperiment(path, named)).prepare(); });
        QVERIFY2(unknown.contains("names a domain this experiment does not have (image, t)"), qPrintable(unknown));
        auto both = public_;
        both.push_back("data.groups=[{domains: [v], count: 3}]");
        QVERIFY(errorOf([&] { loadExperiment(path, both); }).contains("data.groups: data.groups_file gives the groups already"));
    }

    void moreThanTwoDomains() {
        QTemporaryDir dir;
        const auto path = fixtures::makeExperiment(dir);
        {
            auto vec = data::H5Array(dir.path().toStdString() + "/data.h5", "/train/vec").readAll();
            data::writeDataset(dir.path().toStdString() + "/data.h5", "/train/twice", vec * 2);
        }
        auto cfg = loadExperiment(path, {"training.steps=5", "domains.twice.module=identity", "data.val_split=none",
                                         "data.test_split=none"});
        Engine e(cfg);
        e.prepare();
        auto r = e.trainStep();
        QVERIFY(r.out.metrics.contains("translation_vec/twice_to_label"));
        QVERIFY(r.out.metrics.contains("contrastive_vec_and_twice"));
        QVERIFY(r.out.metrics.contains("cycle_label_through_twice"));
        QVERIFY(!e.hasSplit("val"));
    }

    void uselessCoefficientsAreReported() {
        QTemporaryDir dir;
        auto cfg = loadExperiment(fixtures::makeExperiment(dir),
                                  {"training.steps=3", "loss.coefficients.fused=1.0", "data.paired_fraction=0"});
        std::vector<std::string> log;
        Engine e(cfg, [&](const std::string& line) { log.push_back(line); });
        losses(e, 3);
        auto count = [&](const std::string& needle) {
            return std::count_if(log.begin(), log.end(), [&](const std::string& l) { return l.find(needle) != std::string::npos; });
        };
        QCOMPARE(count("loss.coefficients.fused names no metric"), 1L);
        QCOMPARE(count("'translations' (skipped"), 1L);
        QCOMPARE(count("'contrastives' (skipped"), 1L);
        QCOMPARE(count("loss.coefficients.cycles"), 0L);  // a coefficient that selects a metric is fine
    }

    void badDataIsNamed() {
        QTemporaryDir dir;
        const auto path = fixtures::makeExperiment(dir);
        const std::string h5 = dir.path().toStdString() + "/data.h5";
        data::writeDataset(h5, "/train/short", torch::zeros({100, 8}));
        data::writeDataset(h5, "/train/cube", torch::zeros({512, 2, 2}));
        auto mismatch = errorOf([&] {
            Engine(loadExperiment(path, {"domains.vec.dataset=/train/short", "data.val_split=x", "data.test_split=y"})).prepare();
        });
        QVERIFY2(mismatch.contains("expected the same sample count in every domain, found 100 in") &&
                     mismatch.contains("/train/short") && mismatch.contains("512"),
                 qPrintable(mismatch));
        auto shape = errorOf([&] { Engine(loadExperiment(path, {"domains.label.dataset=/{split}/vec", "domains.label.num_classes=4"})).prepare(); });
        QVERIFY2(shape.contains("domains.label") && shape.contains("expected class indices of shape (B,)"), qPrintable(shape));
        auto missing = errorOf([&] { Engine(loadExperiment(path, {"domains.vec.dataset=/{split}/nothing"})).prepare(); });
        QVERIFY2(missing.contains("data.h5:/train/nothing: no such dataset"), qPrintable(missing));
        auto pretrain = errorOf([&] {
            Engine(loadExperiment(path, {"domains.vec.module=mlp_ae", "domains.vec.pretrain.steps=0"})).prepare();
        });
        QVERIFY2(pretrain.contains("domains.vec.weights"), qPrintable(pretrain));
    }

    /// Pre-training checks where its weights will go before it starts, and keeps them in the run folder
    /// when the experiment names no file.
    void pretrainingKnowsWhereItsWeightsGo() {
        QTemporaryDir dir;
        const auto path = fixtures::makeExperiment(dir);
        const std::vector<std::string> mlp = {"domains.vec.module=mlp_ae", "domains.vec.latent_dim=4", "domains.vec.pretrain.steps=20",
                                              "training.steps=4"};
        // Nowhere to write: refused before a single pre-training step.
        std::vector<std::string> log;
        auto unwritable = mlp;
        unwritable.push_back("domains.vec.weights=/proc/gw-studio-test/vec.pt");
        const QString e = errorOf([&] { Engine(loadExperiment(path, unwritable), [&](const std::string& l) { log.push_back(l); }).prepare(); });
        QVERIFY2(e.contains("domains.vec.weights: cannot write the pre-trained weights to /proc/gw-studio-test/vec.pt"), qPrintable(e));
        for (const auto& l : log) QVERIFY2(l.find("pre-training") == std::string::npos, l.c_str());
        // No path and no run: an error first, too.
        QVERIFY(errorOf([&] { Engine(loadExperiment(path, mlp)).prepare(); }).contains("expected a file to keep the pre-trained weights in"));
        // No path within a run: RUN/pretrained/vec.pt, named by the run's config.yaml.
        const std::string run = dir.path().toStdString() + "/run";
        Engine engine(loadExperiment(path, mlp));
        engine.setRunDir(run);
        runTraining(engine, run);
        const std::string kept = run + "/pretrained/vec.pt";
        QVERIFY(std::filesystem::exists(kept));
        QCOMPARE(loadCheckpoint(kept).kind, std::string("domain_module"));
        QCOMPARE(loadExperiment(runConfigPath(run)).domain("vec").weights, kept);

        // Pre-training writes the weights' checksum beside them, as sha256sum does; loading checks it.
        std::ifstream side(kept + ".sha256");
        std::string digest, name;
        side >> digest >> name;
        QCOMPARE(digest, data::sha256OfFile(kept));
        QCOMPARE(name, std::string("vec.pt"));
        const auto reuse = [&] {
            auto with = mlp;
            with.push_back("domains.vec.weights=" + kept);
            std::vector<std::string> lines;
            Engine again(loadExperiment(path, with), [&](const std::string& l) { lines.push_back(l); });
            again.prepare();
            return lines;
        };
        bool checked = false;
        for (const auto& l : reuse()) checked = checked || l.find("weights from " + kept + " (SHA-256 " + digest.substr(0, 12)) != std::string::npos;
        QVERIFY(checked);
        // Other weights under the same name (copied over by hand, say): named with both digests.
        {
            std::fstream f(kept, std::ios::in | std::ios::out | std::ios::binary);
            f.seekp(0, std::ios::end);
            f << "appended";
        }
        const QString changed = errorOf([&] { reuse(); });
        QVERIFY2(changed.contains(QString::fromStdString(kept + ": SHA-256 is " + data::sha256OfFile(kept) + ", but " + kept +
                                                         ".sha256 expects " + digest)),
                 qPrintable(changed));
        // A checksum file that is not one: named, with what was expected.
        writeFileAtomically(kept + ".sha256", "not-a-digest vec.pt\n");
        const QString malformed = errorOf([&] { reuse(); });
        QVERIFY2(malformed.contains(QString::fromStdString(kept + ".sha256: expected a SHA-256 (64 hexadecimal digits)")) &&
                     malformed.contains("found 'not-a-digest'"),
                 qPrintable(malformed));
        // Without one (weights made before checksums), the weights load as before.
        fs::remove(kept + ".sha256");
        QCOMPARE(data::checkSha256Sidecar(kept), std::string());
    }

    /// The image VAE weights that ship with the Fashion-MNIST experiment: the file its experiment names,
    /// matching the checksum committed beside it, a conv VAE state of the experiment's sizes.
    void shippedWeightsMatchTheirChecksum() {
        const auto cfg = loadExperiment(GW_SOURCE_DIR "/resources/experiments/fashion-mnist.yaml");
        const std::string w = cfg.resolvePath(cfg.domain("image").weights);
        QCOMPARE(fs::path(w).lexically_normal().string(), std::string(GW_SOURCE_DIR "/resources/weights/fashion-mnist-image-vae.pt"));
        QCOMPARE(data::checkSha256Sidecar(w).size(), size_t(64));
        const Checkpoint c = loadCheckpoint(w);
        QCOMPARE(c.kind, std::string("domain_module"));
        QCOMPARE(c.step, int64_t(cfg.domain("image").pretrain.steps));
        bool latent = false;
        for (const auto& [k, t] : c.state)
            if (t.dim() == 2 && t.size(0) == 12) latent = true;  // latent_dim: 12
        QVERIFY(latent);
    }

    /// An experiment in a read-only place (installed under /usr/share) sends its runs and the data it
    /// imports to the user's data folder, never beside itself.
    void readOnlyPlacesUseTheUserDataFolder() {
        QTemporaryDir dir;
        const std::string root = dir.path().toStdString();
        const QByteArray before = qgetenv("XDG_DATA_HOME");
        qputenv("XDG_DATA_HOME", QByteArray::fromStdString(root + "/xdg"));
        QCOMPARE(userDataDir(), root + "/xdg/gw-studio");
        QVERIFY(writableFolder(root + "/not/yet/there"));
        QVERIFY(!writableFolder("/proc/gw-studio-test/runs"));
        const auto path = fixtures::makeExperiment(dir);
        const auto here = loadExperiment(path, {"training.out=runs"});
        QVERIFY(defaultRunDir(here).rfind(root + "/runs/tiny-", 0) == 0);
        const auto readOnly = loadExperiment(path, {"training.out=/proc/gw-studio-test/runs"});
        QVERIFY2(defaultRunDir(readOnly).rfind(root + "/xdg/gw-studio/runs/tiny-", 0) == 0, defaultRunDir(readOnly).c_str());
        // Data to import: moved only when they cannot be written where the experiment says.
        QCOMPARE(dataFileFor(here), root + "/data.h5");
        const auto importHere = loadExperiment(path, {"data.file=fresh.h5", "data.import=fashion-mnist"});
        QCOMPARE(dataFileFor(importHere), root + "/fresh.h5");
        const auto importReadOnly = loadExperiment(path, {"data.file=/proc/gw-studio-test/fm.h5", "data.import=fashion-mnist"});
        QCOMPARE(dataFileFor(importReadOnly), root + "/xdg/gw-studio/fm.h5");
        const auto noImport = loadExperiment(path, {"data.file=/proc/gw-studio-test/fm.h5"});
        QCOMPARE(dataFileFor(noImport), std::string("/proc/gw-studio-test/fm.h5"));  // read where it is, or named missing
        if (before.isNull()) qunsetenv("XDG_DATA_HOME");
        else qputenv("XDG_DATA_HOME", before);
    }

    /// What the fuzz targets found (tests/fuzz/, docs/fuzzing.md), kept as regression inputs: each is
    /// now refused with a message that names the damage, before the library that crashed or leaked on it.
    void fuzzFindingsAreRefused() {
        const std::string dir = GW_SOURCE_DIR "/tests/data/fuzz/";
        // HDF5 1.10 read past a decompressed chunk whose declared shape exceeds the dataset.
        const QString h5 = errorOf([&] { data::H5Array(dir + "h5-chunk-larger-than-dataset.h5", "/train/image"); });
        QVERIFY2(h5.contains("/train/image: damaged file: chunk shape (2, 1, 16388, 4) does not fit the dataset's shape (6, 1, 4, 4)"),
                 qPrintable(h5));
        // An uncompressed chunk of 47 bytes where 16 int64 take 128: HDF5 copied 128.
        const QString shortChunk = errorOf([&] { data::H5Array(dir + "h5-unfiltered-chunk-too-short.h5", "/test/label"); });
        QVERIFY2(shortChunk.contains("/test/label: damaged file: chunk 0 of 1 holds 47 bytes, expected 128"), qPrintable(shortChunk));
        // HDF5 1.10 (and h5py) loop forever on a global heap whose free-space object has size 0: the class
        // names it holds are skipped, quickly; the data still read.
        {
            QElapsedTimer t;
            t.start();
            data::H5Array y(dir + "h5-global-heap-free-space-0.h5", "/train/y");
            QCOMPARE(y.stringsAttribute("class_names"), std::vector<std::string>());
            QCOMPARE(y.readAll().size(0), int64_t(3));
            QVERIFY(t.elapsed() < 5000);
            // A heap ID whose object index (1,635,131,450) is not in its collection: H5HG_read indexed past
            // its table (h5py segfaults on this file).
            data::H5Array bad(dir + "h5-heap-id-index-out-of-range.h5", "/train/y");
            QCOMPARE(bad.stringsAttribute("class_names"), std::vector<std::string>());
            // A heap object of 295,345 bytes behind an ID that says fewer: H5HG_read overflowed the buffer.
            data::H5Array longer(dir + "h5-heap-object-longer-than-its-id.h5", "/train/y");
            QCOMPARE(longer.stringsAttribute("class_names"), std::vector<std::string>());
            data::H5Array intact(GW_SOURCE_DIR "/tests/fuzz/corpus/h5/float64-contiguous.h5", "/train/y");
            QCOMPARE(intact.stringsAttribute("class_names"), (std::vector<std::string>{"x", "y", "z"}));
        }
        // An experiment whose domain name (1,200 characters with NUL bytes) was accepted, then written back
        // as YAML that no parser reads.
        const QString named = errorOf([&] { loadExperiment(dir + "experiment-domain-name-with-nul.yaml"); });
        QVERIFY2(named.contains("domains: expected domain names of letters, digits, '_' or '-'") && named.contains("\\x00"),
                 qPrintable(named));
        // LibTorch's archive reader threw from its constructor and leaked on these; refused before it runs.
        const QString sd = errorOf([&] { readStateDict(dir + "state-dict-record-outside-folder.pt"); });
        QVERIFY2(sd.contains("not a readable torch.save file (not a LibTorch archive: record 'lightning/data/0' is outside the "
                             "archive's folder 'lmghtning/')"),
                 qPrintable(sd));
        const QString z64 = errorOf([&] { readStateDict(dir + "state-dict-zip64-record-disagrees.pt"); });
        QVERIFY2(z64.contains("damaged zip64 end-of-central-directory record (0 records"), qPrintable(z64));
        const QString enc = errorOf([&] { loadCheckpoint(dir + "checkpoint-record-marked-encrypted.ckpt"); });
        QVERIFY2(enc.contains("is marked encrypted or as patch data"), qPrintable(enc));
        const QString ck = errorOf([&] { loadCheckpoint(dir + "checkpoint-leak.ckpt"); });
        QVERIFY2(ck.contains("checkpoint-leak.ckpt: damaged zip64 end-of-central-directory record"), qPrintable(ck));
        // The layout rules on well-formed zips: a version outside LibTorch's range, a record outside the folder.
        QTemporaryDir tmp;
        const std::string root = tmp.path().toStdString();
        const auto zip = [&](const std::string& name, const std::vector<std::pair<std::string, std::string>>& records) {
            const auto r = fixtures::python({"-c", QString::fromStdString(
                "import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1],'w')\n" + [&] {
                    std::string body;
                    for (const auto& [n, c] : records) body += "z.writestr('" + n + "', '" + c + "')\n";
                    return body;
                }() + "z.close()\n"), QString::fromStdString(root + "/" + name)});
            QVERIFY2(r.code == 0, qPrintable(r.out));
        };
        if (!fixtures::pythonHasTorch()) GW_SKIP_MISSING("needs /usr/bin/python3 with torch (python3-torch)");
        zip("v99.ckpt", {{"v99/data.pkl", "x"}, {"v99/version", "99\\n"}});
        const QString v99 = errorOf([&] { loadCheckpoint(root + "/v99.ckpt"); });
        QVERIFY2(v99.contains("v99.ckpt: file format version 99; this GW Studio's LibTorch reads 1 to"), qPrintable(v99));
        zip("noversion.ckpt", {{"a/data.pkl", "x"}});
        QVERIFY(errorOf([&] { loadCheckpoint(root + "/noversion.ckpt"); }).contains("not a LibTorch archive: no record 'a/version'"));
        zip("flat.ckpt", {{"version", "3"}});
        QVERIFY(errorOf([&] { loadCheckpoint(root + "/flat.ckpt"); }).contains("its first record 'version' is not inside a folder"));
        zip("words.ckpt", {{"w/version", "three"}});
        QVERIFY(errorOf([&] { loadCheckpoint(root + "/words.ckpt"); }).contains("record 'w/version' holds 'three', expected a file format version number"));
        uint64_t version = 0;
        QCOMPARE(data::checkZipFile(GW_SOURCE_DIR "/tests/data/checkpoint-v1.ckpt", &version), std::string());
        QVERIFY(version >= 1 && version <= 10);
    }

    void damagedCheckpointsAreRejected() {
        QTemporaryDir dir;
        auto cfg = loadExperiment(fixtures::makeExperiment(dir), {"training.steps=5"});
        Engine e(cfg);
        e.prepare();
        losses(e, 5);
        const std::string good = dir.path().toStdString() + "/good.ckpt";
        saveCheckpoint(good, e.makeCheckpoint());
        std::ifstream in(good, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), {});
        auto write = [&](const std::string& name, const std::string& b) {
            const std::string p = dir.path().toStdString() + "/" + name;
            std::ofstream(p, std::ios::binary) << b;
            return p;
        };
        QVERIFY(errorOf([&] { loadCheckpoint(write("trunc.ckpt", bytes.substr(0, bytes.size() / 2))); }).contains("trunc.ckpt: "));
        QVERIFY(errorOf([&] { loadCheckpoint(write("text.ckpt", "hello")); }).contains("not a readable GW Studio checkpoint"));
        QVERIFY(errorOf([&] { loadCheckpoint(dir.path().toStdString() + "/none.ckpt"); }).contains("no such checkpoint"));
        // A LibTorch archive that is not ours.
        torch::serialize::OutputArchive foreign;
        foreign.write("weight", torch::ones({2}));
        foreign.save_to(dir.path().toStdString() + "/foreign.ckpt");
        QVERIFY(errorOf([&] { loadCheckpoint(dir.path().toStdString() + "/foreign.ckpt"); }).contains("not a GW Studio checkpoint"));
        // Flipped bytes anywhere: an error or a checkpoint, never a crash.
        std::mt19937 rng(1);
        int rejected = 0;
        for (int i = 0; i < 40; ++i) {
            std::string b = bytes;
            for (int k = 0; k < 8; ++k) b[rng() % b.size()] ^= static_cast<char>(1 + rng() % 255);
            const auto p = write("fuzz.ckpt", b);
            try {
                Checkpoint c = loadCheckpoint(p);
                Engine other(cfg);
                other.restore(c, p);
            } catch (const CheckpointError&) {
                ++rejected;
            } catch (const std::exception& ex) {
                QFAIL(qPrintable(QString("not a CheckpointError: ") + ex.what()));
            }
        }
        QVERIFY(rejected > 0);
        // Another experiment's shape.
        Engine wider(loadExperiment(dir.path().toStdString() + "/tiny.yaml", {"workspace.dim=7"}));
        auto shapeErr = errorOf([&] { wider.restore(loadCheckpoint(good), good); });
        QVERIFY2(shapeErr.contains("expected shape [7, 16], found [6, 16]"), qPrintable(shapeErr));
    }

    void atomicWriteKeepsThePreviousCheckpoint() {
        QTemporaryDir dir;
        Engine e(loadExperiment(fixtures::makeExperiment(dir), {"training.steps=4"}));
        e.prepare();
        losses(e, 2);
        const std::string p = dir.path().toStdString() + "/last.ckpt";
        saveCheckpoint(p, e.makeCheckpoint());
        losses(e, 2);
        fs::create_directory(p + ".partial");  // the temporary cannot be written
        fs::create_directory(p + ".partial/x");
        QVERIFY(errorOf([&] { saveCheckpoint(p, e.makeCheckpoint()); }).contains("cannot write"));
        QCOMPARE(loadCheckpoint(p).step, int64_t(2));
    }

    void atomicWriteKeepsTheOldFileWhenTheWriterThrows() {
        QTemporaryDir dir;
        const std::string p = dir.path().toStdString() + "/sub/config.yaml";
        writeFileAtomically(p, "old\n");  // creates the folder
        auto read = [](const std::string& f) {
            std::ifstream in(f, std::ios::binary);
            return std::string((std::istreambuf_iterator<char>(in)), {});
        };
        QCOMPARE(read(p), std::string("old\n"));
        const QString err = errorOf([&] {
            writeAtomically(p, [](const std::string& tmp) {
                std::ofstream(tmp) << "half of the new";
                throw std::runtime_error("disk full");
            });
        });
        QVERIFY2(err.contains("config.yaml: cannot write the file (disk full)"), qPrintable(err));
        QVERIFY_THROWS_EXCEPTION(WriteError, writeAtomically(p, [](const std::string&) { throw std::runtime_error("x"); }));
        QCOMPARE(read(p), std::string("old\n"));
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(fs::path(p).parent_path())) names.push_back(e.path().filename().string());
        QCOMPARE(names, std::vector<std::string>{"config.yaml"});  // no temporary left behind
        writeFileAtomically(p, "new\n");
        QCOMPARE(read(p), std::string("new\n"));
    }

    void openRunCheckpointAndDevices() {
        QTemporaryDir dir;
        const std::string root = dir.path().toStdString();
        const std::string run = root + "/run";
        Engine e(loadExperiment(fixtures::makeExperiment(dir), {"training.steps=10"}));
        runTraining(e, run);
        const OpenedRun r = openRun(run, {"training.steps=20"});
        QCOMPARE(r.checkpointPath, run + "/checkpoints/last.ckpt");
        QCOMPARE(r.config.steps, int64_t(20));
        QCOMPARE(r.checkpoint.step, int64_t(10));
        const OpenedCheckpoint c = openCheckpoint(run);  // a run folder stands for its last checkpoint
        QCOMPARE(c.path, r.checkpointPath);
        QCOMPARE(c.config.steps, int64_t(10));
        QVERIFY(fs::path(c.config.dataFile).is_absolute());
        QCOMPARE(openCheckpoint(c.path, {"training.steps=30"}).config.steps, int64_t(30));
        // Errors name the file.
        QVERIFY(errorOf([&] { openRun(root); }).contains((root + "/config.yaml").c_str()));
        Checkpoint w;
        w.kind = "domain_module";
        saveCheckpoint(root + "/w.ckpt", w);
        auto kindErr = errorOf([&] { openCheckpoint(root + "/w.ckpt"); });
        QVERIFY2(kindErr.contains("w.ckpt: expected a GW training checkpoint, found kind 'domain_module'"), qPrintable(kindErr));
        fs::remove(run + "/checkpoints/last.ckpt");
        auto missing = errorOf([&] { openRun(run); });
        QVERIFY2(missing.contains("last.ckpt: no such checkpoint file"), qPrintable(missing));
        // The CPU first; CUDA listed, or one entry saying why not.
        const auto devices = listDevices();
        QVERIFY(devices.size() >= 2);
        QCOMPARE(devices.front().id, std::string("cpu"));
        QVERIFY(devices.front().cores >= 1);
        QVERIFY(devices[1].id.rfind("cuda", 0) == 0);
    }

    void nanStopsAndKeepsTheLastCheckpoint() {
        QTemporaryDir dir;
        auto cfg = loadExperiment(fixtures::makeExperiment(dir), {"training.steps=40"});
        const std::string run = dir.path().toStdString() + "/run";
        {
            Engine e(loadExperiment(dir.path().toStdString() + "/tiny.yaml", {"training.steps=20"}));
            QCOMPARE(runTraining(e, run).step, int64_t(20));
        }
        const std::string last = run + "/checkpoints/last.ckpt";
        Checkpoint c = loadCheckpoint(last);
        Engine e(cfg);
        e.prepare(&c);
        e.restore(c, last);
        {
            torch::NoGradGuard ng;
            e.model().gwMod().encoder("vec")->parameters()[0].fill_(std::nan(""));
        }
        QVERIFY_THROWS_EXCEPTION(TrainingError, runTraining(e, run));
        QCOMPARE(loadCheckpoint(last).step, int64_t(20));
    }

    void runFolder() {
        QTemporaryDir dir;
        Engine e(loadExperiment(fixtures::makeExperiment(dir), {"training.steps=30"}));
        const std::string run = dir.path().toStdString() + "/run";
        int progress = 0, validations = 0;
        RunCallbacks cb;
        cb.progress = [&](const ProgressReport& r) {
            ++progress;
            validations += r.validation;
            QVERIFY(r.step <= 30);
        };
        auto r = runTraining(e, run, cb);
        QCOMPARE(r.step, int64_t(30));
        QCOMPARE(progress, 3 + 2);  // logs at 10, 20, 30; validations at 20, 30
        QCOMPARE(validations, 2);
        std::ifstream csv(run + "/metrics.csv");
        std::string header;
        std::getline(csv, header);
        QCOMPARE(header, std::string("step,metric,value"));
        std::string all((std::istreambuf_iterator<char>(csv)), {});
        QVERIFY(all.find("30,train/translation_vec_to_label,") != std::string::npos);
        QVERIFY(all.find("20,val/translation_vec_to_label_accuracy,") != std::string::npos);
        // The saved config is the resolved experiment, with absolute paths, and reads back.
        auto saved = loadExperiment(run + "/config.yaml");
        QVERIFY(fs::path(saved.dataFile).is_absolute());
        QCOMPARE(saved.steps, int64_t(30));
        // A stop request saves a checkpoint at once.
        Engine s(loadExperiment(dir.path().toStdString() + "/tiny.yaml", {"training.steps=1000"}));
        int polls = 0;
        RunCallbacks stop;
        stop.stopRequested = [&] { return ++polls > 7; };
        auto sr = runTraining(s, dir.path().toStdString() + "/stopped", stop);
        QVERIFY(sr.stopped);
        QCOMPARE(loadCheckpoint(sr.checkpoint).step, int64_t(7));
    }
};

QTEST_APPLESS_MAIN(TestEngine)
#include "tst_engine.moc"

// SPDX-License-Identifier: GPL-3.0-or-later
// Experiment files: defaults, every section, unknown keys, wrong types, overrides, YAML round trip.
#include <QtTest/QtTest>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "model/experiment/config.h"
#include "model/core/metric_names.h"
#include "model/core/registry.h"

using namespace gw;
namespace fs = std::filesystem;

namespace {
const char* kMinimal = "domains:\n  a: {module: identity, latent_dim: 4}\n  b: {module: identity}\ndata: {file: x.h5}\n";

QString fixtureError(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return QString::fromStdString(e.what());
    }
    return {};
}

QString errorOf(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
    try {
        parseExperiment(yaml, "exp.yaml", overrides);
    } catch (const ConfigError& e) {
        return QString::fromStdString(e.what());
    }
    return {};
}
}  // namespace

class TestConfig : public QObject {
    Q_OBJECT
private Q_SLOTS:
    /// Every `#include "model/..."` inside model/ goes to a folder that model/README.md's table lets the
    /// including folder use (or to its own folder), so the subsystems depend on each other one way.
    void modelFoldersIncludeOneWay() {
        namespace fs = std::filesystem;
        const fs::path root = GW_SOURCE_DIR "/model";
        std::ifstream readme(root / "README.md");
        QVERIFY2(readme, "model/README.md is missing");
        std::map<std::string, std::set<std::string>> allowed;  // folder -> folders it may include
        std::vector<std::string> order;
        for (std::string line; std::getline(readme, line);) {
            // | `core/` | what it owns | `core`, `experiment` |
            if (line.rfind("| `", 0) != 0) continue;
            const auto cells = QString::fromStdString(line).split('|');
            if (cells.size() < 4) continue;
            const QString folder = cells[1].trimmed().remove('`').remove('/');
            std::set<std::string> may;
            const QString last = cells[cells.size() - 2].trimmed();
            if (last == "every folder above") may.insert(order.begin(), order.end());
            else
                for (const auto& part : last.split(',', Qt::SkipEmptyParts))
                    if (part.trimmed() != "—") may.insert(part.trimmed().remove('`').toStdString());
            order.push_back(folder.toStdString());
            allowed[folder.toStdString()] = may;
        }
        QVERIFY2(allowed.size() >= 8, "model/README.md: expected its table of folders");
        int checked = 0;
        for (const auto& entry : fs::recursive_directory_iterator(root)) {
            const std::string ext = entry.path().extension().string();
            if (ext != ".h" && ext != ".cpp") continue;
            const std::string from = fs::relative(entry.path(), root).begin()->string();
            QVERIFY2(allowed.count(from), qPrintable(QString::fromStdString(entry.path().string() + ": folder " + from +
                                                                         " is not in model/README.md's table")));
            std::ifstream in(entry.path());
            int lineNo = 0;
            for (std::string line; std::getline(in, line);) {
                ++lineNo;
                const std::string key = "#include \"model/";
                if (line.rfind(key, 0) != 0) continue;
                const std::string target = line.substr(key.size(), line.find('/', key.size()) - key.size());
                ++checked;
                QVERIFY2(target == from || allowed[from].count(target),
                         qPrintable(QString::fromStdString(fs::relative(entry.path(), GW_SOURCE_DIR).string() + ":" +
                                                           std::to_string(lineNo) + ": model/" + from + " includes model/" +
                                                           target + ", which model/README.md does not let it")));
            }
        }
        QVERIFY(checked > 100);
    }

    /// The metric vocabulary reads back every name it builds: the family, the chart and the label.
    void metricNamesReadBack() {
        using namespace gw::metrics;
        const std::vector<std::string> scores = gw::dataScoreNames();  // as the domain-module kinds declare them
        struct Case {
            std::string name, chart, label;
        };
        const std::vector<Case> cases = {
            {"train/" + demiCycle("image"), "demi-cycles", "image"},
            {"train/" + cycle("image", "label"), "cycles", "image → label → image"},
            {"val/" + translation("image", "label"), "translations", "image → label"},
            {"val/" + extraOf(translation("v", "attr"), "accuracy"), "accuracy", "v → attr"},
            {"val/" + extraOf(translation("v", "t"), "caption_accuracy"), "accuracy", "v → t caption"},
            // the text kind's word score: in the accuracy chart beside the positional one
            {"val/" + extraOf(translation("v", "t"), "caption_word_accuracy"), "accuracy", "v → t caption word"},
            {"val/" + extraOf(translation("v", "attr"), "category_accuracy"), "accuracy", "v → attr category"},
            {"val/" + extraOf(translation("t", "v"), "image_mse"), "data space", "t → v image MSE"},
            {"val/" + extraOf(translation("v", "attr"), "position_error"), "data space", "v → attr position error"},
            {"val/" + extraOf(translation("attr", "t"), "caption_exact"), "data space", "attr → t caption exact"},
            // torchscript's own score, declared by its kind (not in the list metric_names.h once held)
            {"val/" + extraOf(translation("t", "v"), "data_mse"), "data space", "t → v data mse"},
            {"train/" + contrastive("image", "label"), "contrastives", "image ↔ label"},
            {"train/" + logitScaleOf(contrastive("a", "b")), "other", "a ↔ b logit scale"},
            {"val/" + extraOf(contrastive("a", "b"), "clip"), "other", "a ↔ b CLIP"},
            {"val/" + extraOf(contrastive("a", "b"), kNoUncertainty), "other", "a ↔ b without uncertainty"},
            {"train/" + unnormalised(contrastive("a", "b")), "other", "unnorm contrastive a and b"},
            {"train/" + kl("image"), "other", "kl image"},
            {"train/" + broadcastTerm(domainSet({"a", "b"}), "a"), "fused", "{a, b} → a"},
            {"train/" + broadcastTerm(domainSet({"a"}), "b", domainSet({"a", "b"})), "translations", "a → b (case {a, b})"},
            {"train/" + broadcastTerm(domainSet({"a"}), "a"), "demi-cycles", "a → a"},
            {"train/" + broadcastCycle(domainSet({"a"}), domainSet({"b"}), "a", domainSet({"a", "b"})), "cycles",
             "a → b → a (case {a, b})"},
            {"train/" + std::string(kBroadcastLoss), "totals", "broadcast total"},
            {"train/" + domainLoss("image", "kl"), "totals", "domain loss/image/kl"},
            {"val/" + std::string(kLoss), "totals", "total"},
            {"train/" + std::string(kLearningRate), "learning rate", "learning rate"},
            {"pretrain/image/kl", "pre-training", "image kl"},
            {"val/denoise_mse", "denoising", "denoise mse"},
            {"train/something_new", "other", "something new"},
        };
        for (const auto& c : cases) {
            const MetricParts p = parseMetric(c.name, scores);
            QVERIFY2(p.chart == c.chart, qPrintable(QString::fromStdString(c.name + ": chart " + p.chart)));
            QVERIFY2(p.label == c.label, qPrintable(QString::fromStdString(c.name + ": label " + p.label)));
        }
        for (const auto& f : families()) {  // every family mean is "all" in its own chart, and its term names it
            const MetricParts p = parseMetric("train/" + std::string(f.mean), scores);
            QVERIFY2(p.isFamily && p.family == f.family && p.label == "all", f.mean);
            QCOMPARE(familyOfTerm(f.term), &info(f.family));
        }
        QCOMPARE(parseMetric("val/" + cycle("a", "b"), scores).split, std::string("val"));
        QVERIFY(familyOfTerm("broadcast_loss") == nullptr);
    }

    /// The data-space scores are the ones the domain-module kinds declare (KindInfo::dataScores): a
    /// kind's new name is read as a data-space score once declared, and only then; the longest declared
    /// name that ends the metric wins, whatever the order.
    void dataScoresComeFromTheKinds() {
        using namespace gw::metrics;
        const auto scores = gw::dataScoreNames();
        for (const char* n : {"image_mse", "category_accuracy", "caption_exact", "data_mse", "accuracy", "colour_error"})
            QVERIFY2(std::count(scores.begin(), scores.end(), n) == 1, n);
        const auto* conv = gw::domainModuleRegistry().find("conv_vae");
        QVERIFY(conv);
        QCOMPARE(conv->info.dataScores, (std::vector<std::string>{"image_mse"}));
        const std::string m = "val/" + extraOf(translation("v", "attr"), "shape_iou");
        QCOMPARE(parseMetric(m, scores).chart, std::string("translations"));  // declared by no kind
        std::vector<std::string> declared = scores;
        declared.push_back("shape_iou");  // as a new kind's registration would add it
        QCOMPARE(parseMetric(m, declared).chart, std::string("data space"));
        QCOMPARE(parseMetric(m, declared).label, std::string("v → attr shape iou"));
        std::string tr, sc;
        QVERIFY(splitDataScore("translation_v_to_attr_category_accuracy", {"accuracy", "category_accuracy"}, tr, sc));
        QCOMPARE(tr, std::string("translation_v_to_attr"));
        QCOMPARE(sc, std::string("category_accuracy"));
        QVERIFY(!splitDataScore("translation_accuracy", {"accuracy"}, tr, sc));  // no target domain
        QVERIFY(!splitDataScore("demi_cycle_v_image_mse", scores, tr, sc));
    }

    void defaultsFollowShimmer() {
        auto c = parseExperiment(kMinimal, "exp.yaml");
        QCOMPARE(c.domains.size(), size_t(2));
        QCOMPARE(c.domains[0].name, std::string("a"));  // file order is domain order
        QCOMPARE(c.domains[1].dataset, std::string("/{split}/b"));
        QCOMPARE(c.workspaceDim, int64_t(12));
        QCOMPARE(c.encoderHidden, int64_t(32));
        QCOMPARE(c.encoderLayers, 3);
        QCOMPARE(c.loss.coefficients.at("contrastives"), 0.01);
        QCOMPARE(c.loss.coefficients.keys(), (std::vector<std::string>{"demi_cycles", "cycles", "translations", "contrastives"}));
        QVERIFY(std::abs(c.loss.logitScale - std::log(1 / 0.07)) < 1e-12);
        QCOMPARE(c.selection, std::string("single_domain"));
        QCOMPARE(c.flavour, std::string("two_domains"));
    }

    /// A domain's keys beyond the common ones are its kind's registered parameters.
    void domainModuleParameters() {
        const std::string base = "data: {file: x.h5}\ndomains:\n  b: {module: identity}\n";
        auto c = parseExperiment(base + "  a: {module: conv_vae, channels: 3, image_size: 32}\n", "exp.yaml");
        const auto& a = c.domain("a").params;
        QCOMPARE(a.keys(), (std::vector<std::string>{"latent_dim", "hidden_dim", "channels", "image_size", "beta"}));
        QCOMPARE(a.at("channels"), std::string("3"));
        QCOMPARE(a.at("hidden_dim"), std::string("256"));  // the kind's default, written out
        QCOMPARE(c.domain("b").params.keys(), (std::vector<std::string>{"latent_dim"}));
        QVERIFY(experimentToYaml(c).find("channels") != std::string::npos);
        QCOMPARE(parseExperiment(experimentToYaml(c), "again.yaml").domain("a").params.at("image_size"), std::string("32"));
        QVERIFY(errorOf(base + "  a: {module: identity, heads: 2}\n").contains("domains.a.heads: unknown key"));
        QCOMPARE(errorOf(base + "  a: {module: conv_vae, latent_dim: many}\n"),
                 QString("exp.yaml: domains.a.latent_dim: expected a whole number >= 0, found 'many'"));
        // Files written before the registries: every domain holds the six old keys, 0 for "default".
        c = parseExperiment(base + "  a: {module: mlp_ae, latent_dim: 0, hidden_dim: 0, num_classes: 0, channels: 1, "
                                   "image_size: 28, beta: 0.1}\n",
                            "old.yaml");
        QCOMPARE(c.domain("a").params.at("latent_dim"), std::string("16"));
        QCOMPARE(c.domain("a").params.at("hidden_dim"), std::string("64"));
        QVERIFY(!c.domain("a").params.contains("channels"));
    }

    /// docs/experiment-format.md's tables of flavours, selections and domain-module kinds are the
    /// registries' (regenerate with `gw kinds --markdown`); every registered kind is in the table.
    void docsTableMatchesTheRegistries() {
        std::ifstream in(GW_SOURCE_DIR "/docs/experiment-format.md");
        QVERIFY(in.good());
        std::stringstream ss;
        ss << in.rdbuf();
        const std::string doc = ss.str(), begin = "<!-- kinds:begin -->\n", end = "<!-- kinds:end -->";
        const auto a = doc.find(begin), b = doc.find(end);
        QVERIFY2(a != std::string::npos && b != std::string::npos && a < b, "markers missing in docs/experiment-format.md");
        const std::string table = doc.substr(a + begin.size(), b - a - begin.size());
        QVERIFY2(table == kindsMarkdown(),
                 "docs/experiment-format.md disagrees with the registries: paste the output of `gw kinds --markdown` "
                 "between its kinds markers");
        for (const auto& n : selectionRegistry().names()) QVERIFY(table.find("| `" + n + "` |") != std::string::npos);
        for (const auto& n : flavourRegistry().names()) QVERIFY(table.find("| `" + n + "` |") != std::string::npos);
        for (const auto& n : domainModuleRegistry().names()) QVERIFY(table.find("| `" + n + "` |") != std::string::npos);
    }

    void errors_data() {
        QTest::addColumn<QString>("yaml");
        QTest::addColumn<QString>("mentions");
        const QString base = kMinimal;
        QTest::newRow("unknown top-level key") << base + "trainig: {steps: 3}\n" << "trainig: unknown key";
        QTest::newRow("unknown nested key") << base + "training: {stepz: 3}\n" << "training.stepz: unknown key";
        QTest::newRow("unknown domain key") << "domains:\n  a: {module: identity, latnt: 3}\ndata: {file: x.h5}\n"
                                            << "domains.a.latnt: unknown key";
        QTest::newRow("wrong type") << base + "training: {steps: many}\n" << "training.steps: expected a whole number, found 'many'";
        QTest::newRow("negative") << base + "training: {batch_size: -4}\n" << "training.batch_size: expected a whole number >= 1";
        QTest::newRow("bad choice") << base + "workspace: {selection: attention}\n" << "workspace.selection: unknown selection 'attention' (known: single_domain, fixed_shared";
        QTest::newRow("bad device") << base + "device: gpu\n" << "device: expected cpu, cuda or cuda:N, found 'gpu'";
        QTest::newRow("no domains") << "data: {file: x.h5}\n" << "domains: expected a mapping";
        QTest::newRow("fraction > 1") << "domains: {a: {}}\ndata: {file: x.h5, paired_fraction: 2}\n" << "data.paired_fraction";
        QTest::newRow("bad family") << "domains: {a: {losses: [demicycle]}}\ndata: {file: x.h5}\n" << "domains.a.losses";
        QTest::newRow("no file") << "domains: {a: {}}\n" << "domains.a.file: expected an HDF5 file";
        QTest::newRow("not yaml") << "domains: [a, {\n" << "not valid YAML";
    }
    void errors() {
        QFETCH(QString, yaml);
        QFETCH(QString, mentions);
        const QString e = errorOf(yaml.toStdString());
        QVERIFY2(e.startsWith("exp.yaml: "), qPrintable(e));
        QVERIFY2(e.contains(mentions), qPrintable(e));
    }

    void overrides() {
        auto c = parseExperiment(kMinimal, "exp.yaml",
                                 {"training.steps=77", "domains.a.latent_dim=9", "loss.coefficients.cycles=0",
                                  "loss.coefficients.translation_a_to_b=2.5", "device=cuda:1"});
        QCOMPARE(c.steps, int64_t(77));
        QCOMPARE(c.domain("a").params.at("latent_dim"), std::string("9"));
        QCOMPARE(c.loss.coefficients.at("cycles"), 0.0);
        QCOMPARE(c.loss.coefficients.at("translation_a_to_b"), 2.5);
        QCOMPARE(c.device, std::string("cuda:1"));
        QVERIFY(errorOf(kMinimal, {"training.stepz=3"}).contains("training.stepz: unknown key"));
        QVERIFY(errorOf(kMinimal, {"no-equals-sign"}).contains("expected key=value"));
    }

    void roundTrip() {
        auto c = parseExperiment(std::string(kMinimal) + "scheduler: {start_lr: 0.0008, end_lr: 0.0008, max_lr: 0.003}\n",
                                 "exp.yaml", {"loss.coefficients.fused=0.5"});
        auto again = parseExperiment(experimentToYaml(c), "again.yaml");
        // What the file and the override said comes back, value by value (not the writer against itself).
        QCOMPARE(again.startLr, 0.0008);
        QCOMPARE(again.endLr, 0.0008);
        QCOMPARE(again.maxLr, 0.003);
        QCOMPARE(again.loss.coefficients.at("fused"), 0.5);
        QCOMPARE(again.loss.coefficients.keys(), c.loss.coefficients.keys());
        for (const auto& [k, v] : c.loss.coefficients) QCOMPARE(again.loss.coefficients.at(k), v);
        QCOMPARE(again.domains.size(), c.domains.size());
        for (size_t i = 0; i < c.domains.size(); ++i) {
            QCOMPARE(again.domains[i].name, c.domains[i].name);
            QCOMPARE(again.domains[i].module, c.domains[i].module);
            QCOMPARE(again.domains[i].params.keys(), c.domains[i].params.keys());
            for (const auto& [k, v] : c.domains[i].params) QCOMPARE(again.domains[i].params.at(k), v);
            QCOMPARE(again.domains[i].losses, c.domains[i].losses);
            QCOMPARE(again.domains[i].frozen, c.domains[i].frozen);
        }
        QCOMPARE(again.steps, c.steps);
        QCOMPARE(again.batchSize, c.batchSize);
        QCOMPARE(again.lr, c.lr);
        QCOMPARE(again.loss.logitScale, c.loss.logitScale);
        QCOMPARE(again.workspaceDim, c.workspaceDim);
        QCOMPARE(again.flavour, c.flavour);
        QCOMPARE(again.selection, c.selection);
        QCOMPARE(again.seed, c.seed);
    }

    void relativePaths() {
        auto c = parseExperiment(kMinimal, "exp.yaml", {}, "/data/exps");
        QCOMPARE(c.resolvePath("x.h5"), std::string("/data/exps/x.h5"));
        QCOMPARE(c.resolvePath("/abs/y.h5"), std::string("/abs/y.h5"));
        qputenv("HOME", "/home/someone");
        QCOMPARE(c.resolvePath("~/d.h5"), std::string("/home/someone/d.h5"));
    }

    void domainNamesAreChecked() {
        const std::string base = "domains:\n  NAME: {module: identity}\n  label: {module: class_label, num_classes: 2}\n"
                                 "data: {file: d.h5}\nworkspace: {dim: 4}\n";
        auto with = [&](const std::string& name) {
            std::string y = base;
            y.replace(y.find("NAME"), 4, name);
            return y;
        };
        QCOMPARE(parseExperiment(with("image_v-2"), "e.yaml").domains[0].name, std::string("image_v-2"));
        for (const std::string& bad : std::vector<std::string>{"'a.b'", "'with space'", "'9lives'", "'a/b'", "'" + std::string(65, 'x') + "'"}) {
            try {
                parseExperiment(with(bad), "e.yaml");
                QFAIL(qPrintable(QString::fromStdString("accepted " + bad)));
            } catch (const ConfigError& e) {
                QVERIFY2(QString(e.what()).startsWith("e.yaml: domains: expected domain names of letters"), e.what());
            }
        }
        try {
            parseExperiment("domains:\n  a: {module: identity}\n  a: {module: identity}\ndata: {file: d.h5}\n", "e.yaml");
            QFAIL("a domain named twice was accepted");
        } catch (const std::exception& e) {
            QCOMPARE(QString(e.what()), QString("e.yaml: domains.a: the domain is named twice"));
        }
    }

    /// include: layers merge key by key, later files and the including file win, relative paths of an
    /// included file keep pointing beside it, and a cycle is named.
    void includesCompose() {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const std::string root = dir.path().toStdString();
        QVERIFY(QDir().mkpath(dir.filePath("common")));
        std::ofstream(root + "/common/base.yaml") << "name: base\nseed: 4\ndata: {file: shared.h5, paired_fraction: 0.5}\n"
                                                    "domains:\n  a: {module: identity, latent_dim: 4}\n  b: {module: identity}\n"
                                                    "training: {steps: 300, batch_size: 64, out: runs}\n";
        std::ofstream(root + "/common/more.yaml") << "training: {steps: 700}\noptimizer: {lr: 0.005}\n";
        std::ofstream(root + "/exp.yaml") << "include: [common/base.yaml, common/more.yaml]\nname: mine\n"
                                             "domains:\n  a: {latent_dim: 6}\n";
        const ExperimentConfig c = loadExperiment(root + "/exp.yaml");
        QCOMPARE(c.name, std::string("mine"));                     // the including file wins
        QCOMPARE(c.seed, uint64_t(4));                              // from base.yaml
        QCOMPARE(c.steps, int64_t(700));                            // more.yaml wins over base.yaml
        QCOMPARE(c.batchSize, int64_t(64));                         // ... key by key
        QCOMPARE(c.lr, 0.005);
        QCOMPARE(c.pairedFraction, 0.5);
        QCOMPARE(c.domains.size(), size_t(2));
        QCOMPARE(c.domain("a").params.at("latent_dim"), std::string("6"));
        QCOMPARE(c.domain("a").module, std::string("identity"));    // kept from base.yaml
        QCOMPARE(c.resolvePath(c.dataFile), (fs::path(root) / "common/shared.h5").lexically_normal().string());
        QCOMPARE(c.resolvePath(c.outDir), (fs::path(root) / "common/runs").lexically_normal().string());
        QCOMPARE(c.includes.size(), size_t(2));
        // The written experiment is whole: it parses again without its includes.
        const ExperimentConfig again = parseExperiment(experimentToYaml(c), "again.yaml", {}, "/elsewhere");
        QCOMPARE(again.steps, int64_t(700));
        QCOMPARE(again.domain("a").params.at("latent_dim"), std::string("6"));
        QVERIFY(again.includes.empty());
        // Errors name the files.
        std::ofstream(root + "/typo.yaml") << "include: common/base.yaml\ntraining: {stepz: 3}\n";
        QString e = fixtureError([&] { loadExperiment(root + "/typo.yaml"); });
        QVERIFY2(e.contains("typo.yaml (with base.yaml): training.stepz: unknown key"), qPrintable(e));
        std::ofstream(root + "/missing.yaml") << "include: nowhere.yaml\n";
        e = fixtureError([&] { loadExperiment(root + "/missing.yaml"); });
        QVERIFY2(e.contains("missing.yaml: include: cannot open") && e.contains("nowhere.yaml"), qPrintable(e));
        std::ofstream(root + "/x.yaml") << "include: y.yaml\n";
        std::ofstream(root + "/y.yaml") << "include: x.yaml\n";
        e = fixtureError([&] { loadExperiment(root + "/x.yaml"); });
        QVERIFY2(e.contains("makes a cycle (x.yaml -> y.yaml -> x.yaml)"), qPrintable(e));
        QVERIFY(!fixtureError([&] { parseExperiment("include: 7: 3\n", "bad.yaml"); }).isEmpty());
        e = fixtureError([&] { parseExperiment("include: /dev/zero\n" + std::string(kMinimal), "dev.yaml"); });
        QVERIFY2(e.contains("dev.yaml: include: cannot open /dev/zero (expected an experiment file)"), qPrintable(e));
        e = fixtureError([&] { parseExperiment("include: {a: 1}\n" + std::string(kMinimal), "bad.yaml"); });
        QVERIFY2(e.contains("bad.yaml: include: expected a file name or a list of file names, found a mapping"), qPrintable(e));
    }

    /// Hydra's override forms: key=value sets, +key adds (refused when set), ++key sets or adds, ~key
    /// removes (back to the default), ~key=value removes only that value.
    void hydraOverrides() {
        const std::string y = std::string(kMinimal) + "training: {steps: 300}\n";
        QCOMPARE(parseExperiment(y, "e.yaml", {"training.steps=5"}).steps, int64_t(5));
        QCOMPARE(parseExperiment(y, "e.yaml", {"+training.batch_size=8"}).batchSize, int64_t(8));
        QCOMPARE(parseExperiment(y, "e.yaml", {"++training.steps=9"}).steps, int64_t(9));
        QCOMPARE(parseExperiment(y, "e.yaml", {"++training.batch_size=10"}).batchSize, int64_t(10));
        QCOMPARE(parseExperiment(y, "e.yaml", {"~training.steps"}).steps, ExperimentConfig().steps);
        QCOMPARE(parseExperiment(y, "e.yaml", {"~training.steps=300"}).steps, ExperimentConfig().steps);
        QCOMPARE(parseExperiment(y, "e.yaml", {"~domains.b", "domains.a.latent_dim=3"}).domains.size(), size_t(1));
        QVERIFY(errorOf(y, {"+training.steps=5"}).contains("exp.yaml: override '+training.steps=5': training.steps is already set (to '300')"));
        QVERIFY(errorOf(y, {"~training.batch_size"}).contains("nothing to remove, training.batch_size is not set"));
        QVERIFY(errorOf(y, {"~training.steps=7"}).contains("training.steps holds '300', not '7'"));
        QVERIFY(errorOf(y, {"training..steps=7"}).contains("expected a dotted key"));
        QVERIFY(errorOf(y, {"+training.stepz=7"}).contains("training.stepz: unknown key"));
    }

    /// The settings file is the lowest layer: it completes what the experiment leaves out.
    void userSettingsComplete() {
        QTemporaryDir dir;
        const std::string root = dir.path().toStdString();
        UserSettings s;
        s.path = root + "/cfg/gw-studio/settings.yaml";
        s.device = "cpu";
        s.threads = 3;
        s.dataDir = root + "/datasets";
        s.runsDir = root + "/myruns";
        saveUserSettings(s);
        const UserSettings back = loadUserSettings(s.path);
        QCOMPARE(back.threads, 3);
        QCOMPARE(back.dataDir, s.dataDir);
        QCOMPARE(back.runsDir, s.runsDir);
        const ExperimentConfig c = parseExperiment(kMinimal, "exp.yaml", {}, "/exps", &back);
        QCOMPARE(c.threads, 3);                                        // completed
        QCOMPARE(c.dataFile, root + "/datasets/x.h5");                  // relative data file in the data folder
        QCOMPARE(c.outDir, s.runsDir);
        const ExperimentConfig own = parseExperiment(std::string(kMinimal) + "threads: 1\ntraining: {out: here}\n", "exp.yaml", {}, "/exps", &back);
        QCOMPARE(own.threads, 1);                                      // the experiment's own key wins
        QCOMPARE(own.resolvePath(own.outDir), std::string("/exps/here"));
        QCOMPARE(parseExperiment(kMinimal, "exp.yaml", {"threads=2"}, "/exps", &back).threads, 2);  // overrides win
        QCOMPARE(loadUserSettings(root + "/none.yaml").empty(), true);
        std::ofstream(root + "/bad.yaml") << "device: cpu\nseed: 3\n";
        QString e = fixtureError([&] { loadUserSettings(root + "/bad.yaml"); });
        QVERIFY2(e.contains("bad.yaml: seed: unknown key"), qPrintable(e));
        std::ofstream(root + "/bad2.yaml") << "threads: many\n";
        e = fixtureError([&] { loadUserSettings(root + "/bad2.yaml"); });
        QVERIFY2(e.contains("bad2.yaml: threads: expected a whole number, found 'many'"), qPrintable(e));
        qputenv("GW_STUDIO_SETTINGS", QByteArray::fromStdString(s.path));
        QCOMPARE(userSettingsPath(), s.path);
        qunsetenv("GW_STUDIO_SETTINGS");
        qputenv("XDG_CONFIG_HOME", "/cfg");
        QCOMPARE(userSettingsPath(), std::string("/cfg/gw-studio/settings.yaml"));
    }

    void shippedExperimentParses() {
        auto c = loadExperiment(GW_SOURCE_DIR "/resources/experiments/fashion-mnist.yaml");
        QCOMPARE(c.domains.size(), size_t(2));
        QCOMPARE(c.domain("image").module, std::string("conv_vae"));
        QCOMPARE(c.pairedFraction, 0.01);
        // Simple Shapes: generated when missing, SSD's workspace, both domain modules of shimmer-ssd.
        auto ss = loadExperiment(GW_SOURCE_DIR "/resources/experiments/simple-shapes.yaml");
        QCOMPARE(ss.dataImport, std::string("simple-shapes"));
        QCOMPARE(ss.pairedCount, int64_t(2000));
        QCOMPARE(ss.domain("v").module, std::string("conv_vae"));
        QCOMPARE(ss.domain("attr").module, std::string("attributes"));
        QCOMPARE(ss.workspaceDim, int64_t(12));
        QCOMPARE(ss.loss.coefficients.at("contrastives"), 0.01);
    }
};

QTEST_APPLESS_MAIN(TestConfig)
#include "tst_config.moc"

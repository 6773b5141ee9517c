// SPDX-License-Identifier: GPL-3.0-or-later
// Sweeps: sweep files and their expansion, the sweep folder's plan, and `gw sweep` training every point
// with local processes and with a real one-node Slurm (packaging/slurm-local.sh), resuming what was cut.
#include <QtTest/QtTest>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "fixtures.h"
#include "model/run/runs.h"
#include "model/run/sweep.h"

using namespace gw;
namespace fs = std::filesystem;
using fixtures::errorOf;

namespace {

std::string readText(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// summary.csv as rows of column -> text (names hold commas: quoted fields are read back).
std::vector<std::map<std::string, std::string>> readCsv(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::vector<std::string>> rows;
    for (std::string line; std::getline(in, line);) {
        std::vector<std::string> f;
        std::string cur;
        bool quoted = false;
        for (size_t i = 0; i < line.size(); ++i) {
            const char ch = line[i];
            if (quoted) {
                if (ch == '"' && i + 1 < line.size() && line[i + 1] == '"') cur += '"', ++i;
                else if (ch == '"') quoted = false;
                else cur += ch;
            } else if (ch == '"') {
                quoted = true;
            } else if (ch == ',') {
                f.push_back(cur), cur.clear();
            } else {
                cur += ch;
            }
        }
        f.push_back(cur);
        rows.push_back(f);
    }
    std::vector<std::map<std::string, std::string>> out;
    for (size_t r = 1; r < rows.size(); ++r) {
        std::map<std::string, std::string> m;
        for (size_t c = 0; c < rows[0].size() && c < rows[r].size(); ++c) m[rows[0][c]] = rows[r][c];
        out.push_back(m);
    }
    return out;
}

/// The last value of `metric` in a run's metrics.csv, as text.
std::string lastMetric(const std::string& runDir, const std::string& metric) {
    std::ifstream in(runDir + "/metrics.csv");
    std::string line, last;
    while (std::getline(in, line)) {
        const auto a = line.find(','), b = line.rfind(',');
        if (a != std::string::npos && line.substr(a + 1, b - a - 1) == metric) last = line.substr(b + 1);
    }
    return last;
}

/// The value of `key:` (first match) in a YAML file written by experimentToYaml.
std::string yamlValue(const std::string& path, const std::string& key) {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        const auto at = line.find(key + ": ");
        if (at != std::string::npos && line.find_first_not_of(' ') == at) return line.substr(at + key.size() + 2);
    }
    return "";
}

}  // namespace

class TestSweep : public QObject {
    Q_OBJECT
private Q_SLOTS:
    /// A grid is the product of the axes, first axis outermost; ranges expand as documented; names
    /// are readable and unique.
    void gridExpands() {
        QTemporaryDir dir;
        const std::string exp = fixtures::makeExperiment(dir);
        const std::string file = dir.filePath("grid.yaml").toStdString();
        std::ofstream(file) << "experiment: tiny.yaml\n"
                               "overrides: [training.steps=30]\n"
                               "axes:\n"
                               "  data.paired_count: [16, 64]\n"
                               "  loss.coefficients.translations: {start: 0.5, stop: 2, num: 3}\n"
                               "  seed: {start: 0, stop: 4, step: 2}\n";
        const SweepSpec spec = loadSweep(file);
        QCOMPARE(spec.name, std::string("grid"));  // the file's name
        QCOMPARE(spec.experiment, exp);
        QCOMPARE(spec.folder, (fs::path(dir.path().toStdString()) / "sweeps" / "grid").string());
        const auto points = expandSweep(spec);
        QCOMPARE(points.size(), size_t(2 * 3 * 2));
        QCOMPARE(points[0].name, std::string("000-paired_count=16,translations=0.5,seed=0"));
        QCOMPARE(points[1].name, std::string("001-paired_count=16,translations=0.5,seed=2"));
        QCOMPARE(points[2].name, std::string("002-paired_count=16,translations=1.25,seed=0"));
        QCOMPARE(points[11].name, std::string("011-paired_count=64,translations=2,seed=2"));
        const std::vector<std::string> ov = points[5].overrides(spec);
        QCOMPARE(ov.size(), size_t(4));
        QCOMPARE(ov[0], std::string("training.steps=30"));
        QCOMPARE(ov[3], std::string("seed=2"));
        checkSweepPoints(spec, points, nullptr);
        const ExperimentConfig c = loadExperiment(exp, points[5].overrides(spec));
        QCOMPARE(c.pairedCount, int64_t(16));
        QCOMPARE(c.loss.coefficients.at("translations"), 2.0);
        QCOMPARE(c.steps, int64_t(30));
        // A log range.
        std::ofstream(file) << "experiment: tiny.yaml\naxes:\n  optimizer.lr: {start: 0.0001, stop: 0.01, num: 3, log: true}\n";
        const auto lr = expandSweep(loadSweep(file));
        QCOMPARE(lr.size(), size_t(3));
        QCOMPARE(lr[1].values[0].second, std::string("0.001"));
        // Two axes with the same last part keep their whole keys in names.
        std::ofstream(file) << "experiment: tiny.yaml\naxes:\n  workspace.encoder.hidden: [8]\n  workspace.decoder.hidden: [16]\n";
        QCOMPARE(expandSweep(loadSweep(file))[0].name, std::string("000-workspace.encoder.hidden=8,workspace.decoder.hidden=16"));
    }

    /// A variant axis names sets of keys changed together (full GW against translations only): its
    /// points carry the variant's name in their folder names and summary.csv, its keys as overrides,
    /// and plan.yaml keeps those keys so that a point read back from the plan trains the same.
    void variantAxis() {
        QTemporaryDir dir;
        const std::string exp = fixtures::makeExperiment(dir);
        const std::string file = dir.filePath("ablation.yaml").toStdString();
        std::ofstream(file) << "experiment: tiny.yaml\n"
                               "axes:\n"
                               "  objective:\n"
                               "    full: {}\n"
                               "    translations_only: {loss.coefficients.demi_cycles: 0, loss.coefficients.cycles: 0,"
                               " loss.coefficients.contrastives: 0}\n"
                               "  data.paired_count: [16, 64]\n";
        const SweepSpec spec = loadSweep(file);
        const auto points = expandSweep(spec);
        QCOMPARE(points.size(), size_t(4));
        QCOMPARE(points[0].name, std::string("000-objective=full,paired_count=16"));
        QCOMPARE(points[3].name, std::string("003-objective=translations_only,paired_count=64"));
        const auto ov = points[3].overrides(spec);
        QCOMPARE(ov, (std::vector<std::string>{"loss.coefficients.demi_cycles=0", "loss.coefficients.cycles=0",
                                               "loss.coefficients.contrastives=0", "data.paired_count=64"}));
        QCOMPARE(points[1].overrides(spec), (std::vector<std::string>{"data.paired_count=64"}));
        checkSweepPoints(spec, points, nullptr);
        const ExperimentConfig full = loadExperiment(exp, points[1].overrides(spec));
        const ExperimentConfig only = loadExperiment(exp, points[3].overrides(spec));
        QVERIFY(full.loss.coefficients.at("demi_cycles") > 0);
        QCOMPARE(only.loss.coefficients.at("demi_cycles"), 0.0);
        QCOMPARE(only.loss.coefficients.at("contrastives"), 0.0);
        QCOMPARE(only.pairedCount, int64_t(64));
        // plan.yaml keeps the variant's keys: the point read back gives the same overrides.
        fs::create_directories(spec.folder);
        writeOrCheckPlan(spec, points);
        const auto [planned, back] = readPlan(spec.folder);
        QCOMPARE(back.size(), points.size());
        QCOMPARE(back[2].overrides(planned), points[2].overrides(spec));
        writeOrCheckPlan(spec, points);  // the same sweep again: accepted
        // A variant changed under the same name is refused by the plan.
        std::ofstream(file) << "experiment: tiny.yaml\naxes:\n  objective:\n    full: {}\n"
                               "    translations_only: {loss.coefficients.cycles: 0}\n  data.paired_count: [16, 64]\n";
        const SweepSpec changed = loadSweep(file);
        const QString e = errorOf([&] { writeOrCheckPlan(changed, expandSweep(changed)); });
        QVERIFY2(e.contains("point 2 was planned as"), qPrintable(e));
        // A variant's key is checked against the experiment like any axis key.
        std::ofstream(file) << "experiment: tiny.yaml\naxes:\n  objective:\n    odd: {training.stepz: 0}\n";
        const SweepSpec bad = loadSweep(file);
        const QString e2 = errorOf([&] { checkSweepPoints(bad, expandSweep(bad), nullptr); });
        QVERIFY2(e2.contains("point 0 (000-objective=odd)") && e2.contains("stepz"), qPrintable(e2));
        std::ofstream(file) << "experiment: tiny.yaml\naxes:\n  objective:\n    \"a b\": {seed: 1}\n";
        const QString e3 = errorOf([&] { loadSweep(file); });
        QVERIFY2(e3.contains("axes.objective.a b: expected a variant name"), qPrintable(e3));
    }

    /// A random sweep draws the same points from the same seed, inside its bounds.
    void randomIsReproducible() {
        QTemporaryDir dir;
        fixtures::makeExperiment(dir);
        const std::string file = dir.filePath("rnd.yaml").toStdString();
        std::ofstream(file) << "experiment: tiny.yaml\nmethod: random\ncount: 40\nseed: 7\naxes:\n"
                               "  optimizer.lr: {low: 0.0001, high: 0.1, log: true}\n"
                               "  training.batch_size: {low: 8, high: 12}\n"
                               "  workspace.selection: [single_domain, fixed_shared]\n";
        const auto a = expandSweep(loadSweep(file));
        const auto b = expandSweep(loadSweep(file));
        QCOMPARE(a.size(), size_t(40));
        std::set<std::string> batches, selections;
        for (size_t i = 0; i < a.size(); ++i) {
            QCOMPARE(a[i].values, b[i].values);
            const double lr = std::stod(a[i].values[0].second);
            QVERIFY(lr >= 0.0001 && lr <= 0.1);
            batches.insert(a[i].values[1].second);
            selections.insert(a[i].values[2].second);
        }
        QCOMPARE(batches, (std::set<std::string>{"8", "9", "10", "11", "12"}));  // whole numbers, both ends
        QCOMPARE(selections.size(), size_t(2));
        std::ofstream(file) << "experiment: tiny.yaml\nmethod: random\ncount: 40\nseed: 8\naxes:\n"
                               "  optimizer.lr: {low: 0.0001, high: 0.1, log: true}\n";
        QVERIFY(expandSweep(loadSweep(file))[0].values != a[0].values);
    }

    void badSweeps_data() {
        QTest::addColumn<QString>("yaml");
        QTest::addColumn<QString>("expected");
        QTest::newRow("unknown axis key") << "experiment: tiny.yaml\naxes:\n  training.stepz: [1, 2]\n"
                                          << "bad.yaml: point 0 (000-stepz=1): ";
        QTest::newRow("bad axis value") << "experiment: tiny.yaml\naxes:\n  training.steps: [10, many]\n"
                                        << "training.steps: expected a whole number, found 'many'";
        QTest::newRow("empty axis") << "experiment: tiny.yaml\naxes:\n  seed: []\n"
                                    << "bad.yaml: axes.seed: expected at least one value, found an empty list";
        QTest::newRow("empty range") << "experiment: tiny.yaml\naxes:\n  seed: {start: 3, stop: 1}\n"
                                     << "bad.yaml: axes.seed: expected at least one value, found an empty range";
        QTest::newRow("no axes") << "experiment: tiny.yaml\n"
                                 << "bad.yaml: axes: expected a mapping of dotted experiment keys to values, found nothing";
        QTest::newRow("unknown key") << "experiment: tiny.yaml\naxes: {seed: [1]}\nmethd: grid\n"
                                     << "bad.yaml: methd: unknown key";
        QTest::newRow("random without count") << "experiment: tiny.yaml\nmethod: random\naxes: {seed: [1]}\n"
                                              << "bad.yaml: count: expected the number of points to draw";
        QTest::newRow("no experiment") << "axes: {seed: [1]}\n" << "bad.yaml: experiment: expected the base experiment file, found nothing";
        QTest::newRow("missing experiment") << "experiment: none.yaml\naxes: {seed: [1]}\n"
                                            << "bad.yaml: experiment: expected an experiment file, found nothing at";
        QTest::newRow("bad slurm key") << "experiment: tiny.yaml\naxes: {seed: [1]}\nslurm: {cpus: 2}\n" << "bad.yaml: slurm.cpus: unknown key";
    }
    void badSweeps() {
        QFETCH(QString, yaml);
        QFETCH(QString, expected);
        QTemporaryDir dir;
        fixtures::makeExperiment(dir);
        const std::string file = dir.filePath("bad.yaml").toStdString();
        std::ofstream(file) << yaml.toStdString();
        const QString e = errorOf([&] {
            const SweepSpec s = loadSweep(file);
            checkSweepPoints(s, expandSweep(s), nullptr);
        });
        QVERIFY2(e.contains(expected), qPrintable(e));
    }

    /// `gw sweep --local 2` trains every point in its own run folder with the point's keys, writes
    /// summary.csv from the run folders, and a second run of the same sweep trains nothing again.
    void localSweepTrainsEveryPoint() {
        QTemporaryDir dir;
        fixtures::makeExperiment(dir, 60);
        const QString file = dir.filePath("study.yaml");
        std::ofstream(file.toStdString()) << "name: study\nexperiment: tiny.yaml\noverrides: [training.val_every=30]\n"
                                             "axes:\n  data.paired_count: [32, 128]\n  seed: [1, 2]\n";
        const auto r = fixtures::gwCli({"sweep", file, "--local", "2"});
        QVERIFY2(r.code == 0, qPrintable(r.out));
        QVERIFY2(r.out.contains("4 of 4 points finished"), qPrintable(r.out));
        const std::string folder = dir.filePath("sweeps/study").toStdString();
        const auto rows = readCsv(sweepSummaryPath(folder));
        QCOMPARE(rows.size(), size_t(4));
        const std::vector<std::pair<std::string, std::string>> expect = {{"32", "1"}, {"32", "2"}, {"128", "1"}, {"128", "2"}};
        std::map<std::string, fs::file_time_type> written;
        for (size_t i = 0; i < rows.size(); ++i) {
            const auto& row = rows[i];
            const std::string run = folder + "/runs/" + row.at("name");
            QCOMPARE(row.at("state"), std::string("finished"));
            QCOMPARE(row.at("step"), std::string("60"));
            QCOMPARE(row.at("data.paired_count"), expect[i].first);
            QCOMPARE(row.at("seed"), expect[i].second);
            // The run trained with the point's keys...
            QCOMPARE(yamlValue(run + "/config.yaml", "paired_count"), expect[i].first);
            QCOMPARE(yamlValue(run + "/config.yaml", "seed"), expect[i].second);
            QCOMPARE(yamlValue(run + "/config.yaml", "val_every"), std::string("30"));
            // ... and the summary holds its last logged values.
            const std::string v = lastMetric(run, "val/translation_vec_to_label_accuracy");
            QVERIFY(!v.empty());
            QCOMPARE(std::stod(row.at("val/translation_vec_to_label_accuracy")), std::stod(v));
            QCOMPARE(std::stod(row.at("train/loss")), std::stod(lastMetric(run, "train/loss")));
            QCOMPARE(readRunStatus(run).state, std::string("finished"));
            written[run] = fs::last_write_time(runCheckpointPath(run));
        }
        // Different seeds trained different models.
        QVERIFY(rows[0].at("train/loss") != rows[1].at("train/loss"));
        // Again: nothing is retrained or overwritten.
        const auto again = fixtures::gwCli({"sweep", file, "--local", "2"});
        QVERIFY2(again.code == 0 && again.out.contains("all 4 points have finished; nothing to run"), qPrintable(again.out));
        for (const auto& [run, t] : written) QCOMPARE(fs::last_write_time(runCheckpointPath(run)), t);
        // The same folder with other overrides is refused, naming the plan and both.
        const auto other = fixtures::gwCli({"sweep", file, "training.steps=90"});
        QCOMPARE(other.code, 1);
        QVERIFY2(other.out.contains("plan.yaml: this sweep folder was planned with the overrides 'training.val_every=30', "
                                    "the sweep now gives 'training.val_every=30 training.steps=90'"),
                 qPrintable(other.out));
        // --status reads the folder.
        const auto st = fixtures::gwCli({"sweep", QString::fromStdString(folder), "--status"});
        QVERIFY2(st.code == 0 && st.out.contains("4 points: 4 finished"), qPrintable(st.out));
        // More processes than cores is refused with the count.
        std::ofstream(file.toStdString()) << "name: wide\nexperiment: tiny.yaml\naxes:\n  seed: [1, 2, 3, 4, 5, 6, 7, 8]\n";
        const int cores = static_cast<int>(std::thread::hardware_concurrency());
        const auto wide = fixtures::gwCli({"sweep", file, "--local", QString::number(cores + 1)});
        QCOMPARE(wide.code, 1);
        QVERIFY2(wide.out.contains(QString("--local %1: this machine has %2 cores").arg(cores + 1).arg(cores)), qPrintable(wide.out));
    }

    /// A point whose process dies mid-run reads as interrupted; running the sweep again resumes it
    /// from its checkpoint to the end and leaves the finished point alone.
    void killedPointResumes() {
        QTemporaryDir dir;
        fixtures::makeExperiment(dir);
        const QString file = dir.filePath("long.yaml");
        std::ofstream(file.toStdString()) << "name: long\nexperiment: tiny.yaml\n"
                                             "overrides: [training.steps=6000, training.checkpoint_every=200, training.val_every=0, training.log_every=100]\n"
                                             "axes:\n  seed: [1]\n";
        QProcess sweep;
        sweep.setProcessChannelMode(QProcess::MergedChannels);
        sweep.start(GW_BINARY_DIR "/app/gw", {"sweep", file, "--local", "1"});
        QVERIFY(sweep.waitForStarted());
        const std::string run = dir.filePath("sweeps/long/runs/000-seed=1").toStdString();
        RunStatus st;
        const auto t0 = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120)) {
            st = readRunStatus(run);
            if (st.state == "running" && st.step >= 200 && st.pid > 0) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        QVERIFY2(st.state == "running" && st.step >= 200 && st.step < 6000,
                 qPrintable(QString::fromStdString(st.state) + " at " + QString::number(st.step)));
        QCOMPARE(::kill(static_cast<pid_t>(st.pid), SIGKILL), 0);  // the training process, not gw sweep
        QVERIFY(sweep.waitForFinished(60000));
        const QString out = QString::fromUtf8(sweep.readAll());
        QCOMPARE(sweep.exitCode(), 1);
        QVERIFY2(out.contains("000-seed=1: killed by signal 9"), qPrintable(out));
        const RunStatus killed = readRunStatus(run);
        QCOMPARE(killed.state, std::string("interrupted"));
        QCOMPARE(killed.signal, SIGKILL);  // recorded by the sweep, which saw its child end
        QVERIFY2(killed.error.find("was ended by SIGKILL") != std::string::npos, killed.error.c_str());
        const int64_t cut = loadCheckpoint(runCheckpointPath(run)).step;
        QVERIFY(cut >= 200 && cut < 6000);
        const auto again = fixtures::gwCli({"sweep", file});
        QVERIFY2(again.code == 0, qPrintable(again.out));
        QCOMPARE(readRunStatus(run).state, std::string("finished"));
        QCOMPARE(loadCheckpoint(runCheckpointPath(run)).step, int64_t(6000));
        const std::string log = readText(run + "/train.log");
        QVERIFY2(log.find("resumed " + runCheckpointPath(run) + " at step " + std::to_string(cut)) != std::string::npos, log.c_str());
    }

    /// The same sweep on a real Slurm: one job array through sbatch, every point trained by an array
    /// task, states from squeue; then Slurm stopped, and sbatch's answer is in the error.
    void slurmSweep() {
        if (::geteuid() != 0) GW_SKIP_MISSING("needs root: packaging/slurm-local.sh runs munged as the munge user");
        for (const char* tool : {"/usr/bin/sbatch", "/usr/sbin/slurmctld", "/usr/sbin/munged"})
            if (!fs::exists(tool)) GW_SKIP_MISSING(QString("needs Debian's slurm-wlm and munge (%1 missing; packaging/dev.sh installs them)").arg(tool));
        QTemporaryDir dir;
        fixtures::makeExperiment(dir, 40);
        QTemporaryDir cluster(QDir::tempPath() + "/gw-slurm-XXXXXX");
        const QString script = GW_SOURCE_DIR "/packaging/slurm-local.sh";
        const auto up = fixtures::runProcess(script, {"start", cluster.path()});
        QVERIFY2(up.code == 0, qPrintable(up.out));
        struct Stop {
            QString script, dir;
            ~Stop() { fixtures::runProcess(script, {"stop", dir}); }
        } stop{script, cluster.path()};
        const QByteArray conf = cluster.filePath("slurm.conf").toUtf8();
        qputenv("SLURM_CONF", conf);
        const QString file = dir.filePath("onslurm.yaml");
        std::ofstream(file.toStdString()) << "name: onslurm\nexperiment: tiny.yaml\noverrides: [threads=0]\n"
                                             "axes:\n  data.paired_count: [32, 128]\n  seed: [1, 2]\n"
                                             "slurm: {cpus_per_task: 1, time: \"00:10:00\"}\n";
        const auto r = fixtures::gwCli({"sweep", file, "--slurm", "--wait"});
        QVERIFY2(r.code == 0, qPrintable(r.out));
        QVERIFY2(r.out.contains("submitted job") && r.out.contains("(array 0-3, 4 points"), qPrintable(r.out));
        const std::string folder = dir.filePath("sweeps/onslurm").toStdString();
        const std::string sbatch = readText(folder + "/slurm/array.sbatch");
        QVERIFY2(sbatch.find("#SBATCH --cpus-per-task=1") != std::string::npos && sbatch.find("#SBATCH --time=00:10:00") != std::string::npos,
                 sbatch.c_str());
        const auto rows = readCsv(sweepSummaryPath(folder));
        QCOMPARE(rows.size(), size_t(4));
        for (const auto& row : rows) {
            const std::string run = folder + "/runs/" + row.at("name");
            QCOMPARE(row.at("state"), std::string("finished"));
            QCOMPARE(row.at("step"), std::string("40"));
            QCOMPARE(yamlValue(run + "/config.yaml", "paired_count"), row.at("data.paired_count"));
            QCOMPARE(yamlValue(run + "/config.yaml", "threads"), std::string("1"));  // cpus_per_task
            QCOMPARE(std::stod(row.at("train/loss")), std::stod(lastMetric(run, "train/loss")));
            // The array task's own log says it trained this point.
            bool found = false;
            for (const auto& e : fs::directory_iterator(folder + "/slurm"))
                if (e.path().extension() == ".out" && readText(e.path().string()).find(row.at("name")) != std::string::npos) found = true;
            QVERIFY2(found, row.at("name").c_str());
        }
        const auto st = fixtures::gwCli({"sweep", QString::fromStdString(folder), "--status"});
        QVERIFY2(st.code == 0 && st.out.contains("4 points: 4 finished; Slurm jobs"), qPrintable(st.out));
        QVERIFY2(st.out.contains("sacct answered (exit 1): Slurm accounting storage is disabled"), qPrintable(st.out));
        // A finished sweep submits nothing.
        const auto again = fixtures::gwCli({"sweep", file, "--slurm"});
        QVERIFY2(again.code == 0 && again.out.contains("nothing to submit"), qPrintable(again.out));

        // One model over the tasks of a job step: srun -n2 starts two ranks of gw train, which find
        // each other from Slurm's variables (torch.distributed, Gloo).
        const QString ranked = dir.filePath("srun-run");
        const auto srun = fixtures::runProcess("/usr/bin/srun", {"-n2", GW_BINARY_DIR "/app/gw", "train", dir.filePath("tiny.yaml"),
                                                                 "training.steps=40", "--threads", "1", "--out", ranked});
        QVERIFY2(srun.code == 0, qPrintable(srun.out));
        QVERIFY2(srun.out.contains("(2 ranks, Slurm (srun))") && srun.out.contains("data-parallel: 2 ranks"), qPrintable(srun.out));
        QCOMPARE(readRunStatus(ranked.toStdString()).state, std::string("finished"));

        // Slurm down: the error names the command and what sbatch answered.
        fixtures::runProcess(script, {"stop", cluster.path()});
        std::ofstream(file.toStdString()) << "name: down\nexperiment: tiny.yaml\naxes:\n  seed: [1]\n";
        const auto down = fixtures::gwCli({"sweep", file, "--slurm"});
        QCOMPARE(down.code, 1);
        QVERIFY2(down.out.contains("gw: error: sbatch --parsable --array=0 ") && down.out.contains("sbatch answered: ") &&
                     down.out.contains("Unable to contact slurm controller"),
                 qPrintable(down.out));
        qunsetenv("SLURM_CONF");
    }

    /// Without Slurm's commands, --slurm says what is missing and where to run.
    void slurmMissing() {
        QTemporaryDir dir;
        fixtures::makeExperiment(dir);
        const QString file = dir.filePath("s.yaml");
        std::ofstream(file.toStdString()) << "experiment: tiny.yaml\naxes:\n  seed: [1]\n";
        QProcess p;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("PATH", dir.path());  // no sbatch here
        p.setProcessEnvironment(env);
        p.setProcessChannelMode(QProcess::MergedChannels);
        p.start(GW_BINARY_DIR "/app/gw", {"sweep", file, "--slurm"});
        QVERIFY(p.waitForFinished(120000));
        const QString out = QString::fromUtf8(p.readAll());
        QCOMPARE(p.exitCode(), 1);
        QVERIFY2(out.contains("gw: error: sbatch: not found on PATH. --slurm needs Slurm's client commands"), qPrintable(out));
    }
};

QTEST_APPLESS_MAIN(TestSweep)
#include "tst_sweep.moc"

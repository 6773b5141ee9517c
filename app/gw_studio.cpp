// SPDX-License-Identifier: GPL-3.0-or-later
// gw-studio: the GW Studio window. Also, for CI and the README, --screenshot (train a while, save the
// window as PNG) and --bench (the GUI thread's longest stall while a run trains, and the dashboard's
// frame time with a million points per curve; `--bench runs`: the Runs tab refreshing 500 run folders and a
// 200-point sweep).
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFileInfo>
#include <QSaveFile>
#include <QTreeWidget>
#include <QSettings>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTimer>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include <unistd.h>

#include <qcustomplot.h>

#include "ui/attention_levels_plot.h"
#include "ui/bridge/bridge.h"
#include "ui/bridge/runs_listing.h"
#include "ui/curve_plot.h"
#include "ui/experiment_form.h"
#include "ui/explorer_panel.h"
#include "ui/glom_panel.h"
#include "ui/main_window.h"
#include "ui/metrics_dashboard.h"
#include "ui/runs_panel.h"
#include "ui/save_file.h"

using namespace gw::studio;

namespace {

/// The shipped Fashion-MNIST experiment: beside the executable once installed, else in the source tree.
QString defaultExperiment() {
    const QString installed = QCoreApplication::applicationDirPath() + "/../share/gw-studio/experiments/fashion-mnist.yaml";
    if (QFileInfo::exists(installed)) return QFileInfo(installed).absoluteFilePath();
    return QStringLiteral(GW_SOURCE_DIR "/resources/experiments/fashion-mnist.yaml");
}

/// Longest gap between the ticks of a 5 ms timer on the GUI thread: how long the GUI could not react.
struct StallMeter {
    QElapsedTimer clock;
    QTimer timer;
    qint64 last = 0, worst = 0, worstAt = 0;  ///< ns; worstAt: when the longest gap ended
    qint64 windowWorst = 0;                    ///< ns: the longest gap since the caller last set it to 0
    std::vector<double> gaps;
    void start() {
        clock.start();
        last = clock.nsecsElapsed();
        timer.setInterval(5);
        QObject::connect(&timer, &QTimer::timeout, [this] {
            const qint64 now = clock.nsecsElapsed();
            gaps.push_back((now - last) / 1e6);
            if (now - last > worst) {
                worst = now - last;
                worstAt = now;
            }
            windowWorst = std::max(windowWorst, now - last);
            last = now;
        });
        timer.start();
    }
};

double median(std::vector<double> v) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

int runBench(MainWindow& w, const QString& experiment, qint64 steps) {
    // 1. The GUI thread during a run (the dashboard drawing live curves).
    w.setInteractive(false);
    if (!w.openExperiment(experiment, false)) return 2;
    w.form()->setValue("training.steps", QString::number(steps));
    w.validate();
    if (!w.startBlockedReason().isEmpty()) {
        std::fprintf(stderr, "cannot start: %s\n", qPrintable(w.startBlockedReason()));
        return 2;
    }
    StallMeter meter;
    QEventLoop loop;
    bool ok = false;
    QObject::connect(&w, &MainWindow::runEnded, &loop, [&](bool r) {
        ok = r;
        loop.quit();
    });
    QElapsedTimer t;
    double firstCurve = -1;
    QObject::connect(w.worker(), &TrainingWorker::metrics, &w, [&] {
        if (firstCurve >= 0) return;
        firstCurve = t.elapsed() / 1000.0;
        std::printf("first curve point %.1f s after Start\n", firstCurve);
        std::fflush(stdout);
    });
    t.start();
    meter.start();
    w.start();
    loop.exec();
    meter.timer.stop();
    const double seconds = t.elapsed() / 1000.0;
    std::vector<double> sorted = meter.gaps;
    std::sort(sorted.begin(), sorted.end());
    const double p99 = sorted.empty() ? NAN : sorted[size_t(sorted.size() * 0.99)];
    std::printf("run: %lld steps in %.1f s (%s), first curve point %.1f s after Start, %d frames drawn\n",
                (long long)steps, seconds, ok ? "ok" : "failed", firstCurve, w.dashboard()->framesDrawn());
    std::printf("gui stall: longest %.1f ms (ending %.2f s after Start), p99 %.1f ms, median %.1f ms over %zu ticks of a 5 ms "
                "timer (target < 50 ms)\n",
                meter.worst / 1e6, meter.worstAt / 1e9, p99, median(meter.gaps), meter.gaps.size());

    // 2. Frame time with a million points per curve.
    MetricsDashboard* d = w.dashboard();
    d->clear();
    const int curves = 4;
    const int n = 1000000;
    for (int c = 0; c < curves; ++c) {
        MetricBatch b;
        b.names.resize(n);
        b.steps.resize(n);
        b.values.resize(n);
        const QString name = QString("train/translation_bench_%1").arg(c);
        for (int i = 0; i < n; ++i) {
            b.names[i] = name;
            b.steps[i] = i;
            b.values[i] = 1.0 / (1 + i * 1e-4) + 0.05 * std::sin(i * 0.37 + c);
        }
        d->append(b);
        d->setMetricVisible(name, true);
    }
    d->setFollow(true);
    QElapsedTimer first;
    first.start();
    d->redrawNow();  // hands the points to the graphs
    const double firstMs = first.nsecsElapsed() / 1e6;
    std::vector<double> frames;
    for (int i = 0; i < 15; ++i) {
        MetricBatch more;  // a live update: 10 new points per curve
        for (int c = 0; c < curves; ++c)
            for (int k = 0; k < 10; ++k) {
                more.names.push_back(QString("train/translation_bench_%1").arg(c));
                more.steps.push_back(n + i * 10 + k);
                more.values.push_back(0.5);
            }
        d->append(more);
        frames.push_back(d->redrawNow());
    }
    std::printf("dashboard: %d curves x %d points: first frame %.0f ms (loading), then median %.1f ms, worst %.1f ms per frame\n",
                curves, n, firstMs, median(frames), *std::max_element(frames.begin(), frames.end()));
    d->setFollow(false);
    std::vector<double> still;
    for (int i = 0; i < 10; ++i) still.push_back(d->redrawNow());
    std::printf("dashboard, not following (no rescale): median %.1f ms per frame\n", median(still));
    return ok ? 0 : 1;
}

/// Runs the event loop for `ms` milliseconds (the stall meter ticks meanwhile).
void settle(int ms) {
    QEventLoop loop;
    QTimer::singleShot(ms, &loop, &QEventLoop::quit);
    loop.exec();
}

bool writeText(const QString& path, const QByteArray& text) {
    QSaveFile f(path);  // as the engine writes status.yaml and config.yaml: a whole file, renamed into place
    return f.open(QIODevice::WriteOnly) && f.write(text) == text.size() && f.commit();
}

bool appendText(const QString& path, const QByteArray& text) {
    QFile f(path);
    return f.open(QIODevice::Append) && f.write(text) == text.size();
}

/// The fake runs of `--bench runs`: run folders as runTraining leaves them (model/run/engine_train.cpp):
/// config.yaml (the resolved experiment), status.yaml and metrics.csv (step,metric,value; the train
/// metrics every 100 steps, the val metrics every 500), plus a sweep folder (plan.yaml, runs/NAME/).
struct FakeRuns {
    QString root, experiment, sweepDir;
    QStringList running;  ///< run folders whose runs go on (status running, this process's pid)
    qint64 bytes = 0;
    int logged = 0;       ///< log rows the bench appended since

    static QStringList trainMetrics() {
        return {"train/loss", "train/demi_cycle_vec", "train/demi_cycle_label", "train/demi_cycle_label_accuracy",
                "train/cycle_vec_through_label", "train/cycle_label_through_vec", "train/cycle_label_through_vec_accuracy",
                "train/translation_vec_to_label", "train/translation_vec_to_label_accuracy", "train/translation_label_to_vec",
                "train/contrastive_vec_and_label", "train/contrastive_vec_and_label_logit_scale", "train/demi_cycles",
                "train/cycles", "train/translations", "train/contrastives", "train/lr"};
    }
    static QByteArray rows(qint64 step, int seed) {
        QByteArray out;
        const bool val = step % 500 == 0;
        for (const QString& m : trainMetrics()) {
            const double v = 2.0 / (1 + step * 1e-3) + 0.01 * ((step / 100 + seed + m.size()) % 7);
            out += QString("%1,%2,%3\n").arg(step).arg(m).arg(v, 0, 'g', 9).toUtf8();
        }
        if (val)
            for (QString m : trainMetrics()) {
                if (m == "train/lr") continue;
                m.replace("train/", "val/");
                out += QString("%1,%2,%3\n").arg(step).arg(m).arg(2.1 / (1 + step * 1e-3) + 0.001 * seed, 0, 'g', 9).toUtf8();
            }
        return out;
    }
    static QByteArray status(const QString& state, qint64 step, qint64 total, long pid) {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        return QString("state: %1\nstep: %2\ntotal_steps: %3\npid: %4\nhost: %5\nstarted: 2026-12-07T03:52:45Z\n"
                       "updated: 2026-12-07T04:10:00Z\n")
            .arg(state).arg(step).arg(total).arg(pid).arg(state == "running" ? QString(host) : QString("elsewhere"))
            .toUtf8();
    }
    QByteArray config(int seed, int pairedCount, double lr) const {
        const QString dir = QFileInfo(experiment).absolutePath();
        return QString("name: demo\nmodel: gw\nseed: %1\ndevice: cpu\nthreads: 0\ndata:\n  file: %2/data.h5\n  import: \"\"\n"
                       "  train_split: train\n  val_split: val\n  test_split: test\n  paired_fraction: 0.10000000000000001\n"
                       "  paired_count: %3\n  paired_indices: \"\"\n  cache_mb: 4096\ndomains:\n  vec:\n    module: identity\n"
                       "    file: \"\"\n    dataset: /{split}/vec\n    weights: \"\"\n    frozen: true\n"
                       "    losses: [demi_cycle, cycle, translation, fused]\n  label:\n    module: class_label\n    file: \"\"\n"
                       "    dataset: /{split}/label\n    num_classes: 4\n    weights: \"\"\n    frozen: true\n"
                       "    losses: [demi_cycle, cycle, translation, fused]\nworkspace:\n  dim: 6\n"
                       "  encoder: {hidden: 32, layers: 1}\n  decoder: {hidden: 32, layers: 1}\n  flavour: two_domains\n"
                       "  selection: single_domain\n  selection_params: {}\nloss:\n  coefficients:\n    demi_cycles: 1\n"
                       "    cycles: 1\n    translations: 1\n    contrastives: 0.10000000000000001\n"
                       "  logit_scale: 2.6592600369327779\n  learn_logit_scale: false\noptimizer:\n  lr: %4\n"
                       "  weight_decay: 1.0000000000000001e-05\n  beta1: 0.90000000000000002\n  beta2: 0.999\n  eps: 1e-08\n"
                       "training:\n  steps: 6000\n  batch_size: 64\n  val_every: 500\n  checkpoint_every: 500\n"
                       "  log_every: 100\n  out: %5\n")
            .arg(seed).arg(dir).arg(pairedCount).arg(lr, 0, 'g', 17).arg(root)
            .toUtf8();
    }
    /// One run folder that reached `step` of 6000, in `state`.
    bool makeRun(const QString& dir, const QString& state, qint64 step, int seed, int pairedCount, double lr) {
        if (!QDir().mkpath(dir + "/checkpoints")) return false;
        QByteArray csv = "step,metric,value\n";
        for (qint64 s = 100; s <= step; s += 100) csv += rows(s, seed);
        const QByteArray cfg = config(seed, pairedCount, lr);
        const QByteArray st = status(state, step, 6000, state == "running" ? long(::getpid()) : 4242);
        bytes += csv.size() + cfg.size() + st.size();
        if (state == "running") running << dir;
        return writeText(dir + "/config.yaml", cfg) && writeText(dir + "/status.yaml", st) && writeText(dir + "/metrics.csv", csv);
    }
    bool make(int runs, int points) {
        for (int i = 0; i < runs; ++i) {
            const QString state = i < 4 ? "running" : i % 50 == 7 ? "failed" : i % 50 == 9 ? "stopped" : "finished";
            const qint64 step = state == "finished" ? 6000 : 1000 + 100 * (i % 40);
            if (!makeRun(QString("%1/runs/demo-%2").arg(root).arg(i, 4, 10, QChar('0')), state, step, i % 10, -1,
                         i % 3 == 0 ? 0.003 : 0.001))
                return false;
        }
        sweepDir = root + "/sweeps/study";
        QString plan = QString("# The sweep as planned: gw sweep reads it back; edit the sweep file, not this\nsweep_file: %1/study.yaml\n"
                               "name: study\nexperiment: %2\noverrides: [training.steps=6000]\nmethod: grid\n"
                               "axes: [data.paired_count, seed]\nslurm:\n  partition: \"\"\n  time: \"\"\n  cpus_per_task: 0\n"
                               "  gpus: 0\n  mem: \"\"\n  account: \"\"\n  qos: \"\"\n  max_parallel: 0\n  extra: []\npoints:\n")
                           .arg(root, experiment);
        for (int i = 0; i < points; ++i) {
            const int count = 16 * (1 + i / 10), seed = i % 10;
            const QString name = QString("%1-paired_count=%2,seed=%3").arg(i, 3, 10, QChar('0')).arg(count).arg(seed);
            plan += QString("  - {index: %1, name: \"%2\", values: {data.paired_count: \"%3\", seed: \"%4\"}}\n")
                        .arg(i).arg(name).arg(count).arg(seed);
            if (i >= points - points / 10) continue;  // the last tenth: pending (no folder yet)
            const QString state = i < 2 ? "running" : i == 5 ? "failed" : "finished";
            if (!makeRun(sweepDir + "/runs/" + name, state, state == "finished" ? 6000 : 2000, seed, count, 0.003)) return false;
        }
        return writeText(sweepDir + "/plan.yaml", plan.toUtf8());
    }
    /// The runs that go on log another 100 steps and say so in their status.yaml.
    bool advance() {
        bool ok = true;
        for (const QString& dir : running) {
            const qint64 step = 1100 + 100 * qint64(logged);
            ok = ok && appendText(dir + "/metrics.csv", rows(step, 1)) && writeText(dir + "/status.yaml", status("running", step, 6000, long(::getpid())));
        }
        ++logged;
        return ok;
    }
};

/// `--bench runs`: the Runs tab on `runs` run folders and a `points`-point sweep; the GUI thread's
/// longest stall while it lists them and while it refreshes `refreshes` times as runs go on.
int runRunsBench(MainWindow& w, const QString& experiment, const QString& folder, int runs, int points, int refreshes) {
    FakeRuns fake;
    fake.root = QDir(folder).absolutePath();
    fake.experiment = QFileInfo(experiment).absoluteFilePath();
    QElapsedTimer made;
    made.start();
    if (!fake.make(runs, points)) {
        std::fprintf(stderr, "cannot write the run folders under %s\n", qPrintable(fake.root));
        return 2;
    }
    std::printf("made %d run folders and a %d-point sweep (%d of them started) in %s: %.1f MB in %.1f s\n", runs, points,
                points - points / 10, qPrintable(fake.root), fake.bytes / 1e6, made.elapsed() / 1000.0);
    std::fflush(stdout);
    w.setInteractive(false);
    if (!w.openExperiment(experiment, false)) return 2;
    RunsPanel* panel = w.runsPanel();
    StallMeter meter;
    meter.start();
    settle(200);
    int shownCount = 0;
    QObject::connect(panel, &RunsPanel::refreshed, panel, [&] { ++shownCount; });
    // Runs the event loop until `done`; then the meter's next ticks measure the gap a refresh made.
    auto waitUntil = [&](const std::function<bool()>& done) {
        QElapsedTimer limit;
        limit.start();
        while (!done() && limit.elapsed() < 120000) {
            QEventLoop loop;
            QObject::connect(panel, &RunsPanel::refreshed, &loop, &QEventLoop::quit);
            QTimer::singleShot(1000, &loop, &QEventLoop::quit);
            loop.exec();
        }
    };
    QElapsedTimer t;
    panel->setBase(w.form()->yaml(), w.form()->baseDir());
    meter.windowWorst = 0;
    t.start();
    panel->setFolder(fake.root);  // the first visit to the tab
    w.showRuns();
    waitUntil([&] { return panel->tree()->topLevelItemCount() == runs + 1; });
    const double firstMs = t.nsecsElapsed() / 1e6;
    settle(30);
    const qint64 stall = meter.windowWorst;
    if (panel->tree()->topLevelItemCount() != runs + 1) {
        std::fprintf(stderr, "the Runs tab lists %d rows, expected %d\n", panel->tree()->topLevelItemCount(), runs + 1);
        return 1;
    }
    std::printf("first listing: shown %.0f ms after the tab opened, longest GUI stall %.1f ms\n", firstMs, stall / 1e6);
    // As a user would: two runs compared (one of them training), the sweep expanded, scrolled half-way.
    panel->selectRuns({fake.running.value(0), fake.root + "/runs/demo-0100"});
    panel->tree()->scrollToItem(panel->tree()->topLevelItem(runs / 2), QAbstractItemView::PositionAtTop);
    const QString topBefore = panel->tree()->itemAt(5, 5) ? panel->tree()->itemAt(5, 5)->text(0) : QString();
    settle(100);
    std::vector<double> stalls, latencies;
    const int training = int(fake.running.size());
    for (int i = 0; i < refreshes; ++i) {
        if (!fake.advance()) return 2;
        if (i == refreshes / 2) {  // one run finishes, another starts
            writeText(fake.running.takeLast() + "/status.yaml", FakeRuns::status("finished", 6000, 6000, 4242));
            fake.makeRun(fake.root + "/runs/demo-new", "running", 100, 3, -1, 0.003);
        }
        settle(20);
        meter.windowWorst = 0;
        const int target = shownCount + 1;
        t.restart();
        QTimer::singleShot(0, panel, &RunsPanel::refresh);
        waitUntil([&] { return shownCount >= target; });
        latencies.push_back(t.nsecsElapsed() / 1e6);
        settle(30);
        stalls.push_back(meter.windowWorst / 1e6);
    }
    meter.timer.stop();
    const bool kept = panel->tree()->selectedItems().size() == 2 && panel->tree()->topLevelItem(0)->isExpanded();
    const QString topAfter = panel->tree()->itemAt(5, 5) ? panel->tree()->itemAt(5, 5)->text(0) : QString();
    std::printf("%d refreshes (%d runs training, one finishing and a new run folder half-way): longest GUI stall per refresh "
                "median %.1f ms, longest %.1f ms (target < 50 ms); shown %.0f ms (median) after it was asked for; selection "
                "and expansion %s, top row %s\n",
                refreshes, training, median(stalls), *std::max_element(stalls.begin(), stalls.end()),
                median(latencies), kept ? "kept" : "lost", topBefore == topAfter ? "kept" : qPrintable("moved from " + topBefore + " to " + topAfter));
    return 0;
}

/// `--explore CKPT --out DIR`: the grid and the workspace view of a checkpoint as PNG files.
int runExplore(const QString& checkpoint, const QString& out, const ExploreRequest& req) {
    QString error;
    const ExploreData d = exploreCheckpoint(checkpoint, req, &error);
    if (!error.isEmpty()) {
        std::fprintf(stderr, "gw explore: error: %s\n", qPrintable(error));
        return 1;
    }
    QDir().mkpath(out);
    if (d.isGlom()) {  // a GLOM run: the islands of each sample at the state decoded and at the last one
        bool ok = true;
        for (const auto& g : d.glom) {
            GlomIslandsView view;
            view.setData(g);
            std::printf("%s: %s sample %lld, %lld levels, %lld x %lld columns, states 0 to %lld\n", qPrintable(checkpoint),
                        qPrintable(g.split), (long long)g.index, (long long)g.levels, (long long)g.side, (long long)g.side,
                        (long long)g.iterations);
            for (const qint64 state : {g.readAt, g.iterations}) {
                view.setState(int(state));
                const QString file = QString("%1/islands-%2-%3-state%4.png").arg(out, g.split).arg(g.index).arg(state);
                const QString err = saveImage(view.render(), file);
                ok = ok && err.isEmpty();
                QStringList agreement;
                for (qint64 level = g.levels - 1; level >= 0; --level) {
                    double sum = 0;
                    for (qint64 c = 0; c < g.columns(); ++c) sum += g.agreementAt(state, level, c);
                    agreement << QString("level %1 %2").arg(level).arg(sum / double(g.columns()), 0, 'f', 3);
                }
                std::printf("  state %lld: neighbour agreement %s; %s %s\n", (long long)state, qPrintable(agreement.join(", ")),
                            err.isEmpty() ? "wrote" : "cannot write", qPrintable(err.isEmpty() ? file : err));
            }
        }
        return ok ? 0 : 1;
    }
    ExplorerPanel panel;
    panel.resize(1500, 900);
    panel.setRequest(req);
    panel.setData(d);
    panel.grid()->resize(panel.grid()->sizeHint());
    const QString grid = out + "/translations.png", view = out + "/workspace.png";
    panel.show();
    panel.hoverPoint(0);  // the preview shows the first sample of the workspace view, as a hover would
    const bool ok = panel.exportGrid(grid) && panel.exportWorkspace(view) && saveImage(panel.grab().toImage(), out + "/panel.png").isEmpty();
    std::printf("%s: %lld samples of the %s split, %d domains\n", qPrintable(checkpoint), (long long)d.indices.size(),
                qPrintable(d.split), int(d.domains.size()));
    for (int i = 0; i < d.indices.size(); ++i) {
        QStringList errs;
        for (const auto& key : d.cells.keys()) {
            if (key.startsWith("input/")) continue;
            const QString e = panel.grid()->cellError(key, i);
            if (!e.isEmpty()) errs << key + " " + e;
        }
        errs.sort();
        std::printf("  sample %lld: %s\n", (long long)d.indices[i], qPrintable(errs.join("; ")));
    }
    if (d.pcaExplained.size() == 2)
        std::printf("workspace PCA of %lld samples per domain: %.0f%% + %.0f%% of the variance\n",
                    (long long)d.pcaIndices.size(), 100 * d.pcaExplained[0], 100 * d.pcaExplained[1]);
    std::printf("%s %s, %s and %s/panel.png\n", ok ? "wrote" : "cannot write", qPrintable(grid), qPrintable(view), qPrintable(out));
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    initEngineProcess(argv);
    QApplication app(argc, argv);
    QApplication::setOrganizationName("GW Studio");
    QApplication::setApplicationName("gw-studio");
    QApplication::setApplicationVersion("0.1.0");
    QCommandLineParser cli;
    cli.setApplicationDescription("GW Studio: set up, train and watch Global Workspace experiments");
    cli.addHelpOption();
    cli.addVersionOption();
    cli.addPositionalArgument("experiment", "Experiment file (YAML) to open (default: the last one, or Fashion-MNIST)");
    QCommandLineOption screenshot("screenshot", "Train for a while, save the window as PNG to FILE, quit", "FILE");
    QCommandLineOption steps("steps", "Steps of --screenshot and --bench runs", "N", "400");
    QCommandLineOption bench("bench", "Measure the GUI thread's longest stall during a run and the frame time with 10^6 points; "
                                      "with the argument 'runs': while the Runs tab refreshes many run folders");
    QCommandLineOption benchRuns("runs", "--bench runs: run folders to make", "N", "500");
    QCommandLineOption benchPoints("sweep-points", "--bench runs: points of the sweep to make", "N", "200");
    QCommandLineOption benchRefreshes("refreshes", "--bench runs: refreshes to measure", "N", "20");
    QCommandLineOption benchDir("bench-dir", "--bench runs: make the folders in DIR and keep them (default: a temporary folder)",
                                "DIR");
    QCommandLineOption demo("demo", "Open a generated two-domain experiment (no dataset needed)");
    QCommandLineOption explore("explore", "Write the translation grid and workspace view of CHECKPOINT as PNG files, quit",
                               "CHECKPOINT");
    QCommandLineOption out("out", "Folder of --explore's PNG files", "DIR", ".");
    QCommandLineOption split("split", "--explore: train, val or test", "SPLIT", "test");
    QCommandLineOption samples("samples", "--explore: per_class:K, random:N[:SEED], first:N or indices:I,J,...", "SPEC",
                               "per_class:1");
    QCommandLineOption broadcast("broadcast", "--explore: fuse these domains (comma-separated), decode into every domain",
                                 "DOMAINS");
    QCommandLineOption plotCurve("plot-curve", "Plot a pairs curve (CSV: pairs,model,seed,METRIC...) as the PNG --out, quit "
                                 "(the Simple Shapes panels of docs/results.md)", "CSV");
    QCommandLineOption plotAttention("plot-attention",
                                     "Plot an attention run's mean scores against the corruption level as the PNG --out, quit "
                                     "(docs/results.md)", "RUN");
    cli.addOptions({plotAttention});
    cli.addOptions({screenshot, steps, bench, demo, explore, out, split, samples, broadcast, plotCurve, benchRuns, benchPoints,
                    benchRefreshes, benchDir});
    cli.process(app);
    if (cli.isSet(plotCurve)) {
        QVector<CurvePoint> points;
        QStringList metrics;
        QString err = readCurveCsv(cli.value(plotCurve), points, metrics);
        if (err.isEmpty())
            err = plotPairsCurve(points,
                                 {{"image_mse", "attr→v: image MSE (pixels in [0, 1])", false},
                                  {"category_accuracy", "v→attr: category accuracy", true},
                                  {"attribute_error", "v→attr: attribute error (mean |Δ|, values in [−1, 1])", false}},
                                 "Simple Shapes: translations on the test split against the number of paired samples",
                                 cli.value(out));
        if (!err.isEmpty()) {
            std::fprintf(stderr, "gw-studio: error: %s\n", qPrintable(err));
            return 1;
        }
        std::printf("wrote %s\n", qPrintable(cli.value(out)));
        return 0;
    }
    if (cli.isSet(plotAttention)) {
        const QString run = QFileInfo(cli.value(plotAttention)).absoluteFilePath();
        QString why;
        const auto curves = readRunCurves(run, &why);  // this run's metrics.csv only
        QVector<QPair<QString, double>> finals;
        QStringList metrics = curves.keys();
        metrics.sort();  // a fixed order of sides and domains in the legend
        for (const auto& m : metrics)
            if (!curves[m].second.isEmpty()) finals.append({m, curves[m].second.last()});
        AttentionLevelsPlot plot;
        plot.setFinals(finals);
        if (!plot.hasData()) {
            std::fprintf(stderr, "gw-studio: error: %s: expected a model: attention run with its validation sweep in "
                                 "metrics.csv, found %s\n",
                         qPrintable(run), why.isEmpty() ? "no val/corrupt_* metrics" : qPrintable(why));
            return 1;
        }
        const QString err = saveImage(plot.plot()->toPixmap(900, 420).toImage(), cli.value(out));
        if (!err.isEmpty()) {
            std::fprintf(stderr, "gw-studio: error: %s\n", qPrintable(err));
            return 1;
        }
        std::printf("wrote %s\n", qPrintable(cli.value(out)));
        return 0;
    }
    if (cli.isSet(explore)) {
        ExploreRequest req;
        req.split = cli.value(split);
        const QStringList spec = cli.value(samples).split(':');
        req.mode = spec.value(0);
        if (req.mode == "indices") {
            for (const auto& i : spec.value(1).split(',', Qt::SkipEmptyParts)) req.indices << i.toLongLong();
        } else {
            req.count = spec.value(1, "1").toLongLong();
            req.seed = spec.value(2, "0").toULongLong();
        }
        req.broadcastFrom = cli.value(broadcast).split(',', Qt::SkipEmptyParts);
        return runExplore(cli.value(explore), cli.value(out), req);
    }

    MainWindow w;
    QTemporaryDir scratch;
    QString experiment = cli.positionalArguments().value(0);
    if (cli.isSet(bench) && experiment == "runs") {
        const QString dir = cli.isSet(benchDir) ? cli.value(benchDir) : scratch.path() + "/bench-runs";
        if (cli.isSet(benchDir) && QDir(dir).exists() && !QDir(dir).isEmpty()) {
            std::fprintf(stderr, "gw-studio: error: --bench-dir %s: expected an empty or new folder\n", qPrintable(dir));
            return 2;
        }
        w.resize(1500, 950);
        w.show();
        return runRunsBench(w, makeDemoExperiment(scratch.path() + "/demo", 6000), dir, cli.value(benchRuns).toInt(),
                            cli.value(benchPoints).toInt(), std::max(1, cli.value(benchRefreshes).toInt()));
    }
    if (cli.isSet(demo) || (cli.isSet(bench) && experiment.isEmpty()))
        experiment = makeDemoExperiment(scratch.path(), cli.value(steps).toLongLong());
    if (cli.isSet(bench)) {
        w.show();
        return runBench(w, experiment, cli.value(steps).toLongLong());
    }
    if (experiment.isEmpty()) experiment = QSettings().value("lastExperiment").toString();
    if (experiment.isEmpty() || !QFileInfo::exists(experiment)) experiment = defaultExperiment();
    w.openExperiment(experiment);
    w.show();
    if (cli.isSet(screenshot)) {
        w.setInteractive(false);
        w.form()->setValue("training.steps", cli.value(steps));
        w.validate();
        const QString out = cli.value(screenshot);
        // Grab the window while it trains, at 90% of the steps, then let the run finish.
        bool grabbed = false, saved = false;
        QObject::connect(w.worker(), &TrainingWorker::progress, &w,
                         [&](const QString& phase, qint64 step, qint64 total, double, double) {
                             if (grabbed || phase != "training" || step < total * 9 / 10) return;
                             grabbed = true;
                             w.dashboard()->redrawNow();
                             saved = saveImage(w.grab().toImage(), out).isEmpty();
                             std::printf("%s %s at step %lld\n", saved ? "wrote" : "cannot write", qPrintable(out), (long long)step);
                         });
        QObject::connect(&w, &MainWindow::runEnded, &app, [&](bool ok) { app.exit(ok && saved ? 0 : 1); });
        QTimer::singleShot(0, &w, &MainWindow::start);
    } else {
        w.offerAutosaveRestore();
    }
    return endEngineProcess(app.exec());
}

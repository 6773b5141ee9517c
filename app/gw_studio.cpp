// SPDX-License-Identifier: GPL-3.0-or-later
// gw-studio: the GW Studio window. Also, for CI and the README, --screenshot (train a while, save the
// window as PNG) and --bench (the GUI thread's longest stall while a run trains, and the dashboard's
// frame time with a million points per curve).
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QSettings>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTimer>
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "ui/bridge/bridge.h"
#include "ui/curve_plot.h"
#include "ui/experiment_form.h"
#include "ui/explorer_panel.h"
#include "ui/glom_panel.h"
#include "ui/main_window.h"
#include "ui/metrics_dashboard.h"
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
    QCommandLineOption bench("bench", "Measure the GUI thread's longest stall during a run and the frame time with 10^6 points");
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
    cli.addOptions({screenshot, steps, bench, demo, explore, out, split, samples, broadcast, plotCurve});
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

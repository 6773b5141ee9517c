// SPDX-License-Identifier: GPL-3.0-or-later
// The window's training worker on its own QThread, watched with QSignalSpy as the window watches it:
// start, progress and metric batches, pause, resume, a checkpoint on request, stop (with a checkpoint),
// a stop during pre-training, and failures (a missing file, a NaN loss) that end the run cleanly.
#include <QtTest/QtTest>
#include <QImage>

#include <filesystem>
#include <fstream>

#include "ui/bridge/bridge.h"
#include "fixtures.h"

using namespace gw::studio;
namespace fs = std::filesystem;

namespace {
QString readAll(const QString& path) {
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? QString::fromUtf8(f.readAll()) : QString();
}

struct Harness {
    QThread thread;
    TrainingWorker* worker = new TrainingWorker;
    Harness() {
        worker->moveToThread(&thread);
        QObject::connect(&thread, &QThread::finished, worker, &QObject::deleteLater);
        thread.start();
    }
    ~Harness() {
        worker->requestStop();
        thread.quit();
        thread.wait();
    }
    void run(const QString& yamlPath, const QString& runDir, const QStringList& overrides = {}) {
        QMetaObject::invokeMethod(worker, "run", Qt::QueuedConnection, Q_ARG(QString, readAll(yamlPath)),
                                  Q_ARG(QString, QFileInfo(yamlPath).absolutePath()), Q_ARG(QString, yamlPath),
                                  Q_ARG(QString, runDir), Q_ARG(QString, QString()), Q_ARG(QStringList, overrides));
    }
};
}  // namespace

class TestWorker : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase() { qRegisterMetaType<gw::studio::MetricBatch>(); }

    void runsToTheEndAndReports() {
        QTemporaryDir dir;
        const QString yaml = makeDemoExperiment(dir.path(), 300);
        Harness h;
        QSignalSpy finished(h.worker, &TrainingWorker::finished), failed(h.worker, &TrainingWorker::failed),
            progress(h.worker, &TrainingWorker::progress), metrics(h.worker, &TrainingWorker::metrics),
            states(h.worker, &TrainingWorker::stateChanged), started(h.worker, &TrainingWorker::runStarted);
        h.run(yaml, dir.path() + "/run");
        QVERIFY(finished.wait(120000));
        QCOMPARE(failed.count(), 0);
        QCOMPARE(finished.first().at(1).toBool(), false);
        const QString ckpt = finished.first().at(0).toString();
        QVERIFY(QFile::exists(ckpt));
        QCOMPARE(started.first().at(0).toString(), dir.path() + "/run");
        QCOMPARE(progress.last().at(0).toString(), QString("training"));
        QCOMPARE(progress.last().at(1).toLongLong(), qint64(300));
        QCOMPARE(progress.last().at(2).toLongLong(), qint64(300));
        QVERIFY(progress.last().at(3).toDouble() > 0);
        // Metric batches: shimmer's names, train every log_every steps and val every val_every.
        QSet<QString> names;
        int val = 0;
        for (const auto& args : metrics) {
            const auto b = args.at(0).value<MetricBatch>();
            QCOMPARE(b.names.size(), b.values.size());
            for (const auto& n : b.names) names.insert(n);
            if (b.names.value(0).startsWith("val/")) ++val;
        }
        QVERIFY(names.contains("train/translation_vec_to_label"));
        QVERIFY(names.contains("val/translation_vec_to_label_accuracy"));
        QVERIFY(val >= 1);
        QVERIFY(metrics.count() >= 30);
        QList<int> seen;
        for (const auto& s : states) seen << s.at(0).toInt();
        QVERIFY(seen.contains(TrainingWorker::Preparing) && seen.contains(TrainingWorker::Training));
        QCOMPARE(seen.last(), int(TrainingWorker::Idle));
    }

    void pauseResumeCheckpointStop() {
        QTemporaryDir dir;
        const QString yaml = makeDemoExperiment(dir.path(), 1000000);
        Harness h;
        QSignalSpy finished(h.worker, &TrainingWorker::finished), progress(h.worker, &TrainingWorker::progress),
            written(h.worker, &TrainingWorker::checkpointWritten);
        h.run(yaml, dir.path() + "/run");
        QTRY_VERIFY_WITH_TIMEOUT(progress.count() >= 3, 60000);
        h.worker->requestPause(true);
        QTRY_COMPARE(h.worker->state(), TrainingWorker::Paused);
        QTest::qWait(100);  // deliver what was sent before the pause
        const int atPause = progress.count();
        const qint64 stepAtPause = progress.last().at(1).toLongLong();
        QTest::qWait(400);
        QCOMPARE(progress.count(), atPause);  // no step while paused
        // A checkpoint on request, served while paused.
        const QString exported = dir.path() + "/exported.ckpt";
        h.worker->requestCheckpoint(exported);
        QVERIFY(written.wait(20000));
        QCOMPARE(written.first().at(0).toString(), exported);
        QVERIFY(QFile::exists(exported));
        h.worker->requestPause(false);
        QTRY_VERIFY_WITH_TIMEOUT(progress.count() > atPause + 2, 30000);
        QVERIFY(progress.last().at(1).toLongLong() > stepAtPause);
        h.worker->requestStop();
        QVERIFY(finished.wait(30000));
        QCOMPARE(finished.first().at(1).toBool(), true);
        const QString ckpt = finished.first().at(0).toString();
        QVERIFY2(QFile::exists(ckpt), qPrintable(ckpt));
        QCOMPARE(h.worker->state(), TrainingWorker::Idle);
        // The run can continue from that checkpoint.
        QSignalSpy finished2(h.worker, &TrainingWorker::finished);
        QMetaObject::invokeMethod(h.worker, "run", Qt::QueuedConnection, Q_ARG(QString, QString()), Q_ARG(QString, QString()),
                                  Q_ARG(QString, QString()), Q_ARG(QString, QString()), Q_ARG(QString, dir.path() + "/run"),
                                  Q_ARG(QStringList, QStringList{"training.steps=" + QString::number(stepAtPause + 200)}));
        QVERIFY(finished2.wait(60000));
        QCOMPARE(finished2.first().at(1).toBool(), false);
    }

    void explorerDataDuringTrainingAndFromACheckpoint() {
        qRegisterMetaType<gw::studio::ExploreData>();
        QTemporaryDir dir;
        const QString yaml = makeDemoExperiment(dir.path(), 300);
        Harness h;
        ExploreRequest req;  // one sample per class of the test split
        h.worker->setExploreRequest(req, 100);
        QSignalSpy explored(h.worker, &TrainingWorker::explored), finished(h.worker, &TrainingWorker::finished);
        h.run(yaml, dir.path() + "/run");
        QVERIFY(finished.wait(120000));
        QVERIFY(explored.count() >= 4);  // steps 10, 110, 210 (the first report, then every 100), then the end
        const auto live = explored.last().at(0).value<ExploreData>();
        QCOMPARE(live.source, QString("training"));
        QCOMPARE(live.step, qint64(300));  // once more when the run ends: the final weights
        QCOMPARE(live.domains, (QStringList{"vec", "label"}));
        QCOMPARE(live.kinds, (QStringList{"identity", "class_label"}));
        QCOMPARE(live.indices.size(), 4);
        QCOMPARE(QSet<qint64>(live.labels.begin(), live.labels.end()).size(), 4);  // one of each class
        QCOMPARE(live.cells["input/vec"].shape, (QVector<qint64>{4, 8}));
        QCOMPARE(live.cells["input/label"].shape, (QVector<qint64>{4, 4}));
        for (const char* k : {"demi_cycle/vec", "demi_cycle/label", "translation/vec/label", "translation/label/vec",
                              "cycle/vec/label", "cycle/label/vec"})
            QVERIFY2(live.cells.contains(k), k);
        const auto& probs = live.cells["translation/vec/label"];
        for (qint64 r = 0; r < probs.rows(); ++r) {
            double sum = 0;
            for (qint64 c = 0; c < probs.rowSize(); ++c) sum += probs.row(r)[c];
            QVERIFY(std::abs(sum - 1) < 1e-5);  // class cells are probabilities
        }
        QCOMPARE(live.pcaIndices.size(), 256);  // min(300, the test split)
        QCOMPARE(live.cells["pca_input/vec"].shape, (QVector<qint64>{256, 8}));  // what hovering shows
        QCOMPARE(live.pcaX.size(), 512);
        QCOMPARE(live.pcaExplained.size(), 2);
        // From the checkpoint, outside any run: the same samples, and the trained GW translates them.
        QString error;
        const auto ckpt = exploreCheckpoint(finished.first().at(0).toString(), req, &error);
        QCOMPARE(error, QString());
        QCOMPARE(ckpt.step, qint64(300));
        QCOMPARE(ckpt.indices, live.indices);
        int right = 0;
        const auto& tr = ckpt.cells["translation/vec/label"];
        for (qint64 r = 0; r < tr.rows(); ++r) {
            const float* p = tr.row(r);
            right += (std::max_element(p, p + tr.rowSize()) - p) == ckpt.labels[r];
        }
        QVERIFY2(right >= 3, qPrintable(QString("%1 of 4 translated right").arg(right)));
        ExploreRequest bad;
        bad.mode = "indices";
        bad.indices = {99999};
        exploreCheckpoint(finished.first().at(0).toString(), bad, &error);
        QVERIFY2(error.contains("sample 99999 is out of range: split 'test' has 256 samples"), qPrintable(error));
        // gw explore writes the same as PNG files.
        QProcess gw;
        gw.start(GW_BINARY_DIR "/app/gw", {"explore", dir.path() + "/run", "--out", dir.path() + "/png", "--samples", "random:3:7"});
        QVERIFY(gw.waitForFinished(120000));
        const QString out = QString::fromUtf8(gw.readAllStandardOutput() + gw.readAllStandardError());
        QVERIFY2(gw.exitCode() == 0 && out.contains("3 samples of the test split"), qPrintable(out));
        QVERIFY(!QImage(dir.path() + "/png/translations.png").isNull());
        QVERIFY(!QImage(dir.path() + "/png/workspace.png").isNull());
    }

    void stopDuringPretrainingKeepsNoWeights() {
        QTemporaryDir dir;
        const std::string root = dir.path().toStdString();
        fixtures::writeVectorsAndLabels(root + "/data.h5");
        std::string y = fixtures::experimentYaml(100);
        y.replace(y.find("vec: {module: identity}"), 23,
                  "vec: {module: mlp_ae, latent_dim: 4, weights: ae.pt, pretrain: {steps: 1000000, batch_size: 16}}");
        std::ofstream(root + "/ae.yaml") << y;
        Harness h;
        QSignalSpy finished(h.worker, &TrainingWorker::finished), progress(h.worker, &TrainingWorker::progress),
            metrics(h.worker, &TrainingWorker::metrics);
        h.run(dir.path() + "/ae.yaml", dir.path() + "/run");
        QTRY_VERIFY_WITH_TIMEOUT(progress.count() >= 2, 60000);
        QCOMPARE(progress.last().at(0).toString(), QString("pre-training vec"));
        QCOMPARE(h.worker->state(), TrainingWorker::Pretraining);
        QVERIFY(metrics.first().at(0).value<MetricBatch>().names.contains("pretrain/vec/loss"));
        h.worker->requestStop();
        QVERIFY(finished.wait(30000));
        QCOMPARE(finished.first().at(1).toBool(), true);
        QCOMPARE(finished.first().at(0).toString(), QString());
        QVERIFY(!QFile::exists(dir.path() + "/ae.pt"));
    }

    void failuresEndTheRunCleanly() {
        QTemporaryDir dir;
        const std::string root = dir.path().toStdString();
        // A file that is not there.
        std::ofstream(root + "/missing.yaml") << fixtures::experimentYaml(50);
        Harness h;
        QSignalSpy failed(h.worker, &TrainingWorker::failed), finished(h.worker, &TrainingWorker::finished);
        h.run(dir.path() + "/missing.yaml", dir.path() + "/run1");
        QVERIFY(failed.wait(30000));
        QVERIFY2(failed.first().at(0).toString().contains("data.h5"), qPrintable(failed.first().at(0).toString()));
        QCOMPARE(failed.first().at(1).toString(), QString());
        QCOMPARE(h.worker->state(), TrainingWorker::Idle);
        // A NaN loss: the message says so.
        auto vec = torch::randn({512, 8});
        vec.index_put_({torch::indexing::Slice(0, 512, 7)}, std::nan(""));
        gw::data::writeDataset(root + "/data.h5", "/train/vec", vec, 0);
        gw::data::writeDataset(root + "/data.h5", "/train/label", torch::randint(0, 4, {512}, torch::kInt64), 0, {{"num_classes", 4}});
        failed.clear();
        h.run(dir.path() + "/missing.yaml", dir.path() + "/run2");
        QVERIFY(failed.wait(30000));
        const QString msg = failed.first().at(0).toString();
        QVERIFY2(msg.contains("the loss is") && msg.contains("nan") && msg.contains("before its first checkpoint"), qPrintable(msg));
        QCOMPARE(finished.count(), 0);
        QCOMPARE(h.worker->state(), TrainingWorker::Idle);
    }
};

QTEST_GUILESS_MAIN(TestWorker)
#include "tst_worker.moc"

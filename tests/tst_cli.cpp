// SPDX-License-Identifier: GPL-3.0-or-later
// The `gw` command line as a user runs it: train, resume, eval (--json), pretrain, import, devices,
// bench, --help, and the exit code and message of each failure.
#include <QtTest/QtTest>

#include <chrono>
#include <cmath>

#include <csignal>
#include <fstream>

#include "data/h5_array.h"
#include "fixtures.h"
#include "model/io/checkpoint.h"
#include "model/run/runs.h"
#include "small_disk.h"

using gw::loadCheckpoint;
using gw::readRunStatus;
using gw::runCheckpointPath;
using gw::RunStatus;

namespace {
struct Run {
    int code;
    QString out, err;
};

Run runGw(const QStringList& args, int timeoutMs = 240000) {
    QProcess p;
    p.start(QStringLiteral(GW_BINARY_DIR "/app/gw"), args);
    if (!p.waitForFinished(timeoutMs)) {
        p.kill();
        return {-1, {}, "timed out"};
    }
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -2, QString::fromUtf8(p.readAllStandardOutput()),
            QString::fromUtf8(p.readAllStandardError())};
}

QString read(const QString& path) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return {};
    return QString::fromUtf8(f.readAll());
}
}  // namespace

class TestCli : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void help() {
        auto r = runGw({"--help"});
        QCOMPARE(r.code, 0);
        for (const char* sub : {"train", "eval", "pretrain", "import", "export", "import-weights", "migrate", "devices", "bench"}) QVERIFY2(r.out.contains(sub), sub);
        QCOMPARE(runGw({"train", "--help"}).code, 0);
        QVERIFY(runGw({}).code != 0);
        QVERIFY(runGw({"fly"}).code != 0);
    }

    /// `gw kinds` lists every registered kind with its parameters; a Fusion run with attention needs
    /// equal latent sizes and says so; with random selection it runs the hand-written step.
    void kindsAndFlavours() {
        auto k = runGw({"kinds"});
        QCOMPARE(k.code, 0);
        for (const char* name : {"Trainable models (model)", "glom: one glom domain alone", "two_domains", "fusion",
                                 "single_domain", "dynamic_query_attention", "head_size = 5", "conv_vae", "image_size = 28"})
            QVERIFY2(k.out.contains(name), name);
        QVERIFY(runGw({"kinds", "--markdown"}).out.contains("| `workspace.selection` |"));
        QTemporaryDir dir;
        const QString exp = QString::fromStdString(fixtures::makeExperiment(dir));
        auto bad = runGw({"train", exp, "workspace.flavour=fusion", "workspace.selection=dynamic_query_attention"});
        QCOMPARE(bad.code, 1);
        QVERIFY2(bad.err.contains("needs every domain's latent size equal to workspace.dim (6), found vec 8, label 4"),
                 qPrintable(bad.err));
        auto unknown = runGw({"train", exp, "workspace.flavour=fuzion"});
        QCOMPARE(unknown.code, 1);
        QVERIFY2(unknown.err.contains("workspace.flavour: unknown GW flavour 'fuzion' (known: two_domains, fusion, variational, bayesian)"),
                 qPrintable(unknown.err));
        auto t = runGw({"train", exp, "workspace.flavour=fusion", "loss.coefficients.fused=1.0", "training.steps=20",
                        "--out", dir.path() + "/run"});
        QVERIFY2(t.code == 0, qPrintable(t.out + t.err));
        QVERIFY2(t.out.contains("GW step: hand-written"), qPrintable(t.out));
        QVERIFY(read(dir.path() + "/run/config.yaml").contains("flavour: fusion"));
        QVERIFY(read(dir.path() + "/run/metrics.csv").contains("train/fused,"));
        // Another contrastive loss: autograd trains it, its extra metric logged under shimmer's name.
        QVERIFY(k.out.contains("Contrastive losses") && k.out.contains("vsepp") && k.out.contains("max_violation = true"));
        auto v = runGw({"train", exp, "loss.contrastive=vsepp", "loss.contrastive_params.margin=0.3", "training.steps=20",
                        "--out", dir.path() + "/vsepp"});
        QVERIFY2(v.code == 0, qPrintable(v.out + v.err));
        QVERIFY2(v.out.contains("GW step: autograd (contrastive 'vsepp' has no hand-written form)"), qPrintable(v.out));
        QVERIFY(read(dir.path() + "/vsepp/metrics.csv").contains("train/contrastive_vec_and_label_clip,"));
        QVERIFY(read(dir.path() + "/vsepp/config.yaml").contains("contrastive: vsepp"));
        auto badMeasure = runGw({"train", exp, "loss.contrastive=vsepp", "loss.contrastive_params.measure=euclid"});
        QCOMPARE(badMeasure.code, 1);
        QVERIFY2(badMeasure.err.contains("loss.contrastive_params.measure: expected cosine or order, found 'euclid'"),
                 qPrintable(badMeasure.err));
    }

    void trainResumeEval() {
        QTemporaryDir dir;
        const QString exp = QString::fromStdString(fixtures::makeExperiment(dir));
        const QString run = dir.path() + "/run";
        auto t = runGw({"train", exp, "training.steps=30", "--out", run});
        QVERIFY2(t.code == 0, qPrintable(t.out + t.err));
        QVERIFY(t.out.contains("step 30/30"));
        QVERIFY(t.out.contains("steps/s"));
        QVERIFY(t.out.contains("ETA"));
        QVERIFY(QFile::exists(run + "/checkpoints/last.ckpt"));
        QVERIFY(read(run + "/config.yaml").contains("steps: 30"));
        QVERIFY(read(run + "/metrics.csv").startsWith("step,metric,value\n"));

        auto r = runGw({"train", "--resume", run, "training.steps=50"});
        QVERIFY2(r.code == 0, qPrintable(r.out + r.err));
        QVERIFY(r.out.contains("at step 30"));
        QVERIFY(r.out.contains("step 50/50"));
        const QString csv = read(run + "/metrics.csv");
        QVERIFY(csv.contains("\n50,train/loss,"));
        QCOMPARE(csv.count("\n30,train/loss,"), 1);

        // TensorBoard's view of the run, read back with python3-protobuf: one file per start, each opening
        // with the file version; every row of metrics.csv once, at its step, as a float32.
        qputenv("PYTHONPATH", GW_BINARY_DIR "/tests/tb_python");
        const auto tb = fixtures::python({GW_SOURCE_DIR "/tests/python/tensorboard_events.py", run});
        QVERIFY2(tb.code == 0, qPrintable(tb.out));
        const QJsonObject events = QJsonDocument::fromJson(tb.out.toUtf8()).object();
        QCOMPARE(events.value("file_versions").toArray(), (QJsonArray{"brain.Event:2", "brain.Event:2"}));
        QCOMPARE(events.value("restarts").toArray(), (QJsonArray{31}));  // the resumed run goes on from step 31
        const QJsonObject scalars = events.value("scalars").toObject();
        int rows = 0, points = 0;
        for (const auto& line : csv.split('\n', Qt::SkipEmptyParts).mid(1)) {
            const QStringList f = line.split(',');
            const QJsonArray series = scalars.value(f[1]).toArray();
            int found = 0;
            for (const auto& p : series) {
                const QJsonArray sv = p.toArray();
                if (sv[0].toInteger() == f[0].toLongLong() && sv[1].toDouble() == double(float(f[2].toDouble()))) ++found;
            }
            QVERIFY2(found == 1, qPrintable(line + ": found " + QString::number(found) + " times"));
            ++rows;
        }
        for (const auto& tag : scalars.keys()) points += scalars.value(tag).toArray().size();
        QCOMPARE(points, rows);  // nothing more

        auto e = runGw({"eval", run + "/checkpoints/last.ckpt", "--split", "test", "--json"});
        QVERIFY2(e.code == 0, qPrintable(e.err));
        QJsonParseError pe;
        auto doc = QJsonDocument::fromJson(e.out.toUtf8(), &pe);
        QVERIFY2(pe.error == QJsonParseError::NoError, qPrintable(e.out));
        const auto obj = doc.object();
        QVERIFY(obj.contains("test/loss"));
        const double acc = obj.value("test/translation_vec_to_label_accuracy").toDouble(-1);
        QVERIFY2(acc > 0.5 && acc <= 1.0, qPrintable(QString::number(acc)));
        auto human = runGw({"eval", run + "/checkpoints/last.ckpt", "--split", "val"});
        QCOMPARE(human.code, 0);
        QVERIFY(human.out.contains("val/translation_label_to_vec"));
    }

    void failuresSayWhy() {
        QTemporaryDir dir;
        const QString exp = QString::fromStdString(fixtures::makeExperiment(dir));
        auto unknown = runGw({"train", exp, "training.stepz=3"});
        QCOMPARE(unknown.code, 1);
        QVERIFY2(unknown.err.contains("training.stepz: unknown key"), qPrintable(unknown.err));
        std::ofstream(dir.path().toStdString() + "/bad.ckpt") << "garbage";
        auto bad = runGw({"eval", dir.path() + "/bad.ckpt"});
        QCOMPARE(bad.code, 1);
        QVERIFY2(bad.err.contains("bad.ckpt: not a readable GW Studio checkpoint"), qPrintable(bad.err));
        // cuda:0 trains where there is one, and is refused by name where there is none.
        const bool gpu = runGw({"devices"}).out.contains("cuda:0 ");
        auto cuda = runGw({"train", exp, "--device", "cuda:0", "training.steps=2", "--out", dir.path() + "/cuda-run"});
        if (gpu) {
            QVERIFY2(cuda.code == 0, qPrintable(cuda.out + cuda.err));
        } else {
            QCOMPARE(cuda.code, 1);
            QVERIFY2(cuda.err.contains("cuda"), qPrintable(cuda.err));
        }
        QVERIFY(runGw({"train", dir.path() + "/missing.yaml"}).code != 0);
    }

    void importSimpleShapes() {
        QTemporaryDir dir;
        const QString out = dir.path() + "/ss.h5";
        auto r = runGw({"import", "simple-shapes", out, "--train", "500", "--val", "20", "--test", "30", "--seed", "3"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY(r.out.contains("wrote " + out + " (500 train, 20 val, 30 test, with captions"));
        QVERIFY(gw::data::H5Array::exists(out.toStdString(), "/val/t"));
        // --no-captions: the same images, no caption datasets.
        r = runGw({"import", "simple-shapes", dir.path() + "/nocap.h5", "--train", "500", "--val", "20", "--test", "30",
                   "--seed", "3", "--no-captions"});
        QVERIFY2(r.code == 0 && r.out.contains("30 test; "), qPrintable(r.out + r.err));
        QVERIFY(!gw::data::H5Array::exists((dir.path() + "/nocap.h5").toStdString(), "/val/t"));
        QVERIFY(!gw::data::H5Array::exists((dir.path() + "/nocap.h5").toStdString(), "/val/caption_choices"));
        QVERIFY(torch::equal(gw::data::H5Array(out.toStdString(), "/val/v").readAll(),
                             gw::data::H5Array((dir.path() + "/nocap.h5").toStdString(), "/val/v").readAll()));
        // Again without --force: refused, the file is named; bad counts name the option.
        r = runGw({"import", "simple-shapes", out, "--train", "500"});
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.contains(out + ": the file exists (expected a new path, or --force to replace it)"), qPrintable(r.err));
        r = runGw({"import", "simple-shapes", dir.path() + "/b.h5", "--val", "0"});
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.contains("--val: expected a positive sample count, found 0"), qPrintable(r.err));
        // Ctrl-C while generating: exit 130, and neither the file nor its .partial is left.
        QProcess p;
        const QString big = dir.path() + "/big.h5";
        p.start(QStringLiteral(GW_BINARY_DIR "/app/gw"), {"import", "simple-shapes", big, "--train", "20000000"});
        QVERIFY(p.waitForStarted());
        QTRY_VERIFY_WITH_TIMEOUT(QFile::exists(big + ".partial"), 20000);
        ::kill(static_cast<pid_t>(p.processId()), SIGINT);
        QVERIFY(p.waitForFinished(30000));
        QCOMPARE(p.exitCode(), 130);
        QVERIFY(!QFile::exists(big));
        QVERIFY(!QFile::exists(big + ".partial"));
    }

    /// `gw import simple-shapes-folder DIR OUT.h5`: the public sample folder, with a progress bar on stderr;
    /// the wrong number of paths and a folder without the files are named, and nothing is written.
    void importSimpleShapesFolder() {
        QTemporaryDir dir;
        const QString out = dir.path() + "/public.h5";
        auto r = runGw({"import", "simple-shapes-folder", GW_SOURCE_DIR "/tests/data/simple-shapes-sample", out, "--threads", "2"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY2(r.out.contains("wrote " + out + " (4 train, 2 val, 2 test; images, attributes, labels, captions, caption choices, "
                                                 "BERT vectors of 768, unpaired 32;"),
                 qPrintable(r.out));
        QVERIFY2(r.err.contains("train [") && r.err.contains("]  4/4 images") && r.err.contains("test  ["), qPrintable(r.err));
        QCOMPARE(gw::data::H5Array(out.toStdString(), "/test/t_bert").shape(), (std::vector<int64_t>{2, 768}));

        // What a user of the public dataset runs next (docs/data-format.md): the shipped v-t experiment
        // on the imported file, its groups from a public domain split, the text module on the BERT
        // vectors (shimmer-ssd's route); both domain modules pre-trained on first use, then the GW, with
        // validation in data space. Sizes cut down to run in seconds.
        const QString split = GW_SOURCE_DIR "/tests/data/simple-shapes-sample/domain_splits/"
                                            "train_t:1.0_t,v:0.5_v:1.0_seed:0_domain_split.npy";
        const QString run = dir.path() + "/public-run";
        auto t = runGw({"train", GW_SOURCE_DIR "/resources/experiments/simple-shapes-vt.yaml", "data.file=" + out,
                        "~data.paired_count", "data.groups_file=" + split, "domains.t.encoder=embeddings",
                        "domains.t.dataset=/{split}/t_bert", "domains.v.hidden_dim=8", "domains.t.hidden_dim=16",
                        "domains.v.weights=" + dir.path() + "/v.pt", "domains.t.weights=" + dir.path() + "/t.pt",
                        "domains.v.pretrain.steps=2", "domains.t.pretrain.steps=2", "domains.v.pretrain.batch_size=4",
                        "domains.t.pretrain.batch_size=4", "training.steps=3", "training.batch_size=2",
                        "training.val_every=3", "training.checkpoint_every=3", "--threads", "2", "--out", run});
        QVERIFY2(t.code == 0, qPrintable(t.out + t.err));
        QVERIFY2(t.out.contains("groups: {v} 4 {t} 4 {v,t} 2"), qPrintable(t.out));  // the public split's indices
        QVERIFY(QFile::exists(dir.path() + "/v.pt") && QFile::exists(dir.path() + "/t.pt"));
        const QString csv = read(run + "/metrics.csv");
        for (const char* k : {"train/translation_v_to_t,", "train/translation_t_to_v,", "val/translation_v_to_t_caption_accuracy,",
                              "val/translation_t_to_v_image_mse,"})
            QVERIFY2(csv.contains(k), k);
        QVERIFY(QFile::exists(run + "/checkpoints/last.ckpt"));

        r = runGw({"import", "simple-shapes-folder", out});
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.contains("import simple-shapes-folder: expected DIR OUT.h5"), qPrintable(r.err));
        r = runGw({"import", "simple-shapes-folder", dir.path(), dir.path() + "/x.h5"});
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.contains(dir.path() + "/train_labels.npy (split train): the file is missing"), qPrintable(r.err));
        QVERIFY(!QFile::exists(dir.path() + "/x.h5") && !QFile::exists(dir.path() + "/x.h5.partial"));
    }

    void pretrainWritesWeights() {
        QTemporaryDir dir;
        const QString exp = QString::fromStdString(fixtures::makeExperiment(dir));
        auto p = runGw({"pretrain", exp, "domains.vec.module=mlp_ae", "domains.vec.latent_dim=4",
                     "domains.vec.weights=vec-ae.pt", "domains.vec.pretrain.steps=50"});
        QVERIFY2(p.code == 0, qPrintable(p.out + p.err));
        QVERIFY(QFile::exists(dir.path() + "/vec-ae.pt"));
        QVERIFY(p.out.contains("val vec/reconstruction"));
        auto again = runGw({"pretrain", exp, "domains.vec.module=mlp_ae", "domains.vec.weights=vec-ae.pt"});
        QCOMPARE(again.code, 0);
        QVERIFY(again.out.contains("weights exist"));
        // --domain takes one name per use, so overrides after it still count as overrides.
        auto after = runGw({"pretrain", exp, "--domain", "vec", "domains.vec.module=mlp_ae", "domains.vec.latent_dim=4",
                            "domains.vec.weights=vec-ae2.pt", "domains.vec.pretrain.steps=20"});
        QVERIFY2(after.code == 0, qPrintable(after.out + after.err));
        QVERIFY(QFile::exists(dir.path() + "/vec-ae2.pt"));
    }

    /// A run folder on a nearly full file system (a tmpfs with room for one checkpoint, not for the
    /// next one beside it): the run stops as failed, naming the file and the cause; status.yaml says so;
    /// the first checkpoint is intact and loads; once there is room, --resume finishes the run. gw export
    /// and gw pretrain to a full disk: the same kind of message, nothing half-written, the process alive
    /// to say it (LibTorch's writer used to abort it from a destructor).
    void fullDiskLosesNothing() {
        if (!gwtest::SmallDisk::canMount()) GW_SKIP_MISSING("root, to mount a small tmpfs");
        QTemporaryDir dir;
        const QString exp = QString::fromStdString(fixtures::makeExperiment(dir));
        const QStringList wide = {"workspace.encoder.hidden=96", "workspace.decoder.hidden=96", "workspace.encoder.layers=2",
                                  "workspace.decoder.layers=2", "training.checkpoint_every=20", "training.steps=60"};
        // The same run on an ordinary disk gives the sizes: one checkpoint, and the rest of the folder.
        auto sized = runGw(QStringList{"train", exp, "--out", dir.path() + "/sized"} + wide);
        QVERIFY2(sized.code == 0, qPrintable(sized.out + sized.err));
        const qint64 ckpt = QFileInfo(dir.path() + "/sized/checkpoints/last.ckpt").size();
        QVERIFY2(ckpt > 200 * 1024, qPrintable(QString::number(ckpt)));  // so that 4 KiB pages do not matter
        gwtest::SmallDisk disk(dir.path() + "/disk", ckpt + ckpt / 2 + 96 * 1024);
        QVERIFY(disk.mounted());
        const QString run = disk.path() + "/run";
        auto full = runGw(QStringList{"train", exp, "--out", run} + wide);
        QCOMPARE(full.code, 1);
        QVERIFY2(full.err.contains(run + "/checkpoints/last.ckpt: cannot write the file (no space left on the device, ENOSPC)"),
                 qPrintable(full.err));
        QVERIFY2(full.err.contains("keeps its previous checkpoint (step 20); once there is room, gw train --resume " + run),
                 qPrintable(full.err));
        const RunStatus st = readRunStatus(run.toStdString());
        QCOMPARE(st.state, std::string("failed"));
        QVERIFY2(QString::fromStdString(st.error).contains("last.ckpt: cannot write the file (no space left"),
                 st.error.c_str());
        QVERIFY(!QFile::exists(run + "/checkpoints/last.ckpt.partial"));
        QCOMPARE(loadCheckpoint(runCheckpointPath(run.toStdString())).step, int64_t(20));
        // Every row of metrics.csv whole: a cut append is undone.
        for (const QString& line : read(run + "/metrics.csv").split('\n', Qt::SkipEmptyParts)) QCOMPARE(line.count(','), 2);
        // Room again: the run goes on from its checkpoint to the end.
        QVERIFY(disk.grow(8 * ckpt + 1024 * 1024));
        auto resumed = runGw({"train", "--resume", run});
        QVERIFY2(resumed.code == 0, qPrintable(resumed.out + resumed.err));
        QVERIFY2(resumed.out.contains("at step 20"), qPrintable(resumed.out));
        QCOMPARE(readRunStatus(run.toStdString()).state, std::string("finished"));
        QCOMPARE(loadCheckpoint(runCheckpointPath(run.toStdString())).step, int64_t(60));

        // gw export to a disk with no room for the weights: an error naming the file, nothing left behind.
        gwtest::SmallDisk tiny(dir.path() + "/tiny-disk", 16 * 1024);
        QVERIFY(tiny.mounted());
        auto ex = runGw({"export", dir.path() + "/sized", tiny.path() + "/gw.pt"});
        QCOMPARE(ex.code, 1);
        QVERIFY2(ex.err.contains(tiny.path() + "/gw.pt: cannot write the file (no space left on the device, ENOSPC)"),
                 qPrintable(ex.err));
        QCOMPARE(QDir(tiny.path()).entryList(QDir::Files | QDir::NoDotAndDotDot), QStringList());
        // A dataset generated onto it: HDF5's failed write and close end as an error, not a fault.
        auto gen = runGw({"import", "simple-shapes", tiny.path() + "/ss.h5", "--train", "5000", "--val", "20", "--test", "20"});
        QCOMPARE(gen.code, 1);
        QVERIFY2(gen.err.contains(tiny.path() + "/ss.h5: cannot write the file (") && gen.err.contains("no space left on the device, ENOSPC"),
                 qPrintable(gen.err));
        QVERIFY2(!gen.err.contains("HDF5-DIAG"), qPrintable(gen.err));
        QCOMPARE(QDir(tiny.path()).entryList(QDir::Files | QDir::NoDotAndDotDot), QStringList());
        // gw pretrain whose weights do not fit: the same.
        auto pre = runGw({"pretrain", exp, "domains.vec.module=mlp_ae", "domains.vec.latent_dim=4", "domains.vec.hidden_dim=512",
                          "domains.vec.weights=" + tiny.path() + "/vec-ae.pt", "domains.vec.pretrain.steps=5"});
        QCOMPARE(pre.code, 1);
        QVERIFY2(pre.err.contains(tiny.path() + "/vec-ae.pt: cannot write the file (no space left on the device, ENOSPC)"),
                 qPrintable(pre.err));
        QCOMPARE(QDir(tiny.path()).entryList(QDir::Files | QDir::NoDotAndDotDot), QStringList());
    }

    /// Processes that die are seen: a run that gets SIGABRT (a fault in a library) records "failed" and
    /// the signal itself on its way out; one killed with SIGKILL (kill -9, the out-of-memory killer)
    /// cannot, and reads as "interrupted" because its process is gone; a status whose pid now belongs
    /// to another process (another start time) or to an earlier boot is not taken for a live run.
    void deadRunsReadAsSuch() {
        QTemporaryDir dir;
        const QString exp = QString::fromStdString(fixtures::makeExperiment(dir));
        auto startRun = [&](QProcess& p, const QString& run) -> RunStatus {
            p.start(QStringLiteral(GW_BINARY_DIR "/app/gw"), {"train", exp, "training.steps=100000000", "training.checkpoint_every=200",
                                                              "training.val_every=0", "training.log_every=100", "--out", run});
            if (!p.waitForStarted()) return {};
            RunStatus st;
            const auto t0 = std::chrono::steady_clock::now();
            while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120)) {
                st = readRunStatus(run.toStdString());
                if (st.state == "running" && st.step >= 200) break;
                QThread::msleep(10);
            }
            return st;
        };
        for (const int sig : {SIGABRT, SIGKILL}) {
            const QString run = dir.path() + "/run-" + QString::number(sig);
            QProcess p;
            const RunStatus before = startRun(p, run);
            QVERIFY2(before.state == "running" && before.step >= 200, before.state.c_str());
            QCOMPARE(before.pid, long(p.processId()));
            QVERIFY(before.pidStart > 0 && !before.bootId.empty());
            QCOMPARE(::kill(static_cast<pid_t>(p.processId()), sig), 0);
            QVERIFY(p.waitForFinished(30000));
            QCOMPARE(p.exitStatus(), QProcess::CrashExit);
            const RunStatus after = readRunStatus(run.toStdString());
            if (sig == SIGABRT) {
                QCOMPARE(after.state, std::string("failed"));
                QCOMPARE(after.signal, SIGABRT);
                QVERIFY2(QString::fromStdString(after.error).contains("died of SIGABRT after step "), after.error.c_str());
            } else {
                QCOMPARE(after.state, std::string("interrupted"));
                QCOMPARE(after.signal, 0);  // nobody saw it: the reader found the process gone
                QVERIFY2(QString::fromStdString(after.error).contains("is gone without a word: killed outright"), after.error.c_str());
            }
            QVERIFY2(after.step >= 200, qPrintable(QString::number(after.step) + " " + QString::fromStdString(after.error)));
            // Either way the checkpoint resumes it.
            QVERIFY(loadCheckpoint(runCheckpointPath(run.toStdString())).step >= 200);
        }
        // A parent that saw the signal (a local sweep) records it.
        {
            const QString run = dir.path() + "/run-seen";
            QProcess p;
            QVERIFY(startRun(p, run).state == "running");
            const long pid = long(p.processId());
            ::kill(static_cast<pid_t>(pid), SIGKILL);
            QVERIFY(p.waitForFinished(30000));
            QVERIFY(gw::recordRunKilled(run.toStdString(), pid, SIGKILL));
            const RunStatus seen = readRunStatus(run.toStdString());
            QCOMPARE(seen.state, std::string("interrupted"));
            QCOMPARE(seen.signal, SIGKILL);
            QVERIFY2(QString::fromStdString(seen.error).contains("was ended by SIGKILL"), seen.error.c_str());
            QVERIFY(!gw::recordRunKilled(run.toStdString(), pid, SIGKILL));  // once: it no longer says running
        }
        // Written by a live process (this one), but not by this start of it, or not since this boot.
        const std::string fake = (dir.path() + "/fake").toStdString();
        RunStatus live;
        live.state = "running";
        live.pid = long(::getpid());
        gw::writeRunStatus(fake, live);
        QCOMPARE(readRunStatus(fake).state, std::string("running"));
        RunStatus reused = readRunStatus(fake);
        reused.pidStart += 1;
        gw::writeRunStatus(fake, reused);
        QCOMPARE(readRunStatus(fake).state, std::string("interrupted"));
        RunStatus rebooted = readRunStatus(fake);
        rebooted.state = "running";
        rebooted.pidStart -= 1;
        rebooted.bootId = "00000000-0000-0000-0000-000000000000";
        gw::writeRunStatus(fake, rebooted);
        const RunStatus r = readRunStatus(fake);
        QCOMPARE(r.state, std::string("interrupted"));
        QVERIFY2(QString::fromStdString(r.error).contains("the machine has restarted since"), r.error.c_str());
    }

    void devicesAndBench() {
        auto d = runGw({"devices"});
        QCOMPARE(d.code, 0);
        QVERIFY(d.out.startsWith("cpu"));
        QVERIFY(d.out.contains("cuda"));
        auto b = runGw({"bench", "tutorial", "--steps", "5", "--repeats", "1", "--no-matmul"});
        QVERIFY2(b.code == 0, qPrintable(b.err));
        QVERIFY(b.out.contains("tutorial") && b.out.contains("steps/s"));
        auto p = runGw({"bench", "pretrain", "--steps", "2", "--repeats", "1", "--threads", "1"});
        QVERIFY2(p.code == 0 && p.out.startsWith("pretrain  steps/s"), qPrintable(p.out + p.err));
        const QRegularExpressionMatch loss = QRegularExpression("loss (\\S+)").match(p.out);
        QVERIFY(loss.hasMatch() && std::isfinite(loss.captured(1).toDouble()) && loss.captured(1).toDouble() > 0);
        QCOMPARE(runGw({"bench", "pretrain", "tutorial"}).code, 2);  // a different step: on its own
    }
};

QTEST_GUILESS_MAIN(TestCli)
#include "tst_cli.moc"

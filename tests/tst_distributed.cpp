// SPDX-License-Identifier: GPL-3.0-or-later
// Data-parallel training through torch.distributed (c10d, Gloo): the ranks' variables, 2 ranks with
// half a batch each against 1 process with the whole batch, exact resume, and a rank killed mid-run.
#include <QtTest/QtTest>

#include <chrono>
#include <csignal>
#include <fstream>
#include <map>
#include <thread>

#include "fixtures.h"
#include "model/io/checkpoint.h"
#include "model/run/distributed.h"
#include "model/run/runs.h"

using namespace gw;
using fixtures::errorOf;

namespace {

/// metrics.csv as (step, metric) -> value.
std::map<std::pair<int64_t, std::string>, double> readMetrics(const QString& runDir) {
    std::map<std::pair<int64_t, std::string>, double> out;
    std::ifstream in((runDir + "/metrics.csv").toStdString());
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
        const auto a = line.find(','), b = line.rfind(',');
        out[{std::stoll(line.substr(0, a)), line.substr(a + 1, b - a - 1)}] = std::stod(line.substr(b + 1));
    }
    return out;
}

/// Every metric of `a` is in `b` within `rel` (relative to max(1, |value|)); returns the worst gap.
double compareMetrics(const QString& a, const QString& b, double rel, QString* why) {
    const auto ma = readMetrics(a), mb = readMetrics(b);
    double worst = 0;
    if (ma.empty()) *why = a + ": no metrics";
    for (const auto& [k, v] : ma) {
        // The contrastive metrics are computed over each rank's share (as under PyTorch's DDP), so they
        // are not the whole batch's; with coefficient 0 they take no part in the loss.
        if (k.second == "train/lr" || k.second.find("contrastive") != std::string::npos) continue;
        auto it = mb.find(k);
        if (it == mb.end()) {
            *why = QString("%1 at step %2 missing in %3").arg(QString::fromStdString(k.second)).arg(k.first).arg(b);
            return INFINITY;
        }
        const double gap = std::abs(v - it->second) / std::max(1.0, std::abs(v));
        if (gap > worst) {
            worst = gap;
            if (gap > rel) *why = QString("%1 at step %2: %3 against %4").arg(QString::fromStdString(k.second)).arg(k.first).arg(v, 0, 'g', 9).arg(it->second, 0, 'g', 9);
        }
    }
    return worst;
}

/// The largest difference between the GW weights of two checkpoints.
double weightGap(const QString& a, const QString& b) {
    const Checkpoint ca = loadCheckpoint((a + "/checkpoints/last.ckpt").toStdString());
    const Checkpoint cb = loadCheckpoint((b + "/checkpoints/last.ckpt").toStdString());
    double worst = 0;
    for (const auto& [k, t] : ca.state) {
        const torch::Tensor* u = cb.state.find(k);
        if (!u || !u->sizes().equals(t.sizes())) return INFINITY;
        worst = std::max(worst, (t - *u).abs().max().item<double>());
    }
    return worst;
}

}  // namespace

class TestDistributed : public QObject {
    Q_OBJECT
private Q_SLOTS:
    /// RANK, WORLD_SIZE, ... as torchrun sets them; Slurm's own when a job step has several tasks.
    void environment() {
        for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS",
                              "SLURM_LOCALID", "SLURM_JOB_ID", "SLURM_LAUNCH_NODE_IPADDR"})
            qunsetenv(v);
        QVERIFY(!distributedFromEnvironment().active());
        qputenv("RANK", "1");
        qputenv("WORLD_SIZE", "4");
        qputenv("MASTER_ADDR", "10.0.0.5");
        qputenv("MASTER_PORT", "29600");
        DistributedEnv e = distributedFromEnvironment();
        QVERIFY(e.active());
        QCOMPARE(e.rank, 1);
        QCOMPARE(e.worldSize, 4);
        QCOMPARE(e.localRank, 1);
        QCOMPARE(e.masterAddr, std::string("10.0.0.5"));
        QCOMPARE(e.masterPort, 29600);
        qputenv("RANK", "4");
        QVERIFY2(errorOf([] { distributedFromEnvironment(); }).contains("environment variable RANK: expected a whole number in 0..3, found '4'"),
                 qPrintable(errorOf([] { distributedFromEnvironment(); })));
        qputenv("RANK", "0");
        qputenv("MASTER_PORT", "http");
        QVERIFY(errorOf([] { distributedFromEnvironment(); }).contains("MASTER_PORT: expected a whole number in 1..65535, found 'http'"));
        for (const char* v : {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}) qunsetenv(v);
        qputenv("SLURM_PROCID", "2");
        qputenv("SLURM_NTASKS", "3");
        qputenv("SLURM_LOCALID", "0");
        qputenv("SLURM_JOB_ID", "123456");
        qputenv("SLURM_LAUNCH_NODE_IPADDR", "10.1.2.3");
        e = distributedFromEnvironment();
        QCOMPARE(e.rank, 2);
        QCOMPARE(e.worldSize, 3);
        QCOMPARE(e.masterAddr, std::string("10.1.2.3"));
        QCOMPARE(e.masterPort, 20000 + 123456 % 10000);
        qputenv("SLURM_NTASKS", "1");  // a job step of one task trains alone
        QVERIFY(!distributedFromEnvironment().active());
        for (const char* v : {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_JOB_ID", "SLURM_LAUNCH_NODE_IPADDR"}) qunsetenv(v);
    }

    /// 2 ranks with 16 of each group's 32 samples take the steps of 1 process with all 32: the same
    /// logged losses and the same weights to float rounding, over 60 steps.
    void twoRanksTrainAsOne() {
        QTemporaryDir dir;
        const QString exp = QString::fromStdString(fixtures::makeExperiment(dir, 60));
        const QStringList common = {exp, "loss.coefficients.contrastives=0", "training.log_every=5", "training.val_every=30"};
        const QString one = dir.filePath("one"), two = dir.filePath("two");
        auto a = fixtures::gwCli(QStringList{"train"} + common + QStringList{"--out", one, "--threads", "1"});
        QVERIFY2(a.code == 0, qPrintable(a.out));
        auto b = fixtures::gwCli(QStringList{"train"} + common + QStringList{"--out", two, "--nproc", "2"});
        QVERIFY2(b.code == 0, qPrintable(b.out));
        QVERIFY2(b.out.contains("run folder " + two + " (2 ranks, torchrun variables)"), qPrintable(b.out));
        QVERIFY2(b.out.contains("data-parallel: 2 ranks; rank 0 spent"), qPrintable(b.out));
        QString why;
        const double gap = compareMetrics(one, two, 2e-5, &why);
        QVERIFY2(gap <= 2e-5, qPrintable(QString("worst relative gap %1; %2").arg(gap).arg(why)));
        const double w = weightGap(one, two);
        QVERIFY2(w < 1e-4, qPrintable(QString("largest weight difference %1").arg(w)));
        qInfo("2 ranks against 1 over 60 steps: worst relative metric gap %.3g, largest weight difference %.3g", gap, w);
        QCOMPARE(readRunStatus(two.toStdString()).state, std::string("finished"));
        // Only rank 0 wrote: one events file, one metrics.csv row per step and metric.
        int events = 0;
        for (const auto& f : QDir(two).entryList(QDir::Files))
            if (f.startsWith("events.out.tfevents")) ++events;
        QCOMPARE(events, 1);
        QCOMPARE(readMetrics(two).size(), readMetrics(one).size());
    }

    /// A 2-rank run cut at step 30 and resumed to 60 ends as the uninterrupted 2-rank run does.
    void resumedRanksContinueExactly() {
        QTemporaryDir dir;
        const QString exp = QString::fromStdString(fixtures::makeExperiment(dir, 60));
        const QStringList common = {exp, "scheduler.kind=none", "training.log_every=5", "training.val_every=0"};
        const QString whole = dir.filePath("whole"), cut = dir.filePath("cut");
        auto a = fixtures::gwCli(QStringList{"train"} + common + QStringList{"--out", whole, "--nproc", "2"});
        QVERIFY2(a.code == 0, qPrintable(a.out));
        auto b = fixtures::gwCli(QStringList{"train"} + common + QStringList{"training.steps=30", "--out", cut, "--nproc", "2"});
        QVERIFY2(b.code == 0, qPrintable(b.out));
        auto c = fixtures::gwCli({"train", "--resume", cut, "training.steps=60", "--nproc", "2"});
        QVERIFY2(c.code == 0, qPrintable(c.out));
        QVERIFY2(c.out.contains("at step 30"), qPrintable(c.out));
        QString why;
        const double gap = compareMetrics(whole, cut, 0, &why);
        QVERIFY2(gap == 0, qPrintable(QString("relative gap %1; %2").arg(gap).arg(why)));
        QCOMPARE(weightGap(whole, cut), 0.0);
    }

    /// A rank killed mid-run: the other stops with an error naming it, the launcher says how it
    /// ended, and the last checkpoint stays usable (it resumes).
    void killedRankStopsTheOthers() {
        QTemporaryDir dir;
        const QString exp = QString::fromStdString(fixtures::makeExperiment(dir, 60));
        const QString run = dir.filePath("killed");
        QProcess p;
        p.setProcessChannelMode(QProcess::MergedChannels);
        p.start(GW_BINARY_DIR "/app/gw", {"train", exp, "training.steps=200000", "training.checkpoint_every=100", "training.log_every=100",
                                          "training.val_every=0", "--out", run, "--nproc", "2"});
        QVERIFY(p.waitForStarted());
        QString out;
        qint64 victim = 0;
        RunStatus st;
        const auto t0 = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120)) {
            p.waitForReadyRead(20);
            out += QString::fromUtf8(p.readAll());
            const auto m = QRegularExpression("rank 1: pid (\\d+)").match(out);
            if (m.hasMatch()) victim = m.captured(1).toLongLong();
            st = readRunStatus(run.toStdString());
            if (victim > 0 && st.state == "running" && st.step >= 200) break;
        }
        QVERIFY2(victim > 0 && st.step >= 200, qPrintable(out));
        QCOMPARE(::kill(static_cast<pid_t>(victim), SIGKILL), 0);
        QVERIFY(p.waitForFinished(120000));
        out += QString::fromUtf8(p.readAll());
        QCOMPARE(p.exitCode(), 1);
        QVERIFY2(out.contains(QString("rank 1 (pid %1 on ").arg(victim)) && out.contains("stopped answering"), qPrintable(out));
        QVERIFY2(out.contains(QString("rank 1 (pid %1) was killed by signal 9").arg(victim)), qPrintable(out));
        const RunStatus failed = readRunStatus(run.toStdString());
        QCOMPARE(failed.state, std::string("failed"));
        QVERIFY2(failed.error.find("rank 1") != std::string::npos, failed.error.c_str());
        const int64_t kept = loadCheckpoint(runCheckpointPath(run.toStdString())).step;
        QVERIFY(kept >= 200 && kept % 100 == 0);
        auto resumed = fixtures::gwCli({"train", "--resume", run, QString("training.steps=%1").arg(kept + 100), "--nproc", "2"});
        QVERIFY2(resumed.code == 0, qPrintable(resumed.out));
        QCOMPARE(readRunStatus(run.toStdString()).state, std::string("finished"));
    }

    /// What cannot work is said before anything trains.
    void badRequests() {
        QTemporaryDir dir;
        const QString exp = QString::fromStdString(fixtures::makeExperiment(dir, 20));
        const int cores = static_cast<int>(std::thread::hardware_concurrency());
        auto many = fixtures::gwCli({"train", exp, "--nproc", QString::number(cores + 1), "--out", dir.filePath("x")});
        QCOMPARE(many.code, 1);
        QVERIFY2(many.out.contains(QString("--nproc %1: this machine has %2 cores").arg(cores + 1).arg(cores)), qPrintable(many.out));
        auto odd = fixtures::gwCli({"train", exp, "training.batch_size=33", "--nproc", "2", "--out", dir.filePath("y")});
        QCOMPARE(odd.code, 1);
        QVERIFY2(odd.out.contains("training.batch_size: expected a multiple of the 2 ranks (each rank takes an equal share of every "
                                  "group's batch), found 33"),
                 qPrintable(odd.out));
    }
};

QTEST_APPLESS_MAIN(TestDistributed)
#include "tst_distributed.moc"

// SPDX-License-Identifier: GPL-3.0-or-later
// Runs each libFuzzer target (tests/fuzz/, built by the "fuzz" preset with ASan and UBSan) from its seed
// corpus for a bounded time: the experiment parser, the HDF5 reader, the torch.save reader and the
// checkpoint loader. A crash, a sanitizer report, a leak, an input over the memory limit or a violated
// property fails the test with libFuzzer's report; the input is kept under build/fuzz/findings/.
// By default each target makes a fixed number of runs from a fixed seed (about a minute each here), so
// that CI's outcome is the outcome of the same inputs every time; GW_FUZZ_SECONDS=N fuzzes each for N
// seconds instead, with a fresh seed (for longer searches). Skipped when the fuzz build is absent.
#include <QtTest/QtTest>

#include <QDir>
#include <QElapsedTimer>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>

class TestFuzz : public QObject {
    Q_OBJECT
    const QString fuzzBin_ = GW_SOURCE_DIR "/build/fuzz/tests/fuzz";

private Q_SLOTS:
    void targets_data() {
        QTest::addColumn<QString>("target");
        QTest::addColumn<QString>("corpus");
        QTest::addColumn<int>("runs");  // about a minute each on this 2-core machine
        QTest::addColumn<bool>("leaks");
        QTest::newRow("experiment parser") << "fuzz_experiment" << "experiment" << 60000 << true;
        // HDF5 keeps library-wide state (free lists, caches); during fuzzing LeakSanitizer reports a few
        // hundred bytes now and then that no single input reproduces (docs/fuzzing.md): leaks unchecked.
        QTest::newRow("HDF5 reader") << "fuzz_h5" << "h5" << 5000 << false;
        QTest::newRow("torch.save reader") << "fuzz_state_dict" << "state_dict" << 30000 << true;
        QTest::newRow("checkpoint loader") << "fuzz_checkpoint" << "checkpoint" << 20000 << true;
    }

    void targets() {
        QFETCH(QString, target);
        QFETCH(QString, corpus);
        QFETCH(int, runs);
        QFETCH(bool, leaks);
        const QString exe = fuzzBin_ + "/" + target;
        if (!QFileInfo(exe).isExecutable())
            QSKIP(qPrintable(exe + " is not built (cmake --preset fuzz && cmake --build --preset fuzz; packaging/dev.sh test does)"));
        const int seconds = qEnvironmentVariableIntValue("GW_FUZZ_SECONDS");
        // Fixed runs from a fixed seed, capped at 5 minutes on a slow machine; or N seconds, fresh seed.
        const QStringList budget = seconds > 0 ? QStringList{"-max_total_time=" + QString::number(seconds)}
                                               : QStringList{"-seed=1", "-runs=" + QString::number(runs), "-max_total_time=300"};
        const int limit = seconds > 0 ? seconds : 300;
        // New inputs go to a scratch copy of the seed corpus; the repository's corpus stays as committed.
        QTemporaryDir scratch;
        QVERIFY(scratch.isValid());
        const QString seeds = GW_SOURCE_DIR "/tests/fuzz/corpus/" + corpus;
        const QStringList files = QDir(seeds).entryList(QDir::Files);
        QVERIFY2(!files.isEmpty(), qPrintable(seeds + " holds no seed inputs"));
        for (const auto& f : files) QVERIFY(QFile::copy(seeds + "/" + f, scratch.path() + "/" + f));
        const QString findings = GW_SOURCE_DIR "/build/fuzz/findings/";
        QDir().mkpath(findings);
        QProcess p;
        p.setProcessChannelMode(QProcess::MergedChannels);
        if (!leaks) {  // libFuzzer's -detect_leaks covers each input; LeakSanitizer also checks at exit
            QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
            env.insert("ASAN_OPTIONS", "detect_leaks=0");
            p.setProcessEnvironment(env);
        }
        QElapsedTimer clock;
        clock.start();
        p.start(exe, budget + QStringList{"-detect_leaks=" + QString::number(leaks ? 1 : 0), "-rss_limit_mb=4096", "-timeout=30", "-print_final_stats=1",
                                          "-artifact_prefix=" + findings + target + "-", scratch.path()});
        QVERIFY2(p.waitForStarted(), qPrintable(exe));
        QVERIFY(p.waitForFinished((limit + 120) * 1000));
        const QString out = QString::fromLocal8Bit(p.readAll());
        QVERIFY2(p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0, qPrintable(out.right(6000)));
        // libFuzzer's closing statistics: runs, coverage, corpus.
        const auto done = QRegularExpression("stat::number_of_executed_units:\\s*(\\d+)").match(out);
        const auto cov = QRegularExpression("cov: (\\d+) ft: (\\d+) corp: (\\d+)").globalMatch(out);
        QString last;
        for (auto it = cov; it.hasNext();) last = it.next().captured(0);
        QVERIFY2(done.hasMatch() && done.captured(1).toLongLong() > 0, qPrintable(out.right(2000)));
        qInfo("%s: %s runs in %.0f s, %s", qPrintable(target), qPrintable(done.captured(1)), clock.elapsed() / 1000.0, qPrintable(last));
    }
};

QTEST_GUILESS_MAIN(TestFuzz)
#include "tst_fuzz.moc"

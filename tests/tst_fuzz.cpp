// SPDX-License-Identifier: GPL-3.0-or-later
// Runs each libFuzzer target (tests/fuzz/, built by the "fuzz" preset with ASan and UBSan): the experiment
// parser, the HDF5 reader, the torch.save reader and the checkpoint loader. First every seed and every
// input a fault was once found with (tests/data/fuzz) is replayed and must run clean; then each target
// explores from its seeds for a bounded time. A crash, a sanitizer report, a leak, an input over the
// memory limit or a violated property in GW Studio's code fails the test with libFuzzer's report; one
// whose first frame lies inside HDF5 or LibTorch is reported as theirs. Inputs are kept under
// build/fuzz/findings/.
// By default each target makes a fixed number of runs from a fixed seed (about a minute each here, at
// most 3 minutes), so that CI mostly meets the same inputs; GW_FUZZ_SECONDS=N fuzzes each for N seconds
// instead, with a fresh seed (for longer searches). Skipped when the fuzz build is absent.
#include <QtTest/QtTest>

#include "skip.h"

#include <QDir>
#include <QElapsedTimer>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>

class TestFuzz : public QObject {
    Q_OBJECT
    // The fixed runs are not the same inputs every time after all (libFuzzer's -seed fixes the mutations,
    // not which inputs turn out slow): fuzz_h5's 5,000 runs took 52 s in one run and 238 s in another. A
    // target stops at this many seconds whatever it has done.
    static constexpr int kCapSeconds = 180;
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
            GW_SKIP_MISSING((exe + " is not built (cmake --preset fuzz && cmake --build --preset fuzz; packaging/dev.sh test does)"));
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        if (!leaks) env.insert("ASAN_OPTIONS", "detect_leaks=0");  // LeakSanitizer also checks at exit
        const QStringList common{"-detect_leaks=" + QString::number(leaks ? 1 : 0), "-rss_limit_mb=4096", "-timeout=30"};

        // 1. Replay: every seed and every input a fault was once found with (tests/data/fuzz) must run clean.
        const QString seeds = GW_SOURCE_DIR "/tests/fuzz/corpus/" + corpus;
        QStringList replay;
        for (const auto& f : QDir(seeds).entryList(QDir::Files)) replay << seeds + "/" + f;
        QVERIFY2(!replay.isEmpty(), qPrintable(seeds + " holds no seed inputs"));
        const QString found = GW_SOURCE_DIR "/tests/data/fuzz/";
        QString prefix = corpus;
        prefix.replace('_', '-');
        for (const auto& f : QDir(found).entryList({prefix + "-*"}, QDir::Files)) replay << found + f;
        // fuzz_h5 replays through the child-process check that GW Studio puts before every HDF5 open
        // (data/h5_check.h; build/fuzz/app/gw runs it), with its answers kept in a scratch folder: HDF5's
        // own faults on these inputs must come back as errors. Exploring, it reads in-process.
        QProcessEnvironment replayEnv = env;
        QTemporaryDir checkCache;
        if (target == "fuzz_h5") {
            QVERIFY(checkCache.isValid());
            replayEnv.insert("GW_FUZZ_H5_CHECK", "1");
            replayEnv.insert("XDG_CACHE_HOME", checkCache.path());
        }
        const auto [replayCode, replayOut] = runFuzzer(exe, replayEnv, common + replay, 600);
        QVERIFY2(replayCode == 0, qPrintable(replayOut.right(6000)));
        qInfo("%s: replayed %lld inputs clean", qPrintable(target), static_cast<long long>(replay.size()));

        // 2. Explore from the seeds: a fixed number of runs from a fixed seed, or GW_FUZZ_SECONDS with a fresh
        // one. A fault in GW Studio's code fails the test; one inside HDF5 or LibTorch (their own bugs on a
        // damaged file, docs/fuzzing.md) is reported and its input kept for triage.
        const int seconds = qEnvironmentVariableIntValue("GW_FUZZ_SECONDS");
        const QStringList budget = seconds > 0 ? QStringList{"-max_total_time=" + QString::number(seconds)}
                                               : QStringList{"-seed=1", "-runs=" + QString::number(runs), "-max_total_time=" + QString::number(kCapSeconds)};
        QTemporaryDir scratch;  // new inputs go to a copy; the repository's corpus stays as committed
        QVERIFY(scratch.isValid());
        for (const auto& f : QDir(seeds).entryList(QDir::Files)) QVERIFY(QFile::copy(seeds + "/" + f, scratch.path() + "/" + f));
        const QString findings = GW_SOURCE_DIR "/build/fuzz/findings/";
        QDir().mkpath(findings);
        QElapsedTimer clock;
        clock.start();
        const auto [code, out] = runFuzzer(exe, env,
                                           budget + common + QStringList{"-print_final_stats=1", "-artifact_prefix=" + findings + target + "-",
                                                                         scratch.path()},
                                           (seconds > 0 ? seconds : kCapSeconds) + 120);
        if (code != 0) {
            const QString lib = thirdPartyFault(out);
            const auto input = QRegularExpression("Test unit written to (\\S+)").match(out);
            QVERIFY2(!lib.isEmpty(), qPrintable(out.right(6000)));
            qWarning("%s: a fault inside %s (not GW Studio's code), input kept at %s", qPrintable(target), qPrintable(lib),
                     qPrintable(input.captured(1)));
            return;
        }
        const auto done = QRegularExpression("stat::number_of_executed_units:\\s*(\\d+)").match(out);
        QString last;
        for (auto it = QRegularExpression("cov: (\\d+) ft: (\\d+) corp: (\\d+)").globalMatch(out); it.hasNext();)
            last = it.next().captured(0);
        QVERIFY2(done.hasMatch() && done.captured(1).toLongLong() > 0, qPrintable(out.right(2000)));
        qInfo("%s: %s runs in %.0f s, %s", qPrintable(target), qPrintable(done.captured(1)), clock.elapsed() / 1000.0, qPrintable(last));
    }

private:
    static std::pair<int, QString> runFuzzer(const QString& exe, const QProcessEnvironment& env, const QStringList& args, int limitSeconds) {
        QProcess p;
        p.setProcessChannelMode(QProcess::MergedChannels);
        p.setProcessEnvironment(env);
        p.start(exe, args);
        if (!p.waitForStarted() || !p.waitForFinished(limitSeconds * 1000)) {
            p.kill();
            p.waitForFinished();
            return {-1, exe + ": did not finish in " + QString::number(limitSeconds) + " s"};
        }
        return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, QString::fromLocal8Bit(p.readAll())};
    }

    /// The library a sanitizer report's fault lies in, when it is HDF5, LibTorch or yaml-cpp: the first
    /// frame of the first stack that is neither the C library, the sanitizer's interceptors and allocator
    /// nor libFuzzer.
    /// Empty when that frame is GW Studio's (or the report has no stack: a property, a timeout in our code).
    static QString thirdPartyFault(const QString& out) {
        // The sanitizer's own allocator counts as the runtime too: a timeout's alarm can land in it while HDF5
        // asks, again and again, for the 2^58 bytes a damaged size field gives (ASan: "failed to allocate").
        const QStringList runtime = {" in malloc", " in calloc", " in realloc", " in free", "__interceptor_", " in memcpy",
                                     " in memmove", " in memset", "sysdeps/", "libc.so", "fuzzer::", "__sanitizer",
                                     "__asan", "__lsan", " in operator new", " in posix_memalign", " in aligned_alloc",
                                     " in abort", " in raise", "pthread_kill", "libc_start", " in _start"};
        // A timeout's stack is wherever the alarm found the process: when that is inside an HDF5, LibTorch or
        // yaml-cpp call (any frame of the first stack), the time went there.
        if (out.contains("libFuzzer: timeout")) {
            bool inStack = false;
            for (const auto& line : out.split('\n')) {
                const bool frame = QRegularExpression("^\\s+#\\d+ 0x").match(line).hasMatch();
                if (!frame && inStack) break;
                inStack = inStack || frame;
                if (!frame) continue;
                for (const char* lib : {"libhdf5", "libtorch", "libc10", "libyaml-cpp"})
                    if (line.contains(lib)) return lib;
            }
        }
        for (const auto& line : out.split('\n')) {
            if (!QRegularExpression("^\\s+#\\d+ 0x").match(line).hasMatch()) continue;
            bool skip = false;
            for (const auto& r : runtime) skip = skip || line.contains(r);
            if (skip) continue;
            for (const char* lib : {"libhdf5", "libtorch", "libc10", "libyaml-cpp"})
                if (line.contains(lib)) return lib;
            return {};
        }
        return {};
    }
};

int main(int argc, char** argv) {
    // The four targets run as rows of one test function, and QtTest's watchdog gives a function 5 minutes
    // by default: room for the rows' caps (4 x 180 s plus replays) instead, under CTest's 30 minutes.
    if (!qEnvironmentVariableIsSet("QTEST_FUNCTION_TIMEOUT")) qputenv("QTEST_FUNCTION_TIMEOUT", "1500000");
    QCoreApplication app(argc, argv);
    TestFuzz test;
    return QTest::qExec(&test, argc, argv);
}
#include "tst_fuzz.moc"

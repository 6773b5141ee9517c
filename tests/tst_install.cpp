// SPDX-License-Identifier: GPL-3.0-or-later
// The Debian package as a user gets it: `cpack -G DEB` in the build folder makes it (dependencies from
// dpkg-shlibdeps, desktop entry, AppStream metainfo, man pages, the shipped experiments and weights), then
// packaging/test-install.sh installs it with apt into a clean Debian 12 chroot made by debootstrap, and
// inside that chroot, as an ordinary user: `gw --version`, a short `gw train` of the shipped Fashion-MNIST
// experiment (its shipped image weights checked by checksum, runs and data in the user's data folder),
// and gw-studio started offscreen on the demo. The chroot part needs root and the Debian mirror; it is
// skipped with the reason otherwise.
#include <QtTest/QtTest>

#include "skip.h"

#include <QDir>
#include <QElapsedTimer>
#include <QProcess>
#include <unistd.h>

namespace {

struct Result {
    int code = -1;
    QString out;
};

Result run(const QString& program, const QStringList& args, int timeoutMs = 120000, const QString& dir = {}) {
    QProcess p;
    p.setProcessChannelMode(QProcess::MergedChannels);
    if (!dir.isEmpty()) p.setWorkingDirectory(dir);
    p.start(program, args);
    Result r;
    if (!p.waitForStarted(10000)) {
        r.out = program + ": cannot start (" + p.errorString() + ")";
        return r;
    }
    if (!p.waitForFinished(timeoutMs)) {
        p.kill();
        p.waitForFinished(5000);
        r.out = QString::fromLocal8Bit(p.readAll()) + "\n" + program + ": still running after " +
                QString::number(timeoutMs / 1000) + " s, killed";
        return r;
    }
    r.out = QString::fromLocal8Bit(p.readAll());
    r.code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    return r;
}

bool have(const QString& program) { return !QStandardPaths::findExecutable(program).isEmpty(); }

}  // namespace

class TestInstall : public QObject {
    Q_OBJECT
    QString deb_;
    const QString root_ = GW_BINARY_DIR "/install-chroot";

    /// Runs `command` inside the chroot as the user `researcher`, in their home, with a login-like PATH.
    Result inChroot(const QString& command, int timeoutMs = 300000) {
        return run("chroot", {"--userspec=researcher:researcher", root_, "/usr/bin/env", "-i", "HOME=/home/researcher",
                              "USER=researcher", "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "/bin/sh", "-c",
                              "cd /home/researcher && " + command},
                   timeoutMs);
    }

private Q_SLOTS:
    void packageHasWhatItShould() {
        for (const char* tool : {"cpack", "dpkg-deb", "dpkg-shlibdeps", "appstreamcli", "desktop-file-validate"})
            if (!have(tool)) GW_SKIP_MISSING(QString(tool) + " is not installed (packaging/dev.sh installs it)");
        QElapsedTimer t;
        t.start();
        const Result pack = run("cpack", {"-G", "DEB"}, 600000, GW_BINARY_DIR);
        QVERIFY2(pack.code == 0, qPrintable(pack.out));
        const QStringList debs = QDir(GW_BINARY_DIR).entryList({"gw-studio_" GW_VERSION "_*.deb"}, QDir::Files);
        QCOMPARE(debs.size(), 1);
        deb_ = GW_BINARY_DIR "/" + debs[0];
        qInfo("cpack: %s in %.0f s", qPrintable(debs[0]), t.elapsed() / 1000.0);

        const Result list = run("dpkg-deb", {"--contents", deb_});
        QCOMPARE(list.code, 0);
        for (const char* path : {"./usr/bin/gw", "./usr/bin/gw-studio", "./usr/share/applications/org.gwstudio.GWStudio.desktop",
                                 "./usr/share/icons/hicolor/scalable/apps/org.gwstudio.GWStudio.svg",
                                 "./usr/share/metainfo/org.gwstudio.GWStudio.metainfo.xml", "./usr/share/man/man1/gw.1.gz",
                                 "./usr/share/man/man1/gw-studio.1.gz", "./usr/share/doc/gw-studio/copyright",
                                 "./usr/share/gw-studio/experiments/fashion-mnist.yaml",
                                 "./usr/share/gw-studio/weights/fashion-mnist-image-vae.pt",
                                 "./usr/share/gw-studio/weights/fashion-mnist-image-vae.pt.sha256"})
            QVERIFY2(list.out.contains(QString(path) + "\n"), qPrintable(QString(path) + " missing from " + list.out));

        // Library dependencies found by dpkg-shlibdeps, plus the two it cannot see.
        const Result depends = run("dpkg-deb", {"--field", deb_, "Depends"});
        QCOMPARE(depends.code, 0);
        for (const char* dep : {"libtorch1.13", "libqt6widgets6", "libhdf5", "libyaml-cpp", "libopenblas0-pthread", "qt6-qpa-plugins"})
            QVERIFY2(depends.out.contains(dep), qPrintable(QString(dep) + " not in Depends: " + depends.out));

        const Result appstream = run("appstreamcli", {"validate", "--no-net", GW_SOURCE_DIR "/packaging/linux/org.gwstudio.GWStudio.metainfo.xml"});
        QVERIFY2(appstream.code == 0, qPrintable(appstream.out));
        const Result desktop = run("desktop-file-validate", {GW_SOURCE_DIR "/packaging/linux/org.gwstudio.GWStudio.desktop"});
        QVERIFY2(desktop.code == 0 && desktop.out.trimmed().isEmpty(), qPrintable(desktop.out));

        // The man pages are the programs' own --help: every subcommand of gw is in gw(1).
        Result man = run("sh", {"-c", "dpkg-deb --fsys-tarfile '" + deb_ + "' | tar -xOf - ./usr/share/man/man1/gw.1.gz | gzip -d"});
        QCOMPARE(man.code, 0);
        QVERIFY2(man.out.contains(".SH SYNOPSIS") && man.out.contains(".TH GW \"1\""), qPrintable(man.out.left(300)));
        man.out.replace("\\-", "-");  // roff's escaped hyphens
        for (const char* sub : {"train", "eval", "pretrain", "export", "import-weights", "kinds"})
            QVERIFY2(man.out.contains(sub), qPrintable(QString(sub) + " not in gw.1"));
    }

    void installsAndRunsInACleanChroot() {
        if (deb_.isEmpty()) QSKIP("no package (see packageHasWhatItShould)");
        if (getuid() != 0) GW_SKIP_MISSING("needs root (debootstrap and chroot)");
        if (!have("debootstrap")) GW_SKIP_MISSING("debootstrap is not installed (packaging/dev.sh installs it)");
        QElapsedTimer t;
        t.start();
        const Result install = run(GW_SOURCE_DIR "/packaging/test-install.sh", {deb_, root_}, 2400000);
        QVERIFY2(install.code == 0, qPrintable(install.out));
        qInfo("%s(%.0f s in all)", qPrintable(install.out), t.elapsed() / 1000.0);

        // Every installed executable finds every library it links.
        const Result ldd = inChroot("ldd /usr/bin/gw /usr/bin/gw-studio");
        QVERIFY2(ldd.code == 0 && !ldd.out.contains("not found"), qPrintable(ldd.out));
        const Result version = inChroot("gw --version");
        QCOMPARE(version.out.trimmed(), QString("gw " GW_VERSION));
        QVERIFY(QFileInfo::exists(root_ + "/usr/share/man/man1/gw-studio.1.gz"));

        // The shipped experiment as installed: read-only under /usr/share, data imported from
        // dataset-fashion-mnist (a Recommends) into the user's data folder, the shipped VAE weights
        // checked against their checksum instead of pre-training, the run in the user's data folder.
        t.restart();
        const Result train = inChroot("gw train /usr/share/gw-studio/experiments/fashion-mnist.yaml training.steps=200 "
                                      "training.val_every=100 training.checkpoint_every=100 threads=2");
        QVERIFY2(train.code == 0, qPrintable(train.out));
        qInfo("gw train, 200 steps with the import: %.0f s", t.elapsed() / 1000.0);
        QVERIFY2(train.out.contains("weights from /usr/share/gw-studio/weights/fashion-mnist-image-vae.pt (SHA-256"),
                 qPrintable(train.out));
        QVERIFY2(!train.out.contains("pretrain image step"), qPrintable(train.out));
        const QString runs = root_ + "/home/researcher/.local/share/gw-studio/runs";
        const QStringList made = QDir(runs).entryList({"fashion-mnist-*"}, QDir::Dirs);
        QCOMPARE(made.size(), 1);
        QFile metrics(runs + "/" + made[0] + "/metrics.csv");
        QVERIFY(metrics.open(QIODevice::ReadOnly));
        const QString csv = QString::fromUtf8(metrics.readAll());
        QVERIFY2(csv.contains("\n200,train/loss,") && csv.contains("\n200,val/translation_image_to_label_accuracy,"), qPrintable(csv.right(400)));
        QVERIFY(QFileInfo::exists(runs + "/" + made[0] + "/checkpoints/last.ckpt"));

        // The window, offscreen, on the generated demo: it trains, draws and writes a screenshot.
        const Result window = inChroot("QT_QPA_PLATFORM=offscreen gw-studio --demo --screenshot shot.png --steps 200");
        QVERIFY2(window.code == 0, qPrintable(window.out));
        QVERIFY(QFileInfo(root_ + "/home/researcher/shot.png").size() > 10000);
    }

    void cleanupTestCase() {
        if (QFileInfo::exists(root_)) run(GW_SOURCE_DIR "/packaging/test-install.sh", {"--clean", root_});
    }
};

QTEST_GUILESS_MAIN(TestInstall)
#include "tst_install.moc"

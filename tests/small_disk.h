// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file small_disk.h
/// A nearly full file system for the tests of writes that fail: a tmpfs of a given size mounted on a
/// folder (root only: `mount -t tmpfs`), grown with remount, unmounted when it goes out of scope.
/// Torch-free, so tst_ui uses it too.
#include <QtTest/QtTest>
#include <unistd.h>

#include <QDir>
#include <QProcess>

namespace gwtest {
class SmallDisk {
public:
    /// Mounts a tmpfs of `bytes` (rounded up to 4 KiB pages by the kernel) on `folder`, creating it.
    SmallDisk(const QString& folder, qint64 bytes) : folder_(folder) {
        QDir().mkpath(folder);
        mounted_ = run({"-t", "tmpfs", "-o", "size=" + QString::number(bytes), "tmpfs", folder});
    }
    ~SmallDisk() {
        if (mounted_) QProcess::execute("umount", {"-l", folder_});
    }
    SmallDisk(const SmallDisk&) = delete;
    SmallDisk& operator=(const SmallDisk&) = delete;

    /// Whether the mount worked (root and tmpfs are needed).
    bool mounted() const { return mounted_; }
    const QString& path() const { return folder_; }
    /// Makes room: the same tmpfs, now `bytes` large; its files stay.
    bool grow(qint64 bytes) { return run({"-o", "remount,size=" + QString::number(bytes), folder_}); }
    /// True when this process may mount (root).
    static bool canMount() { return ::geteuid() == 0; }

private:
    bool run(const QStringList& args) {
        QProcess p;
        p.setProcessChannelMode(QProcess::MergedChannels);
        p.start("mount", args);
        if (!p.waitForFinished(20000) || p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0) {
            qWarning("mount %s: %s", qPrintable(args.join(' ')), qPrintable(QString::fromUtf8(p.readAll())));
            return false;
        }
        return true;
    }
    QString folder_;
    bool mounted_ = false;
};
}  // namespace gwtest

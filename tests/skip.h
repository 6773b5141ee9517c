// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file skip.h
/// Skipping a test case for a missing dependency (Debian's python3-torch, slurm-wlm, the fuzz build,
/// root for a chroot): QSKIP on a developer's machine, but a failure under CI=true, where
/// packaging/dev.sh has installed and built everything, so a skip there means a broken set-up that
/// would otherwise pass unseen. Torch-free, so tst_ui and tst_install use it too.
#include <QtTest/QtTest>

namespace gwtest {
/// True under CI (the environment variable CI is "true", as .ci/run is started).
inline bool underCi() { return qEnvironmentVariable("CI") == QLatin1String("true"); }
}  // namespace gwtest

/// Skips the current test function for want of `reason` (a QString or const char*), or fails it under CI.
#define GW_SKIP_MISSING(reason)                                                                          \
    do {                                                                                                 \
        const QString gwSkipWhy_ = QString(reason);                                                      \
        if (gwtest::underCi())                                                                           \
            QFAIL(qPrintable("missing under CI=true, where every dependency is installed: " + gwSkipWhy_)); \
        QSKIP(qPrintable(gwSkipWhy_));                                                                   \
    } while (false)

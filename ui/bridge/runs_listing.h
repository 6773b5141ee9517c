// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file runs_listing.h
/// Run folders and sweep folders as plain Qt data, for the window's Runs panel: what each run folder's
/// status.yaml, config.yaml and metrics.csv say (model/run/runs.h RunStatus; docs/sweeps.md for sweep
/// folders). Torch-free; read on the GUI thread, cached per file size and time.
#include <QHash>
#include <QPair>
#include <QString>
#include <QStringList>
#include <QVector>

namespace gw::studio {

/// One run folder.
struct RunEntry {
    QString dir;            ///< absolute path
    QString name;           ///< the folder's name
    QString sweep;          ///< the sweep folder's name for a point of a sweep, else ""
    QString state;          ///< running, stopped, finished, failed, interrupted; "pending" (a sweep point not started); "" (no status.yaml: a run older than it)
    qint64 step = 0, totalSteps = 0;
    QString error;          ///< failed: why
    QStringList differs;    ///< "key=value" where the run differs from the base experiment (a sweep point: its axis values)
    QVector<QPair<QString, double>> finals;  ///< each metric's last value in metrics.csv, in first-seen order
    double final(const QString& metric, double otherwise) const {
        for (const auto& [k, v] : finals)
            if (k == metric) return v;
        return otherwise;
    }
};

/// One sweep folder (plan.yaml) and its points, in plan order.
struct SweepEntry {
    QString dir, name;
    QStringList axes;                                ///< the swept keys
    QVector<QHash<QString, QString>> values;         ///< per point: axis key -> value
    QVector<RunEntry> points;
};

/// What a folder holds.
struct RunsListing {
    QString folder;
    QVector<RunEntry> runs;     ///< run folders outside sweeps, newest first
    QVector<SweepEntry> sweeps;
    QStringList problems;       ///< "PATH: why" for a folder that could not be read (listed without it)
};

/// Lists the run folders (a folder holding config.yaml) and sweep folders (holding plan.yaml) in
/// `folder` and, one level down, in its subfolders (so `runs/` and `sweeps/NAME` beside each other are
/// both found from their parent). `baseYaml` (the experiment in the form, read as `gw train` would
/// with `baseDir`) is what "differs" is measured against; when empty or invalid, a run lists no
/// differences. Never throws: unreadable folders go to `problems`.
RunsListing listRuns(const QString& folder, const QString& baseYaml = {}, const QString& baseDir = {});

/// A run's curves from its metrics.csv: metric -> (steps, values). Empty with `error` set when the file
/// is missing or unreadable.
QHash<QString, QPair<QVector<double>, QVector<double>>> readRunCurves(const QString& runDir, QString* error = nullptr);

/// The folder the Runs panel opens on: the settings' runs folder when set, else the experiment's
/// `training.out` resolved against `baseDir` (the user's data folder's runs/ when that cannot be
/// written, as runs do), else "runs" under the current folder.
QString defaultRunsFolder(const QString& yaml, const QString& baseDir);

}  // namespace gw::studio

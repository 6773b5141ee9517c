// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file curve_plot.h
/// The pairs curve of docs/results.md: translation quality against the number of paired samples, one
/// panel per metric, one line per model (the mean over seeds) with every seed as a dot, x on a log
/// scale. Drawn with QCustomPlot and saved as PNG (`gw-studio --plot-curve CSV --out PNG`).
#include <QHash>
#include <QString>
#include <QStringList>
#include <QVector>

namespace gw::studio {

/// One run of a curve: its paired count, model ("full GW", "translations only", ...), seed, metrics.
struct CurvePoint {
    double pairs = 0;
    QString model;
    int seed = 0;
    QHash<QString, double> values;  ///< metric column -> value
};

/// Reads a curve CSV: a header `pairs,model,seed,METRIC...`, then one row per run. Empty on
/// success; else "FILE:LINE: what was expected, what was found".
QString readCurveCsv(const QString& path, QVector<CurvePoint>& out, QStringList& metrics);

/// One panel: the metric column, its axis label, and whether higher is better (said in the title).
struct CurvePanel {
    QString metric, label;
    bool higherIsBetter = false;
};

/// Draws the panels side by side (width × height pixels) and saves the PNG atomically. Empty on
/// success, else the error naming the file or the missing metric column.
QString plotPairsCurve(const QVector<CurvePoint>& points, const QVector<CurvePanel>& panels, const QString& title,
                       const QString& pngPath, int width = 1500, int height = 480);

}  // namespace gw::studio

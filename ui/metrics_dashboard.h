// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file metrics_dashboard.h
/// The live loss dashboard: one QCustomPlot curve per metric (train solid, val dashed), grouped by
/// family in a checkable list, log-y, EMA smoothing, zoom and pan, follow-the-latest-step. Points
/// arrive in batches (append) and are drawn by a timer at most 30 times a second.
#include <QElapsedTimer>
#include <QHash>
#include <QTimer>
#include <QWidget>

#include "ui/bridge/bridge.h"

class QCustomPlot;
class QCPGraph;
class QCheckBox;
class QSlider;
class QTreeWidget;
class QTreeWidgetItem;
class QLabel;

namespace gw::studio {

class MetricsDashboard : public QWidget {
    Q_OBJECT
public:
    explicit MetricsDashboard(QWidget* parent = nullptr);

    /// Adds points (queued for the next frame).
    void append(const MetricBatch& batch);
    /// Forgets every curve.
    void clear();

    /// Family of a metric name as the list groups it: "pre-training", "totals", "demi-cycles",
    /// "cycles", "translations", "contrastives", "accuracy", "other".
    static QString familyOf(const QString& metric);

    QStringList metricNames() const;
    qint64 pointCount(const QString& metric) const;
    /// Shows or hides a curve (as ticking it in the list does).
    void setMetricVisible(const QString& metric, bool visible);
    bool isMetricVisible(const QString& metric) const;
    /// EMA weight of the past in [0, 0.999]: 0 draws raw values.
    void setSmoothing(double alpha);
    double smoothing() const { return alpha_; }
    void setLogY(bool on);
    void setFollow(bool on);
    /// The value drawn for the last point of `metric` (smoothed as shown), NaN when absent.
    double drawnLastValue(const QString& metric) const;

    /// Draws now (normally the timer does); returns the time it took in milliseconds.
    double redrawNow();
    double lastFrameMs() const { return lastFrameMs_; }
    int framesDrawn() const { return frames_; }

    bool exportPng(const QString& path, int width = 1600, int height = 900);
    bool exportPdf(const QString& path);
    /// `step,metric,value` rows of every raw point, like a run's metrics.csv. Empty string on success.
    QString exportCsv(const QString& path) const;

    QCustomPlot* plot() const { return plot_; }

private:
    struct Series {
        QVector<double> steps, values;  // raw
        QCPGraph* graph = nullptr;
        int drawn = 0;                  // points already handed to the graph
        double ema = 0;
        bool emaStarted = false;
        // Ranges of the drawn points, kept as they arrive so that following the latest step does not
        // scan a million points per frame.
        double minKey = 0, maxKey = 0, minValue = 0, maxValue = 0, minPositive = 0;
        QTreeWidgetItem* item = nullptr;
    };
    Series& series(const QString& name);
    void rebuildGraph(Series& s);
    void frame();
    void rescale();

    QCustomPlot* plot_;
    QTreeWidget* list_;
    QCheckBox *logY_, *follow_;
    QSlider* smooth_;
    QLabel* status_;
    QHash<QString, Series> series_;
    QHash<QString, QTreeWidgetItem*> families_;
    QTimer timer_;
    bool dirty_ = false, restyle_ = false;
    double alpha_ = 0.6;
    double lastFrameMs_ = 0;
    int frames_ = 0;
};

}  // namespace gw::studio

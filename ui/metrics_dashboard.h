// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file metrics_dashboard.h
/// The live loss dashboard as small multiples: one chart per metric family (totals, demi-cycles, cycles,
/// translations, fused, contrastives, accuracy, pre-training, learning rate, other), each with its own
/// y-axis and a legend below it, so a pre-training loss of 700 never flattens GW losses of 0 to 6. One
/// curve per metric, train solid and val dashed in the same colour; curves are named by short labels
/// ("image → label") with the full metric name in tooltips and exports. A checkable list picks the
/// curves (a chart shows while any of its curves is ticked); log-y, EMA smoothing, zoom and pan per chart,
/// follow-the-latest-step. Points arrive in batches (append) and are drawn by a timer at most 30 times a
/// second.
#include <QElapsedTimer>
#include <QHash>
#include <QTimer>
#include <QWidget>

#include "ui/bridge/bridge.h"

class QCustomPlot;
class QCPGraph;
class QCPAxisRect;
class QCPLegend;
class QCPLayoutGrid;
class QCPMarginGroup;
class QCheckBox;
class QSlider;
class QTreeWidget;
class QTreeWidgetItem;
class QLabel;

namespace gw::studio {

class AttentionLevelsPlot;

class MetricsDashboard : public QWidget {
    Q_OBJECT
public:
    explicit MetricsDashboard(QWidget* parent = nullptr);

    /// Adds points (queued for the next frame).
    void append(const MetricBatch& batch);
    /// Forgets every curve.
    void clear();

    /// Family of a metric name, the chart it is drawn in: "pre-training", "totals", "demi-cycles",
    /// "cycles", "translations", "fused", "contrastives", "accuracy", "attention", "denoising", "learning rate", "other".
    static QString familyOf(const QString& metric);
    /// A short label for a metric within its family, without the split: "image → label" for
    /// `train/translation_image_to_label`, "image → label → image" for `cycle_image_through_label`,
    /// "image ↔ label" for a contrastive, "image" for a demi-cycle, "total" for `loss`, "all" for a
    /// family sum (`translations`), "{image,label} → image" for a Fusion broadcast term. Names it does not
    /// know come back without their split.
    static QString shortLabel(const QString& metric);

    /// The families drawn as charts now, top-left to bottom-right.
    QStringList chartFamilies() const;
    /// The chart of a family (null when it is not drawn), for tests and exports.
    QCPAxisRect* chart(const QString& family) const;
    /// The legend below a family's chart (null when it is not drawn).
    QCPLegend* chartLegend(const QString& family) const;

    QStringList metricNames() const;
    /// The plot of an attention run's scores against the corruption level (shown once its validation
    /// sweep arrives; docs/gw-semantics.md 9).
    AttentionLevelsPlot* attentionLevels() const { return levels_; }
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
    bool logY() const;

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
        QString family;
    };
    /// One chart: a title, the axes, the legend below them, in one cell of the plot's grid.
    struct Chart {
        QCPLayoutGrid* cell = nullptr;
        QCPAxisRect* rect = nullptr;
        QCPLegend* legend = nullptr;
        QStringList bases;  ///< metric names without the split, in order of arrival (one colour each)
        bool shown = false, inGrid = false;
    };
    Series& series(const QString& name);
    Chart& chartOf(const QString& family);
    void rebuildGraph(Series& s);
    void relayout();
    void frame();
    void rescale();
    void applyScale(QCPAxisRect* rect);
    void syncLegend(const QString& family);
    int columnsFor(int charts) const;

    QCustomPlot* plot_;
    QTreeWidget* list_;
    AttentionLevelsPlot* levels_;  ///< an attention run's scores against corruption; hidden until its sweep arrives
    QCheckBox *logY_, *follow_;
    QSlider* smooth_;
    QLabel* status_;
    QHash<QString, Series> series_;
    QHash<QString, QTreeWidgetItem*> families_;
    QHash<QString, Chart> charts_;
    QCPMarginGroup* margins_ = nullptr;
    bool relayout_ = false;
    int columns_ = 0;
    QTimer timer_;
    bool dirty_ = false, restyle_ = false;
    double alpha_ = 0.6;
    double lastFrameMs_ = 0;
    int frames_ = 0;
};

}  // namespace gw::studio

// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file attention_levels_plot.h
/// An attention run's scores against corruption (model: attention; docs/gw-semantics.md 9): the mean
/// attention score of each domain (y, 0 to 1) against the corruption level (x) of one side, from the
/// validation sweep the run logs as `val/corrupt_{side}_{level}/{domain}_mean_attention_score`. One curve
/// per corrupted side and domain: a domain's colour is its own, solid when the other side is corrupted,
/// dashed when its own side is. The values drawn are the latest step's (a live run's last validation, a
/// finished run's last row of metrics.csv).
#include <QHash>
#include <QMap>
#include <QPair>
#include <QPointF>
#include <QString>
#include <QStringList>
#include <QVector>
#include <QWidget>

#include "ui/bridge/bridge.h"

class QCustomPlot;

namespace gw::studio {

class AttentionLevelsPlot : public QWidget {
    Q_OBJECT
public:
    explicit AttentionLevelsPlot(QWidget* parent = nullptr);

    /// Takes the sweep's points among `batch` (other names are ignored); a later step replaces an earlier one.
    void append(const MetricBatch& batch);
    /// A finished run's last values (RunInfo::finals): the sweep's points among them, replacing any shown.
    void setFinals(const QVector<QPair<QString, double>>& finals);
    void clear();
    /// True when some sweep point arrived.
    bool hasData() const { return !points_.isEmpty(); }
    /// The corrupted sides and the domains scored, in the order first seen.
    QStringList sides() const { return sides_; }
    QStringList domains() const { return domains_; }
    /// The curve of `domain`'s score when `side` is corrupted: (level, score) by level.
    QVector<QPointF> curve(const QString& side, const QString& domain) const;
    QCustomPlot* plot() const { return plot_; }

Q_SIGNALS:
    /// The first sweep point arrived (the owner may show the plot).
    void dataArrived();

private:
    bool take(const QString& name, double step, double value);
    void redraw();

    QCustomPlot* plot_ = nullptr;
    /// (side, domain) -> level -> (step, score)
    QHash<QString, QMap<double, QPair<double, double>>> points_;
    QStringList sides_, domains_;
};

}  // namespace gw::studio

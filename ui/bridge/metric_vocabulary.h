// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file metric_vocabulary.h
/// The engine's one vocabulary of loss families and metric names (model/core/metric_names.h, torch-free
/// and header-only) in Qt's strings, for the window: the dashboard's charts and labels, the form's
/// family coefficients. The data-space score names come from the domain-module kinds' registrations
/// (kinds.h knownDataScores). ui/ includes this header, never the model's.
#include <QString>
#include <QStringList>

#include "model/core/metric_names.h"
#include "ui/bridge/kinds.h"

namespace gw::studio {

/// The family means in shimmer's order ("demi_cycles", "cycles", "translations", "contrastives",
/// "fused"): the keys of loss.coefficients that select a whole family.
inline QStringList familyMeans() {
    QStringList out;
    for (const auto& f : gw::metrics::families()) out << QString::fromLatin1(f.mean);
    return out;
}

/// The chart a logged metric belongs to ("translations", "totals", "pre-training", ...; MetricParts::chart).
inline QString metricChart(const QString& metric) {
    return QString::fromStdString(gw::metrics::parseMetric(metric.toStdString(), knownDataScores()).chart);
}

/// The metric's short label within its chart ("image → label"; MetricParts::label).
inline QString metricLabel(const QString& metric) {
    return QString::fromStdString(gw::metrics::parseMetric(metric.toStdString(), knownDataScores()).label);
}

}  // namespace gw::studio

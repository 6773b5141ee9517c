// SPDX-License-Identifier: GPL-3.0-or-later
#include "ui/attention_levels_plot.h"

#include <QVBoxLayout>

#include <algorithm>

#include <qcustomplot.h>
#include "ui/bridge/metric_vocabulary.h"
#include "ui/plot_when_shown.h"

namespace gw::studio {

namespace {
const QString kScore = QStringLiteral("_mean_attention_score");
QString keyOf(const QString& side, const QString& domain) { return side + '\n' + domain; }
}  // namespace

AttentionLevelsPlot::AttentionLevelsPlot(QWidget* parent) : QWidget(parent) {
    plot_ = new QCustomPlot(this);
    plot_->setAccessibleName("Mean attention score of each domain against the corruption level of one side");
    plot_->xAxis->setLabel("corruption level of the corrupted side");
    plot_->yAxis->setLabel("mean attention score");
    plot_->yAxis->setRange(0, 1);
    plot_->legend->setVisible(true);
    plot_->legend->setFont(QFont(font().family(), 8));
    plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignRight | Qt::AlignVCenter);
    replotOnlyWhenShown(plot_);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(plot_);
}

bool AttentionLevelsPlot::take(const QString& name, double step, double value) {
    // Validation's sweep only: val/corrupt_{side}_{level}/{domain}_mean_attention_score.
    if (!name.startsWith("val/")) return false;
    gw::metrics::CorruptedAt c;
    if (!gw::metrics::parseCorruptedAt(name.mid(4).toStdString(), c)) return false;
    const QString metric = QString::fromStdString(c.metric);
    if (!metric.endsWith(kScore)) return false;
    const QString side = QString::fromStdString(c.side), domain = metric.left(metric.size() - kScore.size());
    auto& byLevel = points_[keyOf(side, domain)];
    auto it = byLevel.find(c.level);
    if (it != byLevel.end() && it->first > step) return false;
    byLevel[c.level] = {step, value};
    if (!sides_.contains(side)) sides_ << side;
    if (!domains_.contains(domain)) domains_ << domain;
    return true;
}

void AttentionLevelsPlot::append(const MetricBatch& batch) {
    const bool had = hasData();
    bool changed = false;
    for (int i = 0; i < batch.names.size(); ++i) changed = take(batch.names[i], batch.steps[i], batch.values[i]) || changed;
    if (!changed) return;
    redraw();
    if (!had) Q_EMIT dataArrived();
}

void AttentionLevelsPlot::setFinals(const QVector<QPair<QString, double>>& finals) {
    clear();
    for (const auto& [name, value] : finals) take(name, 0, value);
    redraw();
    if (hasData()) Q_EMIT dataArrived();
}

void AttentionLevelsPlot::clear() {
    points_.clear();
    sides_.clear();
    domains_.clear();
    redraw();
}

QVector<QPointF> AttentionLevelsPlot::curve(const QString& side, const QString& domain) const {
    QVector<QPointF> out;
    const auto it = points_.find(keyOf(side, domain));
    if (it == points_.end()) return out;
    for (auto p = it->begin(); p != it->end(); ++p) out << QPointF(p.key(), p->second);
    return out;
}

void AttentionLevelsPlot::redraw() {
    plot_->clearGraphs();
    double maxLevel = 0;
    for (int s = 0; s < sides_.size(); ++s)
        for (int d = 0; d < domains_.size(); ++d) {
            const auto points = curve(sides_[s], domains_[d]);
            if (points.isEmpty()) continue;
            QVector<double> x, y;
            for (const auto& p : points) {
                x << p.x();
                y << p.y();
                maxLevel = std::max(maxLevel, p.x());
            }
            auto* g = plot_->addGraph();
            g->setData(x, y, true);
            QColor colour;
            colour.setHsv((210 + 120 * d) % 360, 200, 190);
            QPen pen(colour, 1.8);
            if (sides_[s] == domains_[d]) pen.setStyle(Qt::DashLine);
            g->setPen(pen);
            g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 5));
            g->setName(domains_[d] + "'s score, " + sides_[s] + " corrupted");
        }
    plot_->xAxis->setRange(0, maxLevel > 0 ? maxLevel * 1.05 : 1);
    plot_->yAxis->setRange(0, 1);
    plot_->replot();
}

}  // namespace gw::studio

// SPDX-License-Identifier: GPL-3.0-or-later
#include "ui/metrics_dashboard.h"

#include <QCheckBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QTemporaryDir>
#include <QSlider>
#include <QSplitter>
#include <QTextStream>
#include <QTreeWidget>
#include <QVBoxLayout>
#include <cmath>
#include <qcustomplot.h>

#include "ui/save_file.h"

namespace gw::studio {

namespace {
const QStringList kFamilies = {"pre-training", "totals",       "demi-cycles", "cycles", "translations",
                               "fused",        "contrastives", "accuracy",    "other"};

QColor familyColour(const QString& family, int index) {
    static const QHash<QString, int> hue = {{"pre-training", 280}, {"totals", 0},        {"demi-cycles", 210},
                                            {"cycles", 30},         {"translations", 130}, {"contrastives", 330},
                                            {"fused", 255},         {"accuracy", 180},     {"other", 60}};
    QColor c;
    c.setHsv((hue.value(family, 60) + 23 * index) % 360, 200, 200 - (index % 3) * 30);
    return c;
}

/// Shown by default: the family totals, the total loss and pre-training losses.
bool shownByDefault(const QString& name) {
    const QString m = name.section('/', -1);
    if (name.startsWith("pretrain/")) return m == "loss";
    return m == "loss" || m == "demi_cycles" || m == "cycles" || m == "translations" || m == "contrastives" ||
           m == "fused" || m == "broadcast_loss";
}

/// The family of a Fusion (broadcast) metric `from_{S}_to_{d}...` or `from_{S}_through_{I}_to_{d}...`
/// (docs/gw-semantics.md 2.3): a cycle when it goes through I; else a demi-cycle when S = {d}, a
/// translation when d is not in S, a fused term otherwise. Empty when `m` is not one.
QString broadcastFamily(const QString& m) {
    if (!m.startsWith("from_{")) return {};
    const int close = m.indexOf('}');
    if (close < 0) return {};
    if (m.mid(close + 1).startsWith("_through_")) return "cycles";
    if (!m.mid(close + 1).startsWith("_to_")) return {};
    const QStringList sources = m.mid(6, close - 6).split(',');
    const QString rest = m.mid(close + 5);  // "{d}_loss", "{d}_case_{G}_loss", ...
    bool inS = false;
    for (const auto& s : sources)
        if (rest.startsWith(s + "_loss") || rest.startsWith(s + "_case_")) inS = true;
    if (!inS) return "translations";
    return sources.size() == 1 ? "demi-cycles" : "fused";
}
}  // namespace

MetricsDashboard::MetricsDashboard(QWidget* parent) : QWidget(parent) {
    plot_ = new QCustomPlot(this);
    plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    plot_->xAxis->setLabel("step");
    plot_->yAxis->setLabel("value");
    plot_->legend->setVisible(true);
    plot_->legend->setFont(QFont(font().family(), 8));
    plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
    plot_->setNoAntialiasingOnDrag(true);
    // Polylines stroked in one go: a million-point curve reduced by adaptive sampling is still a few
    // thousand joined segments per frame.
    plot_->setPlottingHint(QCP::phFastPolylines, true);
    plot_->setAccessibleName("Loss curves");
    // Dragging or zooming by hand stops following the latest step.
    connect(plot_, &QCustomPlot::mousePress, this, [this] { follow_->setChecked(false); });
    connect(plot_, &QCustomPlot::mouseWheel, this, [this] { follow_->setChecked(false); });

    list_ = new QTreeWidget(this);
    list_->setHeaderLabels({"Metric", "Last"});
    list_->header()->setSectionResizeMode(0, QHeaderView::Stretch);
    list_->setAccessibleName("Metrics to show");
    for (const auto& f : kFamilies) {
        auto* item = new QTreeWidgetItem(list_, {f});
        item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsUserCheckable | Qt::ItemIsAutoTristate);
        item->setHidden(true);
        item->setExpanded(true);
        families_[f] = item;
    }
    connect(list_, &QTreeWidget::itemChanged, this, [this](QTreeWidgetItem* item, int column) {
        if (column != 0) return;
        const QString name = item->data(0, Qt::UserRole).toString();
        auto it = series_.find(name);
        if (it == series_.end() || !it->graph) return;
        const bool on = item->checkState(0) == Qt::Checked;
        if (it->graph->visible() == on) return;
        it->graph->setVisible(on);
        if (on) it->graph->addToLegend();
        else it->graph->removeFromLegend();
        dirty_ = true;
    });

    logY_ = new QCheckBox("&Log scale", this);
    follow_ = new QCheckBox("&Follow", this);
    follow_->setChecked(true);
    follow_->setToolTip("Keep the latest step in view (dragging or zooming the plot turns it off)");
    smooth_ = new QSlider(Qt::Horizontal, this);
    smooth_->setRange(0, 99);
    smooth_->setValue(int(alpha_ * 100));
    smooth_->setToolTip("Exponential moving average of the curves (0: raw values)");
    smooth_->setAccessibleName("Smoothing");
    auto* reset = new QPushButton("&Reset view", this);
    status_ = new QLabel(this);
    connect(logY_, &QCheckBox::toggled, this, &MetricsDashboard::setLogY);
    connect(follow_, &QCheckBox::toggled, this, [this](bool on) {
        if (on) dirty_ = true;
    });
    connect(smooth_, &QSlider::valueChanged, this, [this](int v) { setSmoothing(v / 100.0); });
    connect(reset, &QPushButton::clicked, this, [this] {
        follow_->setChecked(true);
        rescale();
        plot_->replot();
    });

    auto* controls = new QHBoxLayout;
    controls->addWidget(logY_);
    controls->addWidget(follow_);
    controls->addWidget(new QLabel("Smoothing", this));
    controls->addWidget(smooth_, 1);
    controls->addWidget(reset);
    controls->addWidget(status_);
    auto* split = new QSplitter(this);
    split->addWidget(list_);
    split->addWidget(plot_);
    split->setStretchFactor(1, 3);
    split->setSizes({330, 700});
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(controls);
    layout->addWidget(split, 1);

    timer_.setInterval(33);  // at most about 30 frames a second
    connect(&timer_, &QTimer::timeout, this, &MetricsDashboard::frame);
    timer_.start();
}

QString MetricsDashboard::familyOf(const QString& metric) {
    if (metric.startsWith("pretrain/")) return "pre-training";
    const QString m = metric.section('/', 1);
    if (m.contains("accuracy")) return "accuracy";
    if (m == "loss" || m == "broadcast_loss" || m.startsWith("domain_loss")) return "totals";
    if (const QString b = broadcastFamily(m); !b.isEmpty()) return b;
    if (m == "fused") return "fused";
    if (m.startsWith("demi_cycle")) return "demi-cycles";
    if (m.startsWith("cycle")) return "cycles";
    if (m.startsWith("translation")) return "translations";
    if (m.startsWith("contrastive")) return "contrastives";
    return "other";
}

MetricsDashboard::Series& MetricsDashboard::series(const QString& name) {
    auto it = series_.find(name);
    if (it != series_.end()) return *it;
    Series& s = series_[name];
    const QString family = familyOf(name);
    QTreeWidgetItem* parent = families_.value(family);
    parent->setHidden(false);
    s.graph = plot_->addGraph();
    s.graph->setName(name);
    s.graph->setAdaptiveSampling(true);
    QPen pen(familyColour(family, parent->childCount()), 1.6);
    if (name.startsWith("val/")) {
        pen.setStyle(Qt::DashLine);
        s.graph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 4));
    }
    s.graph->setPen(pen);
    const bool shown = shownByDefault(name);
    s.graph->setVisible(shown);
    if (!shown) s.graph->removeFromLegend();
    list_->blockSignals(true);
    s.item = new QTreeWidgetItem(parent, {name});
    s.item->setData(0, Qt::UserRole, name);
    s.item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsUserCheckable | Qt::ItemIsSelectable);
    s.item->setCheckState(0, shown ? Qt::Checked : Qt::Unchecked);
    s.item->setForeground(0, pen.color());
    s.item->setToolTip(0, name);
    list_->blockSignals(false);
    return s;
}

void MetricsDashboard::append(const MetricBatch& b) {
    for (int i = 0; i < b.names.size(); ++i) {
        Series& s = series(b.names[i]);
        s.steps.push_back(b.steps[i]);
        s.values.push_back(b.values[i]);
    }
    dirty_ = true;
}

void MetricsDashboard::clear() {
    plot_->clearGraphs();
    list_->blockSignals(true);
    for (auto& s : series_) delete s.item;
    for (auto* f : families_) f->setHidden(true);
    list_->blockSignals(false);
    series_.clear();
    dirty_ = true;
}

QStringList MetricsDashboard::metricNames() const {
    QStringList n = series_.keys();
    n.sort();
    return n;
}

qint64 MetricsDashboard::pointCount(const QString& metric) const {
    auto it = series_.find(metric);
    return it == series_.end() ? 0 : it->steps.size();
}

void MetricsDashboard::setMetricVisible(const QString& metric, bool visible) {
    auto it = series_.find(metric);
    if (it != series_.end()) it->item->setCheckState(0, visible ? Qt::Checked : Qt::Unchecked);
}

bool MetricsDashboard::isMetricVisible(const QString& metric) const {
    auto it = series_.find(metric);
    return it != series_.end() && it->graph->visible();
}

void MetricsDashboard::setSmoothing(double alpha) {
    alpha = std::clamp(alpha, 0.0, 0.999);
    if (alpha == alpha_) return;
    alpha_ = alpha;
    if (smooth_->value() != int(std::lround(alpha * 100))) smooth_->setValue(int(std::lround(alpha * 100)));
    restyle_ = true;
    dirty_ = true;
}

void MetricsDashboard::setLogY(bool on) {
    if (logY_->isChecked() != on) logY_->setChecked(on);
    if (on) {
        plot_->yAxis->setScaleType(QCPAxis::stLogarithmic);
        plot_->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    } else {
        plot_->yAxis->setScaleType(QCPAxis::stLinear);
        plot_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    }
    rescale();
    dirty_ = true;
}

void MetricsDashboard::setFollow(bool on) { follow_->setChecked(on); }

double MetricsDashboard::drawnLastValue(const QString& metric) const {
    auto it = series_.find(metric);
    if (it == series_.end() || it->graph->dataCount() == 0) return NAN;
    return (it->graph->data()->constEnd() - 1)->value;
}

void MetricsDashboard::rebuildGraph(Series& s) {
    s.graph->data()->clear();
    s.drawn = 0;
    s.emaStarted = false;
}

void MetricsDashboard::rescale() {
    double k0 = INFINITY, k1 = -INFINITY, v0 = INFINITY, v1 = -INFINITY;
    const bool log = plot_->yAxis->scaleType() == QCPAxis::stLogarithmic;
    for (const auto& s : series_) {
        if (!s.graph->visible() || s.graph->dataCount() == 0) continue;
        k0 = std::min(k0, s.minKey);
        k1 = std::max(k1, s.maxKey);
        if (log) {
            if (s.minPositive > 0) v0 = std::min(v0, s.minPositive);
        } else {
            v0 = std::min(v0, s.minValue);
        }
        v1 = std::max(v1, s.maxValue);
    }
    if (!std::isfinite(k0) || !std::isfinite(v0) || !std::isfinite(v1)) return;
    if (k1 <= k0) k1 = k0 + 1;
    plot_->xAxis->setRange(k0, k1);
    if (log) {
        plot_->yAxis->setRange(v0 / 1.2, std::max(v1, v0) * 1.2);
    } else {
        const double pad = v1 > v0 ? 0.05 * (v1 - v0) : std::max(1e-3, std::abs(v0) * 0.1);
        plot_->yAxis->setRange(v0 - pad, v1 + pad);
    }
}

double MetricsDashboard::redrawNow() {
    QElapsedTimer t;
    t.start();
    for (auto& s : series_) {
        if (restyle_) rebuildGraph(s);
        const int n = s.steps.size();
        if (s.drawn == n) continue;
        QVector<double> keys, values;
        keys.reserve(n - s.drawn);
        values.reserve(n - s.drawn);
        for (int i = s.drawn; i < n; ++i) {
            const double v = s.values[i];
            if (!std::isfinite(v)) continue;
            s.ema = s.emaStarted ? alpha_ * s.ema + (1 - alpha_) * v : v;
            if (!s.emaStarted || s.graph->dataCount() + keys.size() == 0) {
                s.minKey = s.maxKey = s.steps[i];
                s.minValue = s.maxValue = s.ema;
                s.minPositive = s.ema > 0 ? s.ema : 0;
            }
            s.emaStarted = true;
            s.minKey = std::min(s.minKey, s.steps[i]);
            s.maxKey = std::max(s.maxKey, s.steps[i]);
            s.minValue = std::min(s.minValue, s.ema);
            s.maxValue = std::max(s.maxValue, s.ema);
            if (s.ema > 0 && (s.minPositive <= 0 || s.ema < s.minPositive)) s.minPositive = s.ema;
            keys.push_back(s.steps[i]);
            values.push_back(s.ema);
        }
        s.graph->addData(keys, values, true);
        s.drawn = n;
        s.item->setText(1, QString::number(s.values.back(), 'g', 4));
    }
    restyle_ = false;
    if (follow_->isChecked()) rescale();
    plot_->replot(QCustomPlot::rpImmediateRefresh);
    dirty_ = false;
    ++frames_;
    lastFrameMs_ = t.nsecsElapsed() / 1e6;
    qint64 points = 0;
    for (const auto& s : series_) points += s.steps.size();
    status_->setText(QString("%1 points, %2 ms").arg(points).arg(lastFrameMs_, 0, 'f', 1));
    return lastFrameMs_;
}

void MetricsDashboard::frame() {
    if (dirty_ && isVisible()) redrawNow();
}

bool MetricsDashboard::exportPng(const QString& path, int width, int height) {
    redrawNow();
    return saveImage(plot_->toPixmap(width, height).toImage(), path).isEmpty();
}

bool MetricsDashboard::exportPdf(const QString& path) {
    redrawNow();
    // QCustomPlot writes PDF to a file only: to a scratch file first, then into place atomically.
    QTemporaryDir scratch;
    const QString tmp = scratch.path() + "/plot.pdf";
    return scratch.isValid() && plot_->savePdf(tmp) && copyFile(tmp, path).isEmpty();
}

QString MetricsDashboard::exportCsv(const QString& path) const {
    QByteArray bytes;
    QTextStream out(&bytes);
    out << "step,metric,value\n";
    for (const auto& name : metricNames()) {
        const Series& s = series_[name];
        for (int i = 0; i < s.steps.size(); ++i)
            out << qint64(s.steps[i]) << ',' << name << ',' << QString::number(s.values[i], 'g', 9) << '\n';
    }
    out.flush();
    return saveFile(path, bytes);
}

}  // namespace gw::studio

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
#include <cstring>
#include <qcustomplot.h>

#include "ui/attention_levels_plot.h"
#include "ui/bridge/metric_vocabulary.h"
#include "ui/save_file.h"

namespace gw::studio {

namespace {
const QStringList kFamilies = {"totals",       "demi-cycles", "cycles",        "translations", "fused",
                               "contrastives", "accuracy",    "data space",    "attention",     "denoising",
                               "pre-training", "learning rate", "other"};

QColor familyColour(const QString& family, int index) {
    static const QHash<QString, int> hue = {{"pre-training", 280}, {"totals", 0},        {"demi-cycles", 210},
                                            {"cycles", 30},         {"translations", 130}, {"contrastives", 330},
                                            {"fused", 255},         {"accuracy", 180},     {"learning rate", 90},
                                            {"denoising", 160},     {"attention", 300},    {"data space", 20},
                                            {"other", 60}};
    QColor c;
    c.setHsv((hue.value(family, 60) + 47 * index) % 360, 210, 200 - (index % 3) * 35);
    return c;
}

/// Shown by default: the family totals, the total loss, pre-training losses, accuracies, translations' image
/// MSE and attribute error in data space (validation, training.val_data_metrics), the learning rate,
/// an attention run's mean scores (not its sweep over corruption levels, `corrupt_{d}_{level}/...`).
bool shownByDefault(const QString& name) {
    const QString m = name.section('/', -1);
    if (name.section('/', 1).startsWith("corrupt_")) return false;
    if (m.endsWith("_mean_attention_score")) return true;
    if (name.startsWith("pretrain/")) return m == "loss";
    return m == metrics::kLoss || familyMeans().contains(m) || m == metrics::kBroadcastLoss || m == metrics::kLearningRate ||
           m.endsWith("accuracy") || m.endsWith("_image_mse") || m.endsWith("_attribute_error");
}

}  // namespace

MetricsDashboard::MetricsDashboard(QWidget* parent) : QWidget(parent) {
    plot_ = new QCustomPlot(this);
    plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    plot_->plotLayout()->clear();  // the charts are added as metrics arrive
    plot_->setNoAntialiasingOnDrag(true);
    plot_->setAutoAddPlottableToLegend(false);
    // Polylines stroked in one go: a million-point curve reduced by adaptive sampling is still a few
    // thousand joined segments per frame.
    plot_->setPlottingHint(QCP::phFastPolylines, true);
    plot_->setAccessibleName("Loss curves, one chart per family");
    margins_ = new QCPMarginGroup(plot_);
    // Dragging or zooming by hand stops following the latest step.
    connect(plot_, &QCustomPlot::mousePress, this, [this] { follow_->setChecked(false); });
    connect(plot_, &QCustomPlot::mouseWheel, this, [this] { follow_->setChecked(false); });

    list_ = new QTreeWidget(this);
    list_->setHeaderLabels({"Metric", "Last"});
    list_->header()->setSectionResizeMode(0, QHeaderView::Stretch);
    list_->header()->setSectionResizeMode(1, QHeaderView::ResizeToContents);
    list_->header()->setStretchLastSection(false);
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
        relayout_ = true;
        dirty_ = true;
    });

    logY_ = new QCheckBox("&Log scale", this);
    follow_ = new QCheckBox("&Follow", this);
    follow_->setChecked(true);
    follow_->setToolTip("Keep the latest step in view (dragging or zooming a chart turns it off)");
    smooth_ = new QSlider(Qt::Horizontal, this);
    smooth_->setRange(0, 99);
    smooth_->setValue(int(alpha_ * 100));
    smooth_->setToolTip("Exponential moving average of the curves (0: raw values)");
    smooth_->setAccessibleName("Smoothing");
    auto* reset = new QPushButton("&Reset view", this);
    status_ = new QLabel(this);
    auto* key = new QLabel("train ━━  val ╍╍", this);
    key->setToolTip("In every chart, a metric's training curve is solid and its validation curve dashed, in the same colour");
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
    controls->addWidget(key);
    controls->addWidget(reset);
    controls->addWidget(status_);
    levels_ = new AttentionLevelsPlot(this);
    levels_->setMinimumHeight(220);
    levels_->hide();
    connect(levels_, &AttentionLevelsPlot::dataArrived, levels_, &QWidget::show);
    auto* charts = new QSplitter(Qt::Vertical, this);
    charts->addWidget(plot_);
    charts->addWidget(levels_);
    charts->setStretchFactor(0, 3);
    charts->setStretchFactor(1, 1);
    charts->setSizes({560, 240});
    auto* split = new QSplitter(this);
    split->addWidget(list_);
    split->addWidget(charts);
    split->setStretchFactor(1, 3);
    split->setSizes({305, 760});
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(controls);
    layout->addWidget(split, 1);

    timer_.setInterval(33);  // at most about 30 frames a second
    connect(&timer_, &QTimer::timeout, this, &MetricsDashboard::frame);
    timer_.start();
}

QString MetricsDashboard::familyOf(const QString& metric) { return metricChart(metric); }

QString MetricsDashboard::shortLabel(const QString& metric) { return metricLabel(metric); }

MetricsDashboard::Chart& MetricsDashboard::chartOf(const QString& family) {
    auto it = charts_.find(family);
    if (it != charts_.end()) return *it;
    Chart& c = charts_[family];
    // Built detached from the plot's grid; relayout() places the charts that have a visible curve.
    c.cell = new QCPLayoutGrid;
    plot_->plotLayout()->addElement(plot_->plotLayout()->rowCount(), 0, c.cell);
    c.inGrid = true;
    auto* title = new QCPTextElement(plot_, family, QFont(font().family(), 9, QFont::Bold));
    c.cell->addElement(0, 0, title);
    c.rect = new QCPAxisRect(plot_);
    c.cell->addElement(1, 0, c.rect);
    c.rect->setMarginGroup(QCP::msLeft | QCP::msRight, margins_);
    c.rect->axis(QCPAxis::atTop)->setVisible(false);
    c.rect->axis(QCPAxis::atRight)->setVisible(false);
    c.rect->axis(QCPAxis::atBottom)->setLabel("step");
    c.rect->axis(QCPAxis::atBottom)->ticker()->setTickCount(3);  // step numbers of 4 digits, side by side
    for (auto* a : c.rect->axes()) a->setTickLabelFont(QFont(font().family(), 8));
    c.legend = new QCPLegend;
    c.cell->addElement(2, 0, c.legend);
    c.legend->setLayer("legend");
    c.legend->setFont(QFont(font().family(), 8));
    c.legend->setBorderPen(Qt::NoPen);
    c.legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
    c.legend->setWrap(2);
    c.legend->setRowSpacing(0);
    c.cell->setRowStretchFactor(0, 0.001);
    c.cell->setRowStretchFactor(1, 1);
    c.cell->setRowStretchFactor(2, 0.001);
    c.cell->setRowSpacing(0);
    applyScale(c.rect);
    relayout_ = true;
    return c;
}

void MetricsDashboard::relayout() {
    relayout_ = false;
    QCPLayoutGrid* grid = plot_->plotLayout();
    for (auto& c : charts_) {
        if (c.inGrid) grid->take(c.cell);
        c.inGrid = c.shown = false;
    }
    grid->simplify();
    QStringList shown;
    for (const auto& f : kFamilies) {
        auto it = charts_.find(f);
        if (it == charts_.end()) continue;
        for (const auto& s : series_)
            if (s.family == f && s.graph->visible()) {
                shown << f;
                break;
            }
    }
    const int n = shown.size();
    columns_ = columnsFor(n);
    for (int i = 0; i < n; ++i) {
        Chart& c = charts_[shown[i]];
        c.shown = c.inGrid = true;
        grid->addElement(i / columns_, i % columns_, c.cell);
    }
    for (int col = 0; col < grid->columnCount(); ++col) grid->setColumnStretchFactor(col, 1);
    // Hidden charts stay built but out of the grid; their layers are not drawn.
    for (auto& c : charts_) {
        c.cell->setVisible(c.shown);
        c.rect->setVisible(c.shown);
        c.rect->setMarginGroup(QCP::msLeft | QCP::msRight, c.shown ? margins_ : nullptr);
        c.rect->axis(QCPAxis::atBottom)->setVisible(c.shown);
        c.rect->axis(QCPAxis::atLeft)->setVisible(c.shown);
    }
    for (auto& s : series_) s.graph->setVisible(charts_[s.family].shown && s.item->checkState(0) == Qt::Checked);
    for (auto it = charts_.begin(); it != charts_.end(); ++it) syncLegend(it.key());
}

int MetricsDashboard::columnsFor(int charts) const {
    // Two charts side by side in the window's default layout, three on a wide plot.
    const int columns = plot_->width() >= 1000 ? 3 : 2;
    return std::max(1, std::min(charts, columns));
}

void MetricsDashboard::syncLegend(const QString& family) {
    // One entry per metric, named by its train curve when that is ticked (its val curve is the dashed
    // line of the same colour), else by its val curve.
    Chart& c = charts_[family];
    c.legend->clearItems();
    for (const auto& base : c.bases) {
        auto train = series_.find("train/" + base);
        auto val = series_.find("val/" + base);
        auto plain = series_.find(base);
        if (train != series_.end() && train->graph->visible()) train->graph->addToLegend(c.legend);
        else if (val != series_.end() && val->graph->visible()) val->graph->addToLegend(c.legend);
        else if (plain != series_.end() && plain->graph->visible()) plain->graph->addToLegend(c.legend);
    }
}

QStringList MetricsDashboard::chartFamilies() const {
    QStringList out;
    for (const auto& f : kFamilies)
        if (auto it = charts_.find(f); it != charts_.end() && it->shown) out << f;
    return out;
}

QCPAxisRect* MetricsDashboard::chart(const QString& family) const {
    auto it = charts_.find(family);
    return it != charts_.end() && it->shown ? it->rect : nullptr;
}

QCPLegend* MetricsDashboard::chartLegend(const QString& family) const {
    auto it = charts_.find(family);
    return it != charts_.end() && it->shown ? it->legend : nullptr;
}

MetricsDashboard::Series& MetricsDashboard::series(const QString& name) {
    auto it = series_.find(name);
    if (it != series_.end()) return *it;
    Series& s = series_[name];
    s.family = familyOf(name);
    Chart& c = chartOf(s.family);
    QTreeWidgetItem* parent = families_.value(s.family);
    parent->setHidden(false);
    s.graph = plot_->addGraph(c.rect->axis(QCPAxis::atBottom), c.rect->axis(QCPAxis::atLeft));
    const bool val = name.startsWith("val/");
    const QString base = val || name.startsWith("train/") ? name.section('/', 1) : name;
    int colour = c.bases.indexOf(base);
    if (colour < 0) {
        colour = c.bases.size();
        c.bases << base;
    }
    const QString label = shortLabel(name) + (val ? " (val)" : "");
    s.graph->setName(label);
    s.graph->setAdaptiveSampling(true);
    QPen pen(familyColour(s.family, colour), 1.6);
    if (val) {
        pen.setStyle(Qt::DashLine);
        s.graph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 4));
    }
    s.graph->setPen(pen);
    // The chart's legend lists its ticked curves.
    const bool shown = shownByDefault(name);
    s.graph->setVisible(shown);
    list_->blockSignals(true);
    s.item = new QTreeWidgetItem(parent, {label});
    s.item->setData(0, Qt::UserRole, name);
    s.item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsUserCheckable | Qt::ItemIsSelectable);
    s.item->setCheckState(0, shown ? Qt::Checked : Qt::Unchecked);
    s.item->setForeground(0, pen.color());
    s.item->setToolTip(0, name);
    list_->blockSignals(false);
    relayout_ = true;
    return s;
}

void MetricsDashboard::append(const MetricBatch& b) {
    for (int i = 0; i < b.names.size(); ++i) {
        Series& s = series(b.names[i]);
        s.steps.push_back(b.steps[i]);
        s.values.push_back(b.values[i]);
    }
    levels_->append(b);
    dirty_ = true;
}

void MetricsDashboard::clear() {
    plot_->clearGraphs();
    list_->blockSignals(true);
    for (auto& s : series_) delete s.item;
    for (auto* f : families_) f->setHidden(true);
    list_->blockSignals(false);
    series_.clear();
    plot_->plotLayout()->clear();  // deletes the charts' cells with their axes and legends
    charts_.clear();
    relayout_ = false;
    dirty_ = true;
    levels_->clear();
    levels_->hide();
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

bool MetricsDashboard::logY() const { return logY_->isChecked(); }

void MetricsDashboard::applyScale(QCPAxisRect* rect) {
    QCPAxis* y = rect->axis(QCPAxis::atLeft);
    if (logY()) {
        y->setScaleType(QCPAxis::stLogarithmic);
        y->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    } else {
        y->setScaleType(QCPAxis::stLinear);
        y->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    }
    y->ticker()->setTickCount(5);
}

void MetricsDashboard::setLogY(bool on) {
    if (logY_->isChecked() != on) logY_->setChecked(on);
    for (auto& c : charts_) applyScale(c.rect);
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
    // Each chart fits its own ticked curves: its x range and its own y range. A chart whose curves span
    // one step (validation-only scores after the first validation) takes the steps of every chart, so its
    // points sit where the other charts have them.
    const bool log = logY();
    double all0 = INFINITY, all1 = -INFINITY;
    for (const auto& s : series_)
        if (s.graph && s.graph->visible() && s.graph->dataCount() > 0) {
            all0 = std::min(all0, s.minKey);
            all1 = std::max(all1, s.maxKey);
        }
    for (auto it = charts_.begin(); it != charts_.end(); ++it) {
        if (!it->shown) continue;
        double k0 = INFINITY, k1 = -INFINITY, v0 = INFINITY, v1 = -INFINITY;
        for (const auto& s : series_) {
            if (s.family != it.key() || !s.graph->visible() || s.graph->dataCount() == 0) continue;
            k0 = std::min(k0, s.minKey);
            k1 = std::max(k1, s.maxKey);
            if (log) {
                if (s.minPositive > 0) v0 = std::min(v0, s.minPositive);
            } else {
                v0 = std::min(v0, s.minValue);
            }
            v1 = std::max(v1, s.maxValue);
        }
        if (!std::isfinite(k0) || !std::isfinite(v0) || !std::isfinite(v1)) continue;
        if (k1 <= k0 && all1 > all0) {
            k0 = std::min(k0, all0);
            k1 = std::max(k1, all1);
        }
        if (k1 <= k0) k1 = k0 + 1;
        it->rect->axis(QCPAxis::atBottom)->setRange(k0, k1);
        QCPAxis* y = it->rect->axis(QCPAxis::atLeft);
        if (log) {
            y->setRange(v0 / 1.2, std::max(v1, v0) * 1.2);
        } else {
            const double pad = v1 > v0 ? 0.05 * (v1 - v0) : std::max(1e-3, std::abs(v0) * 0.1);
            y->setRange(v0 - pad, v1 + pad);
        }
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
    if (relayout_ || columnsFor(chartFamilies().size()) != columns_) relayout();
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

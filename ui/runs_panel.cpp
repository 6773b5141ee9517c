// SPDX-License-Identifier: GPL-3.0-or-later
#include "ui/runs_panel.h"

#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMap>
#include <QSet>
#include <QSplitter>
#include <QToolButton>
#include <QTreeWidget>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include <cmath>

namespace gw::studio {

namespace {

constexpr int kDirRole = Qt::UserRole;        // a run's folder, or the sweep's folder
constexpr int kSweepRole = Qt::UserRole + 1;  // true on a sweep's own row

/// Ten colours that stay apart on white (one per run or line).
QColor lineColour(int i) {
    static const QColor c[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44), QColor(214, 39, 40),
                               QColor(148, 103, 189), QColor(140, 86, 75), QColor(227, 119, 194), QColor(127, 127, 127),
                               QColor(188, 189, 34), QColor(23, 190, 207)};
    return c[i % 10];
}

QColor stateColour(const QString& s) {
    if (s == "finished") return QColor(30, 130, 50);
    if (s == "running") return QColor(25, 90, 200);
    if (s == "failed") return QColor(190, 30, 30);
    if (s == "interrupted") return QColor(200, 110, 0);
    return QColor(110, 110, 110);
}

QString number(double v) { return std::isfinite(v) ? QString::number(v, 'g', 4) : QString("—"); }

}  // namespace

RunsPanel::RunsPanel(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    auto* top = new QHBoxLayout;
    top->addWidget(new QLabel("Folder:"));
    folder_ = new QLineEdit;
    folder_->setToolTip("The runs folder (your settings' runs folder, or the experiment's training.out); "
                        "sweep folders one level down are found too");
    top->addWidget(folder_, 1);
    auto* browse = new QToolButton;
    browse->setText("…");
    browse->setToolTip("Choose the folder");
    top->addWidget(browse);
    auto* reload = new QToolButton;
    reload->setText("Refresh");
    reload->setShortcut(QKeySequence::Refresh);
    reload->setToolTip("Read the folder again (F5 while here; it refreshes every 2 s while shown)");
    top->addWidget(reload);
    layout->addLayout(top);

    auto* split = new QSplitter(Qt::Vertical);
    tree_ = new QTreeWidget;
    tree_->setColumnCount(5);
    tree_->setHeaderLabels({"Run", "State", "Step", "Differs from the experiment", "val/loss"});
    tree_->setSelectionMode(QAbstractItemView::ExtendedSelection);
    tree_->setRootIsDecorated(true);
    tree_->setUniformRowHeights(true);
    tree_->setAlternatingRowColors(true);
    tree_->setAccessibleName("Runs");
    tree_->header()->setStretchLastSection(false);
    tree_->header()->setSectionResizeMode(0, QHeaderView::Interactive);
    tree_->header()->setSectionResizeMode(3, QHeaderView::Stretch);
    tree_->setColumnWidth(0, 320);
    tree_->setColumnWidth(1, 90);
    tree_->setColumnWidth(2, 110);
    tree_->setColumnWidth(4, 110);
    split->addWidget(tree_);

    auto* plotBox = new QWidget;
    auto* plotLayout = new QVBoxLayout(plotBox);
    plotLayout->setContentsMargins(0, 0, 0, 0);
    auto* controls = new QHBoxLayout;
    controls->addWidget(new QLabel("&Metric:"));
    metric_ = new QComboBox;
    metric_->setMinimumContentsLength(32);
    metric_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    qobject_cast<QLabel*>(controls->itemAt(0)->widget())->setBuddy(metric_);
    controls->addWidget(metric_);
    sweepXLabel_ = new QLabel("&Against:");
    sweepX_ = new QComboBox;
    sweepXLabel_->setBuddy(sweepX_);
    controls->addWidget(sweepXLabel_);
    controls->addWidget(sweepX_);
    controls->addStretch(1);
    plotLayout->addLayout(controls);
    plot_ = new QCustomPlot;
    plot_->setMinimumHeight(220);
    plot_->legend->setVisible(true);
    plot_->legend->setFont(QFont(font().family(), 8));
    plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    plotLayout->addWidget(plot_, 1);
    split->addWidget(plotBox);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 1);
    layout->addWidget(split, 1);
    status_ = new QLabel;
    status_->setWordWrap(true);
    layout->addWidget(status_);

    timer_.setInterval(2000);
    connect(&timer_, &QTimer::timeout, this, &RunsPanel::refresh);
    connect(reload, &QToolButton::clicked, this, &RunsPanel::refresh);
    connect(folder_, &QLineEdit::editingFinished, this, &RunsPanel::refresh);
    connect(browse, &QToolButton::clicked, this, [this] {
        const QString d = QFileDialog::getExistingDirectory(this, "Runs folder", folder_->text());
        if (!d.isEmpty()) setFolder(d);
    });
    connect(tree_, &QTreeWidget::itemSelectionChanged, this, [this] {
        if (!rebuilding_) replot();
    });
    connect(tree_, &QTreeWidget::itemDoubleClicked, this, [this](QTreeWidgetItem* item) {
        if (item->data(0, kSweepRole).toBool()) return;
        Q_EMIT exploreRequested(item->data(0, kDirRole).toString() + "/checkpoints/last.ckpt");
    });
    connect(metric_, &QComboBox::currentTextChanged, this, [this] {
        if (rebuilding_) return;
        tree_->headerItem()->setText(4, metric());
        rebuildTree();
        replot();
    });
    connect(sweepX_, &QComboBox::currentTextChanged, this, [this] {
        if (!rebuilding_) replot();
    });
    sweepXLabel_->hide();
    sweepX_->hide();
}

void RunsPanel::setFolder(const QString& folder) {
    folder_->setText(QDir::cleanPath(folder));
    refresh();
}

QString RunsPanel::folder() const { return folder_->text(); }

void RunsPanel::setBase(const QString& yaml, const QString& baseDir) {
    baseYaml_ = yaml;
    baseDir_ = baseDir;
}

void RunsPanel::showEvent(QShowEvent* e) {
    QWidget::showEvent(e);
    refresh();
    timer_.start();
}

void RunsPanel::hideEvent(QHideEvent* e) {
    QWidget::hideEvent(e);
    timer_.stop();
}

QString RunsPanel::metric() const { return metric_->currentText(); }

void RunsPanel::setMetric(const QString& m) {
    const int i = metric_->findText(m);
    if (i >= 0) metric_->setCurrentIndex(i);
}

void RunsPanel::setSweepX(const QString& key) {
    const int i = sweepX_->findText(key);
    if (i >= 0) sweepX_->setCurrentIndex(i);
}

void RunsPanel::refresh() {
    if (folder_->text().isEmpty()) return;
    listing_ = listRuns(folder_->text(), baseYaml_, baseDir_);
    // The metrics any run logged, in first-seen order; the choice is kept across refreshes.
    QStringList metrics;
    QSet<QString> seen;
    auto collect = [&](const RunEntry& r) {
        for (const auto& [k, v] : r.finals)
            if (!seen.contains(k)) seen.insert(k), metrics << k;
    };
    for (const auto& s : listing_.sweeps)
        for (const auto& r : s.points) collect(r);
    for (const auto& r : listing_.runs) collect(r);
    std::stable_sort(metrics.begin(), metrics.end(), [](const QString& a, const QString& b) {
        return a.startsWith("val/") && !b.startsWith("val/");  // validation first
    });
    QString keep = metric_->currentText();
    if (keep.isEmpty()) keep = metrics.contains("val/loss") ? "val/loss" : metrics.value(0);
    rebuilding_ = true;
    metric_->clear();
    metric_->addItems(metrics);
    metric_->setCurrentIndex(std::max(0, int(metrics.indexOf(keep))));
    rebuilding_ = false;
    tree_->headerItem()->setText(4, metric());
    rebuildTree();
    replot();
    int count = int(listing_.runs.size());
    for (const auto& s : listing_.sweeps) count += int(s.points.size());
    QString text = QString("%1 %2, %3 %4 in %5")
                       .arg(count)
                       .arg(count == 1 ? "run" : "runs")
                       .arg(listing_.sweeps.size())
                       .arg(listing_.sweeps.size() == 1 ? "sweep" : "sweeps")
                       .arg(listing_.folder);
    if (!listing_.problems.isEmpty()) text += "\nCould not read: " + listing_.problems.join("; ");
    status_->setText(text);
    Q_EMIT refreshed();
}

void RunsPanel::fillItem(QTreeWidgetItem* item, const RunEntry& r) {
    item->setText(0, r.name);
    item->setData(0, kDirRole, r.dir);
    item->setData(0, kSweepRole, false);
    item->setToolTip(0, r.dir);
    item->setText(1, r.state.isEmpty() ? "—" : r.state);
    item->setForeground(1, stateColour(r.state));
    if (!r.error.isEmpty()) item->setToolTip(1, r.error);
    item->setText(2, r.totalSteps > 0 ? QString("%1/%2").arg(r.step).arg(r.totalSteps) : QString());
    item->setText(3, r.differs.join(", "));
    item->setToolTip(3, r.differs.join("\n"));
    item->setText(4, number(r.final(metric(), NAN)));
    item->setTextAlignment(2, Qt::AlignRight | Qt::AlignVCenter);
    item->setTextAlignment(4, Qt::AlignRight | Qt::AlignVCenter);
}

void RunsPanel::rebuildTree() {
    QSet<QString> selected, expanded;
    for (auto* item : tree_->selectedItems()) selected.insert(item->data(0, kDirRole).toString());
    for (int i = 0; i < tree_->topLevelItemCount(); ++i)
        if (tree_->topLevelItem(i)->isExpanded()) expanded.insert(tree_->topLevelItem(i)->data(0, kDirRole).toString());
    const bool first = tree_->topLevelItemCount() == 0;
    rebuilding_ = true;
    tree_->clear();
    for (const auto& s : listing_.sweeps) {
        auto* top = new QTreeWidgetItem(tree_);
        QMap<QString, int> counts;
        for (const auto& r : s.points) ++counts[r.state];
        QStringList tally;
        for (auto it = counts.begin(); it != counts.end(); ++it) tally << QString("%1 %2").arg(it.value()).arg(it.key());
        top->setText(0, "sweep " + s.name);
        QFont bold = top->font(0);
        bold.setBold(true);
        top->setFont(0, bold);
        top->setData(0, kDirRole, s.dir);
        top->setData(0, kSweepRole, true);
        top->setToolTip(0, s.dir);
        top->setText(1, tally.join(", "));
        top->setText(2, QString("%1 points").arg(s.points.size()));
        top->setText(3, "axes: " + s.axes.join(", "));
        for (const auto& r : s.points) fillItem(new QTreeWidgetItem(top), r);
        top->setExpanded(first || expanded.contains(s.dir));
    }
    for (const auto& r : listing_.runs) fillItem(new QTreeWidgetItem(tree_), r);
    for (QTreeWidgetItemIterator it(tree_); *it; ++it)
        if (selected.contains((*it)->data(0, kDirRole).toString())) (*it)->setSelected(true);
    rebuilding_ = false;
}

QVector<const RunEntry*> RunsPanel::selectedRuns() const {
    QVector<const RunEntry*> out;
    QSet<QString> dirs;
    for (auto* item : tree_->selectedItems())
        if (!item->data(0, kSweepRole).toBool()) dirs.insert(item->data(0, kDirRole).toString());
    for (const auto& s : listing_.sweeps)
        for (const auto& r : s.points)
            if (dirs.contains(r.dir)) out.push_back(&r);
    for (const auto& r : listing_.runs)
        if (dirs.contains(r.dir)) out.push_back(&r);
    return out;
}

const SweepEntry* RunsPanel::selectedSweep() const {
    for (auto* item : tree_->selectedItems())
        if (item->data(0, kSweepRole).toBool())
            for (const auto& s : listing_.sweeps)
                if (s.dir == item->data(0, kDirRole).toString()) return &s;
    return nullptr;
}

void RunsPanel::selectRuns(const QStringList& dirs) {
    tree_->clearSelection();
    for (QTreeWidgetItemIterator it(tree_); *it; ++it)
        if (!(*it)->data(0, kSweepRole).toBool() && dirs.contains((*it)->data(0, kDirRole).toString())) (*it)->setSelected(true);
}

void RunsPanel::selectSweep(const QString& name) {
    tree_->clearSelection();
    for (int i = 0; i < tree_->topLevelItemCount(); ++i) {
        auto* item = tree_->topLevelItem(i);
        if (item->data(0, kSweepRole).toBool() && item->text(0) == "sweep " + name) item->setSelected(true);
    }
}

void RunsPanel::replot() {
    plot_->clearPlottables();
    plot_->xAxis->setScaleType(QCPAxis::stLinear);
    plot_->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    if (const SweepEntry* s = selectedSweep()) {
        plotSweep(*s);
    } else {
        const auto runs = selectedRuns();
        sweepXLabel_->hide();
        sweepX_->hide();
        if (runs.isEmpty()) {
            mode_.clear();
            plot_->xAxis->setLabel("Select runs to compare their curves, or a sweep to plot a metric against a swept key");
            plot_->yAxis->setLabel(QString());
        } else {
            plotOverlay(runs);
        }
    }
    plot_->replot();
}

void RunsPanel::plotOverlay(const QVector<const RunEntry*>& runs) {
    mode_ = "overlay";
    const QString m = metric();
    int i = 0;
    for (const RunEntry* r : runs) {
        const auto curves = readRunCurves(r->dir);
        const auto c = curves.value(m);
        auto* g = plot_->addGraph();
        g->setData(c.first, c.second, true);
        g->setPen(QPen(lineColour(i++), 1.8));
        g->setName((r->sweep.isEmpty() ? QString() : r->sweep + "/") + r->name + (c.first.isEmpty() ? "  (no " + m + ")" : QString()));
    }
    plot_->xAxis->setLabel("step");
    plot_->yAxis->setLabel(m);
    plot_->rescaleAxes();
    plot_->yAxis->scaleRange(1.08);
}

void RunsPanel::plotSweep(const SweepEntry& s) {
    mode_ = "sweep";
    sweepXLabel_->show();
    sweepX_->show();
    if (QStringList(s.axes) != [this] {
            QStringList l;
            for (int i = 0; i < sweepX_->count(); ++i) l << sweepX_->itemText(i);
            return l;
        }()) {
        rebuilding_ = true;
        sweepX_->clear();
        sweepX_->addItems(s.axes);
        int pick = 0;
        for (int i = 0; i < s.axes.size(); ++i)
            if (s.axes[i] != "seed") {
                pick = i;
                break;
            }
        sweepX_->setCurrentIndex(pick);
        rebuilding_ = false;
    }
    const QString x = sweepX_->currentText(), m = metric();
    // x values: numbers when every one parses, else categories in plan order.
    bool numeric = true;
    QStringList categories;
    for (const auto& v : s.values) {
        bool ok = false;
        v.value(x).toDouble(&ok);
        numeric = numeric && ok;
        if (!categories.contains(v.value(x))) categories << v.value(x);
    }
    auto xOf = [&](const QString& text) { return numeric ? text.toDouble() : double(categories.indexOf(text)); };
    // One line per setting of the other keys, seeds averaged.
    QMap<QString, QMap<double, QVector<double>>> lines;
    QStringList order;
    for (int i = 0; i < s.points.size(); ++i) {
        const double y = s.points[i].final(m, NAN);
        if (!std::isfinite(y)) continue;
        QStringList label;
        for (const auto& k : s.axes)
            if (k != x && k != "seed") label << k.section('.', -1) + "=" + s.values[i].value(k);
        const QString key = label.isEmpty() ? QString("all points") : label.join(", ");
        if (!order.contains(key)) order << key;
        lines[key][xOf(s.values[i].value(x))].push_back(y);
    }
    int colour = 0;
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& key : order) {
        QVector<double> mx, my, dx, dy;
        for (auto it = lines[key].begin(); it != lines[key].end(); ++it) {
            double sum = 0;
            for (double v : it.value()) sum += v, dx << it.key(), dy << v;
            mx << it.key();
            my << sum / it.value().size();
            lo = std::min(lo, it.key());
            hi = std::max(hi, it.key());
        }
        const QColor c = lineColour(colour++);
        auto* mean = plot_->addGraph();
        mean->setData(mx, my, true);
        mean->setPen(QPen(c, 2));
        mean->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 6));
        mean->setName(key);
        auto* dots = plot_->addGraph();
        dots->setData(dx, dy, true);
        dots->setLineStyle(QCPGraph::lsNone);
        dots->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(c, 1), Qt::NoBrush, 5));
        dots->removeFromLegend();
    }
    // Few values: a tick at each, labelled as the sweep file wrote it; many: the axis's own ticks.
    if (!numeric || categories.size() <= 12) {
        QSharedPointer<QCPAxisTickerText> ticks(new QCPAxisTickerText);
        for (int i = 0; i < categories.size(); ++i) ticks->addTick(xOf(categories[i]), categories[i]);
        plot_->xAxis->setTicker(ticks);
    }
    if (numeric && lo > 0 && hi / lo >= 20) {  // paired counts, learning rates: a log axis reads them
        plot_->xAxis->setScaleType(QCPAxis::stLogarithmic);
        if (categories.size() > 12) plot_->xAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    }
    plot_->xAxis->setLabel(x + (s.axes.contains("seed") && x != "seed" ? "   (line: mean over seeds; circles: each seed)" : QString()));
    plot_->yAxis->setLabel(m + " (final)");
    plot_->rescaleAxes();
    plot_->yAxis->scaleRange(1.15);  // room for the dots at both ends
    const QCPRange r = plot_->xAxis->range();
    if (plot_->xAxis->scaleType() == QCPAxis::stLogarithmic) plot_->xAxis->setRange(r.lower / 1.3, r.upper * 1.3);
    else plot_->xAxis->setRange(r.lower - 0.05 * (r.size() + 1), r.upper + 0.05 * (r.size() + 1));
}

}  // namespace gw::studio

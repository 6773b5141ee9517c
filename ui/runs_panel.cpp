// SPDX-License-Identifier: GPL-3.0-or-later
#include "ui/runs_panel.h"

#include <QComboBox>
#include <QDateTime>
#include <QDir>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMap>
#include <QScrollBar>
#include <QSet>
#include <QSplitter>
#include <QStyle>
#include <QToolButton>
#include <QTreeWidget>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include <algorithm>
#include <cmath>

#include "ui/attention_levels_plot.h"
#include "ui/plot_when_shown.h"

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

bool sameValue(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

/// Whether two reads of a run folder show the same row and plot.
bool sameRun(const RunEntry& a, const RunEntry& b) {
    if (a.name != b.name || a.sweep != b.sweep || a.state != b.state || a.step != b.step || a.totalSteps != b.totalSteps ||
        a.error != b.error || a.differs != b.differs || a.finals.size() != b.finals.size())
        return false;
    for (int i = 0; i < a.finals.size(); ++i)
        if (a.finals[i].first != b.finals[i].first || !sameValue(a.finals[i].second, b.finals[i].second)) return false;
    return true;
}

/// The rows a listing makes, in order: each sweep, its points, then the runs.
QStringList rowsOf(const RunsListing& l) {
    QStringList rows;
    for (const auto& s : l.sweeps) {
        rows << s.dir;
        for (const auto& r : s.points) rows << r.dir;
    }
    for (const auto& r : l.runs) rows << r.dir;
    return rows;
}

/// A metrics.csv's size and time (ms), -1 when there is none: whether the curves read from it are current.
QPair<qint64, qint64> csvStamp(const QString& dir) {
    const QFileInfo f(dir + "/metrics.csv");
    return f.exists() ? qMakePair(f.size(), f.lastModified().toMSecsSinceEpoch()) : qMakePair(qint64(-1), qint64(-1));
}

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
    // Widths from the font, so that headings and states are never cut; "Differs" takes the rest of the
    // width, never less than its heading (fitColumns), and a narrow tab scrolls sideways instead.
    tree_->header()->setStretchLastSection(false);
    tree_->header()->setSectionResizeMode(QHeaderView::Interactive);
    const QFontMetrics fm(tree_->header()->font());
    const int pad = 2 * fm.averageCharWidth() + 2 * style()->pixelMetric(QStyle::PM_HeaderMargin);
    tree_->setColumnWidth(0, std::max(320, 28 * fm.averageCharWidth()));
    tree_->setColumnWidth(1, std::max({fm.horizontalAdvance("State"), fm.horizontalAdvance("interrupted"),
                                       fm.horizontalAdvance("000/000 finished")}) + pad);
    tree_->setColumnWidth(2, std::max(fm.horizontalAdvance("Step"), fm.horizontalAdvance("00000/00000")) + pad);
    tree_->viewport()->installEventFilter(this);
    connect(tree_->header(), &QHeaderView::sectionResized, this, [this](int column) {
        if (fitting_) return;
        if (column == 0) runSizedByUser_ = true;  // the user's width from now on
        if (column != 3) fitColumns();
    });
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
    replotOnlyWhenShown(plot_);
    plotLayout->addWidget(plot_, 1);
    // One attention run selected: its scores against the corruption level (its last validation sweep).
    levels_ = new AttentionLevelsPlot;
    levels_->setMinimumHeight(200);
    levels_->hide();
    plotLayout->addWidget(levels_, 1);
    split->addWidget(plotBox);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 1);
    layout->addWidget(split, 1);
    status_ = new QLabel;
    status_->setWordWrap(true);
    layout->addWidget(status_);

    scanner_ = new QObject;
    scanner_->moveToThread(&scanThread_);
    connect(&scanThread_, &QThread::finished, scanner_, &QObject::deleteLater);
    scanThread_.setObjectName("runs-scan");
    scanThread_.start(QThread::LowPriority);

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
        updateMetricColumn();
        replot();
    });
    connect(sweepX_, &QComboBox::currentTextChanged, this, [this] {
        if (!rebuilding_) replot();
    });
    sweepXLabel_->hide();
    sweepX_->hide();
}

RunsPanel::~RunsPanel() {
    // The child widgets outlive this class's members (QWidget's destructor deletes them and moves the
    // focus): none of their signals may reach this panel any more.
    timer_.stop();
    for (QObject* child : findChildren<QObject*>()) disconnect(child, nullptr, this, nullptr);
    tree_->viewport()->removeEventFilter(this);
    plot_->removeEventFilter(this);
    // A read under way ends first; what it posts back is dropped with this object.
    scanThread_.quit();
    scanThread_.wait();
}

void RunsPanel::setFolder(const QString& folder) {
    folder_->setText(QDir::cleanPath(folder));
    if (listing_.folder != folder_->text()) status_->setText("Reading " + folder_->text() + "…");
    refresh();
}

QString RunsPanel::folder() const { return folder_->text(); }

void RunsPanel::setBase(const QString& yaml, const QString& baseDir) {
    baseYaml_ = yaml;
    baseDir_ = baseDir;
}

void RunsPanel::showEvent(QShowEvent* e) {
    QWidget::showEvent(e);
    if (plotStale_) replot();
    fitColumns();
    refresh();
    timer_.start();
}

bool RunsPanel::eventFilter(QObject* watched, QEvent* e) {
    if (watched == tree_->viewport() && e->type() == QEvent::Resize) fitColumns();
    return QWidget::eventFilter(watched, e);
}

void RunsPanel::fitColumns() {
    if (fitting_) return;
    fitting_ = true;
    QHeaderView* h = tree_->header();
    const QFontMetrics fm(h->font());
    const int pad = 2 * fm.averageCharWidth() + 2 * style()->pixelMetric(QStyle::PM_HeaderMargin);
    // The metric's column: its name whole ("val/translation_image_to_label_accuracy"), set when the
    // metric changes (the user may widen it meanwhile).
    if (fittedMetric_ != tree_->headerItem()->text(4)) {
        fittedMetric_ = tree_->headerItem()->text(4);
        tree_->setColumnWidth(4, std::max(fm.horizontalAdvance(fittedMetric_), fm.horizontalAdvance("-0.0000e-00")) + pad);
    }
    // When the tab is narrow the Run column gives up width first (down to 24 characters, unless the
    // user sized it), then "Differs" down to its heading; below that the list scrolls sideways.
    const int width = tree_->viewport()->width();
    const int fixed = h->sectionSize(1) + h->sectionSize(2) + h->sectionSize(4);
    const int differsMin = fm.horizontalAdvance(tree_->headerItem()->text(3)) + pad;
    if (!runSizedByUser_)
        tree_->setColumnWidth(0, std::clamp(width - fixed - differsMin, 24 * fm.averageCharWidth(), std::max(320, 28 * fm.averageCharWidth())));
    tree_->setColumnWidth(3, std::max(differsMin, width - fixed - h->sectionSize(0)));
    fitting_ = false;
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
    if (scanning_) {  // one read at a time; this one follows
        again_ = true;
        return;
    }
    scanning_ = true;
    const QString folder = folder_->text(), yaml = baseYaml_, baseDir = baseDir_;
    // The plotted runs' curves are read there too, when their metrics.csv changed since.
    QHash<QString, QPair<qint64, qint64>> known;
    for (const RunEntry* r : selectedRuns()) {
        const auto it = curves_.constFind(r->dir);
        known.insert(r->dir, it == curves_.constEnd() ? qMakePair(qint64(-2), qint64(-2)) : qMakePair(it->size, it->time));
    }
    QMetaObject::invokeMethod(
        scanner_,
        [this, folder, yaml, baseDir, known, last = lastScan_] {
            Scan scan;
            scan.listing = listRuns(folder, yaml, baseDir);
            const RunsListing& l = scan.listing;
            // What changed since the last read: the rows to update (the GUI thread touches only those).
            QHash<QString, const RunEntry*> was;
            QHash<QString, const SweepEntry*> wasSweep;
            for (const auto& sw : last->sweeps) {
                wasSweep.insert(sw.dir, &sw);
                for (const auto& r : sw.points) was.insert(r.dir, &r);
            }
            for (const auto& r : last->runs) was.insert(r.dir, &r);
            QSet<QString> listed;
            auto compare = [&](const RunEntry& r) {
                listed.insert(r.dir);
                const RunEntry* before = was.value(r.dir);
                const bool changed = !before || !sameRun(*before, r);
                if (changed) scan.changed.insert(r.dir);
                return changed;
            };
            for (const auto& sw : l.sweeps) {
                listed.insert(sw.dir);
                const SweepEntry* before = wasSweep.value(sw.dir);
                bool changed = !before || before->axes != sw.axes || before->points.size() != sw.points.size();
                for (const auto& r : sw.points) changed = compare(r) || changed;
                if (changed) scan.changed.insert(sw.dir);
            }
            for (const auto& r : l.runs) compare(r);
            for (auto it = was.begin(); it != was.end(); ++it)
                if (!listed.contains(it.key())) scan.changed.insert(it.key());
            for (auto it = wasSweep.begin(); it != wasSweep.end(); ++it)
                if (!listed.contains(it.key())) scan.changed.insert(it.key());
            scan.sameRows = last->folder == l.folder && rowsOf(*last) == rowsOf(l);
            // The metrics any run logged, in first-seen order, validation first.
            QSet<QString> seen;
            auto collect = [&](const RunEntry& r) {
                for (const auto& [k, v] : r.finals)
                    if (!seen.contains(k)) seen.insert(k), scan.metrics << k;
            };
            for (const auto& sw : l.sweeps)
                for (const auto& r : sw.points) collect(r);
            for (const auto& r : l.runs) collect(r);
            std::stable_sort(scan.metrics.begin(), scan.metrics.end(), [](const QString& a, const QString& b) {
                return a.startsWith("val/") && !b.startsWith("val/");
            });
            for (auto it = known.begin(); it != known.end(); ++it) {
                const auto stamp = csvStamp(it.key());
                if (stamp == it.value()) continue;
                CurveSlot c;
                c.size = stamp.first;
                c.time = stamp.second;
                c.curves = readRunCurves(it.key());
                scan.curves.insert(it.key(), std::move(c));
            }
            *last = scan.listing;
            // Queued to this panel's thread; dropped if the panel is gone (its destructor waits for us).
            QMetaObject::invokeMethod(
                this, [this, scan = std::move(scan)]() mutable { applyScan(std::move(scan)); }, Qt::QueuedConnection);
        },
        Qt::QueuedConnection);
}

bool RunsPanel::waitForRefresh(int timeoutMs) {
    QElapsedTimer t;
    t.start();
    while (isRefreshing() && t.elapsed() < timeoutMs) {
        QEventLoop loop;
        connect(this, &RunsPanel::refreshed, &loop, &QEventLoop::quit);
        QTimer::singleShot(int(std::max<qint64>(1, timeoutMs - t.elapsed())), &loop, &QEventLoop::quit);
        loop.exec();
    }
    return !isRefreshing();
}

void RunsPanel::applyScan(Scan scan) {
    scanning_ = false;
    for (auto it = scan.curves.begin(); it != scan.curves.end(); ++it) curves_.insert(it.key(), std::move(it.value()));
    if (scan.listing.folder != folder_->text()) {  // read before the folder changed: read the new one
        lastApplied_ = false;
        again_ = false;
        refresh();
        return;
    }
    // The same rows as shown, in the same order: only the changed ones are touched.
    const bool quick = lastApplied_ && scan.sameRows;
    lastApplied_ = true;
    RunsListing old = std::move(listing_);
    listing_ = std::move(scan.listing);
    // The metric chosen is kept while it is offered.
    QStringList shown;
    for (int i = 0; i < metric_->count(); ++i) shown << metric_->itemText(i);
    const QString before = metric();
    if (scan.metrics != shown) {
        QString keep = before;
        if (keep.isEmpty()) keep = scan.metrics.contains("val/loss") ? "val/loss" : scan.metrics.value(0);
        rebuilding_ = true;
        metric_->clear();
        metric_->addItems(scan.metrics);
        metric_->setCurrentIndex(std::max(0, int(scan.metrics.indexOf(keep))));
        rebuilding_ = false;
    }
    const bool metricChanged = metric() != before;
    if (tree_->headerItem()->text(4) != metric()) {
        tree_->headerItem()->setText(4, metric());
        fitColumns();
    }

    const QString modeBefore = mode_;
    QSet<QString> plottedBefore;
    for (auto* item : tree_->selectedItems()) plottedBefore.insert(item->data(0, kDirRole).toString());
    QSet<QString> changed;
    if (quick) {
        changed = scan.changed;
        updateRows(changed);
        if (metricChanged) updateMetricColumn();
    } else {
        changed = updateTree(old, metricChanged);
    }
    // Replot only when what the plot shows changed: the selection, a plotted run, the selected sweep.
    QSet<QString> plotted;
    for (auto* item : tree_->selectedItems()) plotted.insert(item->data(0, kDirRole).toString());
    bool again = metricChanged || plotted != plottedBefore || modeBefore.isEmpty() != plotted.isEmpty();
    for (const QString& d : plotted) again = again || changed.contains(d) || scan.curves.contains(d);
    if (const SweepEntry* s = selectedSweep())
        for (const auto& r : s->points) again = again || changed.contains(r.dir);
    if (again) replot();
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
    if (again_) {
        again_ = false;
        refresh();
    }
}

void RunsPanel::fillItem(QTreeWidgetItem* item, const RunEntry& r) {
    item->setText(0, r.name);
    item->setData(0, kDirRole, r.dir);
    item->setData(0, kSweepRole, false);
    item->setToolTip(0, r.dir);
    item->setText(1, r.state.isEmpty() ? "—" : r.state);
    item->setForeground(1, stateColour(r.state));
    item->setToolTip(1, r.error);
    item->setText(2, r.totalSteps > 0 ? QString("%1/%2").arg(r.step).arg(r.totalSteps) : QString());
    item->setText(3, r.differs.join(", "));
    item->setToolTip(3, r.differs.join("\n"));
    item->setText(4, number(r.final(metric(), NAN)));
    item->setTextAlignment(2, Qt::AlignRight | Qt::AlignVCenter);
    item->setTextAlignment(4, Qt::AlignRight | Qt::AlignVCenter);
}

void RunsPanel::fillSweepItem(QTreeWidgetItem* top, const SweepEntry& s) {
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
    // "178/200 finished" (the failed points are red below); every state's count in the tooltip.
    top->setText(1, QString("%1/%2 finished").arg(counts.value("finished")).arg(s.points.size()));
    top->setToolTip(1, tally.join("\n"));
    top->setText(2, QString("%1 points").arg(s.points.size()));
    top->setText(3, "axes: " + s.axes.join(", "));
}

void RunsPanel::updateMetricColumn() {
    tree_->headerItem()->setText(4, metric());
    fitColumns();
    auto fill = [&](const RunEntry& r) {
        if (auto* item = items_.value(r.dir)) item->setText(4, number(r.final(metric(), NAN)));
    };
    for (const auto& s : listing_.sweeps)
        for (const auto& r : s.points) fill(r);
    for (const auto& r : listing_.runs) fill(r);
}

void RunsPanel::updateRows(const QSet<QString>& changed) {
    if (changed.isEmpty()) return;
    rebuilding_ = true;
    for (const auto& s : listing_.sweeps) {
        if (!changed.contains(s.dir)) continue;  // a sweep is marked when any of its points is
        if (QTreeWidgetItem* item = items_.value(s.dir)) fillSweepItem(item, s);
        for (const auto& r : s.points)
            if (changed.contains(r.dir))
                if (QTreeWidgetItem* item = items_.value(r.dir)) fillItem(item, r);
    }
    for (const auto& r : listing_.runs)
        if (changed.contains(r.dir))
            if (QTreeWidgetItem* item = items_.value(r.dir)) fillItem(item, r);
    rebuilding_ = false;
}

void RunsPanel::forget(QTreeWidgetItem* item) {
    for (int i = 0; i < item->childCount(); ++i) forget(item->child(i));
    const QString dir = item->data(0, kDirRole).toString();
    if (items_.value(dir) == item) items_.remove(dir);
}

bool RunsPanel::placeChildren(QTreeWidgetItem* parent, const QVector<QTreeWidgetItem*>& want) {
    bool moved = false;
    const QSet<QTreeWidgetItem*> wanted(want.begin(), want.end());
    for (int i = parent->childCount() - 1; i >= 0; --i) {
        QTreeWidgetItem* c = parent->child(i);
        if (wanted.contains(c)) continue;
        parent->takeChild(i);
        forget(c);
        delete c;
        moved = true;
    }
    for (int i = 0; i < want.size(); ++i) {
        if (i < parent->childCount() && parent->child(i) == want[i]) continue;
        QTreeWidgetItem* w = want[i];
        moved = true;
        if (!w->parent() && !w->treeWidget()) {
            // New rows side by side go in at once (one insertion for the view, not one per row).
            QList<QTreeWidgetItem*> fresh;
            for (int j = i; j < want.size() && !want[j]->parent() && !want[j]->treeWidget(); ++j) fresh << want[j];
            parent->insertChildren(i, fresh);
            i += int(fresh.size()) - 1;
            continue;
        }
        QTreeWidgetItem* from = w->parent() ? w->parent() : w->treeWidget()->invisibleRootItem();
        from->takeChild(from->indexOfChild(w));
        parent->insertChild(i, w);
    }
    return moved;
}

QSet<QString> RunsPanel::updateTree(const RunsListing& old, bool metricChanged) {
    QHash<QString, const RunEntry*> was;
    QHash<QString, const SweepEntry*> wasSweep;
    for (const auto& s : old.sweeps) {
        wasSweep.insert(s.dir, &s);
        for (const auto& r : s.points) was.insert(r.dir, &r);
    }
    for (const auto& r : old.runs) was.insert(r.dir, &r);
    // What the view shows now, to keep across rows that move.
    QSet<QString> selected, expanded;
    for (auto* item : tree_->selectedItems()) selected.insert(item->data(0, kDirRole).toString());
    for (int i = 0; i < tree_->topLevelItemCount(); ++i)
        if (tree_->topLevelItem(i)->isExpanded()) expanded.insert(tree_->topLevelItem(i)->data(0, kDirRole).toString());
    const QString current = tree_->currentItem() ? tree_->currentItem()->data(0, kDirRole).toString() : QString();
    const QTreeWidgetItem* topItem = tree_->verticalScrollBar()->value() > 0 ? tree_->itemAt(QPoint(1, 1)) : nullptr;
    const QString topRow = topItem ? topItem->data(0, kDirRole).toString() : QString();
    const int topY = topItem ? tree_->visualItemRect(topItem).top() : 0;
    const bool first = items_.isEmpty() || old.folder != listing_.folder;

    rebuilding_ = true;
    QSet<QString> changed;
    QSet<QTreeWidgetItem*> added;
    // The row of `dir`, a new one (not yet in the tree) when there is none or it is of the other kind.
    auto rowOf = [&](const QString& dir, bool sweep) {
        QTreeWidgetItem* item = items_.value(dir);
        if (item && item->data(0, kSweepRole).toBool() != sweep) item = nullptr;  // dropped by placeChildren
        if (!item) {
            item = new QTreeWidgetItem;
            items_.insert(dir, item);
            added.insert(item);
            changed.insert(dir);
        }
        return item;
    };
    auto runRow = [&](const RunEntry& r) {
        QTreeWidgetItem* item = rowOf(r.dir, false);
        const RunEntry* before = was.value(r.dir);
        if (added.contains(item) || !before || !sameRun(*before, r)) {
            fillItem(item, r);
            changed.insert(r.dir);
        } else if (metricChanged) {
            item->setText(4, number(r.final(metric(), NAN)));
        }
        return item;
    };
    bool moved = false;
    QVector<QTreeWidgetItem*> top;
    for (const auto& s : listing_.sweeps) {
        QTreeWidgetItem* item = rowOf(s.dir, true);
        const SweepEntry* before = wasSweep.value(s.dir);
        QVector<QTreeWidgetItem*> points;
        for (const auto& r : s.points) points << runRow(r);
        bool same = before && before->axes == s.axes && before->points.size() == s.points.size();
        for (int i = 0; same && i < s.points.size(); ++i) same = sameRun(before->points[i], s.points[i]);
        if (added.contains(item) || !same) {
            fillSweepItem(item, s);
            changed.insert(s.dir);
        }
        moved = placeChildren(item, points) || moved;
        top << item;
    }
    for (const auto& r : listing_.runs) top << runRow(r);
    for (auto it = was.begin(); it != was.end(); ++it)
        if (!items_.contains(it.key())) changed.insert(it.key());
    moved = placeChildren(tree_->invisibleRootItem(), top) || moved;
    for (auto it = wasSweep.begin(); it != wasSweep.end(); ++it)
        if (!items_.contains(it.key())) changed.insert(it.key());

    if (moved) {
        // Rows taken out and put back lose their selection and expansion: give them back.
        for (int i = 0; i < tree_->topLevelItemCount(); ++i) {
            QTreeWidgetItem* item = tree_->topLevelItem(i);
            if (!item->data(0, kSweepRole).toBool()) continue;
            const QString dir = item->data(0, kDirRole).toString();
            const bool open = added.contains(item) ? first : expanded.contains(dir);
            if (item->isExpanded() != open) item->setExpanded(open);
        }
        for (QTreeWidgetItemIterator it(tree_); *it; ++it) {
            const bool want = selected.contains((*it)->data(0, kDirRole).toString());
            if ((*it)->isSelected() != want) (*it)->setSelected(want);
        }
        if (!current.isEmpty())
            if (QTreeWidgetItem* item = items_.value(current); item && item != tree_->currentItem())
                tree_->setCurrentItem(item, 0, QItemSelectionModel::NoUpdate);
        // The row at the top of the view stays there (unless the view was at the very top).
        if (QTreeWidgetItem* item = items_.value(topRow); item && tree_->visualItemRect(item).top() != topY)
            tree_->scrollToItem(item, QAbstractItemView::PositionAtTop);
    }
    rebuilding_ = false;
    return changed;
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
    rebuilding_ = true;  // one replot, not one per row
    tree_->clearSelection();
    for (const QString& d : dirs)
        if (QTreeWidgetItem* item = items_.value(d); item && !item->data(0, kSweepRole).toBool()) item->setSelected(true);
    rebuilding_ = false;
    replot();
}

void RunsPanel::selectSweep(const QString& name) {
    rebuilding_ = true;
    tree_->clearSelection();
    for (int i = 0; i < tree_->topLevelItemCount(); ++i) {
        auto* item = tree_->topLevelItem(i);
        if (item->data(0, kSweepRole).toBool() && item->text(0) == "sweep " + name) item->setSelected(true);
    }
    rebuilding_ = false;
    replot();
}

const RunsPanel::Curves& RunsPanel::curvesOf(const QString& dir) {
    auto it = curves_.find(dir);
    if (it == curves_.end()) {  // just selected: read now (the worker keeps it current from then on)
        const auto stamp = csvStamp(dir);
        CurveSlot c;
        c.size = stamp.first;
        c.time = stamp.second;
        c.curves = readRunCurves(dir);
        it = curves_.insert(dir, std::move(c));
    }
    return it->curves;
}

void RunsPanel::replot() {
    if (!plot_->isVisible()) {  // painted when shown: a plot never shown has no size to paint on
        plotStale_ = true;
        return;
    }
    plotStale_ = false;
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
    // No empty legend box when nothing is plotted.
    plot_->legend->setVisible(plot_->legend->itemCount() > 0);
    const auto chosen = selectedSweep() ? QVector<const RunEntry*>() : selectedRuns();
    if (chosen.size() == 1) levels_->setFinals(chosen.front()->finals);
    else levels_->clear();
    levels_->setVisible(levels_->hasData());
    // Keep the curves of the runs plotted only.
    QSet<QString> plotted;
    for (const RunEntry* r : selectedRuns()) plotted.insert(r->dir);
    for (auto it = curves_.begin(); it != curves_.end();) it = plotted.contains(it.key()) ? std::next(it) : curves_.erase(it);
    plot_->replot();
}

void RunsPanel::plotOverlay(const QVector<const RunEntry*>& runs) {
    mode_ = "overlay";
    const QString m = metric();
    int i = 0;
    for (const RunEntry* r : runs) {
        const auto c = curvesOf(r->dir).value(m);
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


// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file runs_panel.h
/// The Runs tab: the run folders and sweep folders under the runs folder (name, state, step, the keys
/// that differ from the experiment in the form, a chosen final metric), refreshed while shown; the
/// curves of the selected runs overlaid, one colour per run; for a selected sweep, a chosen final
/// metric against a swept key, one line per setting of the other keys (seeds averaged, each seed a dot).
/// Reads through ui/bridge/runs_listing.h, on a worker thread: the GUI thread only updates the rows
/// whose run changed, and keeps the selection, the expanded sweeps and the scroll position.
#include <QHash>
#include <QSet>
#include <QStringList>
#include <QThread>
#include <QTimer>
#include <QWidget>

#include <memory>

#include "ui/bridge/runs_listing.h"

class QComboBox;
class QCustomPlot;
class QLabel;
class QLineEdit;
class QTreeWidget;
class QTreeWidgetItem;

namespace gw::studio {

class AttentionLevelsPlot;

class RunsPanel : public QWidget {
    Q_OBJECT
public:
    explicit RunsPanel(QWidget* parent = nullptr);
    ~RunsPanel() override;
    /// The folder listed (a runs folder, or any parent of run and sweep folders).
    void setFolder(const QString& folder);
    QString folder() const;
    /// The experiment that "differs" is measured against (the form's text and its folder).
    void setBase(const QString& yaml, const QString& baseDir);
    /// Reads the folder again on the worker thread (also every 2 s while the panel is shown) and shows
    /// it when read (refreshed()); a refresh asked for while one is under way runs after it.
    void refresh();
    /// True from refresh() until what it read is shown (and any refresh asked for meanwhile too).
    bool isRefreshing() const { return scanning_ || again_; }
    /// Runs the event loop until no refresh is under way, at most `timeoutMs`; false on timeout.
    bool waitForRefresh(int timeoutMs = 30000);

    /// Selects these run folders (absolute paths) and nothing else; the overlay follows.
    void selectRuns(const QStringList& dirs);
    /// Selects the sweep folder named `name`; the sweep view follows.
    void selectSweep(const QString& name);
    /// The metric shown in the list's last column and plotted ("val/loss" by default when present).
    void setMetric(const QString& metric);
    QString metric() const;
    /// The sweep view's x axis: one of the sweep's keys.
    void setSweepX(const QString& key);

    /// What the list shows (the last refresh shown).
    const RunsListing& listing() const { return listing_; }
    QTreeWidget* tree() const { return tree_; }
    /// The plot of the one selected attention run's scores against the corruption level (hidden for
    /// any other selection).
    AttentionLevelsPlot* attentionLevels() const { return levels_; }
    QCustomPlot* plot() const { return plot_; }
    /// What the plot shows: "overlay" (runs), "sweep", or "" (nothing selected).
    QString plotMode() const { return mode_; }

Q_SIGNALS:
    /// Double-click on a run: explore its checkpoint.
    void exploreRequested(const QString& checkpoint);
    /// A refresh has been shown (the list, the plot and the status line are up to date).
    void refreshed();

protected:
    void showEvent(QShowEvent* e) override;
    void hideEvent(QHideEvent* e) override;
    bool eventFilter(QObject* watched, QEvent* e) override;

private:
    using Curves = QHash<QString, QPair<QVector<double>, QVector<double>>>;
    /// A run's curves and the size and time (ms) of the metrics.csv they were read from.
    struct CurveSlot {
        qint64 size = -1, time = -1;
        Curves curves;
    };
    /// What the worker read and made of it, for the GUI thread to show.
    struct Scan {
        RunsListing listing;
        QStringList metrics;     ///< every metric logged, in first-seen order, validation first
        QSet<QString> changed;   ///< folders (runs, sweep points, sweeps) added, changed or gone since the last read
        bool sameRows = false;   ///< the same rows in the same order as the last read
        QHash<QString, CurveSlot> curves;  ///< the plotted runs' curves whose metrics.csv changed
    };
    /// Shows what the worker read: the metric list, the rows that changed, the plot when what it
    /// shows changed.
    void applyScan(Scan scan);
    /// Refills the rows of `changed` (the rows are those shown, in the same order).
    void updateRows(const QSet<QString>& changed);
    /// Updates the rows from listing_ (`old`: what they showed); returns the folders whose row was
    /// added, changed or removed.
    QSet<QString> updateTree(const RunsListing& old, bool metricChanged);
    /// Makes `parent`'s children `want`, in that order, moving as few rows as it can; rows not wanted
    /// are deleted. True when a row moved, came or went.
    bool placeChildren(QTreeWidgetItem* parent, const QVector<QTreeWidgetItem*>& want);
    void forget(QTreeWidgetItem* item);
    void fillSweepItem(QTreeWidgetItem* item, const SweepEntry& s);
    void updateMetricColumn();
    /// Column widths: the metric's fits its name, "Differs" takes the rest (at least its heading).
    void fitColumns();
    void replot();
    void plotOverlay(const QVector<const RunEntry*>& runs);
    void plotSweep(const SweepEntry& sweep);
    void fillItem(QTreeWidgetItem* item, const RunEntry& r);
    QVector<const RunEntry*> selectedRuns() const;
    const SweepEntry* selectedSweep() const;
    /// A selected run's curves: from the cache, else read now.
    const Curves& curvesOf(const QString& dir);

    QLineEdit* folder_;
    QTreeWidget* tree_;
    QComboBox* metric_;
    QComboBox* sweepX_;
    QLabel* sweepXLabel_;
    QLabel* status_;
    AttentionLevelsPlot* levels_ = nullptr;  ///< one selected attention run's scores against corruption
    QCustomPlot* plot_;
    QTimer timer_;
    RunsListing listing_;
    QString baseYaml_, baseDir_, mode_;
    bool rebuilding_ = false;
    QHash<QString, QTreeWidgetItem*> items_;  ///< folder -> its row (runs, sweep points and sweeps)
    QHash<QString, CurveSlot> curves_;        ///< the curves of runs plotted, by folder
    QThread scanThread_;                      ///< reads the folder (listRuns) and the plotted runs' curves
    QObject* scanner_ = nullptr;              ///< lives on scanThread_
    bool scanning_ = false, again_ = false;
    bool lastApplied_ = false;  ///< the last read was shown (Scan::changed is relative to it)
    /// The worker's last read (touched on scanThread_ only): what Scan::changed is measured against.
    std::shared_ptr<RunsListing> lastScan_ = std::make_shared<RunsListing>();
    bool plotStale_ = false;  ///< replot asked for while the plot was hidden: done when shown
    bool fitting_ = false;
    QString fittedMetric_;  ///< the heading the metric's column was last sized for
    bool runSizedByUser_ = false;  ///< the Run column was resized by hand: fitColumns leaves it
};

}  // namespace gw::studio

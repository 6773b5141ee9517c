// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file runs_panel.h
/// The Runs tab: the run folders and sweep folders under the runs folder (name, state, step, the keys
/// that differ from the experiment in the form, a chosen final metric), refreshed while shown; the
/// curves of the selected runs overlaid, one colour per run; for a selected sweep, a chosen final
/// metric against a swept key, one line per setting of the other keys (seeds averaged, each seed a dot).
/// Reads through ui/bridge/runs_listing.h.
#include <QStringList>
#include <QTimer>
#include <QWidget>

#include "ui/bridge/runs_listing.h"

class QComboBox;
class QCustomPlot;
class QLabel;
class QLineEdit;
class QTreeWidget;
class QTreeWidgetItem;

namespace gw::studio {

class RunsPanel : public QWidget {
    Q_OBJECT
public:
    explicit RunsPanel(QWidget* parent = nullptr);
    /// The folder listed (a runs folder, or any parent of run and sweep folders).
    void setFolder(const QString& folder);
    QString folder() const;
    /// The experiment that "differs" is measured against (the form's text and its folder).
    void setBase(const QString& yaml, const QString& baseDir);
    /// Reads the folder again (also every 2 s while the panel is shown).
    void refresh();

    /// Selects these run folders (absolute paths) and nothing else; the overlay follows.
    void selectRuns(const QStringList& dirs);
    /// Selects the sweep folder named `name`; the sweep view follows.
    void selectSweep(const QString& name);
    /// The metric shown in the list's last column and plotted ("val/loss" by default when present).
    void setMetric(const QString& metric);
    QString metric() const;
    /// The sweep view's x axis: one of the sweep's keys.
    void setSweepX(const QString& key);

    const RunsListing& listing() const { return listing_; }
    QTreeWidget* tree() const { return tree_; }
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

private:
    void rebuildTree();
    void replot();
    void plotOverlay(const QVector<const RunEntry*>& runs);
    void plotSweep(const SweepEntry& sweep);
    void fillItem(QTreeWidgetItem* item, const RunEntry& r);
    QVector<const RunEntry*> selectedRuns() const;
    const SweepEntry* selectedSweep() const;

    QLineEdit* folder_;
    QTreeWidget* tree_;
    QComboBox* metric_;
    QComboBox* sweepX_;
    QLabel* sweepXLabel_;
    QLabel* status_;
    QCustomPlot* plot_;
    QTimer timer_;
    RunsListing listing_;
    QString baseYaml_, baseDir_, mode_;
    bool rebuilding_ = false;
};

}  // namespace gw::studio

// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file explorer_panel.h
/// The translation explorer: for each chosen sample and each domain, the input, its demi-cycle, its
/// translation into every other domain beside that domain's ground truth, and the cycle back, each cell
/// with its error; and a 2-D PCA of the workspace states of every domain (hover names the sample, a
/// click adds it to the grid). Fed with bridge ExploreData, live from the worker or from a checkpoint.
#include <QWidget>

#include "app/studio/bridge.h"

class QComboBox;
class QSpinBox;
class QLineEdit;
class QLabel;
class QCustomPlot;

namespace gw::studio {

/// The sample grid (paints ExploreData with the cell renderers).
class ExplorerGrid : public QWidget {
    Q_OBJECT
public:
    explicit ExplorerGrid(QWidget* parent = nullptr);
    void setData(const ExploreData& d);
    const ExploreData& data() const { return data_; }
    /// Column titles of a source domain's row: input, demi-cycle, then per other domain translation,
    /// truth and cycle.
    QStringList columns(int domain) const;
    /// The error text shown under a cell ("" when the cell has no ground truth).
    QString cellError(const QString& cell, qint64 row) const;
    QSize sizeHint() const override;

protected:
    void paintEvent(QPaintEvent*) override;

private:
    ExploreData data_;
};

class ExplorerPanel : public QWidget {
    Q_OBJECT
public:
    explicit ExplorerPanel(QWidget* parent = nullptr);

    ExploreRequest request() const;
    void setRequest(const ExploreRequest& r);
    /// Steps between refreshes while training (0: off).
    qint64 refreshEvery() const;
    void setData(const ExploreData& d);
    const ExploreData& data() const { return grid_->data(); }
    ExplorerGrid* grid() const { return grid_; }
    QCustomPlot* workspacePlot() const { return plot_; }
    /// Colour the workspace view by "class" or "domain".
    void setColourBy(const QString& what);
    /// "domain vec, sample 12, class 3": what hovering point `i` of the view shows.
    QString describePoint(int i) const;
    /// Adds a sample to the grid (as a click on the view does): switches to explicit indices.
    void addSample(qint64 index);

    bool exportGrid(const QString& path);
    bool exportWorkspace(const QString& path, int width = 900, int height = 700);
    void setStatus(const QString& text);

Q_SIGNALS:
    /// The request or the refresh interval changed (the window passes them to the worker).
    void requestChanged();
    /// Refresh asked for (from the last checkpoint when no run is going on).
    void refreshRequested();
    void openCheckpointRequested(const QString& path);

private:
    void rebuildPlot();
    int nearestPoint(const QPointF& pixel, double maxDistance) const;

    ExplorerGrid* grid_;
    QCustomPlot* plot_;
    QComboBox *split_, *mode_, *colourBy_;
    QSpinBox *count_, *seed_, *every_;
    QLineEdit* indices_;
    QLabel* status_;
};

}  // namespace gw::studio

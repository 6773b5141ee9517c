// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file explorer_panel.h
/// The translation explorer: for each chosen sample and each domain, the input, its demi-cycle, its
/// translation into every other domain beside that domain's ground truth, and the cycle back, each cell
/// with its error; optionally each sample's broadcast (a chosen subset of its domains fused and decoded
/// into every domain, shimmer-ssd's image logs); and a 2-D PCA of the workspace states of every domain (hover names the sample, a
/// click adds it to the grid). Fed with bridge ExploreData, live from the worker or from a checkpoint.
#include <QImage>
#include <QWidget>

#include "ui/bridge/bridge.h"

class QComboBox;
class QPainter;
class QScrollArea;
class QSpinBox;
class QSplitter;
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
    /// Column titles of a sample's broadcast row (empty when no broadcast was asked for): per domain,
    /// its decoding from the fused subset ("→ d") and its truth; the row's head names the subset.
    QStringList broadcastColumns() const;
    /// The error text shown under a cell ("" when the cell has no ground truth).
    QString cellError(const QString& cell, qint64 row) const;
    QSize sizeHint() const override;
    /// The width the row heads and the first `columns` columns take.
    static int widthOfColumns(int columns);
    /// The grid as it is drawn, at its size, painted without the window (exports, TensorBoard).
    QImage render() const;

protected:
    void paintEvent(QPaintEvent*) override;

private:
    void paint(QPainter& p) const;
    ExploreData data_;
};

/// One workspace-view sample as hovering shows it: its input in every domain.
class SamplePreview : public QWidget {
    Q_OBJECT
public:
    explicit SamplePreview(QWidget* parent = nullptr);
    /// Shows row `row` of the pca_input cells (-1: nothing), `highlight` = the hovered domain.
    void show(const ExploreData* data, int row, const QString& highlight);
    int row() const { return row_; }
    QSize sizeHint() const override { return {220, 110}; }

protected:
    void paintEvent(QPaintEvent*) override;

private:
    const ExploreData* data_ = nullptr;
    int row_ = -1;
    QString highlight_;
};

class ExplorerPanel : public QWidget {
    Q_OBJECT
public:
    explicit ExplorerPanel(QWidget* parent = nullptr);

    ExploreRequest request() const;
    void setRequest(const ExploreRequest& r);
    /// Steps between refreshes while training (0: off).
    qint64 refreshEvery() const;
    void setRefreshEvery(qint64 steps);
    void setData(const ExploreData& d);
    const ExploreData& data() const { return grid_->data(); }
    ExplorerGrid* grid() const { return grid_; }
    QCustomPlot* workspacePlot() const { return plot_; }
    SamplePreview* preview() const { return preview_; }
    /// What hovering point `i` does: the preview shows that sample's inputs; returns the tooltip text.
    QString hoverPoint(int i);
    /// Colour the workspace view by "class" or "domain".
    void setColourBy(const QString& what);
    /// "domain vec, sample 12, class 3": what hovering point `i` of the view shows.
    QString describePoint(int i) const;
    /// Adds a sample to the grid (as a click on the view does): switches to explicit indices.
    void addSample(qint64 index);
    /// Offers every non-empty subset of `domains` in the Broadcast-from picker (kept when unchanged).
    void offerBroadcasts(const QStringList& domains);

    bool exportGrid(const QString& path);
    /// The translation grid as it is drawn now (what exportGrid saves).
    QImage gridImage() const;
    bool exportWorkspace(const QString& path, int width = 900, int height = 700);
    void setStatus(const QString& text);
    /// The grid's scroll area (its part of the tab: the whole grid when the tab is wide enough).
    QScrollArea* gridArea() const { return scroll_; }

Q_SIGNALS:
    /// The request or the refresh interval changed (the window passes them to the worker).
    void requestChanged();
    /// Refresh asked for (from the last checkpoint when no run is going on).
    void refreshRequested();
    void openCheckpointRequested(const QString& path);

protected:
    void resizeEvent(QResizeEvent* e) override;
    void showEvent(QShowEvent* e) override;

private:
    void rebuildPlot();
    int nearestPoint(const QPointF& pixel, double maxDistance) const;
    /// Gives the grid the width of its columns (the workspace view keeps at least a usable width), until
    /// the user drags the splitter.
    void fitGrid();
    /// Replots now when the plot is shown, else when it is (plotStale_).
    void replotWhenShown();

    ExplorerGrid* grid_;
    QScrollArea* scroll_;
    QSplitter* splitter_;
    bool splitDragged_ = false;
    bool plotStale_ = false;    ///< replot asked for while the plot was hidden: done when shown
    SamplePreview* preview_;
    QCustomPlot* plot_;
    QComboBox *split_, *mode_, *colourBy_, *broadcast_;
    QSpinBox *count_, *seed_, *every_;
    QLineEdit* indices_;
    QLabel* status_;
};

}  // namespace gw::studio

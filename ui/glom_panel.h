// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file glom_panel.h
/// The GLOM tab: the islands of one image of a `model: glom` run (docs/glom.md, "Islands viewer").
/// For the chosen state (a slider over the iterations), every level, top level first, as a map of the
/// patch grid coloured by the cosine similarity of each column to the selected column (click a cell,
/// or move with the arrow keys), beside a map of each column's agreement with its 4-neighbours; above
/// them the input, the noisy input GLOM sees and the reconstruction decoded from state read_at.
#include <QImage>
#include <QWidget>

#include "ui/bridge/bridge.h"

class QComboBox;
class QLabel;
class QSlider;
class QSpinBox;

namespace gw::studio {

/// The painted part of the panel; also renders to an image for `gw explore` and TensorBoard.
class GlomIslandsView : public QWidget {
    Q_OBJECT
public:
    explicit GlomIslandsView(QWidget* parent = nullptr);
    void setData(const GlomIslands& d);
    const GlomIslands& data() const { return d_; }
    void setState(int state);
    int state() const { return state_; }
    /// The column the similarity maps compare with (row-major over the patch grid).
    void setColumn(int column);
    int column() const { return column_; }
    QSize sizeHint() const override;
    /// The view as an image (what paintEvent draws), at its size hint.
    QImage render() const;
    /// The column under a point of the view, -1 when none (for clicks; tests).
    int columnAt(const QPoint& p) const;
    /// The centre of `column`'s cell in the similarity map of `level` (tests, clicks by xdotool).
    QPoint cellCentre(int level, int column) const;

Q_SIGNALS:
    void columnChanged(int column);

protected:
    void paintEvent(QPaintEvent*) override;
    void mousePressEvent(QMouseEvent* e) override;
    void keyPressEvent(QKeyEvent* e) override;

private:
    void paint(QPainter& p) const;
    QRect mapRect(int level, int which) const;  // which: 0 similarity, 1 agreement
    int cell() const;                            // pixels per patch in the maps
    GlomIslands d_;
    int state_ = 0, column_ = -1;  // -1: the centre column once data come
};

class GlomPanel : public QWidget {
    Q_OBJECT
public:
    explicit GlomPanel(QWidget* parent = nullptr);
    /// Shows the islands of a run (`source`: "training" or a checkpoint; `step` its step).
    void setData(const GlomIslands& d, const QString& source, qint64 step);
    void setStatus(const QString& text);
    /// Adds the panel's choice (split, sample) to the explorer's request.
    void fillRequest(ExploreRequest& r) const;
    GlomIslandsView* view() const { return view_; }
    QSlider* stateSlider() const { return slider_; }
    /// Steps between renders while a run trains (0: off): the explorer's setting, shown here too.
    QSpinBox* refreshEvery() const { return every_; }

Q_SIGNALS:
    void requestChanged();
    void refreshRequested();

private:
    void updateLabels();
    GlomIslandsView* view_;
    QComboBox* split_;
    QSpinBox* sample_;
    QSpinBox* every_;
    QSlider* slider_;
    QLabel* stateLabel_;
    QLabel* status_;
    bool hasData_ = false;
};

/// A value in [-1, 1] (a cosine similarity) as the islands maps colour it: dark blue at -1 through
/// grey at 0 to yellow at 1, a ramp that reads in grey print too.
QColor similarityColour(float value);

}  // namespace gw::studio

// SPDX-License-Identifier: GPL-3.0-or-later
#include "ui/glom_panel.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QMouseEvent>
#include <QPainter>
#include <QPushButton>
#include <QScrollArea>
#include <QSlider>
#include <QSpinBox>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

namespace gw::studio {

namespace {
constexpr int kMargin = 12, kLabelW = 64, kGap = 24, kMapGap = 48, kMeanW = 66, kTitleH = 18, kRowGap = 10, kImage = 112;

/// (C, S, S) floats in [0, 1] as an image (values outside clipped).
QImage toImage(const QVector<float>& v, qint64 channels, qint64 size) {
    const int side = static_cast<int>(size);
    QImage img(side, side, QImage::Format_RGB32);
    if (v.size() != channels * size * size) {
        img.fill(Qt::lightGray);
        return img;
    }
    const qint64 plane = size * size;
    auto byte = [](float x) { return int(std::lround(std::clamp(x, 0.0f, 1.0f) * 255.0f)); };
    for (qint64 y = 0; y < size; ++y)
        for (qint64 x = 0; x < size; ++x) {
            const qint64 i = y * size + x;
            const int r = byte(v[int(i)]);
            const int g = channels == 3 ? byte(v[int(plane + i)]) : r;
            const int b = channels == 3 ? byte(v[int(2 * plane + i)]) : r;
            img.setPixel(int(x), int(y), qRgb(r, g, b));
        }
    return img;
}
}  // namespace

QColor similarityColour(float value) {
    // Stops at -1, -0.5, 0, 0.5, 1: luminance rises all the way.
    static const QColor stops[] = {QColor(25, 32, 92), QColor(58, 82, 150), QColor(140, 140, 140), QColor(214, 150, 60),
                                   QColor(255, 236, 80)};
    if (!std::isfinite(value)) return QColor(255, 0, 255);
    const float t = (std::clamp(value, -1.0f, 1.0f) + 1.0f) * 2.0f;  // 0..4
    const int i = std::min(3, int(t));
    const float f = t - float(i);
    const QColor& a = stops[i];
    const QColor& b = stops[i + 1];
    return QColor(int(a.red() + f * (b.red() - a.red())), int(a.green() + f * (b.green() - a.green())),
                  int(a.blue() + f * (b.blue() - a.blue())));
}

GlomIslandsView::GlomIslandsView(QWidget* parent) : QWidget(parent) {
    setFocusPolicy(Qt::StrongFocus);
    setAccessibleName("GLOM islands");
    setToolTip("Click a patch to compare every column with it; arrow keys move the selected column");
}

void GlomIslandsView::setData(const GlomIslands& d) {
    d_ = d;
    state_ = std::clamp<int>(state_, 0, int(d_.iterations));
    if (d_.columns() > 0)
        column_ = column_ < 0 ? int((d_.side / 2) * d_.side + d_.side / 2) : std::clamp<int>(column_, 0, int(d_.columns() - 1));
    updateGeometry();
    resize(sizeHint());
    update();
}

void GlomIslandsView::setState(int state) {
    state_ = std::clamp<int>(state, 0, int(std::max<qint64>(0, d_.iterations)));
    update();
}

void GlomIslandsView::setColumn(int column) {
    if (d_.columns() <= 0 || column < 0 || column >= d_.columns() || column == column_) return;
    column_ = column;
    update();
    Q_EMIT columnChanged(column_);
}

int GlomIslandsView::cell() const { return d_.side > 0 ? std::max<int>(6, int(kImage / d_.side)) : 16; }

QRect GlomIslandsView::mapRect(int level, int which) const {
    const int c = cell(), side = int(d_.side) * c;
    const int top = kMargin + kTitleH + kImage + 2 * kRowGap + kTitleH;
    const int row = int(d_.levels - 1 - level);  // the top level first
    const int x = kMargin + kLabelW + which * (side + kMapGap);
    return QRect(x, top + row * (side + kRowGap), side, side);
}

QSize GlomIslandsView::sizeHint() const {
    if (d_.levels <= 0) return QSize(400, 300);
    const QRect last = mapRect(0, 1);
    const int w = std::max(last.right() + kMeanW + kMargin, kMargin + 3 * kImage + 2 * kGap + kMargin);  // the means right of the maps
    return QSize(w, last.bottom() + kRowGap + 48);
}

int GlomIslandsView::columnAt(const QPoint& p) const {
    if (d_.levels <= 0) return -1;
    for (int level = 0; level < d_.levels; ++level)
        for (int which = 0; which < 2; ++which) {
            const QRect r = mapRect(level, which);
            if (!r.contains(p)) continue;
            const int c = cell();
            return ((p.y() - r.top()) / c) * int(d_.side) + (p.x() - r.left()) / c;
        }
    return -1;
}

QPoint GlomIslandsView::cellCentre(int level, int column) const {
    const QRect r = mapRect(level, 0);
    const int c = cell();
    return QPoint(r.left() + (column % int(d_.side)) * c + c / 2, r.top() + (column / int(d_.side)) * c + c / 2);
}

void GlomIslandsView::mousePressEvent(QMouseEvent* e) {
    setFocus();
    const int c = columnAt(e->position().toPoint());
    if (c >= 0) setColumn(c);
}

void GlomIslandsView::keyPressEvent(QKeyEvent* e) {
    if (d_.side <= 0) return QWidget::keyPressEvent(e);
    const int s = int(d_.side), r = column_ / s, c = column_ % s;
    switch (e->key()) {
    case Qt::Key_Left: setColumn(r * s + std::max(0, c - 1)); break;
    case Qt::Key_Right: setColumn(r * s + std::min(s - 1, c + 1)); break;
    case Qt::Key_Up: setColumn(std::max(0, r - 1) * s + c); break;
    case Qt::Key_Down: setColumn(std::min(s - 1, r + 1) * s + c); break;
    default: QWidget::keyPressEvent(e);
    }
}

void GlomIslandsView::paintEvent(QPaintEvent*) {
    QPainter p(this);
    paint(p);
}

QImage GlomIslandsView::render() const {
    QImage img(sizeHint(), QImage::Format_RGB32);
    QPainter p(&img);
    paint(p);
    return img;
}

void GlomIslandsView::paint(QPainter& p) const {
    p.fillRect(QRect(QPoint(0, 0), sizeHint()).united(rect()), palette().color(QPalette::Base));
    p.setPen(palette().color(QPalette::Text));
    if (d_.levels <= 0) {
        p.drawText(QRect(QPoint(0, 0), sizeHint()), Qt::AlignCenter | Qt::TextWordWrap,
                   "No GLOM run yet: train an experiment with model: glom,\nor double-click a GLOM run in the Runs tab");
        return;
    }
    QFont bold = p.font();
    bold.setBold(true);
    const QFont plain = p.font();
    // Input, the noisy input GLOM sees, the reconstruction.
    const QString titles[] = {QString("Input (%1 %2)").arg(d_.split).arg(d_.index), QString("Noisy, σ = %1").arg(d_.noiseStd),
                              QString("Reconstruction, state %1").arg(d_.readAt)};
    const QVector<float>* images[] = {&d_.input, &d_.noisy, &d_.reconstruction};
    for (int i = 0; i < 3; ++i) {
        const QRect r(kMargin + i * (kImage + kGap), kMargin + kTitleH, kImage, kImage);
        p.drawText(QRect(r.left() - kGap / 2, kMargin, kImage + kGap, kTitleH), Qt::AlignHCenter | Qt::AlignTop, titles[i]);
        p.drawImage(r, toImage(*images[i], d_.channels, d_.imageSize));
    }
    // One row per level, the top level first: similarity to the selected column, neighbour agreement.
    const int s = int(d_.side), c = cell();
    const int top = mapRect(int(d_.levels - 1), 0).top();
    p.setFont(bold);
    // Each title is centred on its map and gets the map's width plus the gap, so the two never meet.
    p.drawText(QRect(mapRect(0, 0).left() - kMapGap / 2, top - kTitleH, s * c + kMapGap, kTitleH), Qt::AlignHCenter | Qt::AlignBottom,
               QString("similarity to (%1, %2)").arg(column_ / s).arg(column_ % s));
    p.drawText(QRect(mapRect(0, 1).left() - kMapGap / 2, top - kTitleH, s * c + kMapGap, kTitleH), Qt::AlignHCenter | Qt::AlignBottom,
               "neighbour agreement");
    p.setFont(plain);
    for (int level = 0; level < d_.levels; ++level) {
        const QRect sim = mapRect(level, 0), agree = mapRect(level, 1);
        p.drawText(QRect(kMargin, sim.top(), kLabelW - 6, sim.height()), Qt::AlignRight | Qt::AlignVCenter,
                   level == d_.levels - 1 ? QString("level %1\n(top)").arg(level) : QString("level %1").arg(level));
        double agreeSum = 0;
        for (int col = 0; col < d_.columns(); ++col) {
            const QRect cellRect(sim.left() + (col % s) * c, sim.top() + (col / s) * c, c, c);
            p.fillRect(cellRect, similarityColour(d_.similarityAt(state_, level, column_, col)));
            const float a = d_.agreementAt(state_, level, col);
            agreeSum += a;
            p.fillRect(cellRect.translated(agree.left() - sim.left(), 0), similarityColour(a));
        }
        // The selected column, outlined in both contrasts.
        const QRect sel(sim.left() + (column_ % s) * c, sim.top() + (column_ / s) * c, c, c);
        p.setPen(QPen(Qt::black, 2));
        p.drawRect(sel.adjusted(1, 1, -1, -1));
        p.setPen(QPen(Qt::white, 1));
        p.drawRect(sel.adjusted(2, 2, -2, -2));
        p.setPen(palette().color(QPalette::Text));
        p.drawText(QRect(agree.right() + 6, agree.top(), kMeanW - 6, agree.height()), Qt::AlignLeft | Qt::AlignVCenter,
                   QString("mean\n%1").arg(agreeSum / double(d_.columns()), 0, 'f', 2));
    }
    // The colour scale.
    const QRect bar(mapRect(0, 0).left(), mapRect(0, 0).bottom() + kRowGap + 4, mapRect(0, 1).right() - mapRect(0, 0).left(), 10);
    for (int x = 0; x < bar.width(); ++x)
        p.fillRect(QRect(bar.left() + x, bar.top(), 1, bar.height()), similarityColour(-1.0f + 2.0f * float(x) / float(bar.width() - 1)));
    p.drawRect(bar.adjusted(0, 0, -1, -1));
    const QRect labels(bar.left(), bar.bottom() + 2, bar.width(), 16);
    p.drawText(labels, Qt::AlignLeft | Qt::AlignTop, "-1");
    p.drawText(labels, Qt::AlignHCenter | Qt::AlignTop, QString("cosine similarity · state %1 of %2").arg(state_).arg(d_.iterations));
    p.drawText(labels, Qt::AlignRight | Qt::AlignTop, "1");
}

GlomPanel::GlomPanel(QWidget* parent) : QWidget(parent) {
    setObjectName("GlomPanel");
    auto* bar = new QHBoxLayout;
    split_ = new QComboBox(this);
    split_->addItems({"test", "val", "train"});
    split_->setAccessibleName("GLOM split");
    sample_ = new QSpinBox(this);
    sample_->setRange(0, 9999999);
    sample_->setAccessibleName("GLOM sample");
    auto* refresh = new QPushButton("Refres&h", this);
    refresh->setToolTip("Compute the islands of this sample again (from the run, or its last checkpoint)");
    slider_ = new QSlider(Qt::Horizontal, this);
    slider_->setRange(0, 0);
    slider_->setAccessibleName("GLOM state");
    slider_->setToolTip("The state shown: 0 is the initial levels, each step one iteration");
    stateLabel_ = new QLabel(this);
    auto* splitLabel = new QLabel("&Split", this);
    splitLabel->setBuddy(split_);
    auto* sampleLabel = new QLabel("Sample &index", this);  // Alt+M is the GLOM tab's
    sampleLabel->setBuddy(sample_);
    every_ = new QSpinBox(this);
    every_->setRange(0, 1000000);
    every_->setValue(500);
    every_->setSingleStep(50);
    every_->setSpecialValueText("off");
    every_->setSuffix(" steps");
    every_->setAccessibleName("GLOM refresh every");
    every_->setToolTip("While a run trains, render the islands again every this many steps (the Explorer tab's setting too)");
    auto* everyLabel = new QLabel("&While training, every", this);
    everyLabel->setBuddy(every_);
    auto* stateName = new QLabel("S&tate", this);
    stateName->setBuddy(slider_);
    bar->addWidget(splitLabel);
    bar->addWidget(split_);
    bar->addWidget(sampleLabel);
    bar->addWidget(sample_);
    bar->addWidget(refresh);
    bar->addWidget(everyLabel);
    bar->addWidget(every_);
    bar->addSpacing(16);
    bar->addWidget(stateName);
    bar->addWidget(slider_, 1);
    bar->addWidget(stateLabel_);
    view_ = new GlomIslandsView(this);
    auto* scroll = new QScrollArea(this);
    scroll->setWidget(view_);
    scroll->setWidgetResizable(false);
    status_ = new QLabel("Train a model: glom experiment, or double-click a GLOM run in the Runs tab", this);
    status_->setWordWrap(true);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(bar);
    layout->addWidget(scroll, 1);
    layout->addWidget(status_);
    connect(slider_, &QSlider::valueChanged, this, [this](int v) {
        view_->setState(v);
        updateLabels();
    });
    connect(split_, &QComboBox::currentTextChanged, this, &GlomPanel::requestChanged);
    connect(sample_, &QSpinBox::valueChanged, this, &GlomPanel::requestChanged);
    connect(refresh, &QPushButton::clicked, this, &GlomPanel::refreshRequested);
}

void GlomPanel::setData(const GlomIslands& d, const QString& source, qint64 step) {
    const bool first = !hasData_ || slider_->maximum() != int(d.iterations);
    hasData_ = true;
    view_->setData(d);
    slider_->setRange(0, int(d.iterations));
    if (first) slider_->setValue(int(d.readAt));  // the state the reconstruction reads
    view_->setState(slider_->value());
    updateLabels();
    setStatus(QString("%1 %2 · %3, sample %4 · %5 levels of %6, %7 × %8 columns · click a patch to follow its island")
                  .arg(source == "training" ? "Training, step" : source + ", step")
                  .arg(step)
                  .arg(d.split)
                  .arg(d.index)
                  .arg(d.levels)
                  .arg(d.dim)
                  .arg(d.side)
                  .arg(d.side));
}

void GlomPanel::setStatus(const QString& text) { status_->setText(text); }

void GlomPanel::fillRequest(ExploreRequest& r) const {
    r.glomSplit = split_->currentText();
    r.glomIndices = {qint64(sample_->value())};
}

void GlomPanel::updateLabels() {
    stateLabel_->setText(QString("%1 / %2").arg(slider_->value()).arg(slider_->maximum()));
}

}  // namespace gw::studio

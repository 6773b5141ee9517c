// SPDX-License-Identifier: GPL-3.0-or-later
#include "ui/explorer_panel.h"

#include <algorithm>

#include <QComboBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPainter>
#include <QPushButton>
#include <QRegularExpression>
#include <QScrollArea>
#include <QScrollBar>
#include <QSpinBox>
#include <QSplitter>
#include <QStyle>
#include <QToolTip>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include "ui/cell_renderers.h"
#include "ui/plot_when_shown.h"
#include "ui/save_file.h"

namespace gw::studio {

namespace {
constexpr int kCell = 92, kText = 16, kGap = 6, kHeader = 20, kRowHead = 92;

QColor paletteColour(int i) {
    static const QColor colours[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
                                     {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
    return colours[((i % 10) + 10) % 10];
}

/// (cell key, truth key) of column `c` of source domain `d`.
std::pair<QString, QString> cellKeys(const ExploreData& x, int d, int c) {
    const QString src = x.domains[d];
    if (c == 0) return {"input/" + src, QString()};
    if (c == 1) return {"demi_cycle/" + src, "input/" + src};
    int k = (c - 2) / 3, part = (c - 2) % 3;
    int e = -1;
    for (int j = 0; j < x.domains.size(); ++j) {
        if (j == d) continue;
        if (k-- == 0) {
            e = j;
            break;
        }
    }
    const QString dst = x.domains.value(e);
    if (part == 0) return {"translation/" + src + "/" + dst, "input/" + dst};
    if (part == 1) return {"input/" + dst, QString()};
    return {"cycle/" + src + "/" + dst, "input/" + src};
}

QString kindOf(const ExploreData& x, const QString& key) {
    const QString domain = key.startsWith("translation/") ? key.section('/', 2, 2) : key.section('/', 1, 1);
    return x.kinds.value(x.domains.indexOf(domain));
}
}  // namespace

ExplorerGrid::ExplorerGrid(QWidget* parent) : QWidget(parent) {
    setAutoFillBackground(true);
    setBackgroundRole(QPalette::Base);
    setAccessibleName("Translation grid");
}

QStringList ExplorerGrid::columns(int d) const {
    QStringList c = {"input " + data_.domains.value(d), "demi-cycle"};
    for (int e = 0; e < data_.domains.size(); ++e) {
        if (e == d) continue;
        c << "→ " + data_.domains[e] << data_.domains[e] + " (truth)" << "cycle via " + data_.domains[e];
    }
    return c;
}

QStringList ExplorerGrid::broadcastColumns() const {
    QStringList c;
    if (data_.broadcastFrom.isEmpty()) return c;
    for (const auto& e : data_.domains) c << "→ " + e << e + " (truth)";
    return c;
}

QString ExplorerGrid::cellError(const QString& cell, qint64 row) const {
    // The ground truth of a cell: demi-cycles and cycles against their input, translations and
    // broadcasts against the target domain's input (every explored sample is paired).
    QString truth;
    if (cell.startsWith("demi_cycle/") || cell.startsWith("broadcast/")) truth = "input/" + cell.section('/', 1, 1);
    else if (cell.startsWith("cycle/")) truth = "input/" + cell.section('/', 1, 1);
    else if (cell.startsWith("translation/")) truth = "input/" + cell.section('/', 2, 2);
    if (truth.isEmpty() || !data_.cells.contains(cell) || !data_.cells.contains(truth)) return {};
    const auto& v = data_.cells[cell];
    return RendererRegistry::forKind(kindOf(data_, cell), v, data_.classNames)->error(v, row, data_.cells[truth], row);
}

void ExplorerGrid::setData(const ExploreData& d) {
    data_ = d;
    updateGeometry();
    resize(sizeHint());
    update();
}

int ExplorerGrid::widthOfColumns(int columns) { return kRowHead + columns * (kCell + kGap) + kGap; }

QSize ExplorerGrid::sizeHint() const {
    const int cols = std::max(2 + 3 * std::max(0, int(data_.domains.size()) - 1), int(broadcastColumns().size()));
    const int rows = int(data_.indices.size() * (data_.domains.size() + (data_.broadcastFrom.isEmpty() ? 0 : 1)));
    return {kRowHead + cols * (kCell + kGap) + kGap,
            rows * (kHeader + kCell + kText + kGap) + int(data_.indices.size()) * kGap + kGap};
}

void ExplorerGrid::paintEvent(QPaintEvent*) {
    QPainter p(this);
    paint(p);
}

QImage ExplorerGrid::render() const {
    // Painted directly, not grabbed: grabbing a hidden widget lays out (and so paints) the whole window.
    const qreal dpr = devicePixelRatioF();
    QImage image(size() * dpr, QImage::Format_ARGB32_Premultiplied);
    image.setDevicePixelRatio(dpr);
    QPainter p(&image);
    paint(p);
    return image;
}

void ExplorerGrid::paint(QPainter& p) const {
    p.fillRect(rect(), palette().base());
    if (data_.isEmpty() || data_.indices.isEmpty()) {
        p.drawText(rect(), Qt::AlignCenter, "No samples yet: Refresh, or start a run");
        return;
    }
    QFont small = font();
    small.setPointSizeF(std::max(6.0, small.pointSizeF() - 1.5));
    p.setFont(small);
    int y = 0;
    for (int s = 0; s < data_.indices.size(); ++s) {
        for (int d = 0; d < data_.domains.size(); ++d) {
            const QStringList titles = columns(d);
            QString head = QString("#%1\n%2").arg(data_.indices[s]).arg(data_.domains[d]);
            if (!data_.labels.isEmpty()) head += "\n" + data_.className(data_.labels.value(s));
            if (data_.uncertainty.value(d, -1) >= 0)  // variational: the spread of this domain's state
                head += QString("\nσ %1").arg(data_.uncertainty[d], 0, 'g', 3);
            p.setPen(palette().color(QPalette::Text));
            for (int c = 0; c < titles.size(); ++c)
                p.drawText(QRect(kRowHead + c * (kCell + kGap), y, kCell, kHeader - 2), Qt::AlignCenter | Qt::AlignBottom, titles[c]);
            y += kHeader;
            p.drawText(QRect(4, y, kRowHead - 8, kCell), Qt::AlignLeft | Qt::AlignVCenter, head);
            for (int c = 0; c < titles.size(); ++c) {
                const auto [key, truthKey] = cellKeys(data_, d, c);
                const QRect cell(kRowHead + c * (kCell + kGap), y, kCell, kCell);
                p.setPen(QColor(207, 216, 220));
                p.drawRect(cell.adjusted(0, 0, -1, -1));
                if (!data_.cells.contains(key)) continue;
                const auto& v = data_.cells[key];
                const auto truthAt = data_.cells.constFind(truthKey);
                const PlainTensor* truth = truthKey.isEmpty() || truthAt == data_.cells.constEnd() ? nullptr : &*truthAt;
                p.setPen(palette().color(QPalette::Text));
                RendererRegistry::forKind(kindOf(data_, key), v, data_.classNames)->paint(p, QRectF(cell).adjusted(2, 2, -2, -2), v, s, truth, s);
                const QString err = key.startsWith("input/") ? QString() : cellError(key, s);
                p.setPen(err.startsWith("wrong") ? QColor(198, 40, 40) : palette().color(QPalette::Text));
                p.drawText(QRect(cell.left(), cell.bottom() + 1, kCell, kText), Qt::AlignCenter, err);
            }
            y += kCell + kText + kGap;
        }
        // Broadcast: the fusion of the chosen domains decoded into every domain, beside its truth.
        const QStringList titles = broadcastColumns();
        if (!titles.isEmpty()) {
            p.setPen(palette().color(QPalette::Text));
            for (int c = 0; c < titles.size(); ++c)
                p.drawText(QRect(kRowHead + c * (kCell + kGap), y, kCell, kHeader - 2), Qt::AlignCenter | Qt::AlignBottom, titles[c]);
            y += kHeader;
            p.drawText(QRect(4, y, kRowHead - 8, kCell), Qt::AlignLeft | Qt::AlignVCenter,
                       QString("#%1\nbroadcast\nfrom {%2}").arg(data_.indices[s]).arg(data_.broadcastFrom.join(",")));
            for (int c = 0; c < titles.size(); ++c) {
                const QString dst = data_.domains[c / 2];
                const QString key = c % 2 == 0 ? "broadcast/" + dst : "input/" + dst;
                const QRect cell(kRowHead + c * (kCell + kGap), y, kCell, kCell);
                p.setPen(QColor(207, 216, 220));
                p.drawRect(cell.adjusted(0, 0, -1, -1));
                if (!data_.cells.contains(key)) continue;
                const auto& v = data_.cells[key];
                const auto truthAt = data_.cells.constFind("input/" + dst);
                const PlainTensor* truth = c % 2 == 0 && truthAt != data_.cells.constEnd() ? &*truthAt : nullptr;
                p.setPen(palette().color(QPalette::Text));
                RendererRegistry::forKind(kindOf(data_, key), v, data_.classNames)->paint(p, QRectF(cell).adjusted(2, 2, -2, -2), v, s, truth, s);
                const QString err = c % 2 == 0 ? cellError(key, s) : QString();
                p.setPen(err.startsWith("wrong") ? QColor(198, 40, 40) : palette().color(QPalette::Text));
                p.drawText(QRect(cell.left(), cell.bottom() + 1, kCell, kText), Qt::AlignCenter, err);
            }
            y += kCell + kText + kGap;
        }
        y += kGap;
    }
}

SamplePreview::SamplePreview(QWidget* parent) : QWidget(parent) {
    setMinimumSize(120, 110);  // its cells shrink with it: the view's side may be narrow (ExplorerPanel::fitGrid)
    setAccessibleName("Hovered sample");
}

void SamplePreview::show(const ExploreData* data, int row, const QString& highlight) {
    data_ = data;
    row_ = row;
    highlight_ = highlight;
    update();
}

void SamplePreview::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.fillRect(rect(), palette().base());
    if (!data_ || row_ < 0) {
        p.drawText(rect(), Qt::AlignCenter | Qt::TextWordWrap, "Hover a point to see its sample");
        return;
    }
    const int n = data_->domains.size();
    const int w = std::max(1, (width() - 4) / std::max(1, n));
    for (int d = 0; d < n; ++d) {
        const QString key = "pca_input/" + data_->domains[d];
        const QRect cell(2 + d * w, 16, w - 4, height() - 18);
        p.setPen(data_->domains[d] == highlight_ ? QColor(25, 118, 210) : palette().color(QPalette::Text));
        p.drawText(QRect(cell.left(), 0, cell.width(), 16), Qt::AlignCenter, data_->domains[d]);
        if (!data_->cells.contains(key) || row_ >= data_->cells[key].rows()) continue;
        const auto& v = data_->cells[key];
        p.setPen(palette().color(QPalette::Text));
        RendererRegistry::forKind(data_->kinds.value(d), v, data_->classNames)->paint(p, QRectF(cell), v, row_, nullptr, 0);
    }
}

ExplorerPanel::ExplorerPanel(QWidget* parent) : QWidget(parent) {
    split_ = new QComboBox(this);
    split_->addItems({"test", "val", "train"});
    mode_ = new QComboBox(this);
    mode_->addItem("A few per class", "per_class");
    mode_->addItem("Random (seeded)", "random");
    mode_->addItem("The first ones", "first");
    mode_->addItem("These indices", "indices");
    count_ = new QSpinBox(this);
    count_->setRange(1, 64);
    count_->setValue(1);
    seed_ = new QSpinBox(this);
    seed_->setRange(0, 1 << 30);
    indices_ = new QLineEdit(this);
    indices_->setPlaceholderText("e.g. 0, 17, 42");
    every_ = new QSpinBox(this);
    every_->setRange(0, 1000000);
    every_->setValue(500);
    every_->setSpecialValueText("off");
    every_->setSuffix(" steps");
    colourBy_ = new QComboBox(this);
    colourBy_->addItems({"class", "domain"});
    broadcast_ = new QComboBox(this);
    broadcast_->addItem("off");
    broadcast_->setToolTip("Fuse these domains of each sample and decode the state into every domain "
                           "(demi-cycle, translation or fused decoding), beside the ground truth");
    broadcast_->setAccessibleName("Broadcast from");
    auto* refresh = new QPushButton("&Refresh", this);
    auto* open = new QPushButton("Explore a chec&kpoint…", this);
    auto* exportPng = new QPushButton("E&xport grid as PNG…", this);
    status_ = new QLabel(this);
    status_->setWordWrap(true);

    auto* controls = new QHBoxLayout;
    auto* form = new QFormLayout;
    form->addRow("Split", split_);
    form->addRow("Samples", mode_);
    auto* form2 = new QFormLayout;
    form2->addRow("Count", count_);
    form2->addRow("Seed", seed_);
    auto* form3 = new QFormLayout;
    form3->addRow("Indices", indices_);
    form3->addRow("Refresh every", every_);
    form3->addRow("Broadcast from", broadcast_);
    controls->addLayout(form);
    controls->addLayout(form2);
    controls->addLayout(form3, 1);
    auto* buttons = new QVBoxLayout;
    buttons->addWidget(refresh);
    buttons->addWidget(open);
    buttons->addWidget(exportPng);
    controls->addLayout(buttons);

    grid_ = new ExplorerGrid(this);
    auto* scroll = new QScrollArea(this);
    scroll_ = scroll;
    scroll->setWidget(grid_);
    scroll->setWidgetResizable(false);
    plot_ = new QCustomPlot(this);
    plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    plot_->xAxis->setLabel("PC 1");
    plot_->yAxis->setLabel("PC 2");
    // The legend sits beside the axes, never over the points.
    // It is the top cell of a column whose second cell, empty, takes the rest of the height, so that
    // its entries keep their own height instead of spreading over the plot's.
    plot_->axisRect()->insetLayout()->take(plot_->legend);
    auto* side = new QCPLayoutGrid;
    plot_->plotLayout()->addElement(0, 1, side);
    plot_->plotLayout()->setColumnStretchFactor(1, 0.001);
    side->addElement(0, 0, plot_->legend);
    side->addElement(1, 0, new QCPLayoutElement(plot_));
    side->setRowStretchFactor(0, 0.001);
    side->setRowStretchFactor(1, 1);
    side->setRowSpacing(0);
    plot_->legend->setFont(QFont(font().family(), 8));
    plot_->legend->setRowSpacing(0);
    plot_->legend->setVisible(true);
    plot_->setMouseTracking(true);
    replotOnlyWhenShown(plot_);
    plot_->setAccessibleName("Workspace view (PCA)");
    auto* right = new QWidget(this);
    auto* rl = new QVBoxLayout(right);
    rl->setContentsMargins(0, 0, 0, 0);
    // The view's side stays narrow enough for the grid to get its columns (fitGrid): the label wraps and
    // the hover preview has a row of its own.
    auto* colour = new QHBoxLayout;
    auto* colourLabel = new QLabel("Workspace states (PCA), coloured by", right);
    colourLabel->setWordWrap(true);
    colour->addWidget(colourLabel, 1);
    colour->addWidget(colourBy_);
    preview_ = new SamplePreview(right);
    rl->addLayout(colour);
    preview_->setMaximumWidth(2 * preview_->sizeHint().width());
    rl->addWidget(preview_);
    rl->addWidget(plot_, 1);
    auto* split = new QSplitter(this);
    splitter_ = split;
    split->addWidget(scroll);
    split->addWidget(right);
    split->setStretchFactor(0, 1);  // a wider tab widens the grid's side, up to its columns (fitGrid)
    split->setStretchFactor(1, 1);
    split->setChildrenCollapsible(false);
    connect(split, &QSplitter::splitterMoved, this, [this] { splitDragged_ = true; });  // the user's sizes from now on

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(controls);
    layout->addWidget(status_);
    layout->addWidget(split, 1);

    auto changed = [this] { Q_EMIT requestChanged(); };
    connect(split_, &QComboBox::currentTextChanged, this, changed);
    connect(mode_, &QComboBox::currentIndexChanged, this, changed);
    connect(count_, &QSpinBox::valueChanged, this, changed);
    connect(seed_, &QSpinBox::valueChanged, this, changed);
    connect(every_, &QSpinBox::valueChanged, this, changed);
    connect(broadcast_, &QComboBox::currentIndexChanged, this, changed);
    connect(indices_, &QLineEdit::editingFinished, this, [this] {
        mode_->setCurrentIndex(mode_->findData("indices"));
        Q_EMIT requestChanged();
    });
    connect(colourBy_, &QComboBox::currentTextChanged, this, [this] { rebuildPlot(); });
    connect(refresh, &QPushButton::clicked, this, &ExplorerPanel::refreshRequested);
    connect(open, &QPushButton::clicked, this, [this] {
        const QString p = QFileDialog::getOpenFileName(this, "Explore a checkpoint", QString(), "Checkpoints (*.ckpt)");
        if (!p.isEmpty()) Q_EMIT openCheckpointRequested(p);
    });
    connect(exportPng, &QPushButton::clicked, this, [this] {
        const QString p = QFileDialog::getSaveFileName(this, "Export grid", "translations.png", "PNG (*.png)");
        if (!p.isEmpty()) exportGrid(p);
    });
    connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        const int i = nearestPoint(e->position(), 8);
        if (i >= 0) QToolTip::showText(e->globalPosition().toPoint(), hoverPoint(i), plot_);
        else QToolTip::hideText();
    });
    connect(plot_, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
        const int i = nearestPoint(e->position(), 8);
        if (i >= 0 && e->button() == Qt::LeftButton) addSample(data().pcaIndices.value(i % std::max<qsizetype>(1, data().pcaIndices.size())));
    });
}

ExploreRequest ExplorerPanel::request() const {
    ExploreRequest r;
    r.split = split_->currentText();
    r.mode = mode_->currentData().toString();
    r.count = count_->value();
    r.seed = quint64(seed_->value());
    for (const auto& part : indices_->text().split(QRegularExpression("[,\\s]+"), Qt::SkipEmptyParts)) {
        bool ok = false;
        const qint64 v = part.toLongLong(&ok);
        if (ok) r.indices << v;
    }
    r.broadcastFrom = broadcast_->currentData().toStringList();
    return r;
}

void ExplorerPanel::setRequest(const ExploreRequest& r) {
    split_->setCurrentText(r.split);
    mode_->setCurrentIndex(std::max(0, mode_->findData(r.mode)));
    count_->setValue(int(r.count));
    seed_->setValue(int(r.seed));
    QStringList idx;
    for (auto i : r.indices) idx << QString::number(i);
    indices_->setText(idx.join(", "));
    const int b = broadcast_->findText(r.broadcastFrom.join(" + "));
    if (!r.broadcastFrom.isEmpty() && b < 0) broadcast_->addItem(r.broadcastFrom.join(" + "), r.broadcastFrom);
    broadcast_->setCurrentIndex(r.broadcastFrom.isEmpty() ? 0 : broadcast_->findText(r.broadcastFrom.join(" + ")));
}

void ExplorerPanel::offerBroadcasts(const QStringList& domains) {
    // Every non-empty subset of the domains, singles first (as the broadcast loss orders its terms).
    QStringList have;
    for (int i = 1; i < broadcast_->count(); ++i) have << broadcast_->itemText(i);
    QList<QStringList> subsets;
    const int n = int(domains.size());
    for (int size = 1; size <= n; ++size)
        for (int mask = 1; mask < (1 << n); ++mask) {
            if (__builtin_popcount(unsigned(mask)) != size) continue;
            QStringList s;
            for (int i = 0; i < n; ++i)
                if (mask & (1 << i)) s << domains[i];
            subsets << s;
        }
    QStringList want;
    for (const auto& s : subsets) want << s.join(" + ");
    if (want == have) return;
    const QSignalBlocker block(broadcast_);
    const QString current = broadcast_->currentText();
    while (broadcast_->count() > 1) broadcast_->removeItem(1);
    for (const auto& s : subsets) broadcast_->addItem(s.join(" + "), s);
    broadcast_->setCurrentIndex(std::max(0, broadcast_->findText(current)));
}

qint64 ExplorerPanel::refreshEvery() const { return every_->value(); }

void ExplorerPanel::setRefreshEvery(qint64 steps) { every_->setValue(int(steps)); }

void ExplorerPanel::setStatus(const QString& text) { status_->setText(text); }

void ExplorerPanel::setData(const ExploreData& d) {
    offerBroadcasts(d.domains);
    grid_->setData(d);
    fitGrid();
    preview_->show(&grid_->data(), -1, QString());
    QString s = QString("%1, %2 split, %3 samples").arg(d.source == "training" ? QString("step %1 of the run").arg(d.step)
                                                                               : d.source + QString(" (step %1)").arg(d.step))
                    .arg(d.split)
                    .arg(d.indices.size());
    if (d.pcaExplained.size() == 2)
        s += QString("; the two components explain %1% and %2% of the variance")
                 .arg(100 * d.pcaExplained[0], 0, 'f', 0)
                 .arg(100 * d.pcaExplained[1], 0, 'f', 0);
    status_->setText(s);
    rebuildPlot();
}

void ExplorerPanel::setColourBy(const QString& what) { colourBy_->setCurrentText(what); }

void ExplorerPanel::resizeEvent(QResizeEvent* e) {
    QWidget::resizeEvent(e);
    fitGrid();
}

void ExplorerPanel::showEvent(QShowEvent* e) {
    QWidget::showEvent(e);
    fitGrid();
    if (plotStale_) replotWhenShown();
}

void ExplorerPanel::fitGrid() {
    if (splitDragged_ || !isVisible()) return;
    const int total = splitter_->width() - splitter_->handleWidth();
    if (total <= 0) return;
    // The grid's columns, its frame and a vertical scroll bar (the grid is often taller than the tab).
    const int chrome = 2 * scroll_->frameWidth() + style()->pixelMetric(QStyle::PM_ScrollBarExtent, nullptr, scroll_) + 2;
    const int columns = grid_->sizeHint().width() + chrome;
    // The workspace view keeps a usable width; below that the grid still shows its first translation
    // (input, demi-cycle, translation, truth, cycle) when the tab allows it.
    const int plotMin = 160, firstTranslation = ExplorerGrid::widthOfColumns(5) + chrome;
    int left = std::min(columns, total - plotMin);
    if (left < firstTranslation) left = std::min({columns, firstTranslation, total - 120});
    left = std::max(left, std::min(columns, total / 3));
    left = std::min(left, total - splitter_->widget(1)->minimumSizeHint().width());
    splitter_->setSizes({left, total - left});
}

void ExplorerPanel::rebuildPlot() {
    plot_->clearGraphs();
    const auto& d = data();
    const int m = d.pcaIndices.size();
    if (m == 0 || d.pcaX.size() != m * d.domains.size()) {
        replotWhenShown();
        return;
    }
    const bool byClass = colourBy_->currentText() == "class" && d.pcaLabels.size() == m;
    QHash<int, QCPGraph*> graphs;
    const QVector<QCPScatterStyle::ScatterShape> shapes = {QCPScatterStyle::ssDisc, QCPScatterStyle::ssCross,
                                                           QCPScatterStyle::ssTriangle, QCPScatterStyle::ssSquare};
    for (int i = 0; i < d.pcaX.size(); ++i) {
        const int dom = i / m;
        const int group = byClass ? int(d.pcaLabels[i % m]) * 16 + dom : dom;
        QCPGraph*& g = graphs[group];
        if (!g) {
            g = plot_->addGraph();
            g->setLineStyle(QCPGraph::lsNone);
            const QColor c = paletteColour(byClass ? int(d.pcaLabels[i % m]) : dom);
            g->setScatterStyle(QCPScatterStyle(shapes[dom % shapes.size()], c, byClass ? c : c, 6));
            g->setPen(QPen(c));
            g->setName(byClass ? d.className(d.pcaLabels[i % m]) + ", " + d.domains[dom] : d.domains[dom]);
            if (byClass) g->removeFromLegend();
        }
        g->addData(d.pcaX[i], d.pcaY[i]);
    }
    if (byClass) {
        // One entry per class (its colour) and one per domain (its marker), not one per pair: ten classes
        // and two domains make 12 lines, not 20.
        QVector<qint64> classes;
        for (qint64 c : d.pcaLabels)
            if (!classes.contains(c)) classes << c;
        std::sort(classes.begin(), classes.end());
        auto entry = [&](const QString& name, const QCPScatterStyle& style) {
            QCPGraph* key = plot_->addGraph();  // no data: a legend entry only
            key->setLineStyle(QCPGraph::lsNone);
            key->setScatterStyle(style);
            key->setName(name);
        };
        for (qint64 c : classes) entry(d.className(c), QCPScatterStyle(QCPScatterStyle::ssDisc, paletteColour(int(c)), 6));
        for (int dom = 0; dom < d.domains.size(); ++dom)
            entry(d.domains[dom], QCPScatterStyle(shapes[dom % shapes.size()], QColor(90, 90, 90), 6));
    }
    plot_->legend->setVisible(plot_->legend->itemCount() <= 30);
    plot_->rescaleAxes();
    replotWhenShown();
}

void ExplorerPanel::replotWhenShown() {
    // A plot never shown has no size: painting it would only warn (QPainter::begin: engine == 0).
    plotStale_ = !plot_->isVisible();
    if (!plotStale_) plot_->replot();
}

int ExplorerPanel::nearestPoint(const QPointF& pixel, double maxDistance) const {
    const auto& d = data();
    int best = -1;
    double bestD = maxDistance * maxDistance;
    for (int i = 0; i < d.pcaX.size(); ++i) {
        const double px = plot_->xAxis->coordToPixel(d.pcaX[i]) - pixel.x();
        const double py = plot_->yAxis->coordToPixel(d.pcaY[i]) - pixel.y();
        if (px * px + py * py < bestD) {
            bestD = px * px + py * py;
            best = i;
        }
    }
    return best;
}

QString ExplorerPanel::describePoint(int i) const {
    const auto& d = data();
    const int m = d.pcaIndices.size();
    if (m == 0 || i < 0 || i >= d.pcaX.size()) return {};
    QString s = QString("domain %1, sample %2").arg(d.domains.value(i / m)).arg(d.pcaIndices[i % m]);
    if (d.pcaLabels.size() == m) s += ", " + d.className(d.pcaLabels[i % m]);
    return s + "\n(click: add it to the grid)";
}

QString ExplorerPanel::hoverPoint(int i) {
    const auto& d = data();
    const int m = d.pcaIndices.size();
    if (m == 0 || i < 0 || i >= d.pcaX.size()) return {};
    preview_->show(&grid_->data(), i % m, d.domains.value(i / m));
    return describePoint(i);
}

void ExplorerPanel::addSample(qint64 index) {
    ExploreRequest r = request();
    if (r.mode != "indices") r.indices = data().indices;
    if (!r.indices.contains(index)) r.indices << index;
    r.mode = "indices";
    setRequest(r);
    Q_EMIT requestChanged();
    Q_EMIT refreshRequested();
}

bool ExplorerPanel::exportGrid(const QString& path) { return saveImage(gridImage(), path).isEmpty(); }

QImage ExplorerPanel::gridImage() const { return grid_->render(); }

bool ExplorerPanel::exportWorkspace(const QString& path, int width, int height) {
    return saveImage(plot_->toPixmap(width, height).toImage(), path).isEmpty();
}

}  // namespace gw::studio

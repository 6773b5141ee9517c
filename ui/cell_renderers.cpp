// SPDX-License-Identifier: GPL-3.0-or-later
#include "ui/cell_renderers.h"

#include <QHash>
#include <QImage>
#include <QPainter>
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "data/bpe_tokenizer.h"
#include "data/captions.h"
#include "data/shapes.h"

namespace gw::studio {

namespace {
QHash<QString, RendererRegistry::Factory>& factories() {
    static QHash<QString, RendererRegistry::Factory> f = {
        {"conv_vae", [] { return std::make_unique<ImageRenderer>(); }},
        {"class_label", [] { return std::make_unique<ClassRenderer>(); }},
        {"identity", [] { return std::make_unique<VectorRenderer>(); }},
        {"mlp_ae", [] { return std::make_unique<VectorRenderer>(); }},
        {"mlp_vae", [] { return std::make_unique<VectorRenderer>(); }},
        {"attributes", [] { return std::make_unique<ShapeRenderer>(); }},
        {"text", [] { return std::make_unique<TextRenderer>(); }},
    };
    return f;
}

/// A Simple Shapes shape as the dataset's renderer draws it (data/shapes.h), `scale` times its size.
QImage shapeImage(const shapes::Shape& s, int scale) {
    thread_local std::map<int, std::unique_ptr<shapes::Renderer>> renderers;
    auto& r = renderers[scale];
    if (!r) r = std::make_unique<shapes::Renderer>(scale);
    QImage img(r->side(), r->side(), QImage::Format_RGB888);
    std::vector<uint8_t> px(static_cast<size_t>(r->side() * r->side() * 3));
    r->render(s, px.data());
    for (int y = 0; y < img.height(); ++y)
        std::copy_n(px.data() + static_cast<size_t>(y * img.width() * 3), img.width() * 3, img.scanLine(y));
    return img;
}

/// The largest square-ish rectangle of whole-pixel scale for a w×h image inside `r`, centred.
QRectF fitWhole(const QRectF& r, int w, int h) {
    const double s = std::max(1.0, std::floor(std::min(r.width() / w, r.height() / h)));
    const QSizeF size(w * s, h * s);
    return QRectF(r.center() - QPointF(size.width() / 2, size.height() / 2), size);
}
}  // namespace

double rowMse(const PlainTensor& a, qint64 ra, const PlainTensor& b, qint64 rb) {
    const qint64 n = a.rowSize();
    if (n == 0 || n != b.rowSize()) return NAN;
    const float* x = a.row(ra);
    const float* y = b.row(rb);
    double s = 0;
    for (qint64 i = 0; i < n; ++i) s += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    return s / double(n);
}

void ImageRenderer::paint(QPainter& p, const QRectF& rect, const PlainTensor& v, qint64 row, const PlainTensor*, qint64) const {
    // Rows are (C, H, W) with C = 1 or 3, or (H, W).
    const int dims = v.shape.size();
    const int c = dims == 4 ? int(v.shape[1]) : 1;
    const int h = int(v.shape[dims - 2]);
    const int w = int(v.shape[dims - 1]);
    QImage img(w, h, QImage::Format_RGB32);
    const float* d = v.row(row);
    auto byte = [](float x) { return int(std::lround(std::clamp(x, 0.0f, 1.0f) * 255)); };
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const int g = byte(d[y * w + x]);
            const int r = c == 3 ? byte(d[y * w + x]) : g;
            const int gg = c == 3 ? byte(d[h * w + y * w + x]) : g;
            const int b = c == 3 ? byte(d[2 * h * w + y * w + x]) : g;
            img.setPixel(x, y, qRgb(r, gg, b));
        }
    p.save();
    p.setRenderHint(QPainter::SmoothPixmapTransform, false);  // pixels stay pixels
    p.drawImage(fitWhole(rect, w, h), img);
    p.restore();
}

QString ImageRenderer::error(const PlainTensor& v, qint64 row, const PlainTensor& t, qint64 tr) const {
    return QString("MSE %1").arg(rowMse(v, row, t, tr), 0, 'g', 3);
}

qint64 ClassRenderer::argmax(const PlainTensor& t, qint64 row) {
    const float* d = t.row(row);
    return std::max_element(d, d + t.rowSize()) - d;
}

void ClassRenderer::paint(QPainter& p, const QRectF& rect, const PlainTensor& v, qint64 row, const PlainTensor* truth,
                          qint64 truthRow) const {
    const qint64 n = v.rowSize();
    const float* d = v.row(row);
    const qint64 best = argmax(v, row);
    const qint64 right = truth ? argmax(*truth, truthRow) : -1;
    const QRectF text(rect.left(), rect.top(), rect.width(), 16);
    p.drawText(text, Qt::AlignCenter, QString("%1  %2").arg(className(best)).arg(d[best], 0, 'f', 2));
    const QRectF bars = rect.adjusted(2, 18, -2, -2);
    const double bw = bars.width() / double(std::max<qint64>(n, 1));
    for (qint64 i = 0; i < n; ++i) {
        const double hgt = std::clamp(double(d[i]), 0.0, 1.0) * bars.height();
        const QRectF bar(bars.left() + i * bw + 1, bars.bottom() - hgt, std::max(1.0, bw - 2), hgt);
        QColor colour = i == best ? (right < 0 || best == right ? QColor(46, 125, 50) : QColor(198, 40, 40)) : QColor(120, 144, 156);
        p.fillRect(bar, colour);
        if (i == right) p.drawRect(QRectF(bars.left() + i * bw + 0.5, bars.top(), bw - 1, bars.height()));
    }
}

QString ClassRenderer::error(const PlainTensor& v, qint64 row, const PlainTensor& t, qint64 tr) const {
    const qint64 best = argmax(v, row);
    const bool ok = best == argmax(t, tr);
    return QString("%1 %2").arg(ok ? "right" : "wrong").arg(v.row(row)[best], 0, 'f', 2);
}

void VectorRenderer::paint(QPainter& p, const QRectF& rect, const PlainTensor& v, qint64 row, const PlainTensor* truth,
                           qint64 truthRow) const {
    const qint64 n = v.rowSize();
    const float* d = v.row(row);
    const float* t = truth && truth->rowSize() == n ? truth->row(truthRow) : nullptr;
    float lim = 1e-6f;
    for (qint64 i = 0; i < n; ++i) lim = std::max({lim, std::abs(d[i]), t ? std::abs(t[i]) : 0.0f});
    const QRectF area = rect.adjusted(2, 2, -2, -2);
    const double mid = area.center().y(), half = area.height() / 2, bw = area.width() / double(std::max<qint64>(n, 1));
    p.setPen(QColor(176, 190, 197));
    p.drawLine(QPointF(area.left(), mid), QPointF(area.right(), mid));
    for (qint64 i = 0; i < n; ++i) {
        const double y = d[i] / lim * half;
        p.fillRect(QRectF(area.left() + i * bw + 1, y > 0 ? mid - y : mid, std::max(1.0, bw - 2), std::abs(y)), QColor(25, 118, 210));
        if (t) {
            p.setPen(QPen(QColor(0, 0, 0), 2));
            const double ty = mid - t[i] / lim * half;
            p.drawLine(QPointF(area.left() + i * bw, ty), QPointF(area.left() + (i + 1) * bw, ty));
        }
    }
}

QString VectorRenderer::error(const PlainTensor& v, qint64 row, const PlainTensor& t, qint64 tr) const {
    return QString("MSE %1").arg(rowMse(v, row, t, tr), 0, 'g', 3);
}

void ShapeRenderer::paint(QPainter& p, const QRectF& rect, const PlainTensor& v, qint64 row, const PlainTensor* truth,
                          qint64 truthRow) const {
    if (v.rowSize() != shapes::kAttributeDim) return VectorRenderer().paint(p, rect, v, row, truth, truthRow);
    const float* d = v.row(row);
    const shapes::Shape s = shapes::shapeFromAttributes(d);
    const bool hasTruth = truth && truth->rowSize() == shapes::kAttributeDim;
    const int trueClass = hasTruth ? shapes::shapeFromAttributes(truth->row(truthRow)).cls : -1;
    const QImage img = shapeImage(s, 2);  // the shape as the dataset draws it, at twice its size
    const double textH = 26, side = std::min(rect.height() - textH, rect.width() - 26);
    const QRectF pic(rect.left(), rect.top(), side, side);
    p.save();
    p.setRenderHint(QPainter::SmoothPixmapTransform, true);
    p.drawImage(pic, img);
    // Colour swatch and rotation arrow to the right of the picture.
    const double col = pic.right() + 3, w = rect.right() - col;
    const QRectF swatch(col, rect.top(), w, std::min(w, 20.0));
    p.fillRect(swatch, QColor(s.rgb[0], s.rgb[1], s.rgb[2]));
    p.setPen(QColor(120, 120, 120));
    p.drawRect(swatch);
    const QRectF dial(col, swatch.bottom() + 4, w, w);
    p.setRenderHint(QPainter::Antialiasing, true);
    p.drawEllipse(dial.adjusted(1, 1, -1, -1));
    // θ = 0 points up; rotation is counter-clockwise (y up), so on screen: (−sin θ, −cos θ).
    const QPointF c = dial.center(), tip = c + QPointF(-std::sin(s.rotation), -std::cos(s.rotation)) * (w / 2 - 2);
    p.setPen(QPen(QColor(33, 33, 33), 1.6));
    p.drawLine(c, tip);
    const double a = std::atan2(tip.y() - c.y(), tip.x() - c.x());
    for (double side2 : {-0.5, 0.5})
        p.drawLine(tip, tip - QPointF(std::cos(a + side2), std::sin(a + side2)) * 4.0);
    // Class (with its probability when the row holds probabilities) and values.
    QFont f = p.font();
    f.setPointSizeF(std::max(6.0, f.pointSizeF() - 1.5));
    p.setFont(f);
    const float prob = d[s.cls];
    p.setPen(hasTruth && trueClass != s.cls ? QColor(198, 40, 40) : QColor(33, 33, 33));
    const QRectF line1(rect.left(), rect.bottom() - textH, rect.width(), textH / 2);
    p.drawText(line1, Qt::AlignLeft | Qt::AlignVCenter,
               prob < 0.999f ? QString("%1 %2").arg(shapes::className(s.cls)).arg(prob, 0, 'f', 2) : QString(shapes::className(s.cls)));
    p.setPen(QColor(66, 66, 66));
    p.drawText(line1.translated(0, textH / 2), Qt::AlignLeft | Qt::AlignVCenter,
               QString("x%1 y%2 s%3 %4°").arg(s.x, 0, 'f', 0).arg(s.y, 0, 'f', 0).arg(s.size, 0, 'f', 0)
                   .arg(s.rotation * 180 / M_PI, 0, 'f', 0));
    p.restore();
}

QString ShapeRenderer::error(const PlainTensor& v, qint64 row, const PlainTensor& t, qint64 tr) const {
    if (v.rowSize() != shapes::kAttributeDim || t.rowSize() != shapes::kAttributeDim) return VectorRenderer().error(v, row, t, tr);
    const auto a = shapes::shapeFromAttributes(v.row(row)), b = shapes::shapeFromAttributes(t.row(tr));
    double dr = std::abs(a.rotation - b.rotation) * 180 / M_PI;
    dr = std::min(dr, 360 - dr);
    return QString("%1 %2px %3°").arg(a.cls == b.cls ? "right" : "wrong").arg(std::hypot(a.x - b.x, a.y - b.y), 0, 'f', 1).arg(dr, 0, 'f', 0);
}

void RendererRegistry::add(const QString& kind, Factory factory) { factories().insert(kind, std::move(factory)); }

qint64 TextRenderer::tokenCount(const PlainTensor& t) {
    return t.shape.size() == 3 && t.shape[1] == 2 ? t.shape[2] : t.rowSize();
}

const float* TextRenderer::attributes(const PlainTensor& t, qint64 row) {
    if (t.shape.size() != 3 || t.shape[1] != 2 || t.shape[2] < shapes::kAttributeDim) return nullptr;
    return t.row(row) + t.shape[2];
}

QString TextRenderer::caption(const PlainTensor& t, qint64 row) {
    const qint64 n = tokenCount(t);
    std::vector<int64_t> ids(static_cast<size_t>(n));
    const float* d = t.row(row);
    for (qint64 i = 0; i < n; ++i) ids[size_t(i)] = static_cast<int64_t>(std::lround(d[i]));
    try {
        return QString::fromStdString(gw::data::BpeTokenizer::shimmerSsd().decode(ids)).trimmed();
    } catch (const std::exception&) {
        return QStringLiteral("(not a caption)");
    }
}

QVector<bool> TextRenderer::differing(const QStringList& a, const QStringList& b) {
    const auto words = [](const QStringList& l) {
        std::vector<std::string> w;
        w.reserve(size_t(l.size()));
        for (const QString& s : l) w.push_back(s.toStdString());
        return w;
    };
    QVector<bool> out;
    for (bool outside : shapes::wordsOutsideCommonSequence(words(a), words(b))) out.push_back(outside);
    return out;
}

void TextRenderer::paint(QPainter& p, const QRectF& rect, const PlainTensor& v, qint64 row, const PlainTensor* truth,
                         qint64 truthRow) const {
    const QStringList words = caption(v, row).split(' ', Qt::SkipEmptyParts);
    QVector<bool> diff(words.size(), false);
    if (truth) diff = differing(words, caption(*truth, truthRow).split(' ', Qt::SkipEmptyParts));
    p.save();
    const QColor ink = p.pen().color();
    QFont f = p.font();
    f.setPointSizeF(std::max(6.0, f.pointSizeF() * 0.85));
    p.setFont(f);
    QFont bold = f;
    bold.setBold(true);
    const QFontMetricsF fm(f), fmBold(bold);
    QRectF box = rect.adjusted(3, 3, -3, -3);
    // The attributes the module's heads read from the latent (or the sample's own, for an input): the
    // shape as the dataset draws it and its class, red where it differs from the truth's, in a strip at
    // the bottom.
    if (const float* a = attributes(v, row); a && box.height() > 3 * fm.lineSpacing()) {
        const double stripH = std::min(28.0, box.height() / 3);
        const QRectF strip(box.left(), box.bottom() - stripH, box.width(), stripH);
        box.setBottom(strip.top() - 2);
        const shapes::Shape s = shapes::shapeFromAttributes(a);
        const float* ta = truth ? attributes(*truth, truthRow) : nullptr;
        const bool wrong = ta && shapes::shapeFromAttributes(ta).cls != s.cls;
        p.setRenderHint(QPainter::SmoothPixmapTransform, true);
        p.drawImage(QRectF(strip.left(), strip.top(), stripH, stripH), shapeImage(s, 1));
        const float prob = a[s.cls];
        p.setPen(wrong ? QColor(198, 40, 40) : QColor(66, 66, 66));
        p.drawText(strip.adjusted(stripH + 4, 0, 0, 0), Qt::AlignLeft | Qt::AlignVCenter,
                   prob < 0.999f ? QString("%1 %2").arg(shapes::className(s.cls)).arg(prob, 0, 'f', 2)
                                 : QString(shapes::className(s.cls)));
        p.setPen(ink);
    }
    QPointF at = box.topLeft() + QPointF(0, fm.ascent());
    const double space = fm.horizontalAdvance(' ');
    for (int i = 0; i < words.size(); ++i) {
        const double w = (diff[i] ? fmBold : fm).horizontalAdvance(words[i]);
        if (at.x() > box.left() && at.x() + w > box.right()) at = QPointF(box.left(), at.y() + fm.lineSpacing());
        if (at.y() - fm.ascent() + fm.height() > box.bottom() + 1) {  // no room left: an ellipsis
            p.drawText(QPointF(box.right() - fm.horizontalAdvance(QStringLiteral("…")), at.y() - fm.lineSpacing()), QStringLiteral("…"));
            break;
        }
        p.setPen(diff[i] ? QColor(200, 30, 30) : ink);
        p.setFont(diff[i] ? bold : f);
        p.drawText(at, words[i]);
        at.rx() += w + space;
    }
    p.restore();
}

QString TextRenderer::error(const PlainTensor& v, qint64 row, const PlainTensor& t, qint64 tr) const {
    const auto words = shapes::captionWords(caption(v, row).toStdString());
    const auto truth = shapes::captionWords(caption(t, tr).toStdString());
    const size_t longer = std::max(words.size(), truth.size());
    if (!longer) return QStringLiteral("words -");
    return QString("words %1").arg(double(shapes::commonWordCount(words, truth)) / double(longer), 0, 'f', 2);
}

std::unique_ptr<CellRenderer> RendererRegistry::forKind(const QString& kind, const PlainTensor& sample,
                                                       const QStringList& classNames) {
    std::unique_ptr<CellRenderer> r;
    auto it = factories().find(kind);
    const int dims = sample.shape.size();
    if (it != factories().end()) r = (*it)();
    else if (dims == 3 || (dims == 4 && (sample.shape[1] == 1 || sample.shape[1] == 3))) r = std::make_unique<ImageRenderer>();
    else r = std::make_unique<VectorRenderer>();
    r->setClassNames(classNames);
    return r;
}

}  // namespace gw::studio

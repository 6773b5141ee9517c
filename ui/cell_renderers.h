// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file cell_renderers.h
/// How the translation explorer draws one sample of one domain (a cell), chosen by the domain
/// module's kind: images (grey or RGB, scaled by whole pixels without blur), class labels (bars of
/// the class probabilities, the predicted class marked), vectors (bars, the ground truth as ticks),
/// Simple Shapes attributes (the shape drawn), captions (the decoded text, differing words in red).
/// A new kind gets its renderer with RendererRegistry::add, without touching the others.
#include <QRectF>
#include <QString>
#include <QStringList>

#include <functional>
#include <memory>

#include "ui/bridge/bridge.h"

class QPainter;

namespace gw::studio {

class CellRenderer {
public:
    virtual ~CellRenderer() = default;
    /// Draws row `row` of `value` (B, ...) inside `rect`; `truth` (row `truthRow`) may be null.
    virtual void paint(QPainter& p, const QRectF& rect, const PlainTensor& value, qint64 row, const PlainTensor* truth,
                       qint64 truthRow) const = 0;
    /// The cell's error against the ground truth: "MSE 0.0123" (images, vectors) or "right 0.93" /
    /// "wrong 0.61" (classes: the probability of the predicted class).
    virtual QString error(const PlainTensor& value, qint64 row, const PlainTensor& truth, qint64 truthRow) const = 0;
    /// Names of the classes (the data's `class_names`), for renderers that show a class.
    void setClassNames(const QStringList& names) { classNames_ = names; }

protected:
    /// "Ankle boot" when the class is named, else "class 9".
    QString className(qint64 c) const {
        return c >= 0 && c < classNames_.size() ? classNames_[int(c)] : QString("class %1").arg(c);
    }
    QStringList classNames_;
};

/// Mean squared difference of two rows of the same size (NaN when the sizes differ).
double rowMse(const PlainTensor& a, qint64 ra, const PlainTensor& b, qint64 rb);

class ImageRenderer : public CellRenderer {
public:
    void paint(QPainter& p, const QRectF& rect, const PlainTensor& value, qint64 row, const PlainTensor*, qint64) const override;
    QString error(const PlainTensor& value, qint64 row, const PlainTensor& truth, qint64 truthRow) const override;
};

class ClassRenderer : public CellRenderer {
public:
    void paint(QPainter& p, const QRectF& rect, const PlainTensor& value, qint64 row, const PlainTensor* truth,
               qint64 truthRow) const override;
    QString error(const PlainTensor& value, qint64 row, const PlainTensor& truth, qint64 truthRow) const override;
    /// Index of the largest value of a row.
    static qint64 argmax(const PlainTensor& t, qint64 row);
};

class VectorRenderer : public CellRenderer {
public:
    void paint(QPainter& p, const QRectF& rect, const PlainTensor& value, qint64 row, const PlainTensor* truth,
               qint64 truthRow) const override;
    QString error(const PlainTensor& value, qint64 row, const PlainTensor& truth, qint64 truthRow) const override;
};

/// Simple Shapes attributes (kind `attributes`, rows of 11 values: class probabilities or one-hot, then
/// x̂, ŷ, ŝ, cos θ, sin θ, r̂, ĝ, b̂): the shape drawn by the dataset's own renderer (data/shapes.h), a
/// colour swatch, the rotation as an arrow, and the class and values as text; the class turns red when
/// it differs from the ground truth.
class ShapeRenderer : public CellRenderer {
public:
    void paint(QPainter& p, const QRectF& rect, const PlainTensor& value, qint64 row, const PlainTensor* truth,
               qint64 truthRow) const override;
    /// "right 2.1px 14°" / "wrong ...": the class, the position error in pixels and the rotation error.
    QString error(const PlainTensor& value, qint64 row, const PlainTensor& truth, qint64 truthRow) const override;
};

/// Captions (kind `text`: rows of token ids as floats, (B, seq_length), or (B, 2, seq_length) with the
/// attributes the module's heads read from the latent in the second row's first 11 values): the caption
/// decoded with the tokenizer compiled into the program (shimmer-ssd's, data/bpe_tokenizer.h),
/// word-wrapped; beside a ground truth, the words that are not in the longest common word sequence of
/// the two captions are red; with attributes, a strip below with the shape they describe and its class
/// (red when it is not the truth's).
class TextRenderer : public CellRenderer {
public:
    void paint(QPainter& p, const QRectF& rect, const PlainTensor& value, qint64 row, const PlainTensor* truth,
               qint64 truthRow) const override;
    /// "words 0.86": the longest common word sequence of the two captions over the longer one's word
    /// count (the text module's `caption_word_accuracy` for one caption): the unmarked words' share.
    QString error(const PlainTensor& value, qint64 row, const PlainTensor& truth, qint64 truthRow) const override;
    /// The caption of a row of token ids (stops at the first <pad>); "(not a caption)" for ids outside the vocabulary.
    static QString caption(const PlainTensor& t, qint64 row);
    /// Token ids per row: seq_length.
    static qint64 tokenCount(const PlainTensor& t);
    /// The row's 11 attribute values ((B, 2, S) layout), or null when the rows hold tokens only.
    static const float* attributes(const PlainTensor& t, qint64 row);
    /// For each word of `words`, whether it is outside the longest common subsequence with `reference`.
    static QVector<bool> differing(const QStringList& words, const QStringList& reference);
};

/// Renderers by domain-module kind.
class RendererRegistry {
public:
    using Factory = std::function<std::unique_ptr<CellRenderer>()>;
    /// Registers (or replaces) the renderer of a kind.
    static void add(const QString& kind, Factory factory);
    /// The renderer of `kind`; for a kind without one: images for rows shaped (C, H, W) or (H, W),
    /// else vectors.
    static std::unique_ptr<CellRenderer> forKind(const QString& kind, const PlainTensor& sample,
                                                 const QStringList& classNames = {});
};

}  // namespace gw::studio

// SPDX-License-Identifier: GPL-3.0-or-later
#include "ui/curve_plot.h"

#include <QFile>
#include <QMap>
#include <QTextStream>
#include <qcustomplot.h>

#include <cmath>
#include <map>

#include "ui/save_file.h"

namespace gw::studio {

QString readCurveCsv(const QString& path, QVector<CurvePoint>& out, QStringList& metrics) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly | QIODevice::Text)) return path + ": cannot open the file (" + f.errorString() + ")";
    QTextStream in(&f);
    const QStringList head = in.readLine().trimmed().split(',');
    if (head.size() < 4 || head[0] != "pairs" || head[1] != "model" || head[2] != "seed")
        return path + ":1: expected the header pairs,model,seed,METRIC..., found '" + head.join(',') + "'";
    metrics = head.mid(3);
    out.clear();
    for (int line = 2; !in.atEnd(); ++line) {
        const QString text = in.readLine().trimmed();
        if (text.isEmpty()) continue;
        const QStringList cells = text.split(',');
        if (cells.size() != head.size())
            return QString("%1:%2: expected %3 columns, found %4").arg(path).arg(line).arg(head.size()).arg(cells.size());
        CurvePoint p;
        bool ok = false;
        p.pairs = cells[0].toDouble(&ok);
        if (!ok || p.pairs <= 0) return QString("%1:%2: pairs: expected a positive number, found '%3'").arg(path).arg(line).arg(cells[0]);
        p.model = cells[1];
        p.seed = cells[2].toInt(&ok);
        if (!ok) return QString("%1:%2: seed: expected an integer, found '%3'").arg(path).arg(line).arg(cells[2]);
        for (int c = 3; c < cells.size(); ++c) {
            const double v = cells[c].toDouble(&ok);
            if (!ok) return QString("%1:%2: %3: expected a number, found '%4'").arg(path).arg(line).arg(head[c], cells[c]);
            p.values.insert(head[c], v);
        }
        out.push_back(p);
    }
    if (out.isEmpty()) return path + ": expected at least one row, found none";
    return {};
}

QString plotPairsCurve(const QVector<CurvePoint>& points, const QVector<CurvePanel>& panels, const QString& title,
                       const QString& pngPath, int width, int height) {
    for (const auto& panel : panels)
        for (const auto& p : points)
            if (!p.values.contains(panel.metric)) return "no column '" + panel.metric + "' in the curve's rows";
    QStringList models;
    for (const auto& p : points)
        if (!models.contains(p.model)) models << p.model;
    const QVector<QColor> colours = {QColor(25, 118, 210), QColor(230, 81, 0), QColor(46, 125, 50), QColor(106, 27, 154)};

    QCustomPlot plot;
    plot.resize(width, height);
    plot.setAutoAddPlottableToLegend(false);
    plot.plotLayout()->clear();
    auto* heading = new QCPTextElement(&plot, title, QFont("sans", 12, QFont::Bold));
    plot.plotLayout()->addElement(0, 0, heading);
    auto* row = new QCPLayoutGrid;
    plot.plotLayout()->addElement(1, 0, row);
    QSharedPointer<QCPAxisTickerLog> logTicker(new QCPAxisTickerLog);
    for (int k = 0; k < panels.size(); ++k) {
        const CurvePanel& panel = panels[k];
        auto* rect = new QCPAxisRect(&plot);
        row->addElement(0, k, rect);
        QCPAxis* x = rect->axis(QCPAxis::atBottom);
        QCPAxis* y = rect->axis(QCPAxis::atLeft);
        x->setScaleType(QCPAxis::stLogarithmic);
        x->setTicker(logTicker);
        x->setLabel("paired samples");
        y->setLabel(panel.label + (panel.higherIsBetter ? "  (higher is better)" : "  (lower is better)"));
        x->grid()->setSubGridVisible(true);
        double lo = INFINITY, hi = -INFINITY, xlo = INFINITY, xhi = -INFINITY;
        for (int m = 0; m < models.size(); ++m) {
            const QColor colour = colours[m % colours.size()];
            std::map<double, std::pair<double, int>> mean;  // pairs -> (sum, count)
            QVector<double> sx, sy;
            for (const auto& p : points) {
                if (p.model != models[m]) continue;
                const double v = p.values.value(panel.metric);
                auto& acc = mean[p.pairs];
                acc.first += v;
                acc.second += 1;
                sx << p.pairs;
                sy << v;
                lo = std::min(lo, v), hi = std::max(hi, v), xlo = std::min(xlo, p.pairs), xhi = std::max(xhi, p.pairs);
            }
            QVector<double> mx, my;
            for (const auto& [px, acc] : mean) mx << px, my << acc.first / acc.second;
            auto* line = plot.addGraph(x, y);
            line->setData(mx, my, true);
            line->setPen(QPen(colour, 2.2));
            line->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, colour, colour, 7));
            line->setName(models[m] + " (mean of seeds)");
            auto* seeds = plot.addGraph(x, y);
            seeds->setData(sx, sy);
            seeds->setLineStyle(QCPGraph::lsNone);
            QColor light = colour;
            light.setAlpha(140);
            seeds->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCrossCircle, light, 6));
            seeds->setName(models[m] + ", each seed");
        }
        const double pad = (hi - lo) * 0.08 + 1e-9;
        y->setRange(lo - pad, hi + pad);
        x->setRange(xlo / 1.4, xhi * 1.4);
        if (k == 0) {
            auto* legend = new QCPLegend;
            rect->insetLayout()->addElement(legend, panel.higherIsBetter ? Qt::AlignBottom | Qt::AlignRight : Qt::AlignTop | Qt::AlignRight);
            legend->setLayer("legend");
            plot.legend = legend;
            for (int g = 0; g < plot.graphCount(); ++g) plot.graph(g)->addToLegend(legend);
            legend->setFont(QFont("sans", 8));
        }
    }
    plot.replot(QCustomPlot::rpImmediateRefresh);
    return saveImage(plot.toPixmap(width, height).toImage(), pngPath);
}

}  // namespace gw::studio

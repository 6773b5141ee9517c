// SPDX-License-Identifier: GPL-3.0-or-later
#include "ui/plot_when_shown.h"

#include <QEvent>
#include <qcustomplot.h>

namespace gw::studio {
namespace {
class ResizeWhenShown : public QObject {
public:
    explicit ResizeWhenShown(QCustomPlot* plot) : QObject(plot), plot_(plot) {}

protected:
    bool eventFilter(QObject* watched, QEvent* e) override {
        if (watched != plot_) return false;
        if (e->type() == QEvent::Resize && !plot_->isVisible()) {
            resized_ = true;
            return true;
        }
        if (e->type() == QEvent::Show && resized_) {
            resized_ = false;
            plot_->setViewport(plot_->rect());
            plot_->replot(QCustomPlot::rpQueuedReplot);
        }
        return false;
    }

private:
    QCustomPlot* plot_;
    bool resized_ = false;  ///< resized while hidden: its new size is taken when shown
};
}  // namespace

void replotOnlyWhenShown(QCustomPlot* plot) { plot->installEventFilter(new ResizeWhenShown(plot)); }

}  // namespace gw::studio

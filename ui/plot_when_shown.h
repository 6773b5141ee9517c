// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file plot_when_shown.h
/// QCustomPlot replots on every resize, also while its widget is hidden (a grab of the window lays out
/// hidden tabs): its paint buffer then has no size and QPainter warns ("Paint device returned engine
/// == 0"). The explorer's workspace plot and the Runs tab's chart hold such a resize back and take
/// their size when they are shown.
class QCustomPlot;

namespace gw::studio {

/// Installs, on `plot`, a filter (owned by the plot) that swallows its resizes while it is hidden and
/// replots it at its size when it is shown.
void replotOnlyWhenShown(QCustomPlot* plot);

}  // namespace gw::studio

// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file save_file.h
/// The window's saves and exports through the engine's one atomic write (data/atomic_file.h, reached
/// through the bridge's saveFile): a failed or interrupted save leaves the previous file intact.
#include <QByteArray>
#include <QString>

class QImage;

namespace gw::studio {

/// An image as PNG (or JPEG for .jpg/.jpeg) at `path`. Empty on success, else "PATH: why".
QString saveImage(const QImage& image, const QString& path);
/// The file at `from` copied to `to`. Empty on success, else the error naming the file.
QString copyFile(const QString& from, const QString& to);

}  // namespace gw::studio

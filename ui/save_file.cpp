// SPDX-License-Identifier: GPL-3.0-or-later
#include "ui/save_file.h"

#include <QBuffer>
#include <QFile>
#include <QImage>

#include "ui/bridge/bridge.h"

namespace gw::studio {

QString saveImage(const QImage& image, const QString& path) {
    QByteArray bytes;
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    const bool jpeg = path.endsWith(".jpg", Qt::CaseInsensitive) || path.endsWith(".jpeg", Qt::CaseInsensitive);
    if (image.isNull() || !image.save(&buffer, jpeg ? "JPG" : "PNG")) return path + ": cannot encode the image";
    return saveFile(path, bytes);
}

QString copyFile(const QString& from, const QString& to) {
    QFile f(from);
    if (!f.open(QIODevice::ReadOnly)) return from + ": " + f.errorString();
    return saveFile(to, f.readAll());
}

}  // namespace gw::studio

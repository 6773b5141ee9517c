// SPDX-License-Identifier: GPL-3.0-or-later
// Simple Shapes: the attribute vector of docs/simple-shapes.md's worked example, the renderer's
// geometry (covered area, orientation, exact interior colour), OpenCV's HLS conversion, the
// generator's distributions over 10,000 samples, identical files for one seed, and bad input; the
// `attributes` domain module (shimmer-ssd's attribute VAE) and a v + attr GW evaluated in data space.
#include <QtTest/QtTest>

#include <H5Cpp.h>

#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "data/atomic_file.h"
#include "data/captions.h"
#include "data/h5_array.h"
#include "data/npy.h"
#include "data/public_captions.h"
#include "data/public_folder.h"
#include "data/shapes.h"
#include "data/simple_shapes.h"
#include "fixtures.h"
#include "model/core/registry.h"
#include "model/domains/domain_module.h"
#include "model/run/engine.h"

using namespace gw::data;
namespace sh = gw::shapes;
using fixtures::errorOf;

namespace {

constexpr double kPi = 3.14159265358979323846;

std::vector<uint8_t> render(const sh::Shape& s, int scale = 1) {
    sh::Renderer r(scale);
    std::vector<uint8_t> px(static_cast<size_t>(r.side() * r.side() * 3));
    r.render(s, px.data());
    return px;
}

/// Pixel (row, col) of a 32-px render, as {r, g, b}.
std::array<int, 3> pixelAt(const std::vector<uint8_t>& px, int row, int col) {
    const size_t o = (static_cast<size_t>(row) * 32 + static_cast<size_t>(col)) * 3;
    return {px[o], px[o + 1], px[o + 2]};
}

/// Covered area in pixels: each pixel's coverage is its channel value over the shape's channel value.
double coveredArea(const std::vector<uint8_t>& px, int channel, int full) {
    double a = 0;
    for (size_t i = static_cast<size_t>(channel); i < px.size(); i += 3) a += px[i] / double(full);
    return a;
}

/// Mean row (y up) and column of the lit pixels, weighted by coverage.
std::pair<double, double> centroidYX(const std::vector<uint8_t>& px) {
    double sy = 0, sx = 0, w = 0;
    for (int r = 0; r < 32; ++r)
        for (int c = 0; c < 32; ++c) {
            const double v = pixelAt(px, r, c)[1];
            sy += v * (31 - r + 0.5);
            sx += v * (c + 0.5);
            w += v;
        }
    return {sy / w, sx / w};
}

/// HLS -> RGB as the textbook (Foley & van Dam; Python's colorsys) writes it, in double.
std::array<double, 3> textbookHls(double h, double l, double s) {
    if (s == 0) return {l, l, l};
    const double m2 = l <= 0.5 ? l * (1 + s) : l + s - l * s, m1 = 2 * l - m2;
    auto v = [&](double hue) {
        hue = std::fmod(hue, 1.0);
        if (hue < 0) hue += 1;
        if (hue < 1.0 / 6) return m1 + (m2 - m1) * hue * 6;
        if (hue < 0.5) return m2;
        if (hue < 2.0 / 3) return m1 + (m2 - m1) * (2.0 / 3 - hue) * 6;
        return m1;
    };
    return {v(h + 1.0 / 3), v(h), v(h - 1.0 / 3)};
}


// ---- A PNG and NPY writer and a PNG reader of the test's own (zlib only), independent of the importer's
// libpng, to make and check the folders `shapesd create` writes.

void putBE32(std::string& out, uint32_t v) {
    for (int k = 3; k >= 0; --k) out += char((v >> (8 * k)) & 0xFF);
}
void pngChunk(std::string& out, const char* type, const std::string& data) {
    putBE32(out, uint32_t(data.size()));
    const std::string body = std::string(type, 4) + data;
    out += body;
    putBE32(out, uint32_t(crc32(0, reinterpret_cast<const Bytef*>(body.data()), uInt(body.size()))));
}
/// A non-interlaced PNG of `w` × `h` pixels of `channels` 8-bit samples (colour type 0 grey, 2 RGB, 6 RGBA by
/// channels 1, 3, 4; `bitDepth` 16 doubles each sample's bytes), every row with filter type 0.
std::string encodePng(int w, int h, int channels, const std::vector<uint8_t>& px, int bitDepth = 8) {
    std::string out("\x89PNG\r\n\x1a\n", 8), ihdr;
    putBE32(ihdr, uint32_t(w));
    putBE32(ihdr, uint32_t(h));
    ihdr += char(bitDepth);
    ihdr += char(channels == 1 ? 0 : channels == 3 ? 2 : 6);
    ihdr += std::string(3, '\0');
    pngChunk(out, "IHDR", ihdr);
    const int bytes = bitDepth / 8;
    std::string raw;
    for (int r = 0; r < h; ++r) {
        raw += '\0';
        for (int i = 0; i < w * channels; ++i) raw += std::string(size_t(bytes), char(px[size_t(r * w * channels + i)]));
    }
    uLongf n = compressBound(uLong(raw.size()));
    std::string z(n, '\0');
    compress(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(raw.data()), uLong(raw.size()));
    z.resize(n);
    pngChunk(out, "IDAT", z);
    pngChunk(out, "IEND", "");
    return out;
}
/// The pixels of an 8-bit, non-interlaced RGB or RGBA PNG as RGB (alpha dropped): IDAT inflated and the five
/// row filters undone (PNG specification, section 9). Empty for anything else.
std::vector<uint8_t> decodePngRgb(const std::string& png, int& w, int& h) {
    auto be32 = [&](size_t at) {
        return uint32_t(uint8_t(png[at])) << 24 | uint32_t(uint8_t(png[at + 1])) << 16 | uint32_t(uint8_t(png[at + 2])) << 8 | uint8_t(png[at + 3]);
    };
    std::string idat;
    int channels = 0;
    for (size_t at = 8; at + 8 <= png.size();) {
        const uint32_t len = be32(at);
        const std::string type = png.substr(at + 4, 4);
        if (type == "IHDR") {
            w = int(be32(at + 8)), h = int(be32(at + 12));
            if (png[at + 16] != 8 || png[at + 20] != 0) return {};
            channels = png[at + 17] == 2 ? 3 : png[at + 17] == 6 ? 4 : 0;
        }
        if (type == "IDAT") idat += png.substr(at + 8, len);
        at += 12 + len;
    }
    if (!channels) return {};
    const size_t stride = size_t(w * channels);
    std::string raw((stride + 1) * size_t(h), '\0');
    uLongf n = uLongf(raw.size());
    if (uncompress(reinterpret_cast<Bytef*>(raw.data()), &n, reinterpret_cast<const Bytef*>(idat.data()), uLong(idat.size())) != Z_OK) return {};
    std::vector<uint8_t> cur(stride), prev(stride, 0), rgb;
    for (int r = 0; r < h; ++r) {
        const int filter = uint8_t(raw[size_t(r) * (stride + 1)]);
        for (size_t i = 0; i < stride; ++i) {
            const int x = uint8_t(raw[size_t(r) * (stride + 1) + 1 + i]);
            const int a = i >= size_t(channels) ? cur[i - size_t(channels)] : 0, b = prev[i],
                      c = i >= size_t(channels) ? prev[i - size_t(channels)] : 0;
            int pred = 0;
            if (filter == 1) pred = a;
            if (filter == 2) pred = b;
            if (filter == 3) pred = (a + b) / 2;
            if (filter == 4) {
                const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
                pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
            }
            cur[i] = uint8_t((x + pred) & 0xFF);
        }
        for (int col = 0; col < w; ++col)
            for (int k = 0; k < 3; ++k) rgb.push_back(cur[size_t(col * channels + k)]);
        prev = cur;
    }
    return rgb;
}

std::string readBytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}
void writeBytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

/// A version-1 .npy file: `descr` ('<f4', '|O', ...), the shape as Python writes it ("(3, 12)"), the data.
void writeNpy(const std::string& path, const std::string& descr, const std::string& shape, const std::string& data) {
    std::string h = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    while ((10 + h.size() + 1) % 64) h += ' ';
    h += '\n';
    writeBytes(path, std::string("\x93NUMPY\x01\x00", 8) + char(h.size() & 0xFF) + char(h.size() >> 8) + h + data);
}
template <typename T>
std::string rawBytes(const std::vector<T>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

/// A copy of the public sample folder in `dir`/name, to damage.
std::string copySample(const QTemporaryDir& dir, const std::string& name) {
    const std::string to = dir.path().toStdString() + "/" + name;
    std::filesystem::copy(GW_SOURCE_DIR "/tests/data/simple-shapes-sample", to, std::filesystem::copy_options::recursive);
    return to;
}

QByteArray fileBytes(const QString& path) {
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

}  // namespace

class TestShapes : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void workedExample() {
        // A published row: class 0, x 13, y 19, size 10, θ 5.253238, RGB (106, 106, 2).
        sh::Shape s;
        s.cls = 0;
        s.x = 13;
        s.y = 19;
        s.size = 10;
        s.rotation = 5.253238;
        s.rgb = {106, 106, 2};
        const auto v = sh::attributeVector(s);
        const float expected[11] = {1, 0, 0, -0.333333f, 0.333333f, -0.142857f, 0.514864f, -0.857272f, -0.168627f, -0.168627f, -0.984314f};
        for (int i = 0; i < 11; ++i) QVERIFY2(std::abs(v[size_t(i)] - expected[i]) < 2e-6, qPrintable(QString::number(i)));
        const auto back = sh::shapeFromAttributes(v.data());
        QCOMPARE(back.cls, 0);
        QVERIFY(std::abs(back.x - 13) < 1e-4 && std::abs(back.y - 19) < 1e-4 && std::abs(back.size - 10) < 1e-4);
        QVERIFY(std::abs(back.rotation - 5.253238) < 1e-5);
        QCOMPARE(back.rgb, s.rgb);

        const auto px = render(s);
        // The four pixels around the centre (x 13, y 19: columns 12-13, rows 12-13) are inside: exact RGB.
        for (int r : {12, 13})
            for (int c : {12, 13}) QCOMPARE(pixelAt(px, r, c), (std::array<int, 3>{106, 106, 2}));
        // Far from the shape (its box is 10 px, rotated at most 7.1 px from the centre): black.
        QCOMPARE(pixelAt(px, 0, 0), (std::array<int, 3>{0, 0, 0}));
        QCOMPARE(pixelAt(px, 31, 31), (std::array<int, 3>{0, 0, 0}));
        QCOMPARE(pixelAt(px, 13, 24), (std::array<int, 3>{0, 0, 0}));
        // Anti-aliased edges: some pixels between black and the colour.
        int partial = 0;
        for (size_t i = 1; i < px.size(); i += 3) partial += px[i] > 0 && px[i] < 106;
        QVERIFY(partial >= 10);
        // The diamond (unit area 0.5) covers 0.5 · size² = 50 pixels.
        QVERIFY2(std::abs(coveredArea(px, 1, 106) - 50) < 1.0, qPrintable(QString::number(coveredArea(px, 1, 106))));
    }

    void areasAndOrientation() {
        // Unit areas: diamond 0.5 (diagonals 1 and 1), triangle 0.3 (base 0.6, height 1). The egg's area
        // by Green's theorem over its four Béziers: about 0.64.
        const double unitArea[3] = {0.5, 0.0, 0.3};
        for (int cls : {0, 2}) {
            sh::Shape s;
            s.cls = cls;
            s.size = 12;
            s.rgb = {200, 255, 40};
            const auto px = render(s, 2);  // 64 px: area in (2 px)² units
            QVERIFY2(std::abs(coveredArea(px, 1, 255) / 4 - unitArea[cls] * 144) < 1.0, sh::className(cls));
        }
        // At θ = 0 the triangle points up: its lit centroid lies below the box centre (the wide base is
        // at the bottom); at θ = π/2 it points left, so the centroid lies right of the centre.
        sh::Shape t;
        t.cls = 2;
        t.x = 16;
        t.y = 16;
        t.size = 14;
        t.rgb = {255, 255, 255};
        auto [y0, x0] = centroidYX(render(t));
        QVERIFY2(y0 < 16 - 1.0 && std::abs(x0 - 16) < 0.3, qPrintable(QString("%1 %2").arg(y0).arg(x0)));
        t.rotation = kPi / 2;
        auto [y1, x1] = centroidYX(render(t));
        QVERIFY2(x1 > 16 + 1.0 && std::abs(y1 - 16) < 0.3, qPrintable(QString("%1 %2").arg(y1).arg(x1)));
        // The egg is wider near its bottom end: at θ = 0 its centroid is below the centre too, and it is
        // smooth: its area lies between the triangle's and the unit box's.
        sh::Shape e = t;
        e.cls = 1;
        e.rotation = 0;
        const auto ep = render(e);
        const double eggArea = coveredArea(ep, 1, 255) / (14.0 * 14.0);
        QVERIFY2(eggArea > 0.55 && eggArea < 0.75, qPrintable(QString::number(eggArea)));
        QVERIFY(centroidYX(ep).first < 16);
    }

    void openCvHls() {
        // Grey when S = 0; pure red, green, blue at H = 0, 60, 120 with L = 128, S = 255.
        QCOMPARE(sh::hlsToRgb(37, 90, 0), (std::array<uint8_t, 3>{90, 90, 90}));
        QCOMPARE(sh::hlsToRgb(0, 128, 255), (std::array<uint8_t, 3>{255, 1, 1}));
        QCOMPARE(sh::hlsToRgb(60, 128, 255), (std::array<uint8_t, 3>{1, 255, 1}));
        QCOMPARE(sh::hlsToRgb(120, 128, 255), (std::array<uint8_t, 3>{1, 1, 255}));
        // H = 180 is 360 degrees: the same as H = 0.
        QCOMPARE(sh::hlsToRgb(180, 200, 100), sh::hlsToRgb(0, 200, 100));
        // Everywhere on a grid: within rounding of the textbook conversion.
        for (int h = 0; h <= 180; h += 7)
            for (int l = 46; l <= 255; l += 19)
                for (int s = 0; s <= 255; s += 23) {
                    const auto got = sh::hlsToRgb(h, l, s);
                    const auto want = textbookHls(h / 180.0, l / 255.0, s / 255.0);
                    for (int c = 0; c < 3; ++c)
                        QVERIFY2(std::abs(got[size_t(c)] - want[size_t(c)] * 255) <= 0.5 + 1e-3,
                                 qPrintable(QString("H %1 L %2 S %3").arg(h).arg(l).arg(s)));
                }
    }

    void distributionsOverTenThousand() {
        QTemporaryDir dir;
        const std::string out = dir.path().toStdString() + "/ss.h5";
        SimpleShapesOptions o;
        o.train = 10000;
        o.val = 20;
        o.test = 30;
        int64_t lastDone = 0, total = 0;
        generateSimpleShapes(out, o, [&](int64_t d, int64_t t) { lastDone = d, total = t; });
        QCOMPARE(lastDone, int64_t(10050));
        QCOMPARE(total, int64_t(10050));
        H5Array v(out, "/train/v"), attr(out, "/train/attr"), labels(out, "/train/labels"), tv(out, "/test/v");
        QCOMPARE(v.shape(), (std::vector<int64_t>{10000, 32, 32, 3}));
        QCOMPARE(int(v.dtype()), int(torch::kUInt8));
        QCOMPARE(attr.shape(), (std::vector<int64_t>{10000, 11}));
        QCOMPARE(int(attr.dtype()), int(torch::kFloat32));
        QCOMPARE(tv.shape()[0], int64_t(30));
        QCOMPARE(attr.intAttribute("num_classes", 0), int64_t(3));
        const auto lab = labels.readAll();
        // Classes: each within 4.5 standard deviations of 10,000 / 3 (σ ≈ 47).
        const auto counts = torch::bincount(lab.select(1, 0).to(torch::kInt64));
        QCOMPARE(counts.size(0), int64_t(3));
        for (int c = 0; c < 3; ++c) QVERIFY2(std::abs(counts[c].item<int64_t>() - 3333) < 212, qPrintable(QString::number(c)));
        // Ranges, and every integer value of x, y and size present.
        auto col = [&](int c) { return lab.select(1, c); };
        QCOMPARE(col(1).min().item<float>(), 7.f);
        QCOMPARE(col(1).max().item<float>(), 24.f);
        QCOMPARE(col(2).min().item<float>(), 7.f);
        QCOMPARE(col(2).max().item<float>(), 24.f);
        QCOMPARE(std::get<0>(at::_unique(col(1))).size(0), int64_t(18));
        QCOMPARE(col(3).min().item<float>(), 7.f);
        QCOMPARE(col(3).max().item<float>(), 14.f);
        QCOMPARE(std::get<0>(at::_unique(col(3))).size(0), int64_t(8));
        QVERIFY(col(4).min().item<float>() >= 0.f && col(4).max().item<float>() < float(2 * kPi));
        QVERIFY(std::abs(col(4).mean().item<double>() - kPi) < 0.1);   // uniform: σ of the mean ≈ 0.018
        QVERIFY(col(8).max().item<float>() <= 180.f);                  // H
        QVERIFY(col(9).min().item<float>() >= 46.f);                   // L
        // The attribute vector agrees with the labels, and the image with both. The circle inscribed in
        // the triangle around the box centre has radius 0.144·size (the diamond's and the egg's are
        // larger), so from size 10 on the four pixels around (x, y) lie inside the shape and carry the
        // sample's exact colour.
        const auto a = attr.readAll();
        const auto img = v.readAll();
        int checked = 0, exact = 0;
        for (int64_t i = 0; i < 10000; i += 37) {
            sh::Shape s;
            const auto row = lab[i];
            s.cls = int(row[0].item<float>());
            s.x = row[1].item<float>();
            s.y = row[2].item<float>();
            s.size = row[3].item<float>();
            s.rotation = row[4].item<float>();
            for (int c = 0; c < 3; ++c) s.rgb[size_t(c)] = uint8_t(row[5 + c].item<float>());
            const auto want = sh::attributeVector(s);
            for (int k = 0; k < 11; ++k) QVERIFY(std::abs(a[i][k].item<float>() - want[size_t(k)]) < 1e-5);
            if (s.size < 10) continue;
            ++checked;
            bool same = true;
            for (int r : {31 - int(s.y), 32 - int(s.y)})
                for (int c : {int(s.x) - 1, int(s.x)})
                    for (int k = 0; k < 3; ++k) same = same && img[i][r][c][k].item<int>() == s.rgb[size_t(k)];
            exact += same;
        }
        QVERIFY(checked > 100);
        QCOMPARE(exact, checked);
        QVERIFY(!QFile::exists(QString::fromStdString(out + ".partial")));
    }

    void oneSeedOneFile() {
        QTemporaryDir dir;
        const QString d = dir.path();
        SimpleShapesOptions o;
        o.train = 3000;
        o.val = 10;
        o.test = 10;
        o.threads = 1;
        generateSimpleShapes((d + "/a.h5").toStdString(), o);
        o.threads = 2;  // other threads, same samples
        generateSimpleShapes((d + "/b.h5").toStdString(), o);
        o.seed = 1;
        generateSimpleShapes((d + "/c.h5").toStdString(), o);
        const auto a = fileBytes(d + "/a.h5"), b = fileBytes(d + "/b.h5"), c = fileBytes(d + "/c.h5");
        QVERIFY(a.size() > 10000);
        QVERIFY(a == b);
        QVERIFY(a != c);
        H5Array la((d + "/a.h5").toStdString(), "/train/labels"), lc((d + "/c.h5").toStdString(), "/train/labels");
        QVERIFY(!torch::equal(la.readAll(), lc.readAll()));
    }

    void badInput() {
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        SimpleShapesOptions o;
        o.train = 0;
        QVERIFY(errorOf([&] { generateSimpleShapes(d + "/x.h5", o); }).contains("--train: expected a positive sample count, found 0"));
        o.train = 100;
        o.test = -5;
        QVERIFY(errorOf([&] { generateSimpleShapes(d + "/x.h5", o); }).contains("--test: expected a positive sample count, found -5"));
        o.test = 10;
        o.val = 10;
        // An existing file without force: named, left alone.
        { std::ofstream(d + "/keep.h5") << "mine"; }
        QVERIFY(errorOf([&] { generateSimpleShapes(d + "/keep.h5", o); }).contains(QString::fromStdString(d + "/keep.h5: the file exists")));
        QCOMPARE(fileBytes(QString::fromStdString(d + "/keep.h5")), QByteArray("mine"));
        o.force = true;
        generateSimpleShapes(d + "/keep.h5", o);
        QCOMPARE(H5Array(d + "/keep.h5", "/val/v").rows(), int64_t(10));
        // An unwritable place: the path is named.
        { std::ofstream(d + "/afile") << "x"; }
        QVERIFY(errorOf([&] { generateSimpleShapes(d + "/afile/sub/x.h5", o); }).contains(QString::fromStdString(d + "/afile/sub/x.h5")));
        // Stopped half-way (Ctrl-C): nothing left, neither the file nor its .partial.
        o.train = 40000;
        int polls = 0;
        bool stopped = false;
        try {
            generateSimpleShapes(d + "/stop.h5", o, {}, [&] { return ++polls > 2; });
        } catch (const GenerationStopped&) {
            stopped = true;
        }
        QVERIFY(stopped);
        QVERIFY(!QFile::exists(QString::fromStdString(d + "/stop.h5")));
        QVERIFY(!QFile::exists(QString::fromStdString(d + "/stop.h5.partial")));
    }

    void attributesModule() {
        torch::manual_seed(0);  // the module's initial weights too: the check below is on a trained value
        gw::DomainModuleSpec spec("attributes");
        spec.inputDim = 11;
        auto m = gw::makeDomainModule(spec);
        QCOMPARE(m->latentDim(), int64_t(10));
        QVERIFY(m->needsPretraining());
        // shimmer-ssd's layer sizes (11→64→64→10, q_mean/q_logvar 10→10, 10→64→64, heads 64→3 and 64→8).
        int64_t count = 0;
        for (const auto& p : m->parameters()) count += p.numel();
        QCOMPARE(count, int64_t((11 * 64 + 64) + (64 * 64 + 64) + (64 * 10 + 10) + 2 * (10 * 10 + 10) + (10 * 64 + 64) +
                                (64 * 64 + 64) + (64 * 3 + 3) + (64 * 8 + 8)));
        QVERIFY(errorOf([&] { m->prepare(torch::zeros({4, 12})); }).contains("expected Simple Shapes attribute vectors of shape (B, 11)"));
        spec.inputDim = 12;
        QVERIFY(errorOf([&] { gw::makeDomainModule(spec); }).contains("expected 11 values per sample"));
        spec.inputDim = 11;
        spec.set("beta", "-1");
        QVERIFY(errorOf([&] { gw::makeDomainModule(spec); }).contains("beta"));

        // Pre-training on generated attribute vectors: the class is learnt, the values' error drops.
        std::vector<float> rows;
        for (int64_t i = 0; i < 4096; ++i) {
            const auto v = sh::attributeVector(sh::sampleShape(5, 0, i));
            rows.insert(rows.end(), v.begin(), v.end());
        }
        const auto x = torch::from_blob(rows.data(), {4096, 11}, torch::kFloat32).clone();
        torch::manual_seed(0);
        const auto first = m->computeDomainLoss(x)->metrics;
        torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(3e-3));
        for (int step = 0; step < 600; ++step) {
            auto idx = torch::randint(0, 4096, {256}, torch::kInt64);
            auto out = m->computeDomainLoss(x.index_select(0, idx));
            opt.zero_grad();
            out->loss.backward();
            opt.step();
        }
        m->eval();
        torch::NoGradGuard ng;
        const auto last = m->computeDomainLoss(x)->metrics;
        QVERIFY2(last.at("category_accuracy").item<double>() > 0.97, qPrintable(QString::number(last.at("category_accuracy").item<double>())));
        QVERIFY2(last.at("attribute_error").item<double>() < 0.6 * first.at("attribute_error").item<double>(),
                 qPrintable(QString("attribute_error %1 after, %2 before").arg(last.at("attribute_error").item<double>()).arg(first.at("attribute_error").item<double>())));
        // dataMetrics of the encoded latent, against the decoding read back by hand.
        const auto z = m->encode(x);
        const auto dm = m->dataMetrics(z, x);
        const auto dec = m->decodeRaw(z);
        QCOMPARE(dec.sizes(), x.sizes());
        QVERIFY(torch::allclose(dec.narrow(1, 0, 3).sum(1), torch::ones({4096}), 1e-5, 1e-5));  // probabilities
        const double acc = dec.narrow(1, 0, 3).argmax(1).eq(x.narrow(1, 0, 3).argmax(1)).to(torch::kDouble).mean().item<double>();
        QVERIFY(std::abs(dm.at("category_accuracy").item<double>() - acc) < 1e-6);
        const double px = (dec.narrow(1, 3, 2) - x.narrow(1, 3, 2)).abs().mean().item<double>() * 9;
        QVERIFY(std::abs(dm.at("position_error").item<double>() - px) < 1e-4);
        // Rotation error in degrees: a latent whose decoding turns every shape by the same angle would
        // give that angle; here check the range and that it is the mean absolute wrapped difference.
        auto ang = [](const torch::Tensor& v) { return torch::atan2(v.select(1, 7), v.select(1, 6)); };
        auto d = (ang(dec) - ang(x)).abs();
        d = torch::minimum(d, 2 * kPi - d);
        QVERIFY(std::abs(dm.at("rotation_error").item<double>() - d.mean().item<double>() * 180 / kPi) < 1e-3);
        QVERIFY(dm.at("rotation_error").item<double>() < 90);
    }

    void translationsInDataSpace() {
        // A v + attr GW on a small generated set: gw eval's data-space metrics exist and read sensibly.
        QTemporaryDir dir;
        const std::string root = dir.path().toStdString();
        SimpleShapesOptions o;
        o.train = 2000;
        o.val = 100;
        o.test = 200;
        generateSimpleShapes(root + "/ss.h5", o);
        std::ofstream(root + "/ss.yaml") <<
            "name: ss\nseed: 1\nthreads: 2\n"
            "data: {file: ss.h5, paired_count: 500}\n"
            "domains:\n"
            "  v: {module: conv_vae, channels: 3, image_size: 32, latent_dim: 8, hidden_dim: 16, weights: v.pt,\n"
            "      pretrain: {steps: 40, batch_size: 64, lr: 0.003}}\n"
            "  attr: {module: attributes, weights: attr.pt, pretrain: {steps: 300, batch_size: 128, lr: 0.005}}\n"
            "workspace: {dim: 12, encoder: {hidden: 32, layers: 1}, decoder: {hidden: 32, layers: 1}}\n"
            "optimizer: {lr: 0.003}\n"
            "training: {steps: 150, batch_size: 64, val_every: 1000, checkpoint_every: 1000, log_every: 1000, out: runs}\n";
        gw::Engine e(gw::loadExperiment(root + "/ss.yaml", {}));
        e.prepare();
        const auto plain = e.evaluate("test");
        QVERIFY(!plain.contains("test/translation_attr_to_v_image_mse"));
        const auto before = e.evaluate("test", -1, true);
        for (int i = 0; i < 150; ++i) e.trainStep();
        const auto after = e.evaluate("test", -1, true);
        for (const char* k : {"test/translation_attr_to_v_image_mse", "test/translation_v_to_attr_category_accuracy",
                              "test/translation_v_to_attr_attribute_error", "test/translation_v_to_attr_position_error",
                              "test/translation_v_to_attr_size_error", "test/translation_v_to_attr_rotation_error",
                              "test/translation_v_to_attr_colour_error"})
            QVERIFY2(after.contains(k), k);
        // Every score the modules returned is one their kinds declare (KindInfo::dataScores), so that the
        // dashboard reads it as a data-space score.
        const auto declared = gw::dataScoreNames();
        int scored = 0;
        for (const auto& [k, v] : after) {
            if (plain.contains(k)) continue;
            std::string translation, score;
            QVERIFY2(gw::metrics::splitDataScore(k.substr(5), declared, translation, score), k.c_str());
            ++scored;
        }
        QCOMPARE(scored, 7);
        QCOMPARE(after.at("test/loss"), e.evaluate("test").at("test/loss"));  // data space adds, changes nothing
        const double mse = after.at("test/translation_attr_to_v_image_mse");
        QVERIFY2(mse > 0 && mse < 0.2, qPrintable(QString::number(mse)));
        QVERIFY(after.at("test/translation_v_to_attr_attribute_error") < before.at("test/translation_v_to_attr_attribute_error"));
        const double acc = after.at("test/translation_v_to_attr_category_accuracy");
        QVERIFY(acc >= 0 && acc <= 1);
    }

    // ---- Captions (data/captions.h) ----------------------------------------------------------------

    void captionsOfThePublicSample() {
        // The eight captions of DS sample_dataset/{train,val,test}_captions.npy, made again from the
        // same files' labels (class, x, y, size, rotation, RGB; float32) and caption_choices (the Python
        // dicts, restated field by field; a field the dict lacks is 0).
        struct Row {
            int cls;
            float x, y, size, rot, r, g, b;
            int structure, groups, start, object, colored, colorBefore, colorAfter, colorBoth, comma, link, link2, link3;
            int shape, rotWriter, rotOfImage, rotRotated, rotCorner, rotSide, sizeVal;
            int locWriter, locVal, bottom, middle, top, inThe, onThe, side, located;
            int category;  // DS text/utils.py structure_category_from_choice, computed once on the dict
            const char* caption;
        };
        const Row rows[] = {
            {0, 13, 19, 10, 5.2532377f, 106, 106, 2, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0,
             1, 0, 0, 0, 0, 1, 0, 1, 0, 3,
             "A small olive object pointing to the northeast, it is located at the middle left. It looks like a diamond."},
            {1, 8, 13, 12, 2.1199226f, 22, 176, 78, 4, 0, 4, 0, 0, 0, 0, 2, 0, 1, 0, 5, 5, 0, 0, 0, 0, 0, 2,
             0, 0, 1, 0, 0, 0, 1, 0, 1, 8,
             "The image is a triangle-like shape with rounded vertices, it is medium and sea green colored, it is slightly "
             "lower side, at the very left side, it is pointing to the bottom-left."},
            {0, 14, 21, 9, 4.072584f, 4, 102, 66, 0, 0, 5, 0, 0, 1, 0, 0, 0, 1, 0, 0, 5, 1, 1, 2, 0, 0, 0,
             0, 0, 1, 1, 1, 0, 0, 0, 1, 0,
             "The image represents a small dark slate grey colored arrow-shaped polygon, it is at the upper side center, it "
             "is pointing southeast."},
            {1, 24, 12, 11, 2.3137298f, 224, 225, 217, 4, 1, 4, 0, 0, 0, 0, 0, 1, 3, 0, 4, 1, 2, 1, 1, 1, 1, 1,
             0, 0, 0, 1, 0, 0, 0, 0, 1, 9,
             "The image is a water droplet and it is medium sized, gainsboro and it is pointing towards the bottom-left "
             "corner and it is slightly bottom, on the very right side."},
            {2, 7, 17, 8, 4.630193f, 202, 189, 239, 0, 0, 7, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0,
             1, 0, 1, 0, 1, 1, 0, 0, 0, 0,
             "A kind of tiny thistle colored isosceles triangle, and is located at the middle left side, and is pointing "
             "to the right."},
            {0, 10, 18, 8, 1.360626f, 198, 207, 141, 3, 0, 0, 1, 0, 0, 1, 0, 0, 1, 2, 0, 3, 0, 0, 1, 0, 1, 0,
             1, 0, 0, 0, 0, 1, 1, 0, 1, 6,
             "A tiny object in tan color at the middle left side, it is pointing towards the left side, and looks like a "
             "kite."},
            {0, 11, 16, 8, 4.383346f, 151, 174, 32, 5, 0, 7, 0, 0, 0, 0, 0, 0, 1, 0, 0, 3, 1, 1, 1, 0, 0, 0,
             0, 0, 1, 0, 0, 0, 0, 1, 0, 10,
             "A kind of yellow green tiny kite, it is located in the middle, on the left, it is pointing towards the east."},
            {0, 17, 8, 14, 0.3784078f, 168, 128, 141, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0,
             1, 1, 0, 1, 0, 0, 0, 0, 1, 4,
             "The image is a big shape at the bottom. It is pointing towards the top. It is rosy brown, it looks like a "
             "diamond."},
        };
        for (const Row& r : rows) {
            const sh::CaptionInput in{r.cls, r.x, r.y, r.size, r.rot, r.r, r.g, r.b};
            sh::CaptionChoice c;
            c.structure = r.structure;
            c.groups = r.groups;
            c.variants = {r.start, 0, r.object, r.colored, r.colorBefore, r.colorAfter, r.colorBoth, r.comma, r.link, r.link2, r.link3};
            c.shapeName = r.shape;
            c.rotationWriter = r.rotWriter;
            c.rotationOfImage = r.rotOfImage;
            c.rotationRotated = r.rotRotated;
            c.rotationCorner = r.rotCorner;
            c.rotationSide = r.rotSide;
            c.sizeVal = r.sizeVal;
            c.locationWriter = r.locWriter;
            c.locationVal = r.locVal;
            c.locationBottom = r.bottom;
            c.locationMiddle = r.middle;
            c.locationTop = r.top;
            c.locationInThe = r.inThe;
            c.locationOnThe = r.onThe;
            c.locationSide = r.side;
            c.locationLocated = r.located;
            const auto cap = sh::makeCaption(in, c);
            QCOMPARE(QString::fromStdString(cap.text), QString(r.caption));
            QCOMPARE(int(cap.columns[0]), r.category);
            QCOMPARE(int(cap.columns[12]), r.rotWriter);
            QCOMPARE(int(cap.columns[13]), r.locWriter);
            QCOMPARE(QString::fromStdString(sh::composeCaption(in, sh::captionChoiceFromColumns(cap.columns.data()))), QString(r.caption));
        }
        // The whole category row of the first (structure_category_from_choice on its dict): the variants
        // it does not use are 0, and only writer 1's location variants are set, in_the left at 0.
        const Row& r = rows[0];
        sh::CaptionChoice c;
        c.structure = 1, c.groups = 1, c.variants = {0, 0, 1, 1, 0, 1, 3, 1, 1, 0, 2};  // unused ones set: ignored
        c.rotationWriter = 1, c.rotationOfImage = 1, c.locationWriter = 1, c.locationInThe = 1, c.locationSide = 1;
        const auto cap = sh::makeCaption({r.cls, r.x, r.y, r.size, r.rot, r.r, r.g, r.b}, c);
        QCOMPARE(QString::fromStdString(cap.text), QString(r.caption));
        const int8_t want[28] = {3, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
        for (int i = 0; i < 28; ++i) QVERIFY2(cap.columns[size_t(i)] == want[i], sh::captionChoiceColumnInfo()[size_t(i)].name);
    }

    /// The public sample dataset's files as they ship (tests/data/simple-shapes-sample): each sample's
    /// labels and pickled choices, read by data/npy.h and captionChoiceOfPublic, compose the caption
    /// stored beside them, in every split.
    void publicChoiceFilesComposeTheirCaptions() {
        using namespace gw::data;
        const std::string root = GW_SOURCE_DIR "/tests/data/simple-shapes-sample/";
        int composed = 0;
        for (const char* split : {"train", "val", "test"}) {
            const auto labels = readNpy(root + split + "_labels.npy");
            const auto captions = readNpy(root + split + "_captions.npy");
            const auto choices = readNpy(root + split + "_caption_choices.npy");
            QCOMPARE(int64_t(captions.text.size()), labels.shape[0]);
            QCOMPARE(int64_t(choices.objects.size()), labels.shape[0]);
            const int64_t w = labels.shape[1];
            for (int64_t i = 0; i < labels.shape[0]; ++i) {
                auto at = [&](int64_t k) { return double(float(labels.number(i * w + k))); };
                const sh::CaptionInput in{int(at(0)), at(1), at(2), at(3), at(4), at(5), at(6), at(7)};
                const auto c = captionChoiceOfPublic(*choices.objects[size_t(i)], std::string(split) + "_caption_choices.npy[" + std::to_string(i) + "]");
                QCOMPARE(QString::fromStdString(sh::composeCaption(in, c)), QString::fromStdString(captions.text[size_t(i)]));
                ++composed;
            }
        }
        QCOMPARE(composed, 8);
        PyValue notADict;
        notADict.kind = PyValue::Kind::List;
        QVERIFY(fixtures::errorOf([&] { captionChoiceOfPublic(notADict, "x.npy[0]"); })
                    .contains("x.npy[0]: expected a dict of caption choices, found a list"));
    }

    void captionWordsPerAttribute() {
        // COLORS_LARGE_SET (A2L utils.py): 141 matplotlib names; duplicates resolve to the first.
        const auto& colors = sh::captionColors();
        QCOMPARE(int(colors.size()), 141);
        auto named = [&](double r, double g, double b) { return QString(colors[size_t(sh::nearestCaptionColor(r, g, b))].name); };
        QCOMPARE(named(106, 106, 2), QString("olive"));
        QCOMPARE(named(0, 255, 255), QString("aqua"));
        QCOMPARE(named(255, 0, 255), QString("fuchsia"));
        QCOMPARE(named(102, 51, 153), QString("rebecca purple"));
        QCOMPARE(named(251, 249, 209), QString("light goldenrod yellow"));
        // One choice, changing one attribute at a time.
        sh::CaptionChoice c;  // template 0: "{start} {size} {colorBefore} {shape}{link} <location>{link} <rotation>."
        auto caption = [&](const sh::CaptionInput& in) { return QString::fromStdString(sh::composeCaption(in, c)); };
        sh::CaptionInput in{2, 16, 16, 8, 0.1, 255, 0, 0};
        QCOMPARE(caption(in), QString("A tiny red isosceles triangle. It is located in the middle. It is pointing to the top."));
        // Rotation (counter-clockwise, 0 = up): the cardinal writer says west at π/2; with no wrap-around
        // an angle just below 2π is nearest to 7π/4, north-east (DS writers.py, A2L QuantizedWriter).
        c.rotationWriter = 1;
        in.rotation = kPi / 2;
        QVERIFY(caption(in).endsWith("pointing to the west."));
        in.rotation = 2 * kPi - 0.05;
        QVERIFY(caption(in).endsWith("pointing to the northeast."));
        c.rotationWriter = 2;  // corner, 16 angles: 3π/8 is "left top-left"
        in.rotation = 3 * kPi / 8;
        QVERIFY2(caption(in).endsWith("pointing to the left top-left."), qPrintable(caption(in)));
        // Location, the 7 × 7 bins writer: x 8 and y 8 are the very left and very bottom; the 9-point
        // writer: (23, 23) is the top right.
        in.x = 8, in.y = 8;
        QVERIFY2(caption(in).contains("located at the very bottom, on the very left side"), qPrintable(caption(in)));
        c.locationWriter = 1;
        in.x = 23, in.y = 23;
        QVERIFY2(caption(in).contains("located at the top right side"), qPrintable(caption(in)));
        // Articles: "an" before a vowel (start takes the size's first letter; "a" the shape's).
        c.structure = 1;
        c.variants[sh::kVariantLink2] = 1;
        in.size = 11;  // average sized / medium sized / medium: option 0
        in.cls = 1;    // egg: option 0
        QVERIFY2(caption(in).startsWith("An average sized red shape") && caption(in).endsWith("it looks like an egg."), qPrintable(caption(in)));

        // Over 10,000 samples: the words of each size bin, each class and each colour.
        const char* sizeWords[4][3] = {{"tiny"}, {"small", "little"}, {"average sized", "medium sized", "medium"}, {"big", "large"}};
        const std::vector<std::vector<const char*>> shapeWords = {
            {"diamond", "trapezoidal shape", "four-sided shape", "kite", "quadrilateral", "arrow-shaped polygon", "deformed square shape"},
            {"egg", "water droplet", "isosceles triangle that has round corners", "bullet", "oval shaped structure",
             "triangle-like shape with rounded vertices", "guitar pick"},
            {"isosceles triangle", "triangle"}};
        int tiny = 0;
        for (int64_t i = 0; i < 10000; ++i) {
            const auto s = sh::sampleShape(0, 0, i);
            const auto cap = sh::sampleCaption(s, 0, 0, i);
            const QString t = QString::fromStdString(cap.text);
            const int bin = s.size < 9 ? 0 : s.size < 11 ? 1 : s.size < 13 ? 2 : 3;
            bool sized = false;
            for (const char* w : sizeWords[bin]) sized = sized || (w && t.contains(QString(" ") + w));
            QVERIFY2(sized, qPrintable(t));
            QCOMPARE(t.contains("tiny"), s.size < 9);
            tiny += s.size < 9;
            QVERIFY2(t.contains(shapeWords[size_t(s.cls)][size_t(cap.columns[28])]), qPrintable(t));
            if (s.cls == 2) QVERIFY(t.contains("triangle") && !t.contains("diamond") && !t.contains("egg"));
            // The colour named is the nearest of the 141 under the 2-norm, the first of equals.
            int best = 0;
            double bestD = 1e300;
            for (size_t k = 0; k < colors.size(); ++k) {
                double d = 0;
                for (int ch = 0; ch < 3; ++ch) d += std::pow(colors[k].rgb[size_t(ch)] - s.rgb[size_t(ch)], 2);
                if (d < bestD) best = int(k), bestD = d;
            }
            const QString name = QString(" ") + colors[size_t(best)].name;
            QVERIFY2(t.contains(name + " ") || t.contains(name + ",") || t.contains(name + "."), qPrintable(t));
            QVERIFY(QString(colors[size_t(best)].name) != "cyan" && QString(colors[size_t(best)].name) != "magenta");
        }
        QVERIFY(tiny > 2000 && tiny < 3000);  // sizes 7 and 8 of 7..14: a quarter
    }

    void captionStatisticsOverTenThousand() {
        // The public composer's distribution: every choice uniform. Reference numbers, measured once with
        // the public code (DS text/composer.py at 3d0f6c5 on A2L 876610c, Python 3.11) on attributes drawn
        // like the generator's, five runs of 10,000: mean length 135.5 to 136.3 characters (σ 21.4), the
        // shortest 55 to 66, the longest 218 to 223; 25.0 words on average. 200,000: 135.76, 55, 230.
        constexpr int n = 10000;
        std::vector<int> structures(7), categories(18), starts(8), rotationWriters(4), locationWriters(2);
        std::vector<std::vector<int>> seen(sh::kCaptionChoiceColumns);
        for (int k = 0; k < sh::kCaptionChoiceColumns; ++k) seen[size_t(k)].assign(size_t(sh::captionChoiceColumnInfo()[size_t(k)].categories), 0);
        double sumLen = 0, sumWords = 0;
        size_t minLen = 1000, maxLen = 0;
        std::vector<std::array<int, 8>> drawn(sh::kCaptionVariants, std::array<int, 8>{});  // start has 8 options, the most
        for (int64_t i = 0; i < n; ++i) {
            const auto s = sh::sampleShape(0, 0, i);
            const auto in = sh::captionInput(s);
            const auto choice = sh::drawCaptionChoice(in, 0, 0, i);
            const auto cap = sh::makeCaption(in, choice);
            ++structures[size_t(choice.structure)];
            ++categories[size_t(cap.columns[0])];
            ++starts[size_t(cap.columns[1])];  // start is in every template
            ++rotationWriters[size_t(cap.columns[12])];
            ++locationWriters[size_t(cap.columns[13])];
            for (int v = 0; v < sh::kCaptionVariants; ++v) ++drawn[size_t(v)][size_t(choice.variants[size_t(v)])];
            for (int k = 0; k < sh::kCaptionChoiceColumns; ++k) ++seen[size_t(k)][size_t(cap.columns[size_t(k)])];
            sumLen += double(cap.text.size());
            minLen = std::min(minLen, cap.text.size());
            maxLen = std::max(maxLen, cap.text.size());
            sumWords += QString::fromStdString(cap.text).split(' ').size();
            QVERIFY(cap.text.size() < size_t(sh::kCaptionBytes));
        }
        // Uniform within 0.015 (over 4 standard deviations of a frequency of 10,000 draws).
        auto uniform = [&](const std::vector<int>& counts, const char* what) {
            for (size_t k = 0; k < counts.size(); ++k)
                QVERIFY2(std::abs(counts[k] / double(n) - 1.0 / double(counts.size())) < 0.015,
                         qPrintable(QString("%1 %2: %3").arg(what).arg(k).arg(counts[k])));
        };
        uniform(structures, "structure");
        uniform(starts, "variant_start");
        uniform(rotationWriters, "writer_rotation");
        uniform(locationWriters, "writer_location");
        // Within a template, the group orders are uniform: 1/14 for templates 0-5, 1/42 for template 6.
        for (int k = 0; k < 18; ++k)
            QVERIFY2(std::abs(categories[size_t(k)] / double(n) - (k < 12 ? 1.0 / 14 : 1.0 / 42)) < 0.01, qPrintable(QString::number(k)));
        for (int v = 0; v < sh::kCaptionVariants; ++v) {
            const size_t options = size_t(sh::captionChoiceColumnInfo()[size_t(1 + v)].categories);
            for (size_t o = 0; o < options; ++o)
                QVERIFY2(std::abs(drawn[size_t(v)][o] / double(n) - 1.0 / double(options)) < 0.015,
                         qPrintable(QString("variant %1 option %2: %3").arg(v).arg(o).arg(drawn[size_t(v)][o])));
        }
        // Every structure category and every option of every column is reached; in_the and on_the of the
        // public categories stay 0 (structure_category_from_choice looks up "in" and "on").
        for (int k = 0; k < sh::kCaptionChoiceColumns; ++k) {
            const QString name = sh::captionChoiceColumnInfo()[size_t(k)].name;
            const bool alwaysZero = name.startsWith("writer_location_0_in") || name.startsWith("writer_location_0_on") ||
                                    name.startsWith("writer_location_1_in") || name.startsWith("writer_location_1_on");
            for (size_t o = 0; o < seen[size_t(k)].size(); ++o)
                QVERIFY2(alwaysZero ? (o == 0) == (seen[size_t(k)][o] == n) : seen[size_t(k)][o] > 0,
                         qPrintable(name + " " + QString::number(o)));
        }
        const double meanLen = sumLen / n, meanWords = sumWords / n;
        QVERIFY2(std::abs(meanLen - 135.8) < 1.5, qPrintable(QString::number(meanLen)));
        QVERIFY2(std::abs(meanWords - 25.0) < 0.4, qPrintable(QString::number(meanWords)));
        QVERIFY2(minLen >= 50 && minLen <= 75, qPrintable(QString::number(minLen)));
        QVERIFY2(maxLen >= 205 && maxLen <= 240, qPrintable(QString::number(maxLen)));
    }

    void captionsAreSeededPerSample() {
        int sameAsNext = 0, sameOtherSeed = 0;
        std::string previous;
        for (int64_t i = 0; i < 2000; ++i) {
            const auto s = sh::sampleShape(3, 1, i);
            const auto a = sh::sampleCaption(s, 3, 1, i), b = sh::sampleCaption(s, 3, 1, i);
            QCOMPARE(QString::fromStdString(a.text), QString::fromStdString(b.text));
            QVERIFY(a.columns == b.columns);
            sameAsNext += a.text == previous;
            sameOtherSeed += sh::sampleCaption(s, 4, 1, i).text == a.text;
            previous = a.text;
            // Consistent with its columns: composing the choice they stand for gives the caption again.
            QCOMPARE(sh::composeCaption(sh::captionInput(s), sh::captionChoiceFromColumns(a.columns.data())), a.text);
        }
        QCOMPARE(sameAsNext, 0);
        QVERIFY(sameOtherSeed < 20);  // same shape, other choices: rarely the same sentence
        // A column outside its categories is refused, by name.
        auto cols = sh::sampleCaption(sh::sampleShape(0, 0, 0), 0, 0, 0).columns;
        cols[0] = 18;
        QVERIFY(errorOf([&] { sh::captionChoiceFromColumns(cols.data()); }).contains("structure: expected 0..17, found 18"));
        sh::CaptionChoice bad;
        bad.rotationWriter = 4;
        QVERIFY(errorOf([&] { sh::composeCaption({}, bad); }).contains("rotation writer 4"));
        bad.rotationWriter = 0;
        bad.groups = 2;  // template 0 has two orders
        QVERIFY(errorOf([&] { sh::composeCaption({}, bad); }).contains("groups 2"));
    }

    /// The word score of decoded captions (captionWords, wordsOutsideCommonSequence, commonWordCount):
    /// order matters, position does not; case and trailing punctuation do not count.
    void captionWordMatching() {
        const auto w = sh::captionWords("  A big\tred egg.\n");
        QCOMPARE(int(w.size()), 4);
        QCOMPARE(QString::fromStdString(w[3]), QString("egg."));
        QVERIFY(sh::captionWords(" \t ").empty());
        const auto truth = sh::captionWords("A small olive diamond at the bottom.");
        // One word shifts every later position by one, but costs one word here.
        const auto shifted = sh::captionWords("A very small olive diamond at the bottom.");
        QCOMPARE(sh::commonWordCount(shifted, truth), 7);
        const auto marks = sh::wordsOutsideCommonSequence(shifted, truth);
        QCOMPARE(int(marks.size()), 8);
        for (size_t i = 0; i < marks.size(); ++i) QCOMPARE(bool(marks[i]), i == 1);  // "very"
        // Another structure: "At the bottom, a small olive diamond." keeps "a small olive diamond" (4 words).
        QCOMPARE(sh::commonWordCount(sh::captionWords("At the bottom, a small olive diamond."), truth), 4);
        QCOMPARE(sh::commonWordCount(sh::captionWords("AT THE BOTTOM"), sh::captionWords("at the bottom.")), 3);
        QCOMPARE(sh::commonWordCount({}, truth), 0);
        QCOMPARE(sh::commonWordCount(truth, {}), 0);
        QVERIFY(sh::wordsOutsideCommonSequence({}, truth).empty());
    }

    void captionsInTheFile() {
        QTemporaryDir dir;
        const std::string with = dir.path().toStdString() + "/with.h5", without = dir.path().toStdString() + "/without.h5";
        SimpleShapesOptions o;
        o.train = 3000, o.val = 10, o.test = 20, o.seed = 5;
        generateSimpleShapes(with, o);
        o.captions = false;
        generateSimpleShapes(without, o);
        // The captions take their own stream: images, attributes and labels are the same without them.
        for (const char* d : {"/train/v", "/train/attr", "/train/labels", "/test/v"})
            QVERIFY2(torch::equal(H5Array(with, d).readAll(), H5Array(without, d).readAll()), d);
        QVERIFY(!H5Array::exists(without, "/train/t") && !H5Array::exists(without, "/train/caption_choices"));
        // The readers list every dataset (the string one as "string") and read the numeric ones.
        const auto sets = listDatasets(with);
        QCOMPARE(int(sets.size()), 15);
        bool listed = false;
        for (const auto& s : sets) listed = listed || (s.path == "/train/t" && s.type == "string" && s.shape == std::vector<int64_t>{3000});
        QVERIFY(listed);
        H5Array choices(with, "/test/caption_choices");
        QCOMPARE(choices.shape(), (std::vector<int64_t>{20, sh::kCaptionChoiceColumns}));
        QCOMPARE(choices.storedType(), std::string("int8"));
        QCOMPARE(choices.intAttribute("public_categories", 0), int64_t(28));
        const auto names = choices.stringsAttribute("column_names");
        QCOMPARE(int(names.size()), sh::kCaptionChoiceColumns);
        QCOMPARE(names[0], std::string("structure"));
        QCOMPARE(names[27], std::string("writer_location_1_located?"));
        // Each stored caption: the sample's, and composed again from the stored labels and choices.
        H5::H5File f(with, H5F_ACC_RDONLY);
        H5::DataSet t = f.openDataSet("/test/t");
        QCOMPARE(int(t.getStrType().getSize()), sh::kCaptionBytes);
        QCOMPARE(int(t.getStrType().getCset()), int(H5T_CSET_UTF8));
        std::vector<char> text(size_t(20 * sh::kCaptionBytes));
        t.read(text.data(), t.getStrType());
        const auto labels = H5Array(with, "/test/labels").readAll();
        const auto rows = choices.readAll();
        for (int64_t i = 0; i < 20; ++i) {
            const std::string stored(text.data() + i * sh::kCaptionBytes, strnlen(text.data() + i * sh::kCaptionBytes, size_t(sh::kCaptionBytes)));
            QCOMPARE(stored, sh::sampleCaption(sh::sampleShape(5, 2, i), 5, 2, i).text);
            const auto l = labels[i];
            const sh::CaptionInput in{int(l[0].item<float>()), l[1].item<float>(), l[2].item<float>(), l[3].item<float>(),
                                      l[4].item<float>(), l[5].item<float>(), l[6].item<float>(), l[7].item<float>()};
            std::array<int8_t, sh::kCaptionChoiceColumns> cols{};
            for (int k = 0; k < sh::kCaptionChoiceColumns; ++k) cols[size_t(k)] = int8_t(rows[i][k].item<int64_t>());
            QCOMPARE(sh::composeCaption(in, sh::captionChoiceFromColumns(cols.data())), stored);
        }
    }

    // ---- The public folder (data/public_folder.h) ------------------------------------------------------

    /// `gw import simple-shapes-folder` of the public sample (tests/data/simple-shapes-sample): every
    /// dataset against the folder's files read on their own (NPY by data/npy.h, PNG by the test's own
    /// zlib decoder), the attribute vector against the public NormalizeAttributes formula in float32, the
    /// BERT vectors standardised as the public text domain does (torch, float32).
    void publicFolderImport() {
        const std::string root = GW_SOURCE_DIR "/tests/data/simple-shapes-sample/";
        QTemporaryDir dir;
        const std::string out = dir.path().toStdString() + "/public.h5";
        std::map<std::string, std::vector<int64_t>> seen;
        PublicFolderOptions o;
        o.threads = 2;
        const auto report = importSimpleShapesFolder(root, out, o, [&](const std::string& split, int64_t done, int64_t) {
            seen[split].push_back(done);
        });
        QCOMPARE(int(report.size()), 3);
        QVERIFY(!QFile::exists(QString::fromStdString(out + ".partial")));
        auto tensorOf = [](const NpyArray& a) {
            const auto type = a.dtype == "f8" ? torch::kFloat64 : torch::kFloat32;
            return torch::from_blob(const_cast<char*>(a.bytes.data()), {a.size()}, type).clone().view(a.shape);
        };
        const auto mean = tensorOf(readNpy(root + "latent_mean.npy")), stdev = tensorOf(readNpy(root + "latent_std.npy"));
        const int categories[8] = {3, 8, 0, 9, 0, 6, 10, 4};  // structure_category_from_choice of each dict, in file order
        int row = 0;
        for (int k = 0; k < 3; ++k) {
            const auto& r = report[size_t(k)];
            const std::string split = r.name, g = "/" + split + "/";
            const int64_t n = k == 0 ? 4 : 2;
            QCOMPARE(r.samples, n);
            QCOMPARE(r.bertDim, int64_t(768));
            QCOMPARE(r.unpairedDim, int64_t(32));
            QVERIFY(r.labelsUnpaired);
            QCOMPARE(r.captionMismatches, int64_t(0));
            QCOMPARE(seen[split].front(), int64_t(0));
            QCOMPARE(seen[split].back(), n);
            // Labels: the first 11 columns as they are, the 12th apart.
            const auto L = tensorOf(readNpy(root + split + "_labels.npy"));
            QCOMPARE(L.sizes(), (c10::IntArrayRef{n, 12}));
            QVERIFY(torch::equal(H5Array(out, g + "labels").readAll(), L.slice(1, 0, 11)));
            QVERIFY(torch::equal(H5Array(out, g + "labels_unpaired").readAll(), L.select(1, 11)));
            // Attributes: SimpleShapesAttributes, NormalizeAttributes and attribute_to_tensor, in float32.
            H5Array attr(out, g + "attr");
            QCOMPARE(attr.intAttribute("num_classes", 0), int64_t(3));
            QCOMPARE(attr.stringsAttribute("class_names"), (std::vector<std::string>{"diamond", "egg", "triangle"}));
            auto unit = [](const torch::Tensor& v, double lo, double span) { return ((v - lo) / span) * 2 - 1; };
            const auto ref = torch::cat({torch::one_hot(L.select(1, 0).to(torch::kLong), 3).to(torch::kFloat32),
                                         torch::stack({unit(L.select(1, 1), 7, 18), unit(L.select(1, 2), 7, 18), unit(L.select(1, 3), 7, 7),
                                                       L.select(1, 4).cos(), L.select(1, 4).sin(), (L.select(1, 5) / 255) * 2 - 1,
                                                       (L.select(1, 6) / 255) * 2 - 1, (L.select(1, 7) / 255) * 2 - 1}, 1)},
                                        1);
            const auto a = attr.readAll();
            QCOMPARE(a.sizes(), (c10::IntArrayRef{n, 11}));
            QVERIFY2((a - ref).abs().max().item<float>() <= 2.5e-7f, "attribute vector differs from the public formula");
            // Images: the PNGs' pixels, alpha dropped.
            const auto v = H5Array(out, g + "v").readAll();
            QCOMPARE(v.sizes(), (c10::IntArrayRef{n, 32, 32, 3}));
            for (int64_t i = 0; i < n; ++i) {
                int w = 0, h = 0;
                const auto px = decodePngRgb(readBytes(root + split + "/" + std::to_string(i) + ".png"), w, h);
                QCOMPARE(int(px.size()), 32 * 32 * 3);
                QVERIFY(std::memcmp(px.data(), v[i].contiguous().data_ptr<uint8_t>(), px.size()) == 0);
            }
            // Captions as stored, and their choice columns compose them again from the labels.
            const auto captions = readNpy(root + split + "_captions.npy");
            H5::H5File f(out, H5F_ACC_RDONLY);
            H5::DataSet t = f.openDataSet(g + "t");
            QCOMPARE(int(t.getStrType().getSize()), sh::kCaptionBytes);
            std::vector<char> text(size_t(n * sh::kCaptionBytes));
            t.read(text.data(), t.getStrType());
            H5Array choices(out, g + "caption_choices");
            QCOMPARE(choices.shape(), (std::vector<int64_t>{n, sh::kCaptionChoiceColumns}));
            QCOMPARE(choices.intAttribute("public_categories", 0), int64_t(28));
            QCOMPARE(int(choices.stringsAttribute("column_names").size()), sh::kCaptionChoiceColumns);
            const auto cols = choices.readAll();
            for (int64_t i = 0; i < n; ++i, ++row) {
                const std::string stored(text.data() + i * sh::kCaptionBytes, strnlen(text.data() + i * sh::kCaptionBytes, size_t(sh::kCaptionBytes)));
                QCOMPARE(QString::fromStdString(stored), QString::fromStdString(captions.text[size_t(i)]));
                std::array<int8_t, sh::kCaptionChoiceColumns> c{};
                for (int j = 0; j < sh::kCaptionChoiceColumns; ++j) c[size_t(j)] = int8_t(cols[i][j].item<int64_t>());
                QCOMPARE(int(c[0]), categories[row]);
                const auto l = L[i];
                const sh::CaptionInput in{int(l[0].item<float>()), l[1].item<float>(), l[2].item<float>(), l[3].item<float>(),
                                          l[4].item<float>(), l[5].item<float>(), l[6].item<float>(), l[7].item<float>()};
                QCOMPARE(QString::fromStdString(sh::composeCaption(in, sh::captionChoiceFromColumns(c.data()))), QString::fromStdString(stored));
            }
            // BERT vectors: SimpleShapesText's (bert - mean) / std, bit for bit.
            const auto bert = tensorOf(readNpy(root + split + "_latent.npy"));
            QVERIFY(torch::equal(H5Array(out, g + "t_bert").readAll(), (bert - mean) / stdev));
            // The unpaired values, as the public loaders take them (.float()).
            QVERIFY(torch::equal(H5Array(out, g + "unpaired").readAll(), tensorOf(readNpy(root + split + "_unpaired.npy")).to(torch::kFloat32)));
        }
        // --no-text: images, attributes and labels only; the text files are then not needed.
        QTemporaryDir bare;
        const std::string folder = copySample(bare, "s");
        for (const char* split : {"train", "val", "test"})
            for (const char* what : {"_captions.npy", "_caption_choices.npy", "_latent.npy"}) std::filesystem::remove(folder + "/" + split + what);
        o.text = false;
        const auto noText = importSimpleShapesFolder(folder, bare.path().toStdString() + "/bare.h5", o);
        QCOMPARE(noText[0].bertDim, int64_t(0));
        QVERIFY(!H5Array::exists(bare.path().toStdString() + "/bare.h5", "/train/t"));
        QVERIFY(!H5Array::exists(bare.path().toStdString() + "/bare.h5", "/train/t_bert"));
        QVERIFY(torch::equal(H5Array(bare.path().toStdString() + "/bare.h5", "/val/v").readAll(), H5Array(out, "/val/v").readAll()));
    }

    /// A folder of the public layout made from GW Studio's own generator (PNGs written by the test,
    /// alternately RGB and RGBA): the import gives back the generator's pixels, attribute vectors and
    /// label rows exactly, whatever the thread count.
    void publicFolderOfOurGenerator() {
        QTemporaryDir dir;
        const std::string root = dir.path().toStdString() + "/gen";
        const int64_t counts[3] = {700, 30, 20};
        const char* names[3] = {"train", "val", "test"};
        sh::Renderer renderer;
        std::vector<uint8_t> rgb(32 * 32 * 3);
        for (int split = 0; split < 3; ++split) {
            std::filesystem::create_directories(root + "/" + names[split]);
            std::vector<float> labels;
            for (int64_t i = 0; i < counts[split]; ++i) {
                const auto s = sh::sampleShape(11, split, i);
                renderer.render(s, rgb.data());
                std::vector<uint8_t> px = rgb;
                if (i % 2) {  // RGBA, opaque
                    px.clear();
                    for (size_t p = 0; p < rgb.size(); p += 3) px.insert(px.end(), {rgb[p], rgb[p + 1], rgb[p + 2], 255});
                }
                writeBytes(root + "/" + names[split] + "/" + std::to_string(i) + ".png", encodePng(32, 32, i % 2 ? 4 : 3, px));
                const auto l = sh::labelRow(s);
                labels.insert(labels.end(), l.begin(), l.end());
                labels.push_back(0.25f);
            }
            writeNpy(root + "/" + names[split] + "_labels.npy", "<f4", "(" + std::to_string(counts[split]) + ", 12)", rawBytes(labels));
        }
        PublicFolderOptions o;
        o.text = false;
        o.threads = 3;
        const std::string a = dir.path().toStdString() + "/a.h5", b = dir.path().toStdString() + "/b.h5";
        importSimpleShapesFolder(root, a, o);
        o.threads = 1;
        importSimpleShapesFolder(root, b, o);
        for (int split = 0; split < 3; ++split) {
            const std::string g = std::string("/") + names[split] + "/";
            const auto v = H5Array(a, g + "v").readAll(), attr = H5Array(a, g + "attr").readAll(), lab = H5Array(a, g + "labels").readAll();
            for (const char* d : {"v", "attr", "labels", "labels_unpaired"}) QVERIFY2(torch::equal(H5Array(a, g + d).readAll(), H5Array(b, g + d).readAll()), d);
            for (int64_t i = 0; i < counts[split]; ++i) {
                const auto s = sh::sampleShape(11, split, i);
                renderer.render(s, rgb.data());
                QVERIFY(std::memcmp(rgb.data(), v[i].contiguous().data_ptr<uint8_t>(), rgb.size()) == 0);
                // The generator's vector; cos θ and sin θ of the rotation as the label file holds it (float32,
                // as the public loader reads it), within 3e-7 of the generator's own (double) rotation.
                const auto want = sh::attributeVector(s);
                const float* got = attr[i].contiguous().data_ptr<float>();
                for (int k = 0; k < sh::kAttributeDim; ++k)
                    if (k == 6 || k == 7) QVERIFY(std::abs(got[k] - want[size_t(k)]) <= 3e-7f);
                    else QCOMPARE(got[k], want[size_t(k)]);
                sh::Shape rounded = s;
                rounded.rotation = double(float(s.rotation));
                const auto exact = sh::attributeVector(rounded);
                QVERIFY(std::memcmp(exact.data(), got, sizeof exact) == 0);
                const auto l = sh::labelRow(s);
                QVERIFY(std::memcmp(l.data(), lab[i].contiguous().data_ptr<float>(), sizeof l) == 0);
            }
        }
    }

    /// Each kind of bad input: an error naming the file and the split, what was expected and found, and
    /// no output file (nor its .partial) left.
    void publicFolderBadInput() {
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        int cases = 0;
        auto expectError = [&](const std::string& folder, const QString& want, PublicFolderOptions o = {}) {
            const std::string out = d + "/out" + std::to_string(++cases) + ".h5";
            const QString err = errorOf([&] { importSimpleShapesFolder(folder, out, o); });
            QVERIFY2(err.contains(want), qPrintable("expected: " + want + "\nfound: " + err));
            QVERIFY2(!QFile::exists(QString::fromStdString(out)), qPrintable(want));
            QVERIFY2(!QFile::exists(QString::fromStdString(out + ".partial")), qPrintable(want));
        };
        auto at = [](const std::string& folder, const std::string& name) { return QString::fromStdString(folder + "/" + name); };
        // A missing file: named, with its split.
        std::string f = copySample(dir, "nocap");
        std::filesystem::remove(f + "/val_captions.npy");
        expectError(f, at(f, "val_captions.npy") + " (split val): the file is missing");
        f = copySample(dir, "nomean");
        std::filesystem::remove(f + "/latent_std.npy");
        expectError(f, at(f, "latent_std.npy") + " (the BERT statistics of every split): the file is missing");
        // PNG and label counts that disagree, and a PNG missing among the right count.
        f = copySample(dir, "fewer");
        std::filesystem::remove(f + "/test/1.png");
        expectError(f, at(f, "test") + " (split test): found 1 PNG files, but test_labels.npy has 2 rows");
        f = copySample(dir, "renamed");
        std::filesystem::rename(f + "/train/3.png", f + "/train/7.png");
        expectError(f, at(f, "train/3.png") + " (split train): the file is missing");
        f = copySample(dir, "labels");
        const auto labels = readNpy(f + "/train_labels.npy");
        writeNpy(f + "/train_labels.npy", "<f4", "(3, 12)", std::string(labels.bytes.begin(), labels.bytes.begin() + 3 * 12 * 4));
        expectError(f, at(f, "train") + " (split train): found 4 PNG files, but train_labels.npy has 3 rows");
        // PNGs of the wrong size or kind, or damaged.
        f = copySample(dir, "size");
        writeBytes(f + "/val/1.png", encodePng(31, 32, 3, std::vector<uint8_t>(31 * 32 * 3, 7)));
        expectError(f, at(f, "val/1.png") + " (split val): expected a 32 x 32 PNG, found 31 x 32");
        f = copySample(dir, "grey");
        writeBytes(f + "/train/2.png", encodePng(32, 32, 1, std::vector<uint8_t>(32 * 32, 7)));
        expectError(f, at(f, "train/2.png") + " (split train): expected an 8-bit RGB or RGBA PNG, found 8-bit grey");
        f = copySample(dir, "deep");
        writeBytes(f + "/train/0.png", encodePng(32, 32, 4, std::vector<uint8_t>(32 * 32 * 4, 7), 16));
        expectError(f, at(f, "train/0.png") + " (split train): expected an 8-bit RGB or RGBA PNG, found 16-bit RGBA");
        f = copySample(dir, "cut");
        const std::string png = readBytes(f + "/test/0.png");
        writeBytes(f + "/test/0.png", png.substr(0, png.size() / 2));
        expectError(f, at(f, "test/0.png") + " (split test): cannot decode the PNG (libpng: ");
        // An NPY of a type the reader does not take, or of the wrong kind.
        f = copySample(dir, "dtype");
        writeNpy(f + "/val_latent.npy", "<f2", "(2, 768)", std::string(2 * 768 * 2, '\0'));
        expectError(f, at(f, "val_latent.npy") + " (split val): unsupported NumPy type '<f2'");
        f = copySample(dir, "textlabels");
        writeNpy(f + "/test_labels.npy", "<U3", "(2, 12)", std::string(2 * 12 * 12, 'a'));
        expectError(f, at(f, "test_labels.npy") + " (split test): expected numbers (float32), found text (<U)");
        f = copySample(dir, "intlatent");
        writeNpy(f + "/train_latent.npy", "<i8", "(4, 768)", std::string(4 * 768 * 8, '\0'));
        expectError(f, at(f, "train_latent.npy") + " (split train): expected float32 BERT vectors, found i8");
        // A pickled object array that is not caption choices: another length, or elements that are not dicts.
        f = copySample(dir, "choices");
        std::filesystem::copy_file(f + "/train_caption_choices.npy", f + "/val_caption_choices.npy",
                                   std::filesystem::copy_options::overwrite_existing);
        expectError(f, at(f, "val_caption_choices.npy") + " (split val): expected (2,) caption-choice dicts (one per label row), found (4,)");
        f = copySample(dir, "ints");
        // np.save of np.array([7, 8], dtype=object), pickle protocol 3, written out by hand.
        const std::string pickle = std::string("\x80\x03" "cnumpy.core.multiarray\n_reconstruct\n" "cnumpy\nndarray\n" "K\x00\x85" "C\x01" "b\x87" "R"
                                               "(K\x01" "K\x02\x85" "cnumpy\ndtype\n" "X\x02\x00\x00\x00" "O8\x89\x88\x87" "R"
                                               "(K\x03" "X\x01\x00\x00\x00" "|NNNJ\xff\xff\xff\xff" "J\xff\xff\xff\xff" "K\x3f" "tb"
                                               "\x89]" "(K\x07" "K\x08" "e" "tb.", 128);
        writeNpy(f + "/test_caption_choices.npy", "|O", "(2,)", pickle);
        QCOMPARE(int(readNpy(f + "/test_caption_choices.npy").objects.size()), 2);
        expectError(f, at(f, "test_caption_choices.npy") + " (split test): element 0: expected a dict of caption choices, found a int");
        // Label values outside the public generator's, a standard deviation of 0, a caption too long.
        f = copySample(dir, "class");
        {
            auto l = readNpy(f + "/val_labels.npy");
            const float five = 5;
            std::memcpy(l.bytes.data() + 12 * 4, &five, 4);  // row 1, class
            writeNpy(f + "/val_labels.npy", "<f4", "(2, 12)", std::string(l.bytes.begin(), l.bytes.end()));
        }
        expectError(f, at(f, "val_labels.npy") + " (split val): row 1, column 0 (class): expected 0, 1 or 2, found 5");
        f = copySample(dir, "std");
        {
            auto s = readNpy(f + "/latent_std.npy");
            std::memset(s.bytes.data() + 4 * 10, 0, 4);
            writeNpy(f + "/latent_std.npy", "<f4", "(768,)", std::string(s.bytes.begin(), s.bytes.end()));
        }
        expectError(f, at(f, "latent_std.npy") + " (the BERT statistics of every split): element 10: expected a positive standard deviation, found 0");
        f = copySample(dir, "long");
        {
            std::string text(2 * 300 * 4, '\0');
            for (size_t i = 0; i < text.size(); i += 4) text[i] = 'a';
            writeNpy(f + "/test_captions.npy", "<U300", "(2,)", text);
        }
        expectError(f, at(f, "test_captions.npy") + " (split test): caption 0: expected at most 288 bytes of UTF-8, found 300");
        // The folder itself missing, an existing output without force (left alone).
        expectError(d + "/nowhere", QString::fromStdString(d + "/nowhere: expected the folder written by shapesd create, found nothing"));
        writeBytes(d + "/keep.h5", "mine");
        QVERIFY(errorOf([&] { importSimpleShapesFolder(GW_SOURCE_DIR "/tests/data/simple-shapes-sample", d + "/keep.h5", {}); })
                    .contains(QString::fromStdString(d + "/keep.h5: the file exists (expected a new path, or --force to replace it)")));
        QCOMPARE(QString::fromStdString(readBytes(d + "/keep.h5")), QString("mine"));
        // Stopped (Ctrl-C): nothing left.
        bool stopped = false;
        try {
            importSimpleShapesFolder(GW_SOURCE_DIR "/tests/data/simple-shapes-sample", d + "/stop.h5", {}, {}, [] { return true; });
        } catch (const ImportStopped&) {
            stopped = true;
        }
        QVERIFY(stopped);
        QVERIFY(!QFile::exists(QString::fromStdString(d + "/stop.h5")) && !QFile::exists(QString::fromStdString(d + "/stop.h5.partial")));
    }
};

QTEST_APPLESS_MAIN(TestShapes)
#include "tst_shapes.moc"

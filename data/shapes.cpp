// SPDX-License-Identifier: GPL-3.0-or-later
// Simple Shapes samples: drawing attributes, the attribute vector, and the Cairo renderer.
#include "data/shapes.h"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "data/splitmix64.h"

namespace gw::shapes {
namespace {

constexpr double kTwoPi = 6.283185307179586476925286766559;

using detail::SplitMix64;

struct Point { double x, y; };

}  // namespace

const char* className(int cls) {
    static const char* names[] = {"diamond", "egg", "triangle"};
    return cls >= 0 && cls < kClasses ? names[cls] : "?";
}

std::array<uint8_t, 3> hlsToRgb(int hIn, int lIn, int sIn) {
    // OpenCV HLS2RGB_b: h stays in 0..180 and is scaled by 6/180, l and s by 1/255, all in float;
    // the result is multiplied by 255 and rounded to nearest (cvRound).
    float h = static_cast<float>(hIn), l = static_cast<float>(lIn) * (1.f / 255.f), s = static_cast<float>(sIn) * (1.f / 255.f);
    float r = l, g = l, b = l;
    if (s != 0.f) {
        static const int sector[6][3] = {{1, 3, 0}, {1, 0, 2}, {3, 0, 1}, {0, 2, 1}, {0, 1, 3}, {2, 1, 0}};
        const float p2 = l <= 0.5f ? l * (1 + s) : l + s - l * s;
        const float p1 = 2 * l - p2;
        h *= 6.f / 180.f;
        while (h < 0) h += 6;
        while (h >= 6) h -= 6;
        const int k = static_cast<int>(std::floor(h));
        h -= static_cast<float>(k);
        const float tab[4] = {p2, p1, p1 + (p2 - p1) * (1 - h), p1 + (p2 - p1) * h};
        b = tab[sector[k][0]];
        g = tab[sector[k][1]];
        r = tab[sector[k][2]];
    }
    auto to8 = [](float v) {
        const long q = std::lrint(v * 255.f);
        return static_cast<uint8_t>(std::clamp<long>(q, 0, 255));
    };
    return {to8(r), to8(g), to8(b)};
}

Shape sampleShape(uint64_t seed, int split, int64_t index) {
    // Key the stream by (seed, split, index); two SplitMix64 rounds decorrelate neighbouring keys.
    SplitMix64 key{seed * 0x2545F4914F6CDD1DULL + static_cast<uint64_t>(split) * 0x9E3779B97F4A7C15ULL};
    SplitMix64 rng{key.next() ^ (static_cast<uint64_t>(index) * 0xD1B54A32D192ED03ULL)};
    rng.next();
    Shape s;
    s.cls = rng.uniformInt(0, kClasses - 1);
    s.size = rng.uniformInt(kMinSize, kMaxSize);
    s.x = rng.uniformInt(kMargin, kImageSize - kMargin - 1);
    s.y = rng.uniformInt(kMargin, kImageSize - kMargin - 1);
    s.rotation = rng.uniform() * kTwoPi;
    const int h = rng.uniformInt(0, 180), l = rng.uniformInt(46, 255), sat = rng.uniformInt(0, 255);
    s.hls = {static_cast<uint8_t>(h), static_cast<uint8_t>(l), static_cast<uint8_t>(sat)};
    s.rgb = hlsToRgb(h, l, sat);
    return s;
}

std::array<float, kAttributeDim> attributeVector(const Shape& s) {
    std::array<float, kAttributeDim> v{};
    if (s.cls >= 0 && s.cls < kClasses) v[static_cast<size_t>(s.cls)] = 1.f;
    const double span = kImageSize - 2 * kMargin;  // 18
    v[3] = static_cast<float>((s.x - kMargin) / span * 2 - 1);
    v[4] = static_cast<float>((s.y - kMargin) / span * 2 - 1);
    v[5] = static_cast<float>((s.size - kMinSize) / double(kMaxSize - kMinSize) * 2 - 1);
    v[6] = static_cast<float>(std::cos(s.rotation));
    v[7] = static_cast<float>(std::sin(s.rotation));
    for (int c = 0; c < 3; ++c) v[static_cast<size_t>(8 + c)] = static_cast<float>(s.rgb[static_cast<size_t>(c)] / 255.0 * 2 - 1);
    return v;
}

Shape shapeFromAttributes(const float* v) {
    Shape s;
    s.cls = static_cast<int>(std::max_element(v, v + kClasses) - v);
    const double span = kImageSize - 2 * kMargin;
    s.x = (v[3] + 1) / 2 * span + kMargin;
    s.y = (v[4] + 1) / 2 * span + kMargin;
    s.size = (v[5] + 1) / 2 * (kMaxSize - kMinSize) + kMinSize;
    double t = std::atan2(static_cast<double>(v[7]), static_cast<double>(v[6]));
    if (t < 0) t += kTwoPi;
    s.rotation = t >= kTwoPi ? 0 : t;
    for (int c = 0; c < 3; ++c) {
        const double q = std::round((static_cast<double>(v[8 + c]) + 1) / 2 * 255);
        s.rgb[static_cast<size_t>(c)] = static_cast<uint8_t>(std::clamp(q, 0.0, 255.0));
    }
    s.hls = {0, 0, 0};
    return s;
}

std::array<float, kLabelColumns> labelRow(const Shape& s) {
    return {static_cast<float>(s.cls), static_cast<float>(s.x), static_cast<float>(s.y), static_cast<float>(s.size),
            static_cast<float>(s.rotation), float(s.rgb[0]), float(s.rgb[1]), float(s.rgb[2]),
            float(s.hls[0]), float(s.hls[1]), float(s.hls[2])};
}

struct Renderer::Impl {
    cairo_surface_t* surface = nullptr;
    cairo_t* cr = nullptr;
    ~Impl() {
        if (cr) cairo_destroy(cr);
        if (surface) cairo_surface_destroy(surface);
    }
};

Renderer::Renderer(int scale) : impl_(std::make_unique<Impl>()), scale_(scale) {
    if (scale < 1) throw std::invalid_argument("shape renderer: scale must be at least 1, found " + std::to_string(scale));
    impl_->surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, side(), side());
    if (cairo_surface_status(impl_->surface) != CAIRO_STATUS_SUCCESS)
        throw std::runtime_error(std::string("shape renderer: cannot create a Cairo surface (") +
                                 cairo_status_to_string(cairo_surface_status(impl_->surface)) + ")");
    impl_->cr = cairo_create(impl_->surface);
    cairo_set_antialias(impl_->cr, CAIRO_ANTIALIAS_GRAY);
    cairo_set_fill_rule(impl_->cr, CAIRO_FILL_RULE_WINDING);
}

Renderer::~Renderer() = default;

void Renderer::render(const Shape& s, uint8_t* rgb) {
    cairo_t* cr = impl_->cr;
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_paint(cr);
    // Unit box (y up) -> pixels: p' = (x, y) + size · R(θ) · (p − (0.5, 0.5)), then device coordinates
    // (column = x, row = 32 − y), times the scale. Béziers are affine-invariant, so transforming the
    // control points draws the transformed curve exactly.
    const double c = std::cos(s.rotation), sn = std::sin(s.rotation), k = scale_;
    auto dev = [&](Point p) {
        const double ux = p.x - 0.5, uy = p.y - 0.5;
        const double x = s.x + s.size * (c * ux - sn * uy), y = s.y + s.size * (sn * ux + c * uy);
        return Point{k * x, k * (kImageSize - y)};
    };
    auto moveTo = [&](Point p) { const Point d = dev(p); cairo_move_to(cr, d.x, d.y); };
    auto lineTo = [&](Point p) { const Point d = dev(p); cairo_line_to(cr, d.x, d.y); };
    auto curveTo = [&](Point a, Point b, Point e) {
        const Point da = dev(a), db = dev(b), de = dev(e);
        cairo_curve_to(cr, da.x, da.y, db.x, db.y, de.x, de.y);
    };
    cairo_new_path(cr);
    switch (s.cls) {
        case 0:  // diamond
            moveTo({0.5, 0}); lineTo({1, 0.3}); lineTo({0.5, 1}); lineTo({0, 0.3});
            break;
        case 1:  // egg: four cubic Béziers from (0.5, 0)
            moveTo({0.5, 0});
            curveTo({0.8, 0}, {0.9, 0.1}, {0.9, 0.3});
            curveTo({0.9, 0.5}, {0.7, 1}, {0.5, 1});
            curveTo({0.3, 1}, {0.1, 0.5}, {0.1, 0.3});
            curveTo({0.1, 0.1}, {0.2, 0}, {0.5, 0});
            break;
        default:  // triangle
            moveTo({0.5, 1}); lineTo({0.2, 0}); lineTo({0.8, 0});
            break;
    }
    cairo_close_path(cr);
    cairo_set_source_rgb(cr, s.rgb[0] / 255.0, s.rgb[1] / 255.0, s.rgb[2] / 255.0);
    cairo_fill(cr);
    cairo_surface_flush(impl_->surface);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
        throw std::runtime_error(std::string("shape renderer: Cairo failed (") + cairo_status_to_string(cairo_status(cr)) + ")");
    // RGB24: one native-endian uint32 per pixel, 0x00RRGGBB.
    const unsigned char* data = cairo_image_surface_get_data(impl_->surface);
    const int stride = cairo_image_surface_get_stride(impl_->surface), n = side();
    for (int r = 0; r < n; ++r) {
        const unsigned char* row = data + static_cast<size_t>(r) * static_cast<size_t>(stride);
        for (int col = 0; col < n; ++col) {
            uint32_t px;
            std::memcpy(&px, row + 4 * col, 4);
            uint8_t* o = rgb + (static_cast<size_t>(r) * static_cast<size_t>(n) + static_cast<size_t>(col)) * 3;
            o[0] = static_cast<uint8_t>(px >> 16);
            o[1] = static_cast<uint8_t>(px >> 8);
            o[2] = static_cast<uint8_t>(px);
        }
    }
}

}  // namespace gw::shapes

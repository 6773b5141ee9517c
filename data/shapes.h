// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file shapes.h
/// Simple Shapes, one sample at a time: drawing a sample's attributes, converting them to and from the
/// 11-value attribute vector the GW uses, and rendering the shape with Cairo. The generator
/// (data/simple_shapes.h) and the window's explorer draw with this one renderer. Torch-free, Qt-free
/// and HDF5-free (library `gwshapes`), so the window links it without LibTorch.
///
/// Source: the public generator ruflab/simple-shapes-dataset (`cli/create_dataset.py`, `cli/utils.py`,
/// `domain.py`, `pre_process.py`), restated in docs/simple-shapes.md.
#include <array>
#include <cstdint>
#include <memory>

namespace gw::shapes {

/// The image side of the dataset, in pixels.
inline constexpr int kImageSize = 32;
/// Classes: 0 diamond, 1 egg, 2 triangle.
inline constexpr int kClasses = 3;
inline constexpr int kMinSize = 7, kMaxSize = 14;   ///< size range (px, side of the shape's box)
inline constexpr int kMargin = kMaxSize / 2;        ///< centres lie in [kMargin, 32 − kMargin − 1]
/// Width of the attribute vector: one-hot class (3), then x̂, ŷ, ŝ, cos θ, sin θ, r̂, ĝ, b̂.
inline constexpr int kAttributeDim = 11;
/// Columns of the raw label rows written beside the data: class, x, y, size, rotation, r, g, b, h, l, s.
inline constexpr int kLabelColumns = 11;

/// "diamond", "egg", "triangle"; "?" outside [0, 3).
const char* className(int cls);

/// One sample's attributes. x, y: centre of the shape's box in pixels, y pointing up (0 at the bottom
/// edge); size: side of the box in pixels; rotation: radians in [0, 2π), counter-clockwise, 0 = the shape
/// points up; rgb: 0..255. Decoded attributes may be fractional; sampled ones are whole pixels.
struct Shape {
    int cls = 0;
    double x = 16, y = 16, size = 10, rotation = 0;
    std::array<uint8_t, 3> rgb{255, 255, 255};
    std::array<uint8_t, 3> hls{0, 255, 0};  ///< the sampled OpenCV HLS colour (H 0..180, L, S 0..255)
};

/// OpenCV's 8-bit HLS → RGB (cv::COLOR_HLS2RGB on uint8: H in 0..180 is half the hue in degrees,
/// L and S are 0..255; computed in float32 and rounded to nearest as OpenCV does).
std::array<uint8_t, 3> hlsToRgb(int h, int l, int s);

/// Draws sample `index` of split `split` (0 train, 1 val, 2 test) for seed `seed`. Every sample has its
/// own random stream (SplitMix64 keyed by seed, split and index), so samples can be drawn in any order
/// and on any number of threads with identical results. Distributions (docs/simple-shapes.md): class
/// uniform over 3; size uniform integer in [7, 14]; x, y uniform integers in [7, 24]; rotation uniform in
/// [0, 2π); colour H uniform in {0..180}, L in {46..255}, S in {0..255}, converted by hlsToRgb.
Shape sampleShape(uint64_t seed, int split, int64_t index);

/// The attribute vector of a shape (11 floats): one-hot(class), x̂ = ((x − 7)/18)·2 − 1, ŷ likewise,
/// ŝ = ((size − 7)/7)·2 − 1, cos θ, sin θ, and each colour channel c/255·2 − 1.
std::array<float, kAttributeDim> attributeVector(const Shape& s);
/// The inverse of attributeVector for any 11 values (a decoded translation): class = argmax of the first
/// three; positions and size by the inverse maps (not rounded); rotation = atan2(sin, cos) in [0, 2π);
/// colour rounded and clamped to 0..255. HLS is left at zero.
Shape shapeFromAttributes(const float* v);
/// The label row written beside the data (kLabelColumns floats).
std::array<float, kLabelColumns> labelRow(const Shape& s);

/// Renders shapes as the dataset draws them: black background, the filled shape anti-aliased (analytic
/// coverage over black), y up. `scale` enlarges the image (the explorer draws at 3× or more): the
/// output is (32·scale, 32·scale, 3) uint8, row-major, rows top to bottom. A Renderer keeps one Cairo
/// surface; use one per thread.
class Renderer {
public:
    explicit Renderer(int scale = 1);
    ~Renderer();
    Renderer(const Renderer&) = delete;
    Renderer& operator=(const Renderer&) = delete;
    int side() const { return kImageSize * scale_; }
    /// Writes side()·side()·3 bytes to `rgb`. \throws std::runtime_error when Cairo fails.
    void render(const Shape& s, uint8_t* rgb);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    int scale_;
};

}  // namespace gw::shapes

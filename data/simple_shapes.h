// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file simple_shapes.h
/// `gw import simple-shapes`: generates the Simple Shapes dataset (docs/simple-shapes.md) into the GW
/// HDF5 layout (docs/data-format.md), for each split {train, val, test}:
///   /{split}/v       (N, 32, 32, 3) uint8   the image, rows top to bottom (y up in the attributes)
///   /{split}/attr    (N, 11) float32        the attribute vector (one-hot class, x̂, ŷ, ŝ, cos θ, sin θ, r̂, ĝ, b̂)
///   /{split}/labels  (N, 11) float32        raw attributes: class, x, y, size (px), rotation (rad), r, g, b, h, l, s
///   /{split}/t       (N,) 288-byte UTF-8 strings   the caption (data/captions.h), NUL-padded
///   /{split}/caption_choices (N, 37) int8   its grammar choices (columns named by the attribute
///                                            `column_names`; the first 28 are the public categories)
/// Samples are drawn by gw::shapes::sampleShape (one random stream per sample) and rendered with
/// Cairo on every core, a block at a time, so the set never sits in memory whole. Source: the public
/// generator ruflab/simple-shapes-dataset, `cli/create_dataset.py`.
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace gw::data {

/// Generation was stopped by its caller (Ctrl-C); nothing was left at the output path.
class GenerationStopped : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct SimpleShapesOptions {
    int64_t train = 500000, val = 1000, test = 1000;  ///< samples per split, each > 0
    uint64_t seed = 0;
    bool force = false;   ///< replace an existing output file
    int threads = 0;      ///< rendering threads; 0 = every core
    int compression = 1;  ///< gzip level of the datasets (0 = none)
    bool captions = true; ///< write /{split}/t and /{split}/caption_choices (gw import --no-captions: false)
};

/// Generates the dataset into `outFile` through `outFile`.partial and a rename (data/atomic_file.h).
/// `progress(done, total)` is called after each block (samples over all splits); `stop()` is polled
/// between blocks. Same options and seed give byte-identical files, whatever the thread count.
/// \throws DataError for a count ≤ 0 (naming --train/--val/--test and the value) or an existing
///         output without `force` (naming the path); gw::WriteError when the output cannot be written;
///         GenerationStopped when stop() returned true. On every error no file is left behind.
void generateSimpleShapes(const std::string& outFile, const SimpleShapesOptions& options,
                          const std::function<void(int64_t done, int64_t total)>& progress = {},
                          const std::function<bool()>& stop = {});

}  // namespace gw::data

// SPDX-License-Identifier: GPL-3.0-or-later
// The Simple Shapes generator: samples drawn and rendered on every core, a block at a time, while the
// previous block is compressed and written.
#include "data/simple_shapes.h"

#include <algorithm>
#include <filesystem>
#include <future>
#include <thread>
#include <vector>

#include "data/atomic_file.h"
#include "data/captions.h"
#include "data/h5_array.h"
#include "data/shapes.h"

namespace gw::data {
namespace {

constexpr int64_t kBlock = 8192;  // samples rendered between two writes (24 MiB of images)
constexpr int64_t kPixels = int64_t(shapes::kImageSize) * shapes::kImageSize * 3;

struct Block {
    int64_t start = 0, count = 0;
    std::vector<uint8_t> v;
    std::vector<float> attr, labels;
    std::vector<char> t;              // captions, kCaptionBytes each, NUL-padded
    std::vector<int8_t> choices;      // their choice columns
};

void renderBlock(Block& b, uint64_t seed, int split, int threads, bool captions) {
    b.v.resize(static_cast<size_t>(b.count * kPixels));
    b.attr.resize(static_cast<size_t>(b.count * shapes::kAttributeDim));
    b.labels.resize(static_cast<size_t>(b.count * shapes::kLabelColumns));
    if (captions) {
        b.t.assign(static_cast<size_t>(b.count * shapes::kCaptionBytes), '\0');
        b.choices.resize(static_cast<size_t>(b.count * shapes::kCaptionChoiceColumns));
    }
    auto work = [&](int64_t lo, int64_t hi) {
        shapes::Renderer renderer;
        for (int64_t i = lo; i < hi; ++i) {
            const auto s = shapes::sampleShape(seed, split, b.start + i);
            renderer.render(s, b.v.data() + i * kPixels);
            const auto a = shapes::attributeVector(s);
            std::copy(a.begin(), a.end(), b.attr.begin() + i * shapes::kAttributeDim);
            const auto l = shapes::labelRow(s);
            std::copy(l.begin(), l.end(), b.labels.begin() + i * shapes::kLabelColumns);
            if (captions) {
                const auto c = shapes::sampleCaption(s, seed, split, b.start + i);
                std::copy(c.text.begin(), c.text.end(), b.t.begin() + i * shapes::kCaptionBytes);
                std::copy(c.columns.begin(), c.columns.end(), b.choices.begin() + i * shapes::kCaptionChoiceColumns);
            }
        }
    };
    const int64_t t = std::max<int64_t>(1, std::min<int64_t>(threads, b.count / 64));
    std::vector<std::future<void>> parts;
    for (int64_t k = 1; k < t; ++k) parts.push_back(std::async(std::launch::async, work, k * b.count / t, (k + 1) * b.count / t));
    work(0, b.count / t);
    for (auto& p : parts) p.get();  // rethrows a renderer's error
}

}  // namespace

void generateSimpleShapes(const std::string& outFile, const SimpleShapesOptions& o,
                          const std::function<void(int64_t, int64_t)>& progress, const std::function<bool()>& stop) {
    for (auto [name, n] : {std::pair<const char*, int64_t>{"--train", o.train}, {"--val", o.val}, {"--test", o.test}})
        if (n <= 0)
            throw DataError(std::string("simple-shapes: ") + name + ": expected a positive sample count, found " + std::to_string(n));
    if (outFile.empty()) throw DataError("simple-shapes: expected an output file, found an empty path");
    if (std::filesystem::exists(outFile) && !o.force)
        throw DataError(outFile + ": the file exists (expected a new path, or --force to replace it)");
    const int threads = o.threads > 0 ? o.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    const int64_t total = o.train + o.val + o.test;
    bool stopped = false;
    try {
        writeAtomically(outFile, [&](const std::string& tmp) {
            H5RowWriter w(tmp);
            const std::pair<const char*, int64_t> splits[] = {{"train", o.train}, {"val", o.val}, {"test", o.test}};
            int64_t done = 0;
            for (int split = 0; split < 3; ++split) {
                const std::string name = splits[split].first;
                const int64_t n = splits[split].second;
                const int v = w.create("/" + name + "/v", H5RowWriter::Type::UInt8, n, {shapes::kImageSize, shapes::kImageSize, 3},
                                       1024, o.compression);
                const int attr = w.create("/" + name + "/attr", H5RowWriter::Type::Float32, n, {shapes::kAttributeDim}, 8192,
                                          o.compression, {{"num_classes", shapes::kClasses}});
                const int labels = w.create("/" + name + "/labels", H5RowWriter::Type::Float32, n, {shapes::kLabelColumns},
                                            8192, o.compression);
                w.addStrings(attr, "class_names", {shapes::className(0), shapes::className(1), shapes::className(2)});
                int t = -1, choices = -1;
                if (o.captions) {
                    t = w.createStrings("/" + name + "/t", n, shapes::kCaptionBytes, 8192, o.compression);
                    choices = w.create("/" + name + "/caption_choices", H5RowWriter::Type::Int8, n,
                                       {shapes::kCaptionChoiceColumns}, 8192, o.compression,
                                       {{"public_categories", shapes::kCaptionCategoryColumns}});
                    std::vector<std::string> names;
                    for (const auto& c : shapes::captionChoiceColumnInfo()) names.emplace_back(c.name);
                    w.addFixedStrings(choices, "column_names", names);  // no global heap: see addFixedStrings
                }
                Block blocks[2];  // declared first: the future's destructor waits for a write that reads them
                std::future<void> writing;
                int cur = 0;
                for (int64_t start = 0; start < n; start += kBlock) {
                    if (stop && stop()) {
                        stopped = true;
                        if (writing.valid()) writing.wait();
                        throw GenerationStopped("stopped");
                    }
                    Block& b = blocks[cur];
                    b.start = start;
                    b.count = std::min(kBlock, n - start);
                    renderBlock(b, o.seed, split, threads, o.captions);
                    if (writing.valid()) writing.get();  // the previous block, written while this one rendered
                    writing = std::async(std::launch::async, [&w, &b, v, attr, labels, t, choices] {
                        w.write(v, b.start, b.count, b.v.data());
                        w.write(attr, b.start, b.count, b.attr.data());
                        w.write(labels, b.start, b.count, b.labels.data());
                        if (t >= 0) {
                            w.write(t, b.start, b.count, b.t.data());
                            w.write(choices, b.start, b.count, b.choices.data());
                        }
                    });
                    cur ^= 1;
                    done += b.count;
                    if (progress) progress(done, total);
                }
                if (writing.valid()) writing.get();
            }
            w.close();
        });
    } catch (const WriteError&) {
        if (stopped) throw GenerationStopped(outFile + ": generation stopped; nothing was written");
        throw;
    }
}

}  // namespace gw::data

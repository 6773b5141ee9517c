// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/fashion_mnist.h"

#include "data/atomic_file.h"

#include <zlib.h>

#include <filesystem>
#include <vector>

#include "data/h5_array.h"

namespace gw::data {
namespace fs = std::filesystem;

namespace {
uint32_t bigEndian(const unsigned char* p) {
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}
}  // namespace

torch::Tensor readIdx(const std::string& path) {
    gzFile f = gzopen(path.c_str(), "rb");  // reads plain files too
    if (!f) throw DataError(path + ": cannot open");
    auto closer = std::unique_ptr<gzFile_s, int (*)(gzFile)>(f, gzclose);
    unsigned char head[4];
    if (gzread(f, head, 4) != 4) throw DataError(path + ": expected an IDX header, found a file shorter than 4 bytes");
    if (head[0] != 0 || head[1] != 0 || head[2] != 0x08)
        throw DataError(path + ": expected an IDX file of unsigned bytes (magic 0x0008xx), found magic 0x" +
                        std::to_string(head[0]) + std::to_string(head[1]) + std::to_string(head[2]));
    const int rank = head[3];
    if (rank < 1 || rank > 3) throw DataError(path + ": expected 1 to 3 dimensions, found " + std::to_string(rank));
    std::vector<int64_t> dims;
    int64_t total = 1;
    for (int i = 0; i < rank; ++i) {
        unsigned char d[4];
        if (gzread(f, d, 4) != 4) throw DataError(path + ": truncated header");
        dims.push_back(bigEndian(d));
        total *= dims.back();
    }
    auto t = torch::empty(dims, torch::kUInt8);
    int64_t done = 0;
    auto* p = t.data_ptr<uint8_t>();
    while (done < total) {
        const int chunk = static_cast<int>(std::min<int64_t>(total - done, 1 << 24));
        const int got = gzread(f, p + done, static_cast<unsigned>(chunk));
        if (got <= 0)
            throw DataError(path + ": expected " + std::to_string(total) + " data bytes, found " + std::to_string(done));
        done += got;
    }
    return t;
}

void importFashionMnist(const std::string& dir, const std::string& outFile, int64_t valCount,
                        const std::function<void(int, int)>& progress) {
    // A missing file is most often a system without the dataset's Debian package (installed without
    // Recommends): say which package holds it and how to install it.
    for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                             "t10k-labels-idx1-ubyte.gz"}) {
        const std::string path = (fs::path(dir) / name).string();
        std::error_code ec;
        if (!fs::exists(path, ec))
            throw DataError(path + ": cannot open (no such file). Fashion-MNIST comes with the Debian package "
                                   "dataset-fashion-mnist, which installs it in " + std::string(kFashionMnistDir) +
                            "; install it with: sudo apt-get install dataset-fashion-mnist");
    }
    auto load = [&](const char* name) { return readIdx((fs::path(dir) / name).string()); };
    auto trainX = load("train-images-idx3-ubyte.gz");
    auto trainY = load("train-labels-idx1-ubyte.gz").to(torch::kInt64);
    auto testX = load("t10k-images-idx3-ubyte.gz");
    auto testY = load("t10k-labels-idx1-ubyte.gz").to(torch::kInt64);
    if (trainX.size(0) != trainY.size(0) || testX.size(0) != testY.size(0))
        throw DataError(dir + ": images and labels disagree on the sample count (train " +
                        std::to_string(trainX.size(0)) + " vs " + std::to_string(trainY.size(0)) + ", test " +
                        std::to_string(testX.size(0)) + " vs " + std::to_string(testY.size(0)) + ")");
    if (valCount < 0 || valCount >= trainX.size(0))
        throw DataError("fashion-mnist import: val count must be in [0, " + std::to_string(trainX.size(0)) +
                        "), found " + std::to_string(valCount));
    const int64_t nTrain = trainX.size(0) - valCount;
    const std::vector<std::pair<std::string, int64_t>> classes = {{"num_classes", 10}};
    struct Item { const char* path; torch::Tensor t; bool label; };
    std::vector<Item> items = {
        {"/train/image", trainX.narrow(0, 0, nTrain), false}, {"/train/label", trainY.narrow(0, 0, nTrain), true},
        {"/val/image", trainX.narrow(0, nTrain, valCount), false}, {"/val/label", trainY.narrow(0, nTrain, valCount), true},
        {"/test/image", testX, false}, {"/test/label", testY, true}};
    writeAtomically(outFile, [&](const std::string& tmp) {
        int done = 0;
        for (const auto& it : items) {
            writeDataset(tmp, it.path, it.t, 4, it.label ? classes : std::vector<std::pair<std::string, int64_t>>{});
            if (it.label) writeStringsAttribute(tmp, it.path, "class_names", kFashionMnistClassNames);
            if (progress) progress(++done, static_cast<int>(items.size()));
        }
    });
}

}  // namespace gw::data

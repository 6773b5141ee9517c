// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file fashion_mnist.h
/// `gw import fashion-mnist`: Fashion-MNIST's IDX files (gzip, as Debian's dataset-fashion-mnist ships
/// them) into the GW HDF5 layout (docs/data-format.md): /{train,val,test}/image (N, 28, 28) uint8 and
/// /{train,val,test}/label (N,) int64 with attributes num_classes = 10 and class_names. val is the last `valCount` of
/// the 60,000 training samples; test is the official 10,000.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/types.h>

namespace gw::data {

/// Debian's install folder of the dataset.
inline const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// The ten classes of Fashion-MNIST in label order (Zalando Research's dataset description); the import
/// writes them as the labels' `class_names` attribute.
inline const std::vector<std::string> kFashionMnistClassNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/// Reads one IDX file (gzip or plain): uint8 images (N, H, W) or labels (N,) as uint8.
/// \throws DataError naming the file, the expected and the found magic number or size.
torch::Tensor readIdx(const std::string& path);

/// Writes the HDF5 file atomically (a temporary beside it, then a rename). `progress(done, total)`
/// is called after each dataset. \throws DataError when a source file is missing or malformed, or
/// the output cannot be written (the output is then left untouched).
void importFashionMnist(const std::string& sourceDir, const std::string& outFile, int64_t valCount = 5000,
                        const std::function<void(int, int)>& progress = {});

}  // namespace gw::data

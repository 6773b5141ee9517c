// SPDX-License-Identifier: GPL-3.0-or-later
// libFuzzer target: the checkpoint loader (model/io/checkpoint.cpp: CRC-32 of every record, then
// LibTorch's archive reader, the format version and the migrations) on arbitrary files. A file loads or
// is refused with an exception that has a message; a loaded checkpoint's tensors are readable.
#include <stdexcept>

#include "fuzz_common.h"
#include "model/io/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string& path = gw::fuzz::writeScratch(data, size, ".ckpt");
    try {
        const gw::Checkpoint c = gw::loadCheckpoint(path);
        for (const auto& [name, t] : c.state) {
            gw::fuzz::require(t.defined(), "an undefined tensor");
            if (t.numel() > 0) (void)t.sum().item<double>();
        }
    } catch (const std::exception& e) {
        gw::fuzz::require(e.what() && *e.what(), "an error without a message");
    }
    return 0;
}

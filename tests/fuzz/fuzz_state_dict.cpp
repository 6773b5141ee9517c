// SPDX-License-Identifier: GPL-3.0-or-later
// libFuzzer target: the torch.save reader (model/io/torch_file.cpp: zip records checked by CRC-32, then the
// pickle) on arbitrary files. A file is read or refused with a CheckpointError; what is read must hold
// tensors whose storage covers their shape.
#include <stdexcept>

#include "fuzz_common.h"
#include "model/io/torch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string& path = gw::fuzz::writeScratch(data, size, ".pt");
    try {
        const gw::StateDictFile f = gw::readStateDict(path);
        for (const auto& [name, t] : f.tensors) {
            gw::fuzz::require(t.defined(), "an undefined tensor");
            if (t.numel() > 0) (void)t.sum().item<double>();  // every element readable
        }
    } catch (const std::exception& e) {
        gw::fuzz::require(e.what() && *e.what(), "an error without a message");
    }
    return 0;
}

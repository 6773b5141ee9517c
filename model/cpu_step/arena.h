// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file arena.h
/// The buffers of the hand-written CPU step: float buffers handed out in the same order every step,
/// from blocks kept between steps, so that after the first step nothing is allocated. reset() at the
/// start of a step hands the same memory out again; pointers from before a reset() are then stale.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <vector>

namespace gw::cpu {

class Arena {
public:
    /// n floats (rounded up to 16), uninitialised.
    float* alloc(size_t n) {
        n = (n + 15) & ~size_t(15);
        while (block_ < blocks_.size() && used_ + n > blocks_[block_].size) {
            ++block_;
            used_ = 0;
        }
        if (block_ == blocks_.size()) {
            blocks_.push_back({std::make_unique<float[]>(std::max(n, kMinBlock)), std::max(n, kMinBlock)});
            used_ = 0;
        }
        float* p = blocks_[block_].data.get() + used_;
        used_ += n;
        return p;
    }
    /// n floats set to zero.
    float* zeros(size_t n) {
        float* p = alloc(n);
        std::memset(p, 0, n * sizeof(float));
        return p;
    }
    void reset() { block_ = used_ = 0; }

private:
    static constexpr size_t kMinBlock = size_t(1) << 18;
    struct Block {
        std::unique_ptr<float[]> data;
        size_t size;
    };
    std::vector<Block> blocks_;
    size_t block_ = 0, used_ = 0;
};

}  // namespace gw::cpu

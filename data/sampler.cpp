// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/sampler.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace gw::data {

int64_t repeatedLength(int64_t n, int64_t minSize, bool dropLast) {
    if (n <= 0) throw std::invalid_argument("repeated dataset: the dataset is empty");
    if (dropLast) return minSize;
    return ((minSize + n - 1) / n) * n;
}

uint64_t uniformBelow(std::mt19937_64& rng, uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = rng();
    while (x >= limit);
    return x % n;
}

void shuffle(std::vector<int64_t>& v, std::mt19937_64& rng) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniformBelow(rng, i)]);
}

std::vector<int64_t> pairedSubset(int64_t n, double fraction, int64_t count, uint64_t seed) {
    const int64_t k = count >= 0 ? count : static_cast<int64_t>(static_cast<double>(n) * fraction);
    if (k > n)
        throw std::invalid_argument("paired subset: " + std::to_string(k) + " pairs asked for, only " +
                                    std::to_string(n) + " training samples");
    std::vector<int64_t> all(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
    std::mt19937_64 rng(seed ^ 0x9E3779B97F4A7C15ULL);
    shuffle(all, rng);
    all.resize(static_cast<size_t>(k));
    std::sort(all.begin(), all.end());
    return all;
}

GroupSampler::GroupSampler(std::vector<int64_t> indices, int64_t epochLength, uint64_t seed)
    : indices_(std::move(indices)), epochLength_(epochLength), rng_(seed) {
    if (indices_.empty()) throw std::invalid_argument("group sampler: the group has no sample");
    newEpoch();
}

void GroupSampler::newEpoch() {
    const int64_t n = size();
    const int64_t len = repeatedLength(n, std::max(epochLength_, n), false);
    order_.resize(static_cast<size_t>(len));
    for (int64_t i = 0; i < len; ++i) order_[static_cast<size_t>(i)] = indices_[static_cast<size_t>(i % n)];
    shuffle(order_, rng_);
    pos_ = 0;
    ++epoch_;
}

std::vector<int64_t> GroupSampler::next(int64_t batch) {
    if (batch <= 0) throw std::invalid_argument("group sampler: batch size must be positive");
    const int64_t len = static_cast<int64_t>(order_.size());
    if (len >= batch) {  // drop_last: an incomplete tail starts a new epoch
        if (len - pos_ < batch) newEpoch();
        std::vector<int64_t> out(order_.begin() + pos_, order_.begin() + pos_ + batch);
        pos_ += batch;
        return out;
    }
    // An epoch shorter than the batch: whole epochs back to back.
    std::vector<int64_t> out;
    out.reserve(static_cast<size_t>(batch));
    while (static_cast<int64_t>(out.size()) < batch) {
        const int64_t take = std::min(batch - static_cast<int64_t>(out.size()), len - pos_);
        out.insert(out.end(), order_.begin() + pos_, order_.begin() + pos_ + take);
        pos_ += take;
        if (pos_ == len) newEpoch();
    }
    return out;
}

std::string GroupSampler::saveState() const {
    std::ostringstream s;
    s << size() << ' ' << epochLength_ << ' ' << pos_ << ' ' << epoch_ << ' ' << order_.size();
    for (auto i : order_) s << ' ' << i;
    s << ' ' << rng_;
    return s.str();
}

void GroupSampler::loadState(const std::string& state) {
    std::istringstream s(state);
    int64_t n = 0, len = 0, pos = 0, epoch = 0;
    size_t orderSize = 0;
    s >> n >> len >> pos >> epoch >> orderSize;
    if (!s || n != size() || len != epochLength_)
        throw std::invalid_argument("group sampler state: expected a group of " + std::to_string(size()) +
                                    " samples, found " + std::to_string(n));
    std::vector<int64_t> order(orderSize);
    for (auto& i : order) s >> i;
    std::mt19937_64 rng;
    s >> rng;
    if (!s || pos < 0 || pos > static_cast<int64_t>(orderSize)) throw std::invalid_argument("group sampler state: damaged");
    order_ = std::move(order);
    pos_ = pos;
    epoch_ = epoch;
    rng_ = rng;
}

}  // namespace gw::data

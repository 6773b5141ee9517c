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

namespace {
std::string setName(std::vector<std::string> d) {
    std::sort(d.begin(), d.end());
    std::string s = "{";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? "," : "") + d[i];
    return s + "}";
}
bool contains(const std::vector<std::string>& big, const std::vector<std::string>& small) {
    for (const auto& d : small)
        if (std::find(big.begin(), big.end(), d) == big.end()) return false;
    return true;
}
}  // namespace

std::vector<std::vector<int64_t>> alignGroups(int64_t n, const std::vector<GroupAmount>& groups, uint64_t seed) {
    const size_t G = groups.size();
    for (size_t g = 0; g < G; ++g) {
        const auto& d = groups[g].domains;
        if (d.empty()) throw std::invalid_argument("a group without domains");
        std::vector<std::string> sorted = d;
        std::sort(sorted.begin(), sorted.end());
        if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
            throw std::invalid_argument("group " + setName(d) + ": a domain is named twice");
        if (groups[g].amount < 0 || groups[g].amount > n)
            throw std::invalid_argument("group " + setName(d) + ": asks for " + std::to_string(groups[g].amount) +
                                        " samples, the training split has " + std::to_string(n));
        for (size_t h = 0; h < g; ++h)
            if (setName(groups[h].domains) == setName(d)) throw std::invalid_argument("group " + setName(d) + " is given twice");
    }
    // Each group's own order of the samples, its selection (a set) and what it still asks for.
    std::vector<std::vector<int64_t>> order(G);
    std::vector<std::vector<char>> chosen(G, std::vector<char>(static_cast<size_t>(n), 0));
    std::vector<size_t> next(G, 0);
    std::vector<int64_t> left(G);
    std::vector<std::vector<int64_t>> selected(G);
    for (size_t g = 0; g < G; ++g) {
        order[g].resize(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) order[g][static_cast<size_t>(i)] = i;
        std::mt19937_64 rng(seed ^ (0xA24BAED4963EE407ULL * (g + 1)));
        shuffle(order[g], rng);
        left[g] = groups[g].amount;
    }
    std::vector<char> done(G, 0);
    for (size_t served = 0; served < G;) {
        // Roots: groups that no unserved group strictly contains.
        std::vector<size_t> roots;
        for (size_t g = 0; g < G; ++g) {
            if (done[g]) continue;
            bool root = true;
            for (size_t h = 0; h < G && root; ++h)
                if (h != g && !done[h] && groups[h].domains.size() > groups[g].domains.size() &&
                    contains(groups[h].domains, groups[g].domains))
                    root = false;
            if (root) roots.push_back(g);
        }
        for (size_t g : roots) {
            std::vector<int64_t> take;
            while (left[g] > static_cast<int64_t>(take.size()) && next[g] < order[g].size()) {
                const int64_t i = order[g][next[g]++];
                if (!chosen[g][static_cast<size_t>(i)]) take.push_back(i);
            }
            for (size_t t = 0; t < G; ++t) {
                if (!contains(groups[g].domains, groups[t].domains)) continue;
                int64_t added = 0;
                for (int64_t i : take)
                    if (!chosen[t][static_cast<size_t>(i)]) {
                        chosen[t][static_cast<size_t>(i)] = 1;
                        selected[t].push_back(i);
                        ++added;
                    }
                left[t] -= added;
                if (left[t] < 0)
                    throw std::invalid_argument("group " + setName(groups[t].domains) + ": asks for " +
                                                std::to_string(groups[t].amount) + " samples, but group " +
                                                setName(groups[g].domains) + ", which holds its domains, already gives it " +
                                                std::to_string(selected[t].size()) +
                                                " (a group's samples are also those of every group of some of its domains)");
            }
            done[g] = 1;
            ++served;
        }
    }
    for (auto& s : selected) std::sort(s.begin(), s.end());
    return selected;
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

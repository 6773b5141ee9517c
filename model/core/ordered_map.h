// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file ordered_map.h
/// An insertion-ordered string map. shimmer iterates Python dicts in insertion order, and that order
/// fixes metric names, float summation order and fusion order (docs/gw-semantics.md 1.1), so the engine never
/// uses std::map for domains, groups or metrics.
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace gw {

template <class T>
class OrderedMap {
public:
    using Item = std::pair<std::string, T>;

    /// Inserts or overwrites (keeping the first insertion's position).
    void set(const std::string& key, T value) {
        for (auto& kv : items_)
            if (kv.first == key) { kv.second = std::move(value); return; }
        items_.emplace_back(key, std::move(value));
    }
    bool contains(const std::string& key) const { return find(key) != nullptr; }
    const T* find(const std::string& key) const {
        for (const auto& kv : items_)
            if (kv.first == key) return &kv.second;
        return nullptr;
    }
    T* find(const std::string& key) {
        for (auto& kv : items_)
            if (kv.first == key) return &kv.second;
        return nullptr;
    }
    /// \throws std::out_of_range naming the key when it is absent.
    const T& at(const std::string& key) const {
        if (const T* v = find(key)) return *v;
        throw std::out_of_range("no entry named '" + key + "'");
    }
    T& at(const std::string& key) {
        if (T* v = find(key)) return *v;
        throw std::out_of_range("no entry named '" + key + "'");
    }
    std::vector<std::string> keys() const {
        std::vector<std::string> k;
        k.reserve(items_.size());
        for (const auto& kv : items_) k.push_back(kv.first);
        return k;
    }
    size_t size() const { return items_.size(); }
    bool empty() const { return items_.empty(); }
    void clear() { items_.clear(); }
    auto begin() { return items_.begin(); }
    auto end() { return items_.end(); }
    auto begin() const { return items_.begin(); }
    auto end() const { return items_.end(); }

private:
    std::vector<Item> items_;
};

}  // namespace gw

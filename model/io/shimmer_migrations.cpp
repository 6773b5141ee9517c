// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/io/shimmer_migrations.h"

#include <algorithm>

namespace gw {
namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
bool startsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

/// Every occurrence of `from` in `s` replaced by `to` (Python's str.replace).
std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
    return s;
}

void addGwInterfaces(OrderedMap<torch::Tensor>& state) {
    OrderedMap<torch::Tensor> out;
    for (const auto& [k, v] : state) {
        std::string key = k;
        for (const char* domain : {"resnet", "bge"}) {
            key = replaceAll(key, std::string("gw_mod.encoders.") + domain, std::string("gw_mod.gw_interfaces.") + domain + ".encoder");
            key = replaceAll(key, std::string("gw_mod.decoders.") + domain, std::string("gw_mod.gw_interfaces.") + domain + ".decoder");
        }
        out.set(key, v);
    }
    state = std::move(out);
}

void delGwInterfacesHparam(OrderedMap<torch::Tensor>&) {}  // hyper_parameters["gw_interfaces"]: no tensor

void delGwInterfaces(OrderedMap<torch::Tensor>& state) {
    OrderedMap<torch::Tensor> out;
    for (const auto& [k, v] : state) {
        const bool iface = has(k, "gw_mod.gw_interfaces");
        if (iface && has(k, "domain_module")) continue;
        if (iface && has(k, "encoder")) out.set(replaceAll(replaceAll(k, ".gw_interfaces", ".gw_encoders"), ".encoder", ""), v);
        else if (iface && has(k, "decoder")) out.set(replaceAll(replaceAll(k, ".gw_interfaces", ".gw_decoders"), ".decoder", ""), v);
        else if (!has(k, "gw_interfaces")) out.set(k, v);
    }
    state = std::move(out);
}

void delBuffersPutModelsInGwMod(OrderedMap<torch::Tensor>& state) {
    OrderedMap<torch::Tensor> out;
    for (const auto& [k, v] : state) {
        if (has(k, "loss_coefs.buffer")) continue;
        const std::string key = startsWith(k, "domain_mods.") ? "gw_mod." + k : k;
        if (startsWith(key, "gw_mod.domain_mods")) out.set("loss_mod." + key, v);
        out.set(key, v);
    }
    state = std::move(out);
}

void delCoefBuffers(OrderedMap<torch::Tensor>& state) {
    OrderedMap<torch::Tensor> out;
    for (const auto& [k, v] : state)
        if (!has(k, "coef_buffers.")) out.set(k, v);
    state = std::move(out);
}

}  // namespace

const std::vector<ShimmerMigration>& shimmerMigrations() {
    static const std::vector<ShimmerMigration> all = {
        {"1_add_gw_interfaces", addGwInterfaces},
        {"2_del_gw_interfaces_hparam", delGwInterfacesHparam},
        {"3_del_gw_interfaces", delGwInterfaces},
        {"4_del_buffers_put_models_in_gw_mod", delBuffersPutModelsInGwMod},
        {"5_del_coef_buffers", delCoefBuffers},
    };
    return all;
}

std::vector<ShimmerMigration> pendingShimmerMigrations(const std::vector<std::string>& recorded, bool recordedPresent) {
    const auto& all = shimmerMigrations();
    size_t from = 0;
    if (recordedPresent)
        for (size_t i = all.size(); i-- > 0;)
            if (std::find(recorded.begin(), recorded.end(), all[i].name) != recorded.end()) {
                from = i + 1;
                break;
            }
    return {all.begin() + static_cast<std::ptrdiff_t>(from), all.end()};
}

std::vector<std::string> applyShimmerMigrations(OrderedMap<torch::Tensor>& state, const std::vector<std::string>& recorded,
                                                bool recordedPresent) {
    std::vector<std::string> report;
    for (const auto& m : pendingShimmerMigrations(recorded, recordedPresent)) {
        const auto before = state.keys();
        m.apply(state);
        const auto after = state.keys();
        size_t kept = 0;
        for (const auto& k : after) kept += std::find(before.begin(), before.end(), k) != before.end() ? 1 : 0;
        // Keys that left and keys that came are counted as renamed pairs first, the rest as dropped or added.
        const size_t gone = before.size() - kept, came = after.size() - kept, renamed = std::min(gone, came);
        auto count = [](size_t n, const char* what) { return std::to_string(n) + (n == 1 ? " key " : " keys ") + what; };
        std::string what;
        for (const auto& [n, label] : {std::pair<size_t, const char*>{renamed, "renamed"}, {gone - renamed, "dropped"},
                                       {came - renamed, "added"}})
            if (n) what += (what.empty() ? "" : ", ") + count(n, label);
        report.push_back(m.name + ": " + (what.empty() ? "no key changed" : what));
    }
    return report;
}

}  // namespace gw

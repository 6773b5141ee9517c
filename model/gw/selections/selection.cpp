// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/gw/selections/selection.h"

#include <stdexcept>

namespace gw {

namespace {
int64_t batchOf(const TensorMap& m) {
    if (m.empty()) throw std::invalid_argument("selection: no domain to select from");
    return m.begin()->second.size(0);
}
}  // namespace

TensorMap SingleDomainSelection::scores(const TensorMap&, const TensorMap& pre) {
    const int64_t b = batchOf(pre);
    const auto opts = pre.begin()->second.options();
    TensorMap s;
    if (pre.size() == 1) {
        s.set(pre.begin()->first, torch::ones({b}, opts));
        return s;
    }
    auto choice = torch::randint(static_cast<int64_t>(pre.size()), {b}, opts.dtype(torch::kInt64));
    int64_t i = 0;
    for (const auto& kv : pre) s.set(kv.first, choice.eq(i++).to(opts.dtype()));
    return s;
}

TensorMap FixedSharedSelection::scores(const TensorMap&, const TensorMap& pre) {
    const int64_t b = batchOf(pre);
    const auto opts = pre.begin()->second.options();
    TensorMap s;
    for (const auto& kv : pre) s.set(kv.first, torch::full({b}, 1.0 / static_cast<double>(pre.size()), opts));
    return s;
}

RandomSelection::RandomSelection(double temperature, double binaryProportion)
    : Selection("random"), temperature_(temperature), binaryProportion_(binaryProportion) {
    if (!(temperature > 0))
        throw std::invalid_argument("selection 'random': temperature must be > 0, found " + std::to_string(temperature));
    if (!(binaryProportion >= 0 && binaryProportion <= 1))
        throw std::invalid_argument("selection 'random': binary_proportion must be between 0 and 1, found " +
                                    std::to_string(binaryProportion));
}

TensorMap RandomSelection::scores(const TensorMap&, const TensorMap& pre) {
    const int64_t b = batchOf(pre);
    const int64_t d = static_cast<int64_t>(pre.size());
    const auto opts = pre.begin()->second.options();
    // Python's int(): the product truncated toward zero.
    const int64_t binary = static_cast<int64_t>(static_cast<double>(b) * binaryProportion_);
    auto w = torch::softmax(torch::rand({b - binary, d}, opts) / temperature_, 1);
    if (binary > 0) {
        auto oneHot = torch::zeros({binary, d}, opts);
        const int64_t each = binary / d, extra = binary % d;
        int64_t row = 0;
        for (int64_t i = 0; i < d; ++i) {
            const int64_t n = each + (i < extra ? 1 : 0);
            if (n > 0) oneHot.narrow(0, row, n).select(1, i).fill_(1);
            row += n;
        }
        w = torch::cat({w, oneHot}, 0);
    }
    TensorMap s;
    int64_t i = 0;
    for (const auto& kv : pre) s.set(kv.first, w.select(1, i++));
    return s;
}

std::shared_ptr<Selection> makeSelection(const std::string& name, const std::vector<std::string>& domains,
                                         const std::vector<int64_t>& latentDims, int64_t workspaceDim,
                                         const Params& params) {
    const auto& entry = selectionRegistry().at(name, "workspace.selection");
    // Checked by the experiment parser for this selection: used as they are; anything else is checked here.
    SelectionContext ctx{domains, latentDims, workspaceDim,
                         params.checkedFor() == "selection " + name
                             ? params
                             : checkParams(entry.info, "selection", params.values(), "workspace.selection_params")};
    return entry.impl(ctx);
}

void registerSingleDomainSelection(SelectionRegistry& r) {
    r.add({"single_domain", "one domain of the group per sample, drawn uniformly (shimmer SingleDomainSelection)", {}},
          [](const SelectionContext&) { return std::make_shared<SingleDomainSelection>(); });
}

void registerFixedSharedSelection(SelectionRegistry& r) {
    r.add({"fixed_shared", "every domain of the group weighs 1/D (shimmer FixedSharedSelection)", {}},
          [](const SelectionContext&) { return std::make_shared<FixedSharedSelection>(); });
}

void registerRandomSelection(SelectionRegistry& r) {
    r.add({"random", "softmax(U / temperature) over the group's domains, U uniform per sample (shimmer RandomSelection)",
           {{"temperature", ParamInfo::Type::Real, "0.2", 0, true, "", "softmax temperature; small is nearly one-hot"},
            {"binary_proportion", ParamInfo::Type::Real, "0", 0, false, "",
             "share of each batch given one-hot scores, last rows, domains in turn (shimmer d8aaa0e)", 1}}},
          [](const SelectionContext& c) {
              return std::make_shared<RandomSelection>(c.params.real("temperature"), c.params.real("binary_proportion"));
          });
}

}  // namespace gw

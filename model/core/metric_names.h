// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file metric_names.h
/// The one vocabulary of loss families and metric names (shimmer `modules/losses.py`, where
/// GWLosses2Domains and GWLosses build them; docs/gw-semantics.md 2.1 to 2.5): the families, their
/// default coefficients, the functions that build every metric name the flavours log, and the parser
/// that reads one back into its split, family and short label. The flavours, the hand-written CPU step,
/// the experiment parser, `gw`, the bridge and the window's dashboard all use this header, so a new
/// family or a new name shape is added here once.
///
/// Torch-free and Qt-free (plain std::string), header-only: the window reaches it through
/// ui/bridge/metric_vocabulary.h without linking the engine.
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace gw::metrics {

/// A loss family: the metrics of one kind of term and the mean that the loss coefficients select.
enum class Family {
    DemiCycle,    ///< demi_cycle_{d} (two_domains), from_{d}_to_{d}_loss (fusion)
    Cycle,        ///< cycle_{s}_through_{t}, from_{S}_through_{I}_to_{d}_case_{G}_loss
    Translation,  ///< translation_{s}_to_{t}, from_{S}_to_{d}_loss with d not in S
    Contrastive,  ///< contrastive_{a}_and_{b}
    Fused,        ///< from_{S}_to_{d}_loss with d in S and |S| >= 2 (fusion)
};

/// What the vocabulary knows of a family.
struct FamilyInfo {
    Family family;
    const char* term;     ///< term name as a flavour declares it (GWLosses::terms) and as a domain's
                          ///< `losses:` list names it (only demi_cycle, cycle, translation, fused)
    const char* mean;     ///< the family mean's metric, which is also its coefficient's key
    const char* title;    ///< the dashboard chart's title
    double defaultCoef;   ///< its coefficient when the experiment names none (0: not in the defaults)
    bool perDomain;       ///< a domain module may switch it off (domains.NAME.losses)
};

/// The families in the order shimmer logs their means (demi_cycles, cycles, translations, contrastives,
/// then fused). Default coefficients as shimmer-ssd's configs: 1, 1, 1, 0.01; fused none.
inline const std::vector<FamilyInfo>& families() {
    static const std::vector<FamilyInfo> f = {
        {Family::DemiCycle, "demi_cycle", "demi_cycles", "demi-cycles", 1.0, true},
        {Family::Cycle, "cycle", "cycles", "cycles", 1.0, true},
        {Family::Translation, "translation", "translations", "translations", 1.0, true},
        {Family::Contrastive, "contrastive", "contrastives", "contrastives", 0.01, false},
        {Family::Fused, "fused", "fused", "fused", 0.0, true},
    };
    return f;
}
inline const FamilyInfo& info(Family f) { return families()[static_cast<std::size_t>(f)]; }
/// The family whose term is `term` ("demi_cycle", ...); null for any other name.
inline const FamilyInfo* familyOfTerm(const std::string& term) {
    for (const auto& f : families())
        if (term == f.term) return &f;
    return nullptr;
}

/// The terms a domain module may switch off (FamilyInfo::perDomain), in order: the default of a
/// domain's `losses:` list (demi_cycle, cycle, translation, fused).
inline std::vector<std::string> perDomainTerms() {
    std::vector<std::string> t;
    for (const auto& f : families())
        if (f.perDomain) t.push_back(f.term);
    return t;
}

// Names of single metrics (without the split prefix).
inline constexpr const char* kLoss = "loss";                    ///< the combined loss
inline constexpr const char* kLearningRate = "lr";              ///< logged by runTraining
inline constexpr const char* kBroadcastLoss = "broadcast_loss";  ///< fusion: mean of the broadcast terms
inline constexpr const char* kBroadcastTerm = "broadcast_loss";  ///< fusion's term name (GWLosses::terms)
inline constexpr const char* kDomainLoss = "domain_loss";       ///< prefix of trained domain modules' own losses
inline constexpr const char* kDenoise = "denoise";              ///< prefix of GLOM's denoising metrics
inline constexpr const char* kPretrain = "pretrain";            ///< split-like prefix of pre-training metrics
inline constexpr const char* kKl = "kl";                        ///< variational: mean of the kl_{d} (also its term name)
inline constexpr const char* kNoUncertainty = "no_uncertainty"; ///< variational: extra of a contrastive, without the uncertainties

/// demi_cycle_{d}
inline std::string demiCycle(const std::string& d) { return "demi_cycle_" + d; }
/// cycle_{s}_through_{t}
inline std::string cycle(const std::string& s, const std::string& t) { return "cycle_" + s + "_through_" + t; }
/// translation_{s}_to_{t} (s may be "a/b" when several domains are fused into t)
inline std::string translation(const std::string& s, const std::string& t) { return "translation_" + s + "_to_" + t; }
/// contrastive_{a}_and_{b}
inline std::string contrastive(const std::string& a, const std::string& b) { return "contrastive_" + a + "_and_" + b; }
/// {metric}_logit_scale: the contrastive's exp(logit_scale), logged beside it
inline std::string logitScaleOf(const std::string& metric) { return metric + "_logit_scale"; }
/// "kl_{d}": variational's KL term of domain d.
inline std::string kl(const std::string& d) { return std::string(kKl) + "_" + d; }
/// "unnorm_{metric}": bayesian's contrastive without the precision weights.
inline std::string unnormalised(const std::string& metric) { return "unnorm_" + metric; }
/// {term}_{extra}: an extra metric of a domain's loss (accuracy, ...) logged beside the term
inline std::string extraOf(const std::string& term, const std::string& extra) { return term + "_" + extra; }
/// "{a,b}": a set of domains as fusion's names write it (callers sort the names first)
inline std::string domainSet(const std::vector<std::string>& domains) {
    std::string s = "{";
    for (std::size_t i = 0; i < domains.size(); ++i) s += (i ? "," : "") + domains[i];
    return s + "}";
}
/// fusion: from_{S}_to_{d}_loss, or from_{S}_to_{d}_case_{G}_loss when `caseOf` is not empty
/// (`from` and `caseOf` as domainSet writes them)
inline std::string broadcastTerm(const std::string& from, const std::string& d, const std::string& caseOf = "") {
    return "from_" + from + "_to_" + d + (caseOf.empty() ? "" : "_case_" + caseOf) + "_loss";
}
/// fusion: from_{S}_through_{I}_to_{d}_case_{G}_loss
inline std::string broadcastCycle(const std::string& from, const std::string& through, const std::string& d,
                                  const std::string& caseOf) {
    return "from_" + from + "_through_" + through + "_to_" + d + "_case_" + caseOf + "_loss";
}
/// fusion: `term` (a broadcastTerm or broadcastCycle name) made unique across groups, `_case_{G}`
/// inserted before its `_loss` (shimmer would overwrite the earlier group's key)
inline std::string withCase(const std::string& term, const std::string& caseOf) {
    return term.substr(0, term.size() - 5) + "_case_" + caseOf + "_loss";
}
/// fusion: the extra metric k (accuracy, ...) of a broadcast term: its name with `_loss` replaced by `_{k}`
inline std::string broadcastExtra(const std::string& term, const std::string& k) {
    return term.substr(0, term.size() - 5) + "_" + k;
}
/// domain_loss/{d}/{k}
inline std::string domainLoss(const std::string& d, const std::string& k) { return std::string(kDomainLoss) + "/" + d + "/" + k; }
/// {split}/{metric}
inline std::string withSplit(const std::string& split, const std::string& metric) { return split + "/" + metric; }

/// attention (shimmer AttentionBase): {d}_mean_attention_score, the batch mean of domain d's score in
/// the paired group
inline std::string meanAttentionScore(const std::string& d) { return d + "_mean_attention_score"; }
/// attention: {a,b}_loss, a group's decoding loss, its domains joined by "," as shimmer's
/// ",".join(domain_names) (callers sort the names: shimmer's frozenset has no fixed order)
inline std::string groupLoss(const std::vector<std::string>& domains) {
    std::string s;
    for (std::size_t i = 0; i < domains.size(); ++i) s += (i ? "," : "") + domains[i];
    return s + "_loss";
}
/// The shortest decimal text that reads back as `v` ("0.5", "1", "0.1"): a corruption level in names.
inline std::string levelText(double v) {
    char buf[32];
    for (int p = 1; p <= 17; ++p) {
        std::snprintf(buf, sizeof buf, "%.*g", p, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    return buf;
}
/// attention evaluation: corrupt_{d}_{level}/{metric}, a metric of the paired group with only domain
/// d corrupted, at `level`, in every row (metric: meanAttentionScore(e) or "loss")
inline std::string corruptedAt(const std::string& d, double level, const std::string& metric) {
    return "corrupt_" + d + "_" + levelText(level) + "/" + metric;
}
/// corruptedAt's parts read back.
struct CorruptedAt {
    std::string side;    ///< the domain corrupted
    double level = 0;    ///< its corruption level
    std::string metric;  ///< "loss" or "{e}_mean_attention_score"
};
/// Reads `name` (without the split) as corruptedAt wrote it; false for any other name.
inline bool parseCorruptedAt(const std::string& name, CorruptedAt& out) {
    if (name.compare(0, 8, "corrupt_") != 0) return false;
    const auto slash = name.find('/');
    if (slash == std::string::npos) return false;
    const std::string head = name.substr(8, slash - 8);
    const auto us = head.rfind('_');
    if (us == std::string::npos || us == 0 || us + 1 >= head.size()) return false;
    char* end = nullptr;
    const std::string num = head.substr(us + 1);
    const double level = std::strtod(num.c_str(), &end);
    if (end != num.c_str() + num.size()) return false;
    out.side = head.substr(0, us);
    out.level = level;
    out.metric = name.substr(slash + 1);
    return !out.metric.empty();
}

/// A metric name read back: where it was logged, which chart it belongs to and a short label.
struct MetricParts {
    std::string split;   ///< "train", "val", "test", "pretrain", ... ("" when the name has none)
    std::string name;    ///< the name without the split
    std::string chart;   ///< the dashboard's chart: a family title, or "totals", "accuracy",
                         ///< "learning rate", "pre-training", "denoising", "other"
    std::string label;   ///< short label within the chart: "image → label", "image ↔ label", "all", ...
    bool isFamily = false;  ///< a family: its chart's title is a family's, and `family` is set
    Family family = Family::DemiCycle;
};

namespace detail {
inline bool startsWith(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
inline bool endsWith(const std::string& s, const std::string& p) {
    return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}
inline std::string underscoresToSpaces(std::string s) {
    for (auto& c : s)
        if (c == '_') c = ' ';
    return s;
}
/// "{a,b}" -> "{a, b}", "{a}" -> "a".
inline std::string readableSet(const std::string& braced) {
    std::string inner = braced;
    if (inner.size() >= 2 && inner.front() == '{' && inner.back() == '}') inner = inner.substr(1, inner.size() - 2);
    if (inner.find(',') == std::string::npos) return inner;
    std::string out = "{";
    for (char c : inner) out += c == ',' ? std::string(", ") : std::string(1, c);
    return out + "}";
}
inline std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out(1);
    for (char c : s) {
        if (c == sep) out.emplace_back();
        else out.back() += c;
    }
    return out;
}
/// The family of a fusion broadcast metric (from_{S}_to_..., from_{S}_through_...); false when `m` is
/// not one.
inline bool broadcastFamily(const std::string& m, Family& f) {
    if (!startsWith(m, "from_{")) return false;
    const auto close = m.find('}');
    if (close == std::string::npos) return false;
    const std::string after = m.substr(close + 1);
    if (startsWith(after, "_through_")) {
        f = Family::Cycle;
        return true;
    }
    if (!startsWith(after, "_to_")) return false;
    const auto sources = split(m.substr(6, close - 6), ',');
    const std::string rest = after.substr(4);  // "{d}_loss", "{d}_case_{G}_loss", ...
    bool inS = false;
    for (const auto& s : sources) inS = inS || startsWith(rest, s + "_loss") || startsWith(rest, s + "_case_");
    f = !inS ? Family::Translation : sources.size() == 1 ? Family::DemiCycle : Family::Fused;
    return true;
}
/// The short label of a broadcast metric, "" when `m` is not one.
inline std::string broadcastLabel(const std::string& m) {
    if (!startsWith(m, "from_{")) return {};
    const auto close = m.find('}');
    if (close == std::string::npos) return {};
    std::string label = readableSet(m.substr(5, close - 4));
    std::string rest = m.substr(close + 1);
    if (startsWith(rest, "_through_{")) {
        const auto c2 = rest.find('}');
        if (c2 == std::string::npos) return {};
        label += " → " + readableSet(rest.substr(9, c2 - 8));
        rest = rest.substr(c2 + 1);
    }
    if (!startsWith(rest, "_to_")) return {};
    rest = rest.substr(4);
    for (const char* suffix : {"_loss", "_accuracy"})
        if (endsWith(rest, suffix)) rest.resize(rest.size() - std::string(suffix).size());
    std::string target = rest, cases;
    if (const auto c = rest.find("_case_"); c != std::string::npos) {
        target = rest.substr(0, c);
        cases = readableSet(rest.substr(c + 6));
    }
    label += " → " + underscoresToSpaces(target);
    if (!cases.empty()) label += " (case " + cases + ")";
    return label;
}
/// "a_SEP_b" after `prefix` as "a ARROW b"; "" when the separator is missing.
inline std::string pairLabel(const std::string& m, const std::string& prefix, const std::string& sep, const std::string& arrow) {
    const std::string body = m.substr(prefix.size());
    const auto at = body.find(sep);
    if (at == std::string::npos || at == 0) return {};
    return body.substr(0, at) + arrow + body.substr(at + sep.size());
}
}  // namespace detail

/// Splits "translation_v_to_t_caption_accuracy" into the translation ("translation_v_to_t") and the
/// score ("caption_accuracy"), the score being one of `known`: the names the domain modules' dataMetrics
/// return, as their kinds declare them (gw::dataScoreNames() in model/core/registry.h, KindInfo::dataScores;
/// logged by `gw eval` and by validation as `translation_{a}_to_{b}_{score}`). The longest known name
/// that ends `m` wins ("category_accuracy" over "accuracy"), whatever the order of `known`. False for a
/// name that is not a translation's data-space score.
inline bool splitDataScore(const std::string& m, const std::vector<std::string>& known, std::string& translation,
                           std::string& score) {
    if (m.rfind("translation_", 0) != 0) return false;
    const std::string* best = nullptr;
    for (const auto& d : known) {
        const std::string tail = "_" + d;
        if (!d.empty() && m.size() > tail.size() + 12 && m.compare(m.size() - tail.size(), tail.size(), tail) == 0 &&
            m.find("_to_", 12) < m.size() - tail.size() && (!best || d.size() > best->size()))
            best = &d;
    }
    if (!best) return false;
    translation = m.substr(0, m.size() - best->size() - 1);
    score = *best;
    return true;
}

/// Reads a logged metric name ("train/translation_image_to_label", "val/contrastives",
/// "pretrain/image/kl", "lr") back into its parts. `dataScores`: the score names of translations in data
/// space (gw::dataScoreNames(); see splitDataScore), which go to the chart "data space" (or "accuracy").
/// Names it does not know go to the chart "other" with their underscores as spaces; never throws.
inline MetricParts parseMetric(const std::string& full, const std::vector<std::string>& dataScores) {
    using namespace detail;
    MetricParts p;
    const auto slash = full.find('/');
    p.split = slash == std::string::npos ? std::string() : full.substr(0, slash);
    p.name = slash == std::string::npos ? full : full.substr(slash + 1);
    const std::string& m = p.name;
    auto family = [&](Family f) {
        p.isFamily = true;
        p.family = f;
        p.chart = info(f).title;
    };
    // Chart.
    if (p.split == kPretrain) p.chart = "pre-training";
    else if (m == kLearningRate) p.chart = "learning rate";
    else if (CorruptedAt c; parseCorruptedAt(m, c)) p.chart = "attention";
    else if (endsWith(m, "_mean_attention_score")) p.chart = "attention";
    else if (endsWith(m, "logit_scale")) p.chart = "other";
    else if (startsWith(m, "contrastive_") && endsWith(m, "_clip")) p.chart = "other";  // VSE++'s CLIP value
    else if (startsWith(m, "contrastive_") && endsWith(m, std::string("_") + kNoUncertainty)) p.chart = "other";  // variational's plain CLIP
    else if (m.find("accuracy") != std::string::npos) p.chart = "accuracy";
    else if (std::string tr, sc; splitDataScore(m, dataScores, tr, sc)) p.chart = "data space";
    else if (m == kLoss || m == kBroadcastLoss || startsWith(m, kDomainLoss)) p.chart = "totals";
    else if (Family f; broadcastFamily(m, f)) family(f);
    else if (m == info(Family::Fused).mean) family(Family::Fused);
    else if (startsWith(m, info(Family::DemiCycle).term)) family(Family::DemiCycle);
    else if (startsWith(m, info(Family::Cycle).term)) family(Family::Cycle);
    else if (startsWith(m, info(Family::Translation).term)) family(Family::Translation);
    else if (startsWith(m, info(Family::Contrastive).term)) family(Family::Contrastive);
    else if (startsWith(m, kDenoise)) p.chart = "denoising";  // a GLOM run's loss (docs/glom.md)
    else p.chart = "other";

    // Label.
    if (p.split == kPretrain) {
        std::string l = m;
        for (auto& c : l)
            if (c == '/' || c == '_') c = ' ';
        p.label = l;
        return p;
    }
    if (m == kLoss) p.label = "total";
    else if (m == kLearningRate) p.label = "learning rate";
    else if (m == kBroadcastLoss) p.label = "broadcast total";
    else {
        bool mean = false;
        for (const auto& f : families()) mean = mean || m == f.mean;
        if (mean) p.label = "all";
    }
    if (!p.label.empty()) return p;
    if (CorruptedAt c; parseCorruptedAt(m, c)) {
        const std::string what = endsWith(c.metric, "_mean_attention_score")
                                     ? c.metric.substr(0, c.metric.size() - 21) + " score"
                                     : underscoresToSpaces(c.metric);
        p.label = c.side + " corrupted " + levelText(c.level) + ": " + what;
        return p;
    }
    if (endsWith(m, "_mean_attention_score")) {
        p.label = m.substr(0, m.size() - 21);
        return p;
    }
    if (std::string b = broadcastLabel(m); !b.empty()) {
        p.label = b;
        return p;
    }
    if (std::string tr, sc; splitDataScore(m, dataScores, tr, sc) && sc != "accuracy")
        if (std::string l = pairLabel(tr, "translation_", "_to_", " → "); !l.empty()) {
            if (endsWith(sc, "_accuracy")) sc.resize(sc.size() - 9);
            p.label = l + " " + (sc == "image_mse" ? std::string("image MSE") : underscoresToSpaces(sc));
            return p;
        }
    std::string s = m, tail;
    if (endsWith(s, "_accuracy")) s.resize(s.size() - 9);
    if (endsWith(s, "_logit_scale")) {
        s.resize(s.size() - 12);
        tail = " logit scale";
    } else if (startsWith(s, "contrastive_") && endsWith(s, "_clip")) {
        s.resize(s.size() - 5);
        tail = " CLIP";
    } else if (startsWith(s, "contrastive_") && endsWith(s, std::string("_") + kNoUncertainty)) {
        s.resize(s.size() - 1 - std::string(kNoUncertainty).size());
        tail = " without uncertainty";
    }
    if (startsWith(s, "demi_cycle_")) {
        p.label = s.substr(11) + tail;
        return p;
    }
    if (startsWith(s, "cycle_")) {
        const std::string body = s.substr(6);
        const auto at = body.find("_through_");
        if (at != std::string::npos && at > 0) {
            p.label = body.substr(0, at) + " → " + body.substr(at + 9) + " → " + body.substr(0, at) + tail;
            return p;
        }
    }
    if (startsWith(s, "translation_"))
        if (std::string l = pairLabel(s, "translation_", "_to_", " → "); !l.empty()) {
            p.label = l + tail;
            return p;
        }
    if (startsWith(s, "contrastive_"))
        if (std::string l = pairLabel(s, "contrastive_", "_and_", " ↔ "); !l.empty()) {
            p.label = l + tail;
            return p;
        }
    p.label = underscoresToSpaces(s) + tail;
    return p;
}

}  // namespace gw::metrics

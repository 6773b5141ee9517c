// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/core/registry.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace gw {

const ParamInfo* KindInfo::param(const std::string& key) const {
    for (const auto& p : params)
        if (p.key == key) return &p;
    return nullptr;
}

namespace {
bool parseReal(const std::string& s, double& out) {
    if (s.empty()) return false;
    std::istringstream in(s);
    in >> out;
    if (!in || !in.eof()) {
        // YAML's special floats
        if (s == ".inf" || s == "+.inf") out = INFINITY;
        else if (s == "-.inf") out = -INFINITY;
        else return false;
    }
    return std::isfinite(out);
}
bool parseInt(const std::string& s, int64_t& out) {
    if (s.empty()) return false;
    size_t used = 0;
    try {
        out = std::stoll(s, &used);
    } catch (const std::exception&) {
        return false;
    }
    return used == s.size();
}
/// "cosine or order", "a, b or c".
std::string choiceText(const std::vector<std::string>& choices) {
    std::string s;
    for (size_t i = 0; i < choices.size(); ++i)
        s += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + choices[i];
    return s;
}
bool parseBool(const std::string& s, bool& out) {
    if (s == "true" || s == "True" || s == "TRUE" || s == "yes" || s == "on") return out = true, true;
    if (s == "false" || s == "False" || s == "FALSE" || s == "no" || s == "off") return out = false, true;
    return false;
}
/// The shortest text that reads back as `v` exactly.
std::string numberText(double v) {
    for (int digits = 6; digits <= 17; ++digits) {
        std::ostringstream s;
        s.precision(digits);
        s << v;
        if (std::stod(s.str()) == v) return s.str();
    }
    return std::to_string(v);
}
}  // namespace

double Params::real(const std::string& key) const {
    double v = 0;
    parseReal(values_.at(key), v);
    return v;
}
int64_t Params::integer(const std::string& key) const {
    int64_t v = 0;
    parseInt(values_.at(key), v);
    return v;
}
bool Params::flag(const std::string& key) const {
    bool v = false;
    parseBool(values_.at(key), v);
    return v;
}
const std::string& Params::text(const std::string& key) const { return values_.at(key); }

Params checkParams(const KindInfo& info, const std::string& what, const OrderedMap<std::string>& given,
                   const std::string& where) {
    for (const auto& [k, v] : given)
        if (!info.param(k)) {
            std::string known;
            for (const auto& p : info.params) known += (known.empty() ? "" : ", ") + p.key;
            throw std::invalid_argument(where + "." + k + ": unknown parameter of " + what + " '" + info.name +
                                        "' (known: " + (known.empty() ? "none" : known) + ")");
        }
    Params out;
    for (const auto& p : info.params) {
        const std::string* g = given.find(p.key);
        const std::string text = g ? *g : p.defaultValue;
        auto fail = [&](const std::string& expected) -> void {
            throw std::invalid_argument(where + "." + p.key + ": expected " + expected + ", found '" + text + "'");
        };
        auto bound = [&](const char* kind) {
            std::string e = kind;
            if (std::isfinite(p.min)) e += std::string(p.minExclusive ? " > " : " >= ") + numberText(p.min);
            if (std::isfinite(p.max)) e += std::string(std::isfinite(p.min) ? " and" : "") + " <= " + numberText(p.max);
            return e;
        };
        switch (p.type) {
            case ParamInfo::Type::Int: {
                int64_t v = 0;
                if (!parseInt(text, v)) fail(bound("a whole number"));
                if (p.minExclusive ? !(double(v) > p.min) : !(double(v) >= p.min)) fail(bound("a whole number"));
                if (!(double(v) <= p.max)) fail(bound("a whole number"));
                out.set(p.key, std::to_string(v));
                break;
            }
            case ParamInfo::Type::Real: {
                double v = 0;
                if (!parseReal(text, v)) fail(bound("a number"));
                if (p.minExclusive ? !(v > p.min) : !(v >= p.min)) fail(bound("a number"));
                if (!(v <= p.max)) fail(bound("a number"));
                out.set(p.key, numberText(v));
                break;
            }
            case ParamInfo::Type::Bool: {
                bool v = false;
                if (!parseBool(text, v)) fail("true or false");
                out.set(p.key, v ? "true" : "false");
                break;
            }
            case ParamInfo::Type::Text:
            case ParamInfo::Type::Path:
                if (!p.choices.empty() && std::find(p.choices.begin(), p.choices.end(), text) == p.choices.end())
                    fail(choiceText(p.choices));
                out.set(p.key, text);
                break;
        }
    }
    out.checkedFor_ = what + " " + info.name;
    return out;
}

namespace {
const char* typeName(ParamInfo::Type t) {
    switch (t) {
        case ParamInfo::Type::Int: return "whole number";
        case ParamInfo::Type::Real: return "number";
        case ParamInfo::Type::Bool: return "true/false";
        case ParamInfo::Type::Text: return "text";
        case ParamInfo::Type::Path: return "file path";
    }
    return "";
}

template <class R>
void table(std::ostringstream& s, const R& reg, const std::string& key, const std::string& paramsKey) {
    s << "| `" << key << "` | meaning | parameters (`" << paramsKey << "`) |\n|---|---|---|\n";
    for (const auto& e : reg.entries()) {
        s << "| `" << e.info.name << "` | " << e.info.doc << " | ";
        if (e.info.params.empty()) s << "none";
        bool first = true;
        for (const auto& p : e.info.params) {
            s << (first ? "" : "<br>") << "`" << p.key << "` (" << typeName(p.type);
            const bool number = p.type == ParamInfo::Type::Int || p.type == ParamInfo::Type::Real;
            if (number && std::isfinite(p.min)) s << (p.minExclusive ? " > " : " ≥ ") << numberText(p.min);
            if (number && std::isfinite(p.max)) s << (std::isfinite(p.min) ? "," : "") << " ≤ " << numberText(p.max);
            if (!p.choices.empty()) s << ": " << choiceText(p.choices);
            if (!p.unit.empty()) s << ", " << p.unit;
            if (p.defaultValue.empty()) s << ", no default): " << p.doc;
            else s << ", default `" << p.defaultValue << "`): " << p.doc;
            first = false;
        }
        if (!e.info.dataScores.empty()) {  // a domain-module kind's data-space scores (dataMetrics' names)
            s << "<br>scores in data space (`gw eval`, `val/translation_A_to_NAME_SCORE`):";
            for (size_t i = 0; i < e.info.dataScores.size(); ++i) s << (i ? ", `" : " `") << e.info.dataScores[i] << "`";
        }
        s << " |\n";
    }
}
}  // namespace

std::string kindsMarkdown() {
    std::ostringstream s;
    s << "Trainable models:\n\n| `model` | meaning | sections it reads besides data, domains, optimizer, scheduler, training |\n|---|---|---|\n";
    for (const auto& e : modelRegistry().entries()) {
        std::string sections;
        for (const auto& x : e.impl.sections) sections += (sections.empty() ? "`" : ", `") + x + "`";
        s << "| `" << e.info.name << "` | " << e.info.doc << " | " << (sections.empty() ? "none" : sections) << " |\n";
    }
    s << "\nGW flavours:\n\n";
    table(s, flavourRegistry(), "workspace.flavour", "workspace.flavour_params");
    s << "\nDefault selection of each flavour:";
    for (const auto& e : flavourRegistry().entries()) s << " `" << e.info.name << "`: `" << e.impl.defaultSelection << "`;";
    s << " a `workspace.selection` in the file wins.\n\nSelections:\n\n";
    table(s, selectionRegistry(), "workspace.selection", "workspace.selection_params");
    s << "\nContrastive losses:\n\n";
    table(s, contrastiveRegistry(), "loss.contrastive", "loss.contrastive_params");
    s << "\nDomain-module kinds:\n\n";
    table(s, domainModuleRegistry(), "domains.NAME.module", "domains.NAME.*");
    return s.str();
}

}  // namespace gw

// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/public_captions.h"

#include <algorithm>
#include <vector>

namespace gw::data {

namespace {

/// The integer at `key` of a dict (0 when absent). \throws NpyError for a value that is not an integer.
int intAt(const PyValue* dict, const std::string& key, const std::string& where) {
    if (!dict) return 0;
    const PyValuePtr v = dict->get(key);
    if (!v) return 0;
    if (v->kind != PyValue::Kind::Int && v->kind != PyValue::Kind::Bool)
        throw NpyError(where + "." + key + ": expected a whole number, found a " + v->typeName());
    return v->kind == PyValue::Kind::Bool ? int(v->b) : int(v->i);
}

const PyValue* dictAt(const PyValue* dict, const std::string& key, const std::string& where) {
    if (!dict) return nullptr;
    const PyValuePtr v = dict->get(key);
    if (!v) return nullptr;
    if (v->kind != PyValue::Kind::Dict) throw NpyError(where + "." + key + ": expected a dict, found a " + v->typeName());
    return v.get();
}

/// The index of permutation `p` of 0..n-1 in itertools.permutations order (lexicographic).
int permutationIndex(const std::vector<int>& p, const std::string& where) {
    std::vector<int> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 0; i < sorted.size(); ++i)
        if (sorted[i] != int(i)) throw NpyError(where + ".groups: expected a permutation of 0.." + std::to_string(p.size() - 1));
    int index = 0;
    std::vector<int> left = sorted;
    for (size_t i = 0; i < p.size(); ++i) {
        const auto at = std::find(left.begin(), left.end(), p[i]);
        int factorial = 1;
        for (size_t k = 2; k < left.size(); ++k) factorial *= int(k);
        index += int(at - left.begin()) * factorial;
        left.erase(at);
    }
    return index;
}

}  // namespace

shapes::CaptionChoice captionChoiceOfPublic(const PyValue& dict, const std::string& where) {
    if (dict.kind != PyValue::Kind::Dict) throw NpyError(where + ": expected a dict of caption choices, found a " + dict.typeName());
    shapes::CaptionChoice c;
    c.structure = intAt(&dict, "structure", where);
    if (const PyValuePtr g = dict.get("groups")) {
        if (g->kind != PyValue::Kind::List && g->kind != PyValue::Kind::Tuple)
            throw NpyError(where + ".groups: expected a list, found a " + g->typeName());
        std::vector<int> p;
        for (const auto& x : g->items) {
            if (x->kind != PyValue::Kind::Int) throw NpyError(where + ".groups: expected whole numbers, found a " + x->typeName());
            p.push_back(int(x->i));
        }
        c.groups = permutationIndex(p, where);
    }
    const PyValue* variants = dictAt(&dict, "variants", where);
    static const char* const kNames[shapes::kCaptionVariants] = {"start",      "a",         "object", "colored?",
                                                                  "colorBefore", "colorAfter", "colorBoth", ",?",
                                                                  "link",       "link2",     "link3"};
    for (int i = 0; i < shapes::kCaptionVariants; ++i) c.variants[size_t(i)] = intAt(variants, kNames[i], where + ".variants");
    const PyValue* writers = dictAt(&dict, "writers", where);
    const std::string w = where + ".writers";
    const PyValue* shape = dictAt(writers, "shape", w);
    c.shapeName = shape && shape->get("name") ? intAt(shape, "name", w + ".shape") : intAt(shape, "val", w + ".shape");
    const PyValue* rotation = dictAt(writers, "rotation", w);
    c.rotationWriter = intAt(rotation, "_writer", w + ".rotation");
    c.rotationOfImage = intAt(rotation, "of_image", w + ".rotation");
    c.rotationRotated = intAt(rotation, "rotated", w + ".rotation");
    c.rotationCorner = intAt(rotation, "corner", w + ".rotation");
    c.rotationSide = intAt(rotation, "side", w + ".rotation");
    c.sizeVal = intAt(dictAt(writers, "size", w), "val", w + ".size");
    const PyValue* location = dictAt(writers, "location", w);
    const std::string l = w + ".location";
    c.locationWriter = intAt(location, "_writer", l);
    c.locationVal = intAt(location, "val", l);
    c.locationBottom = intAt(location, "bottom", l);
    c.locationMiddle = intAt(location, "middle", l);
    c.locationTop = intAt(location, "top", l);
    c.locationInThe = intAt(location, "in_the", l);
    c.locationOnThe = intAt(location, "on_the", l);
    c.locationSide = intAt(location, "side?", l);
    c.locationLocated = intAt(location, "located?", l);
    return c;
}

}  // namespace gw::data

// SPDX-License-Identifier: GPL-3.0-or-later
// Simple Shapes captions: the public composer's grammar (DS text/composer.py, text/writers.py) and its
// filling rules (A2L composer.py, writers.py), restated over one sample's drawn choices. Sources and
// abbreviations: data/captions.h.
#include "data/captions.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string_view>

#include "data/splitmix64.h"

namespace gw::shapes {
namespace {

using detail::SplitMix64;
using Words = std::vector<std::string_view>;

constexpr double kPi = 3.14159265358979323846;

// ---- DS composer.py: script_structures and variants ---------------------------------------------------

/// The seven templates of `script_structures`; `<...>` marks a group whose place is permuted.
constexpr std::string_view kStructures[7] = {
    "{start} {size} {colorBefore} {shape}{link} <{location}>{link} <{rotation}>.",
    "{start} {size} {colorBefore} {object} <{location}>{link} <{rotation}>{link2} {a} {shape}.",
    "{start} {size} {object} <{location}>{link} <{rotation}>{link} {colorBoth}{link2} {a} {shape}.",
    "{start} {size} {object} in {colorAfter} <{location}>{link} <{rotation}>{link2} {a} {shape}.",
    "{start} {shape}{link} {size}{link3} {colorBoth}{link} <{location}>{link} <{rotation}>.",
    "{start} {color}{colored?} {size} {shape}{link} <{location}>{link} <{rotation}>.",
    "{start} {color}{colored?} {shape}{link} <{size}>{link} <{location}>{link} <{rotation}>.",
};
/// Groups per template (7 templates: 2, 2, 2, 2, 2, 2, 3): the structure category offsets follow.
constexpr int kGroups[7] = {2, 2, 2, 2, 2, 2, 3};
constexpr int kStructureOffset[7] = {0, 2, 4, 6, 8, 10, 12};  // + 3! = 18 categories

/// An option ending in "{n?}" is `a_has_n`: "n" when the next attribute's words start with a vowel.
struct VariantInfo {
    std::string_view name;
    Words options;
};
const VariantInfo kVariants[kCaptionVariants] = {
    {"start", {"A{n?}", "It is a{n?}", "This is a{n?}", "There is a{n?}", "The image is a{n?}",
               "The image represents a{n?}", "The image contains a{n?}", "A kind of"}},
    {"a", {"a{n?}"}},
    {"object", {"shape", "object"}},
    {"colored?", {"", " colored"}},
    {"colorBefore", {"{color}", "{color} colored"}},
    {"colorAfter", {"{color}", "{color} color"}},
    {"colorBoth", {"{color}", "in {color}", "{color} colored", "in {color} color"}},
    {",?", {", ", " "}},
    {"link", {". It is", ", it is", "{,?}and is", "{,?}and it is", ","}},
    {"link2", {". It looks like", ", it looks like", "{,?}and looks like", "{,?}and it looks like"}},
    {"link3", {". It is", ", it is", "{,?}and is", "{,?}and it is", ",", " and"}},
};

// ---- DS writers.py: the writers -------------------------------------------------------------------------

enum Attribute { kShape, kRotation, kColor, kSize, kLocation, kAttributes };
constexpr std::string_view kAttributeNames[kAttributes] = {"shape", "rotation", "color", "size", "location"};

/// shapes_writer (an OptionsWriter): the words for each class.
const Words kShapeWords[3] = {
    {"diamond", "trapezoidal shape", "four-sided shape", "kite", "quadrilateral", "arrow-shaped polygon",
     "deformed square shape"},
    {"egg", "water droplet", "isosceles triangle that has round corners", "bullet", "oval shaped structure",
     "triangle-like shape with rounded vertices", "guitar pick"},
    {"isosceles triangle", "triangle"},
};

/// The four rotation writers (AngleWriter around a QuantizedWriter on 8 or 16 angles k·2π/n): corner,
/// cardinal, corner with 16 angles, cardinal with 16 angles. Corner writers word "{rotated} the {val}"
/// with rotated in {"pointing to", "pointing towards"} and the label's {corner}/{side} in {"", " corner"}
/// / {"", " side"}; cardinal ones "{rotated} {val}" with rotated in {"pointing to the", "pointing towards
/// the", "pointing"}. All four also draw of_image {"", "of the image"}, which no label uses.
const Words kRotationLabels[4] = {
    {"top", "top-left{corner}", "left{side}", "bottom-left{corner}", "bottom", "bottom-right{corner}",
     "right{side}", "top-right{corner}"},
    {"north", "northwest", "west", "southwest", "south", "southeast", "east", "northeast"},
    {"top", "top top-left{corner}", "top-left{corner}", "left top-left{corner}", "left{side}",
     "left bottom-left{corner}", "bottom-left{corner}", "bottom bottom-left{corner}", "bottom",
     "bottom bottom-right{corner}", "bottom-right{corner}", "right bottom-right{corner}", "right{side}",
     "right top-right{corner}", "top-right{corner}", "top top-right{corner}"},
    {"north", "north-northwest", "northwest", "west-northwest", "west", "west-southwest", "southwest",
     "south-southwest", "south", "south-southeast", "southeast", "east-southeast", "east", "east-northeast",
     "northeast", "north-northeast"},
};
const Words kRotatedCorner = {"pointing to", "pointing towards"};
const Words kRotatedCardinal = {"pointing to the", "pointing towards the", "pointing"};
bool cornerWriter(int w) { return w == 0 || w == 2; }

/// size_writer (a BinsWriter on bins 9, 11, 13 px): the words of each bin.
const Words kSizeWords[4] = {{"tiny"}, {"small", "little"}, {"average sized", "medium sized", "medium"}, {"big", "large"}};

/// location_precision_writer_bins (a Bins2dWriter, bins 9, 12, 14, 18, 20, 23 px on both axes): the label
/// of each (y bin, x bin), bottom row first, left column first. The public table is written this way and
/// transposed so that it is indexed by x first.
const std::string_view kLocationBins[7][7] = {
    {"{at_the} very {bottom}, {on_the} very left{side?}", "{at_the} very {bottom}, {on_the} left{side?}",
     "{at_the} very {bottom}, slightly left", "{at_the} very {bottom}, {in_the} {middle}",
     "{at_the} very {bottom}, slightly right", "{at_the} very {bottom}, {on_the} right{side?}",
     "{at_the} very {bottom}, {on_the} very right{side?}"},
    {"{at_the} {bottom}, {on_the} very left{side?}", "{at_the} {bottom}, {on_the} left{side?}",
     "{at_the} {bottom}, slightly left", "{at_the} {bottom} {middle}", "{at_the} {bottom}, slightly right",
     "{at_the} {bottom}, {on_the} right{side?}", "{at_the} {bottom}, {on_the} very right{side?}"},
    {"slightly {bottom}, {on_the} very left{side?}", "slightly {bottom}, {on_the} left{side?}",
     "slightly {bottom}, slightly left", "slightly {bottom}, {in_the} {middle}", "slightly {bottom}, slightly right",
     "slightly {bottom}, {on_the} right{side?}", "slightly {bottom}, {on_the} very right{side?}"},
    // The public label of the middle row, very left, has a space before {side?} (it is collapsed later).
    {"{in_the} {middle}, {on_the} very left {side?}", "{in_the} {middle}, {on_the} left{side?}",
     "{in_the} {middle}, slightly left", "{in_the} {middle}", "{in_the} {middle}, slightly right",
     "{in_the} {middle}, {on_the} right{side?}", "{in_the} {middle}, {on_the} very right{side?}"},
    {"slightly {top}, {on_the} very left{side?}", "slightly {top}, {on_the} left{side?}",
     "slightly {top}, slightly left", "slightly {top}, {in_the} {middle}", "slightly {top}, slightly right",
     "slightly {top}, {on_the} right{side?}", "slightly {top}, {on_the} very right{side?}"},
    {"{at_the} {top}, {on_the} very left{side?}", "{at_the} {top}, {on_the} left{side?}", "{at_the} {top}, slightly left",
     "{at_the} {top} {middle}", "{at_the} {top}, slightly right", "{at_the} {top}, {on_the} right{side?}",
     "{at_the} {top}, {on_the} very right{side?}"},
    {"{at_the} very {top}, {on_the} very left{side?}", "{at_the} very {top}, {on_the} left{side?}",
     "{at_the} very {top}, slightly left", "{at_the} very {top}, {in_the} {middle}",
     "{at_the} very {top}, slightly right", "{at_the} very {top}, {on_the} right{side?}",
     "{at_the} very {top}, {on_the} very right{side?}"},
};
constexpr double kLocationBinEdges[6] = {9, 12, 14, 18, 20, 23};

/// location_writer (a QuantizedWriter on 9 points, x and y in {10, 16, 22}, x fastest): its labels.
constexpr double kLocationPoints[9][2] = {{10, 10}, {16, 10}, {22, 10}, {10, 16}, {16, 16}, {22, 16}, {10, 22}, {16, 22}, {22, 22}};
const Words kLocationPointLabels[9] = {
    {"{at_the} {bottom} left{side?}", "{at_the} {bottom}, {on_the} left{side?}"},
    {"{at_the} {bottom} {middle}", "{at_the} {bottom}"},
    {"{at_the} {bottom} right{side?}"},
    {"{in_the} {middle} left{side?}"},
    {"{in_the} {middle}"},
    {"{in_the} {middle} right{side?}"},
    {"{at_the} {top} left{side?}"},
    {"{at_the} {top} {middle}", "{top}"},
    {"{at_the} {top} right{side?}"},
};
// Both location writers word "{located?}{val}" with these variants.
const Words kBottom = {"bottom", "lower side"}, kMiddle = {"middle", "center"}, kTop = {"top", "upper side"},
            kInThe = {"in the", "at the"}, kOnThe = {"on the", "at the"}, kSide = {" side", ""},
            kLocated = {"located ", " "};

// ---- A2L utils.py: COLORS_LARGE_SET ---------------------------------------------------------------------

const std::vector<NamedColor> kColors = {
    {"alice blue", {240, 248, 255}}, {"antique white", {250, 235, 215}}, {"aqua", {0, 255, 255}},
    {"aqua marine", {127, 255, 212}}, {"azure", {240, 255, 255}}, {"beige", {245, 245, 220}},
    {"bisque", {255, 228, 196}}, {"black", {0, 0, 0}}, {"blanched almond", {255, 235, 205}}, {"blue", {0, 0, 255}},
    {"blue violet", {138, 43, 226}}, {"brown", {165, 42, 42}}, {"burly wood", {222, 184, 135}},
    {"cadet blue", {95, 158, 160}}, {"chartreuse", {127, 255, 0}}, {"chocolate", {210, 105, 30}},
    {"coral", {255, 127, 80}}, {"cornflower blue", {100, 149, 237}}, {"cornsilk", {255, 248, 220}},
    {"crimson", {220, 20, 60}}, {"cyan", {0, 255, 255}}, {"dark blue", {0, 0, 139}}, {"dark cyan", {0, 139, 139}},
    {"dark goldenrod", {184, 134, 11}}, {"dark grey", {169, 169, 169}}, {"dark green", {0, 100, 0}},
    {"dark khaki", {189, 183, 107}}, {"dark magenta", {139, 0, 139}}, {"dark olive green", {85, 107, 47}},
    {"dark orange", {255, 140, 0}}, {"dark orchid", {153, 50, 204}}, {"dark red", {139, 0, 0}},
    {"dark salmon", {233, 150, 122}}, {"dark sea green", {143, 188, 143}}, {"dark slate blue", {72, 61, 139}},
    {"dark slate grey", {47, 79, 79}}, {"dark turquoise", {0, 206, 209}}, {"dark violet", {148, 0, 211}},
    {"deep pink", {255, 20, 147}}, {"deep sky blue", {0, 191, 255}}, {"dim grey", {105, 105, 105}},
    {"dodger blue", {30, 144, 255}}, {"fire brick", {178, 34, 34}}, {"floral white", {255, 250, 240}},
    {"forest green", {34, 139, 34}}, {"fuchsia", {255, 0, 255}}, {"gainsboro", {220, 220, 220}},
    {"ghost white", {248, 248, 255}}, {"gold", {255, 215, 0}}, {"goldenrod", {218, 165, 32}},
    {"grey", {128, 128, 128}}, {"green", {0, 128, 0}}, {"green yellow", {173, 255, 47}},
    {"honeydew", {240, 255, 240}}, {"hot pink", {255, 105, 180}}, {"indian red", {205, 92, 92}},
    {"indigo", {75, 0, 130}}, {"ivory", {255, 255, 240}}, {"khaki", {240, 230, 140}}, {"lavender", {230, 230, 250}},
    {"lavender blush", {255, 240, 245}}, {"lawn green", {124, 252, 0}}, {"lemon chiffon", {255, 250, 205}},
    {"light blue", {173, 216, 230}}, {"light coral", {240, 128, 128}}, {"light cyan", {224, 255, 255}},
    {"light goldenrod yellow", {250, 250, 210}}, {"light grey", {211, 211, 211}}, {"light green", {144, 238, 144}},
    {"light pink", {255, 182, 193}}, {"light salmon", {255, 160, 122}}, {"light sea green", {32, 178, 170}},
    {"light sky blue", {135, 206, 250}}, {"light slate grey", {119, 136, 153}},
    {"light steel blue", {176, 196, 222}}, {"light yellow", {255, 255, 224}}, {"lime", {0, 255, 0}},
    {"lime green", {50, 205, 50}}, {"linen", {250, 240, 230}}, {"magenta", {255, 0, 255}}, {"maroon", {128, 0, 0}},
    {"medium aquamarine", {102, 205, 170}}, {"medium blue", {0, 0, 205}}, {"medium orchid", {186, 85, 211}},
    {"medium purple", {147, 112, 219}}, {"medium seagreen", {60, 179, 113}}, {"medium slate blue", {123, 104, 238}},
    {"medium spring green", {0, 250, 154}}, {"medium turquoise", {72, 209, 204}},
    {"medium violet red", {199, 21, 133}}, {"midnight blue", {25, 25, 112}}, {"mint cream", {245, 255, 250}},
    {"misty rose", {255, 228, 225}}, {"moccasin", {255, 228, 181}}, {"navajo white", {255, 222, 173}},
    {"navy", {0, 0, 128}}, {"old lace", {253, 245, 230}}, {"olive", {128, 128, 0}}, {"olive drab", {107, 142, 35}},
    {"orange", {255, 165, 0}}, {"orange red", {255, 69, 0}}, {"orchid", {218, 112, 214}},
    {"pale goldenrod", {238, 232, 170}}, {"pale green", {152, 251, 152}}, {"pale turquoise", {175, 238, 238}},
    {"pale violet red", {219, 112, 147}}, {"papaya whip", {255, 239, 213}}, {"peach puff", {255, 218, 185}},
    {"peru", {205, 133, 63}}, {"pink", {255, 192, 203}}, {"plum", {221, 160, 221}}, {"powder blue", {176, 224, 230}},
    {"purple", {128, 0, 128}}, {"rebecca purple", {102, 51, 153}}, {"red", {255, 0, 0}},
    {"rosy brown", {188, 143, 143}}, {"royal blue", {65, 105, 225}}, {"saddle brown", {139, 69, 19}},
    {"salmon", {250, 128, 114}}, {"sandy brown", {244, 164, 96}}, {"sea green", {46, 139, 87}},
    {"sea shell", {255, 245, 238}}, {"sienna", {160, 82, 45}}, {"silver", {192, 192, 192}},
    {"skyblue", {135, 206, 235}}, {"slate blue", {106, 90, 205}}, {"slate grey", {112, 128, 144}},
    {"snow", {255, 250, 250}}, {"spring green", {0, 255, 127}}, {"steel blue", {70, 130, 180}},
    {"tan", {210, 180, 140}}, {"teal", {0, 128, 128}}, {"thistle", {216, 191, 216}}, {"tomato", {255, 99, 71}},
    {"turquoise", {64, 224, 208}}, {"violet", {238, 130, 238}}, {"wheat", {245, 222, 179}},
    {"white", {255, 255, 255}}, {"white smoke", {245, 245, 245}}, {"yellow", {255, 255, 0}},
    {"yellow green", {154, 205, 50}},
};

// ---- The filling rules ----------------------------------------------------------------------------------

/// np.digitize(value, edges) with increasing edges: how many edges are ≤ value.
int digitize(double v, const double* edges, int n) {
    int i = 0;
    while (i < n && edges[i] <= v) ++i;
    return i;
}

/// Python's str.format over `{name}` fields: each field replaced by lookup(name).
template <typename Lookup>
std::string format(std::string_view s, Lookup&& lookup) {
    std::string out;
    out.reserve(s.size() + 32);
    size_t pos = 0;
    while (pos < s.size()) {
        const size_t open = s.find('{', pos);
        if (open == std::string_view::npos) break;
        const size_t close = s.find('}', open);
        out.append(s.substr(pos, open - pos));
        out.append(lookup(s.substr(open + 1, close - open - 1)));
        pos = close + 1;
    }
    if (pos < s.size()) out.append(s.substr(pos));
    return out;
}

int uniformIndex(SplitMix64& rng, size_t n) { return rng.uniformInt(0, static_cast<int>(n) - 1); }

int rotationIndex(const CaptionInput& in, int writer) {
    // AngleWriter: a negative angle gains 2π; QuantizedWriter: the nearest of k·π/(n/2), by squared
    // difference (no wrap-around: an angle just below 2π is nearest to the last value), the first of equals.
    double angle = in.rotation;
    if (angle < 0) angle += 2 * kPi;
    const int n = writer < 2 ? 8 : 16;
    int best = 0;
    double bestD = 0;
    for (int k = 0; k < n; ++k) {
        const double d = angle - k * kPi / (n / 2);
        if (k == 0 || d * d < bestD) best = k, bestD = d * d;
    }
    return best;
}

int locationPoint(const CaptionInput& in) {
    int best = 0;
    double bestD = 0;
    for (int k = 0; k < 9; ++k) {
        const double dx = kLocationPoints[k][0] - in.x, dy = kLocationPoints[k][1] - in.y, d = dx * dx + dy * dy;
        if (k == 0 || d < bestD) best = k, bestD = d;
    }
    return best;
}

int sizeBin(const CaptionInput& in) {
    static constexpr double edges[3] = {9, 11, 13};
    return digitize(in.size, edges, 3);
}

int shapeClass(const CaptionInput& in) {
    if (in.cls < 0 || in.cls > 2) throw std::invalid_argument("caption: expected a class in 0..2, found " + std::to_string(in.cls));
    return in.cls;
}

/// The words of each attribute (the writers' outputs), for `in` under `c`.
std::array<std::string, kAttributes> attributeWords(const CaptionInput& in, const CaptionChoice& c) {
    std::array<std::string, kAttributes> w;
    w[kShape] = std::string(kShapeWords[shapeClass(in)].at(static_cast<size_t>(c.shapeName)));
    {
        const auto label = kRotationLabels[c.rotationWriter].at(static_cast<size_t>(rotationIndex(in, c.rotationWriter)));
        const bool corner = cornerWriter(c.rotationWriter);
        const std::string val = format(label, [&](std::string_view k) -> std::string_view {
            return k == "corner" ? (c.rotationCorner ? " corner" : "") : (c.rotationSide ? " side" : "");
        });
        w[kRotation] = corner ? std::string(kRotatedCorner.at(static_cast<size_t>(c.rotationRotated))) + " the " + val
                              : std::string(kRotatedCardinal.at(static_cast<size_t>(c.rotationRotated))) + " " + val;
    }
    w[kColor] = kColors[static_cast<size_t>(nearestCaptionColor(in.r, in.g, in.b))].name;
    w[kSize] = std::string(kSizeWords[sizeBin(in)].at(static_cast<size_t>(c.sizeVal)));
    {
        std::string_view label;
        if (c.locationWriter == 0) {
            const int ix = digitize(in.x, kLocationBinEdges, 6), iy = digitize(in.y, kLocationBinEdges, 6);
            label = kLocationBins[iy][ix];
        } else {
            label = kLocationPointLabels[locationPoint(in)].at(static_cast<size_t>(c.locationVal));
        }
        const std::string val = format(label, [&](std::string_view k) -> std::string_view {
            if (k == "bottom") return kBottom.at(size_t(c.locationBottom));
            if (k == "middle") return kMiddle.at(size_t(c.locationMiddle));
            if (k == "top") return kTop.at(size_t(c.locationTop));
            if (k == "at_the") return "at the";
            if (k == "in_the") return kInThe.at(size_t(c.locationInThe));
            if (k == "on_the") return kOnThe.at(size_t(c.locationOnThe));
            if (k == "side?") return kSide.at(size_t(c.locationSide));
            throw std::logic_error("caption: unknown location token");
        });
        w[kLocation] = std::string(kLocated.at(size_t(c.locationLocated))) + val;
    }
    return w;
}

int permutationOf(int n, int index, int* perm) {
    for (int i = 0; i < n; ++i) perm[i] = i;
    for (int i = 0; i < index; ++i) std::next_permutation(perm, perm + n);
    return n;
}

/// Composes the sentence; `used` gets a bit per variant the sentence looked up.
std::string compose(const CaptionInput& in, const CaptionChoice& c, unsigned* used) {
    if (c.structure < 0 || c.structure > 6 || c.groups < 0 || c.groups >= (kGroups[c.structure] == 3 ? 6 : 2) ||
        c.rotationWriter < 0 || c.rotationWriter > 3 || c.locationWriter < 0 || c.locationWriter > 1)
        throw std::invalid_argument("caption: a choice outside its options (structure " + std::to_string(c.structure) +
                                    ", groups " + std::to_string(c.groups) + ", rotation writer " +
                                    std::to_string(c.rotationWriter) + ", location writer " + std::to_string(c.locationWriter) + ")");
    const auto words = attributeWords(in, c);  // the words' options are checked by .at()
    // Permute the template's <...> groups: the group at place i becomes group perm[i].
    const std::string_view tpl = kStructures[c.structure];
    std::vector<std::string_view> pieces, groups;  // pieces[0] group0 pieces[1] group1 ...
    size_t pos = 0;
    while (true) {
        const size_t open = tpl.find('<', pos);
        if (open == std::string_view::npos) break;
        const size_t close = tpl.find('>', open);
        pieces.push_back(tpl.substr(pos, open - pos));
        groups.push_back(tpl.substr(open + 1, close - open - 1));
        pos = close + 1;
    }
    pieces.push_back(tpl.substr(pos));
    int perm[3];
    permutationOf(static_cast<int>(groups.size()), c.groups, perm);
    std::string s;
    for (size_t i = 0; i < groups.size(); ++i) s.append(pieces[i]).append(groups[static_cast<size_t>(perm[i])]);
    s.append(pieces.back());

    // Fill the tokens, level after level (A2L Composer.get_variant). "_next" is the attribute after
    // the current token, kept from one token (and level) to the next, as in the public dict.
    int next = -1;
    unsigned usedBits = 0;
    auto attributeOf = [](std::string_view name) {
        for (int a = 0; a < kAttributes; ++a)
            if (kAttributeNames[a] == name) return a;
        return -1;
    };
    auto variantOf = [](std::string_view name) {
        for (int v = 0; v < kCaptionVariants; ++v)
            if (kVariants[v].name == name) return v;
        throw std::logic_error("caption: unknown token {" + std::string(name) + "}");
    };
    constexpr size_t kMaxTokens = 32;
    std::array<std::string_view, kMaxTokens> tokens;
    std::array<std::pair<std::string_view, std::string_view>, kMaxTokens> values;
    std::array<std::string, 2> withN;  // the a_has_n words of this level that take an "n"
    std::string filled;
    for (int level = 0; level < 8; ++level) {
        size_t nTokens = 0;
        for (size_t p = s.find('{'); p != std::string::npos; p = s.find('{', p + 1)) {
            if (nTokens == kMaxTokens) throw std::logic_error("caption: too many tokens");
            tokens[nTokens++] = std::string_view(s).substr(p + 1, s.find('}', p) - p - 1);
        }
        if (nTokens == 0) break;
        size_t nValues = 0, nWithN = 0;
        for (size_t k = 0; k < nTokens; ++k) {
            if (k + 1 < nTokens && attributeOf(tokens[k + 1]) >= 0) next = attributeOf(tokens[k + 1]);
            std::string_view value;
            if (const int a = attributeOf(tokens[k]); a >= 0) {
                value = words[static_cast<size_t>(a)];
            } else {
                const int v = variantOf(tokens[k]);
                usedBits |= 1u << v;
                const std::string_view option = kVariants[v].options.at(static_cast<size_t>(c.variants[static_cast<size_t>(v)]));
                constexpr std::string_view kN = "{n?}";
                value = option;
                if (option.size() >= kN.size() && option.substr(option.size() - kN.size()) == kN) {
                    // a_has_n: the article takes an "n" before a vowel.
                    value = option.substr(0, option.size() - kN.size());
                    const std::string* nextWords = next >= 0 ? &words[static_cast<size_t>(next)] : nullptr;
                    if (nextWords && !nextWords->empty() && std::string_view("aeiou").find((*nextWords)[0]) != std::string_view::npos) {
                        if (nWithN == withN.size()) throw std::logic_error("caption: too many articles");
                        withN[nWithN] = std::string(value) + 'n';
                        value = withN[nWithN++];
                    }
                }
            }
            size_t i = 0;
            while (i < nValues && values[i].first != tokens[k]) ++i;
            values[i] = {tokens[k], value};  // a dict: the last evaluation wins
            if (i == nValues) ++nValues;
        }
        filled = format(s, [&](std::string_view name) -> std::string_view {
            for (size_t i = 0; i < nValues; ++i)
                if (values[i].first == name) return values[i].second;
            throw std::logic_error("caption: unfilled token");
        });
        s.swap(filled);
    }
    if (used) *used = usedBits;
    // Strip, one space between words (Python's str.split() on white space), no space before a full stop.
    auto space = [](char ch) { return ch == ' ' || (ch >= '\t' && ch <= '\r'); };
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        while (i < s.size() && space(s[i])) ++i;
        if (i == s.size()) break;
        if (!out.empty()) {
            if (s[i] != '.') out += ' ';  // " ." becomes "."
        }
        while (i < s.size() && !space(s[i])) out += s[i++];
    }
    return out;
}

constexpr CaptionColumn kColumns[kCaptionChoiceColumns] = {
    {"structure", 18},
    {"variant_start", 8}, {"variant_a", 1}, {"variant_object", 2}, {"variant_colored?", 2},
    {"variant_colorBefore", 2}, {"variant_colorAfter", 2}, {"variant_colorBoth", 4}, {"variant_,?", 2},
    {"variant_link", 5}, {"variant_link2", 4}, {"variant_link3", 6},
    {"writer_rotation", 4}, {"writer_location", 2},
    {"writer_location_0_bottom", 2}, {"writer_location_0_middle", 2}, {"writer_location_0_top", 2},
    {"writer_location_0_in_the", 2}, {"writer_location_0_on_the", 2}, {"writer_location_0_side?", 2},
    {"writer_location_0_located?", 2},
    {"writer_location_1_bottom", 2}, {"writer_location_1_middle", 2}, {"writer_location_1_top", 2},
    {"writer_location_1_in_the", 2}, {"writer_location_1_on_the", 2}, {"writer_location_1_side?", 2},
    {"writer_location_1_located?", 2},
    // Beyond the public categories:
    {"writer_shape_name", 7}, {"writer_size_val", 3}, {"writer_location_val", 2},
    {"writer_rotation_of_image", 2}, {"writer_rotation_rotated", 3}, {"writer_rotation_corner", 2},
    {"writer_rotation_side", 2}, {"writer_location_in_the", 2}, {"writer_location_on_the", 2},
};
constexpr int kColLocation0 = 14, kColExtra = 28;

}  // namespace

CaptionInput captionInput(const Shape& s) {
    auto f = [](double v) { return static_cast<double>(static_cast<float>(v)); };
    return {s.cls, f(s.x), f(s.y), f(s.size), f(s.rotation), double(s.rgb[0]), double(s.rgb[1]), double(s.rgb[2])};
}

const std::vector<NamedColor>& captionColors() { return kColors; }

int nearestCaptionColor(double r, double g, double b) {
    int best = 0;
    double bestD = 0;
    for (size_t k = 0; k < kColors.size(); ++k) {
        const auto& c = kColors[k].rgb;
        const double dr = c[0] - r, dg = c[1] - g, db = c[2] - b, d = dr * dr + dg * dg + db * db;
        if (k == 0 || d < bestD) best = static_cast<int>(k), bestD = d;
    }
    return best;
}

CaptionChoice drawCaptionChoice(const CaptionInput& in, uint64_t seed, int split, int64_t index) {
    // The image stream (data/shapes.cpp) is keyed by seed and split alone; the caption stream adds a
    // constant to the key, so that the two never share draws.
    SplitMix64 key{(seed * 0x2545F4914F6CDD1DULL + static_cast<uint64_t>(split) * 0x9E3779B97F4A7C15ULL) ^ 0x43415054494F4E53ULL};
    SplitMix64 rng{key.next() ^ (static_cast<uint64_t>(index) * 0xD1B54A32D192ED03ULL)};
    rng.next();
    CaptionChoice c;
    c.structure = rng.uniformInt(0, 6);
    c.groups = rng.uniformInt(0, kGroups[c.structure] == 3 ? 5 : 1);
    for (int v = 0; v < kCaptionVariants; ++v) c.variants[static_cast<size_t>(v)] = uniformIndex(rng, kVariants[v].options.size());
    c.shapeName = uniformIndex(rng, kShapeWords[shapeClass(in)].size());
    c.rotationWriter = rng.uniformInt(0, 3);
    c.rotationOfImage = rng.uniformInt(0, 1);
    const bool corner = cornerWriter(c.rotationWriter);
    c.rotationRotated = uniformIndex(rng, corner ? kRotatedCorner.size() : kRotatedCardinal.size());
    c.rotationCorner = corner ? rng.uniformInt(0, 1) : 0;
    c.rotationSide = corner ? rng.uniformInt(0, 1) : 0;
    c.sizeVal = uniformIndex(rng, kSizeWords[sizeBin(in)].size());
    c.locationWriter = rng.uniformInt(0, 1);
    c.locationVal = c.locationWriter == 1 ? uniformIndex(rng, kLocationPointLabels[locationPoint(in)].size()) : 0;
    c.locationBottom = rng.uniformInt(0, 1);
    c.locationMiddle = rng.uniformInt(0, 1);
    c.locationTop = rng.uniformInt(0, 1);
    c.locationInThe = rng.uniformInt(0, 1);
    c.locationOnThe = rng.uniformInt(0, 1);
    c.locationSide = rng.uniformInt(0, 1);
    c.locationLocated = rng.uniformInt(0, 1);
    return c;
}

std::string composeCaption(const CaptionInput& in, const CaptionChoice& choice) { return compose(in, choice, nullptr); }

const std::array<CaptionColumn, kCaptionChoiceColumns>& captionChoiceColumnInfo() {
    static const std::array<CaptionColumn, kCaptionChoiceColumns> info = [] {
        std::array<CaptionColumn, kCaptionChoiceColumns> a{};
        std::copy(std::begin(kColumns), std::end(kColumns), a.begin());
        return a;
    }();
    return info;
}

Caption makeCaption(const CaptionInput& in, const CaptionChoice& c) {
    Caption out;
    unsigned used = 0;
    out.text = compose(in, c, &used);
    if (out.text.size() >= static_cast<size_t>(kCaptionBytes))
        throw std::logic_error("caption: " + std::to_string(out.text.size()) + " characters do not fit in " +
                               std::to_string(kCaptionBytes) + " bytes");
    auto& col = out.columns;
    auto put = [&](int i, int v) { col[static_cast<size_t>(i)] = static_cast<int8_t>(v); };
    put(0, kStructureOffset[c.structure] + c.groups);
    for (int v = 0; v < kCaptionVariants; ++v) put(1 + v, (used >> v) & 1u ? c.variants[static_cast<size_t>(v)] : 0);
    put(12, c.rotationWriter);
    put(13, c.locationWriter);
    const int base = kColLocation0 + 7 * c.locationWriter;
    put(base + 0, c.locationBottom);
    put(base + 1, c.locationMiddle);
    put(base + 2, c.locationTop);
    // base + 3, base + 4 (in_the, on_the): 0, as the public categories have them.
    put(base + 5, c.locationSide);
    put(base + 6, c.locationLocated);
    put(kColExtra + 0, c.shapeName);
    put(kColExtra + 1, c.sizeVal);
    put(kColExtra + 2, c.locationVal);
    put(kColExtra + 3, c.rotationOfImage);
    put(kColExtra + 4, c.rotationRotated);
    put(kColExtra + 5, c.rotationCorner);
    put(kColExtra + 6, c.rotationSide);
    put(kColExtra + 7, c.locationInThe);
    put(kColExtra + 8, c.locationOnThe);
    return out;
}

Caption sampleCaption(const Shape& s, uint64_t seed, int split, int64_t index) {
    const CaptionInput in = captionInput(s);
    return makeCaption(in, drawCaptionChoice(in, seed, split, index));
}

CaptionChoice captionChoiceFromColumns(const int8_t* col) {
    for (int i = 0; i < kCaptionChoiceColumns; ++i)
        if (col[i] < 0 || col[i] >= kColumns[i].categories)
            throw std::invalid_argument(std::string("caption choices: ") + kColumns[i].name + ": expected 0.." +
                                        std::to_string(kColumns[i].categories - 1) + ", found " + std::to_string(col[i]));
    CaptionChoice c;
    c.structure = col[0] >= 12 ? 6 : col[0] / 2;
    c.groups = col[0] - kStructureOffset[c.structure];
    for (int v = 0; v < kCaptionVariants; ++v) c.variants[static_cast<size_t>(v)] = col[1 + v];
    c.rotationWriter = col[12];
    c.locationWriter = col[13];
    const int base = kColLocation0 + 7 * c.locationWriter;
    c.locationBottom = col[base + 0];
    c.locationMiddle = col[base + 1];
    c.locationTop = col[base + 2];
    c.locationSide = col[base + 5];
    c.locationLocated = col[base + 6];
    c.shapeName = col[kColExtra + 0];
    c.sizeVal = col[kColExtra + 1];
    c.locationVal = col[kColExtra + 2];
    c.rotationOfImage = col[kColExtra + 3];
    c.rotationRotated = col[kColExtra + 4];
    c.rotationCorner = col[kColExtra + 5];
    c.rotationSide = col[kColExtra + 6];
    c.locationInThe = col[kColExtra + 7];
    c.locationOnThe = col[kColExtra + 8];
    return c;
}

namespace {
/// Words equal up to ASCII case and trailing punctuation ("bottom," and "Bottom." are one word).
bool sameWord(const std::string& a, const std::string& b) {
    const auto stem = [](const std::string& w) {
        size_t n = w.size();
        while (n > 0 && std::string_view(".,;:!?").find(w[n - 1]) != std::string_view::npos) --n;
        return n;
    };
    const size_t n = stem(a);
    if (n != stem(b)) return false;
    for (size_t i = 0; i < n; ++i) {
        const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}
}  // namespace

std::vector<std::string> captionWords(const std::string& caption) {
    std::vector<std::string> words;
    size_t i = 0;
    const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
    while (i < caption.size()) {
        while (i < caption.size() && space(caption[i])) ++i;
        const size_t start = i;
        while (i < caption.size() && !space(caption[i])) ++i;
        if (i > start) words.push_back(caption.substr(start, i - start));
    }
    return words;
}

std::vector<bool> wordsOutsideCommonSequence(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    // L[i][j]: the longest common subsequence of a[i..] and b[j..]; then one such sequence walked from the front.
    const size_t n = a.size(), m = b.size();
    std::vector<int> L((n + 1) * (m + 1), 0);
    const auto at = [&](size_t i, size_t j) -> int& { return L[i * (m + 1) + j]; };
    for (size_t i = n; i-- > 0;)
        for (size_t j = m; j-- > 0;)
            at(i, j) = sameWord(a[i], b[j]) ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
    std::vector<bool> outside(n, true);
    for (size_t i = 0, j = 0; i < n && j < m;) {
        if (sameWord(a[i], b[j])) {
            outside[i] = false;
            ++i;
            ++j;
        } else if (at(i + 1, j) >= at(i, j + 1)) {
            ++i;
        } else {
            ++j;
        }
    }
    return outside;
}

int commonWordCount(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    int n = 0;
    for (bool outside : wordsOutsideCommonSequence(a, b)) n += outside ? 0 : 1;
    return n;
}

}  // namespace gw::shapes

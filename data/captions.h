// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file captions.h
/// Simple Shapes captions: one English sentence per sample and the grammar choices that produced it,
/// restated from the public dataset's composer (the facts below name their source file and class or
/// function; docs/gw-semantics.md 6.1.1 restates them in prose, docs/data-format.md the file layout).
/// Torch-, HDF5- and Qt-free (library `gwshapes`), like the shapes themselves.
///
/// Sources: ruflab/simple-shapes-dataset 3d0f6c5 (DS below): `simple_shapes_dataset/text/composer.py`
/// (the sentence structures and variants), `text/writers.py` (how each attribute is worded),
/// `text/utils.py` (how choices become categories), `cli/create_dataset.py` (which values are passed);
/// bdvllrs/attributes-to-language 876610c (A2L below): `attributes_to_language/composer.py` (`Composer`),
/// `writers.py` (`OptionsWriter`, `QuantizedWriter`, `BinsWriter`, `Bins2dWriter`), `utils.py`
/// (`COLORS_LARGE_SET`, `get_closest_key`).
///
/// How a caption is made (A2L `Composer.__call__`): a structure is chosen among seven templates; the
/// template's `<...>` groups are permuted; each attribute is worded by one of its writers; the
/// template's `{token}`s are filled with the attribute words and with variants, again and again until
/// no token is left (a variant may itself hold tokens); finally the sentence is stripped, runs of
/// white space become one space and " ." becomes ".". A variant is drawn once per sentence: a token
/// that appears twice gets the same words. Every choice is uniform over its options (Python's
/// `random.randint`, NumPy's `permutation`); here each sample draws them from its own random stream
/// keyed by seed, split and index (apart from, and independent of, the stream that draws its image).
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/shapes.h"

namespace gw::shapes {

/// The values the public CLI hands the composer (DS `cli/create_dataset.py`, reading its float32
/// `{split}_labels.npy`): class; location (x, y) in pixels, y up; size in pixels; rotation in radians;
/// colour as RGB 0..255 (not HLS).
struct CaptionInput {
    int cls = 0;
    double x = 16, y = 16, size = 10, rotation = 0;
    double r = 255, g = 255, b = 255;
};
/// The input of a drawn shape, as its label row stores it: every value rounded to float32 first, as the
/// public CLI reads them back from its labels file (this only changes the rotation).
CaptionInput captionInput(const Shape& s);

/// The composer's variants (DS `composer.py`, `variants`), in its order; `kVariantA` has one option.
enum CaptionVariant : int {
    kVariantStart, kVariantA, kVariantObject, kVariantColored, kVariantColorBefore, kVariantColorAfter,
    kVariantColorBoth, kVariantComma, kVariantLink, kVariantLink2, kVariantLink3, kCaptionVariants
};

/// Every grammar choice of one caption: the public `Choices` (A2L `types.py`) with one field per key.
/// Variants the sentence does not use are still drawn here (they change nothing); the stored columns
/// (captionChoiceColumns) put 0 there, as the public categories do.
struct CaptionChoice {
    int structure = 0;  ///< 0..6, the template (DS `composer.py`, `script_structures`)
    int groups = 0;     ///< the permutation of the template's `<...>` groups, as an index into
                        ///< itertools.permutations order (0..1; 0..5 for template 6, which has three)
    std::array<int, kCaptionVariants> variants{};  ///< option index of each variant
    int shapeName = 0;       ///< shape writer (A2L `OptionsWriter`, key `name`): option of the class
    int rotationWriter = 0;  ///< 0 corner, 1 cardinal, 2 corner 16, 3 cardinal 16 (DS `writers.py`)
    int rotationOfImage = 0, rotationRotated = 0, rotationCorner = 0, rotationSide = 0;  ///< its variants
    int sizeVal = 0;          ///< option of the size bin's words (A2L `BinsWriter`, key `val`)
    int locationWriter = 0;   ///< 0 the 7 × 7 bins writer, 1 the 9-point quantized writer
    int locationVal = 0;      ///< option of the location label (writer 1; 0 for writer 0)
    int locationBottom = 0, locationMiddle = 0, locationTop = 0, locationInThe = 0, locationOnThe = 0,
        locationSide = 0, locationLocated = 0;  ///< the location writers' variants (`at_the` has one option)
};

/// Draws every choice of sample `index` of split `split` for `seed` (its own SplitMix64 stream), each
/// uniform over its options. The number of options of the shape, size and location words depends on
/// the input (the class, the size bin, the location point), hence the input.
CaptionChoice drawCaptionChoice(const CaptionInput& in, uint64_t seed, int split, int64_t index);

/// The sentence for `in` under `choice` (A2L `Composer.__call__` with every choice given), plain ASCII.
/// \throws std::invalid_argument for a class, structure, group order or writer outside its options,
///         std::out_of_range for a word or variant option outside its list.
std::string composeCaption(const CaptionInput& in, const CaptionChoice& choice);

/// Columns of `/{split}/caption_choices`. The first 28 are the public categories, in the order and with
/// the meaning of DS `text/utils.py` `structure_category_from_choice` (what the public text domain
/// trains its grammar heads on): the structure category (template offset + permutation index: 18
/// categories), `variant_NAME` (the option, 0 when the sentence does not use it), `writer_rotation`,
/// `writer_location`, and `writer_location_K_NAME` (the variant when writer K was chosen, else 0). As in
/// the public function, `writer_location_K_in_the` and `writer_location_K_on_the` are always 0 (it
/// looks the variant up by the third underscore-separated word, "in" and "on", which no writer has).
/// The 9 that follow carry what those categories leave out and a sentence needs: the shape's and the
/// size's word options, the location label option, the rotation writer's four variants, and the
/// location's `in_the` and `on_the`. Together they determine the caption (captionChoiceFromColumns).
inline constexpr int kCaptionChoiceColumns = 37;
/// Of those, the public categories.
inline constexpr int kCaptionCategoryColumns = 28;
/// Name and number of categories of each column: "structure" (18), "variant_start" (8), ...
struct CaptionColumn {
    const char* name;
    int categories;
};
const std::array<CaptionColumn, kCaptionChoiceColumns>& captionChoiceColumnInfo();

/// One sample's caption and its choice columns.
struct Caption {
    std::string text;
    std::array<int8_t, kCaptionChoiceColumns> columns{};
};
/// composeCaption, and the columns (0 for what the sentence does not use, as in the public categories).
Caption makeCaption(const CaptionInput& in, const CaptionChoice& choice);
/// The caption of sample `index` of `split` for `seed` (drawCaptionChoice, then makeCaption).
Caption sampleCaption(const Shape& s, uint64_t seed, int split, int64_t index);
/// The choice a row of columns stands for (unused variants come back as 0): composing it gives the
/// stored caption again. \throws std::invalid_argument for a value outside its column's categories.
CaptionChoice captionChoiceFromColumns(const int8_t* columns);

/// Bytes of the fixed-length strings of `/{split}/t`. No sentence the grammar can make is longer than
/// 266 characters (the longest words of every part of the longest template, added up), so 288
/// leaves room; makeCaption throws std::logic_error if a caption ever does not fit.
inline constexpr int kCaptionBytes = 288;

/// COLORS_LARGE_SET (A2L `utils.py`, matplotlib's named colours): 141 names and their RGB, in the
/// public order; the caption names the nearest under the 2-norm (A2L `get_closest_key`), the first of
/// equals (so "aqua", never "cyan"; "fuchsia", never "magenta").
struct NamedColor {
    const char* name;
    std::array<int, 3> rgb;
};
const std::vector<NamedColor>& captionColors();
/// Index in captionColors() of the colour a caption names for RGB (r, g, b).
int nearestCaptionColor(double r, double g, double b);

/// The words of a caption: its runs of characters other than ASCII white space, in order
/// ("A big red egg." -> {"A", "big", "red", "egg."}).
std::vector<std::string> captionWords(const std::string& caption);
/// For each word of `words`, whether it lies outside one longest common subsequence of words with
/// `reference` (words equal up to ASCII case and trailing punctuation, so "bottom," is "bottom."): the words a decoded caption gets wrong, whatever their
/// position. The explorer marks these; the text module's `caption_word_accuracy` counts the others.
/// O(|words| · |reference|) time and memory (captions have at most 64 tokens).
std::vector<bool> wordsOutsideCommonSequence(const std::vector<std::string>& words,
                                             const std::vector<std::string>& reference);
/// The length of a longest common subsequence of words of `a` and `b` (wordsOutsideCommonSequence's
/// count of unmarked words).
int commonWordCount(const std::vector<std::string>& a, const std::vector<std::string>& b);

}  // namespace gw::shapes

// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file public_captions.h
/// The public Simple Shapes dataset's caption choices (`{split}_caption_choices.npy` of `shapesd create`,
/// ruflab/simple-shapes-dataset: one pickled dict per sample, as bdvllrs/attributes-to-language's
/// `Composer.__call__` returns its `choices`) read into GW Studio's CaptionChoice (data/captions.h), so
/// that a caption of the public dataset can be composed again and stored with GW Studio's columns.
/// Torch-free and Qt-free.
#include <string>

#include "data/captions.h"
#include "data/npy.h"

namespace gw::data {

/// The choice a public dict stands for: `structure`; `groups` (a permutation list, turned into its index
/// in itertools.permutations order); `variants` by name (`start`, `a`, `object`, `colored?`,
/// `colorBefore`, `colorAfter`, `colorBoth`, `,?`, `link`, `link2`, `link3`); `writers`: `shape`
/// (`val` or `name`: the option), `rotation` (`_writer`, `of_image`, `rotated`, `corner`, `side`), `size`
/// (`val`), `location` (`_writer`, `val`, `bottom`, `middle`, `top`, `in_the`, `on_the`, `side?`,
/// `located?`). A key the dict lacks is 0, as the public categories count it.
/// \throws NpyError "WHERE: expected ..., found ..." for something that is not such a dict.
shapes::CaptionChoice captionChoiceOfPublic(const PyValue& dict, const std::string& where);

}  // namespace gw::data

// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file glom_model.h
/// Model kind `glom` (model/models/glom_model.cpp; docs/glom.md): one domain of module `glom` trained on
/// its own denoising loss, with no GW. What front ends ask of such a run beyond the Engine: its GLOM
/// module and the islands viewer's numbers.
#include <cstdint>
#include <string>

#include "model/glom/glom.h"
#include "model/run/engine.h"

namespace gw {

/// The GLOM module of a `model: glom` experiment (prepares the engine when it is not).
/// \throws std::logic_error for an experiment of another model kind.
GlomDomain& glomOf(Engine& engine);

/// The islands viewer's numbers for sample `index` of a split (train, val or test) of a `model: glom`
/// experiment (glom.h glomView): states 0 to `iterations` (< 0: 2·L), noise drawn from `seed`.
/// \throws data::DataError for a missing split or an index out of range; std::logic_error for another
/// model kind.
GlomView exploreGlom(Engine& engine, const std::string& split, int64_t index, int64_t iterations = -1, uint64_t seed = 0);

}  // namespace gw

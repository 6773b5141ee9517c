// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file auxiliary_data.h
/// Datasets a domain module reads beside its domain's own (the `text` module's targets: the captions'
/// tokens, the attributes and the grammar choices of the same samples). A module that needs them also
/// derives from AuxiliaryData; the engine (model/run/engine.cpp, `Engine::rawRows`) then opens each
/// named dataset in the domain's file for every split the domain has, checks that it has the domain's
/// sample count, keeps it in memory, and hands the module each batch as one float32 tensor
/// (B, F + F1 + F2 + ...): the domain's own values (B, F) flattened, then each auxiliary dataset's
/// row (B, Fi) flattened, in order, every value converted to float32 (exact for the uint8 bytes of
/// strings, int8 choices and float32 values these datasets hold). `prepare` splits it again.
#include <string>
#include <vector>

namespace gw {

class AuxiliaryData {
public:
    virtual ~AuxiliaryData() = default;
    /// Dataset paths inside the domain's file, `{split}` standing for the split's name (as
    /// `domains.NAME.dataset`). Empty: none (then the batches are the domain's data as stored).
    virtual std::vector<std::string> auxiliaryDatasets() const = 0;
};

}  // namespace gw

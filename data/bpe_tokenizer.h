// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file bpe_tokenizer.h
/// A small byte-level BPE tokenizer: what Hugging Face's `ByteLevelBPETokenizer(vocab, merges)` does to
/// a caption in shimmer-ssd (`shimmer_ssd/dataset/pre_process.py`, TokenizeCaptions: padding to
/// seq_length with `<pad>`), restated from the published GPT-2 BPE description (Radford et al. 2019,
/// section 2.2; the byte-to-unicode table and regular expression of GPT-2's `encoder.py`):
///
/// 1. Pre-tokenisation (HF's ByteLevel pre-tokenizer, add_prefix_space false): the text is cut by
///    GPT-2's pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, the
///    first alternative that matches at each place winning; so "A big shape." is "A", " big",
///    " shape", ".".
/// 2. Each piece's UTF-8 bytes become printable characters through GPT-2's byte-to-unicode table
///    (printable Latin-1 bytes stand for themselves, the others for U+0100 onwards: space is `Ġ`).
/// 3. Merges: of the adjacent symbol pairs of a piece, the pair whose merge has the lowest rank (its
///    line in merges.txt) is merged wherever it occurs, left to right, until no pair has a merge.
/// 4. Each symbol is looked up in vocab.json.
///
/// Choices where the text is not plain ASCII (the captions of Simple Shapes always are): the text must
/// be valid UTF-8; `\p{L}` is read as ASCII letters and every code point above U+007F, `\p{N}` as the
/// ASCII digits, `\s` as the ASCII white space (space, \t, \n, \v, \f, \r). HF's Unicode classes agree
/// for ASCII text and for non-ASCII letters.
///
/// What "cannot be encoded" means: byte-level BPE has a symbol for every byte (the shipped vocabulary
/// holds all 256), so the errors are text that is not valid UTF-8 (naming the byte offset), a symbol
/// missing from a vocabulary that lacks some bytes, and, for encode(), more tokens than seq_length
/// (naming both counts: HF's padding does not truncate, and shimmer-ssd stacks the ids into one
/// tensor, so it fails there too).
///
/// The shipped tokenizer (shimmerSsd()) is shimmer-ssd's `tokenizer/vocab.json` (822 entries: `<pad>`
/// 0, `<unk>` 1, `<mask>` 2, the 256 byte symbols, merged symbols) and `tokenizer/merges.txt` (563
/// merges), compiled into the program from resources/tokenizer/ (MIT licence, see its README).
/// Torch-, HDF5- and Qt-free.
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace gw::data {

/// A file that is not a tokenizer, or text the tokenizer cannot encode; the message names the file (or
/// the text) and what was expected and found.
class TokenizerError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

class BpeTokenizer {
public:
    /// Reads vocab.json (one JSON object {"symbol": id, ...}) and merges.txt (an optional `#version`
    /// line, then one merge "left right" per line, the first line ranking first).
    /// \throws TokenizerError naming the file and the line or offset of a malformed entry, a missing
    ///         `<pad>`, ids that are not 0..N-1 each once, or a merge whose parts or result are not in
    ///         the vocabulary.
    static BpeTokenizer fromFiles(const std::string& vocabPath, const std::string& mergesPath);
    /// The same from the files' contents; `vocabName` and `mergesName` name them in messages.
    static BpeTokenizer fromText(const std::string& vocabJson, const std::string& mergesText,
                                 const std::string& vocabName, const std::string& mergesName);
    /// shimmer-ssd's tokenizer (822 symbols, 563 merges), built once.
    static const BpeTokenizer& shimmerSsd();

    /// GPT-2's pre-tokenisation of `text` (step 1 above), as UTF-8 pieces. \throws TokenizerError for
    /// text that is not valid UTF-8.
    static std::vector<std::string> pretokenize(const std::string& text);
    /// The ids of `text`, unpadded (steps 1 to 4). \throws TokenizerError (invalid UTF-8, a symbol
    /// missing from the vocabulary).
    std::vector<int64_t> tokenize(const std::string& text) const;
    /// tokenize(text) padded with `<pad>` to exactly `seqLength` ids.
    /// \throws TokenizerError "caption 'TEXT' has N tokens, more than seq_length S" (and the errors of
    ///         tokenize).
    std::vector<int64_t> encode(const std::string& text, int64_t seqLength) const;
    /// The text of `ids`: stops at the first `<pad>`, skips `<unk>` and `<mask>`, maps the byte symbols
    /// back to bytes. A byte sequence that is not valid UTF-8 (a model's wrong guess) is returned as it
    /// is. \throws TokenizerError for an id outside [0, vocabSize()).
    std::string decode(const int64_t* ids, size_t count) const;
    std::string decode(const std::vector<int64_t>& ids) const { return decode(ids.data(), ids.size()); }

    int64_t vocabSize() const { return static_cast<int64_t>(symbols_.size()); }
    int64_t padId() const { return padId_; }
    int64_t mergeCount() const { return static_cast<int64_t>(ranks_.size()); }
    /// The symbol of an id as vocab.json spells it (`Ġbig`).
    const std::string& symbol(int64_t id) const { return symbols_.at(static_cast<size_t>(id)); }

private:
    std::vector<std::string> bpe(const std::string& piece) const;  // byte symbols -> merged symbols
    std::unordered_map<std::string, int64_t> ids_;
    std::vector<std::string> symbols_;
    std::map<std::pair<std::string, std::string>, int64_t> ranks_;
    int64_t padId_ = 0, unkId_ = -1, maskId_ = -1;
};

}  // namespace gw::data

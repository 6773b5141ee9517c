// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/bpe_tokenizer.h"

#include <array>
#include <fstream>
#include <limits>
#include <sstream>

namespace gw::data {

// The shipped vocab.json and merges.txt, compiled in by data/CMakeLists.txt (bpe_tokenizer_data.cpp).
extern const unsigned char kShimmerSsdVocab[];
extern const size_t kShimmerSsdVocabSize;
extern const unsigned char kShimmerSsdMerges[];
extern const size_t kShimmerSsdMergesSize;

namespace {

void appendUtf8(std::string& s, uint32_t cp) {
    if (cp < 0x80) {
        s += static_cast<char>(cp);
    } else if (cp < 0x800) {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        s += static_cast<char>(0xE0 | (cp >> 12));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        s += static_cast<char>(0xF0 | (cp >> 18));
        s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

/// Length of the valid UTF-8 sequence starting at s[i] (1 to 4), or 0 when it is not one (overlong
/// forms, surrogates and code points above U+10FFFF included); its code point in `cp`.
size_t utf8At(const std::string& s, size_t i, uint32_t& cp) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    size_t n;
    uint32_t minimum;
    if (c < 0x80) { cp = c; return 1; }
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; minimum = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; minimum = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; minimum = 0x10000; }
    else return 0;
    if (i + n > s.size()) return 0;
    for (size_t k = 1; k < n; ++k) {
        if ((b(i + k) & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b(i + k) & 0x3F);
    }
    if (cp < minimum || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

/// GPT-2's byte-to-unicode table: byte -> code point, and its inverse.
struct ByteTable {
    std::array<uint32_t, 256> toCode{};
    std::array<std::string, 256> symbol;  // the code point in UTF-8
    std::unordered_map<uint32_t, int> toByte;
    ByteTable() {
        uint32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            toCode[static_cast<size_t>(b)] = printable ? static_cast<uint32_t>(b) : next++;
        }
        for (int b = 0; b < 256; ++b) {
            appendUtf8(symbol[static_cast<size_t>(b)], toCode[static_cast<size_t>(b)]);
            toByte[toCode[static_cast<size_t>(b)]] = b;
        }
    }
};
const ByteTable& byteTable() {
    static const ByteTable t;
    return t;
}

enum class Cls { Letter, Digit, Space, Other };
Cls classOf(uint32_t cp) {
    if (cp >= 0x80) return Cls::Letter;
    const char c = static_cast<char>(cp);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return Cls::Letter;
    if (c >= '0' && c <= '9') return Cls::Digit;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r') return Cls::Space;
    return Cls::Other;
}

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw TokenizerError(path + ": cannot open the file");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

/// The one JSON shape vocab.json has: an object of strings to whole numbers.
std::vector<std::pair<std::string, int64_t>> parseVocab(const std::string& j, const std::string& name) {
    size_t i = 0;
    const auto fail = [&](const std::string& what) {
        throw TokenizerError(name + ": expected a JSON object of \"symbol\": id entries; " + what + " at byte " +
                             std::to_string(i));
    };
    const auto skip = [&] {
        while (i < j.size() && (j[i] == ' ' || j[i] == '\t' || j[i] == '\n' || j[i] == '\r')) ++i;
    };
    const auto hex4 = [&]() -> uint32_t {
        if (i + 4 > j.size()) fail("found a short \\u escape");
        uint32_t v = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = j[i++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
            else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
            else fail("found a bad \\u escape");
        }
        return v;
    };
    const auto str = [&]() -> std::string {
        if (i >= j.size() || j[i] != '"') fail("found no string");
        ++i;
        std::string s;
        while (true) {
            if (i >= j.size()) fail("found an unterminated string");
            const char c = j[i++];
            if (c == '"') return s;
            if (c != '\\') { s += c; continue; }
            if (i >= j.size()) fail("found an unterminated escape");
            const char e = j[i++];
            switch (e) {
                case '"': s += '"'; break;
                case '\\': s += '\\'; break;
                case '/': s += '/'; break;
                case 'b': s += '\b'; break;
                case 'f': s += '\f'; break;
                case 'n': s += '\n'; break;
                case 'r': s += '\r'; break;
                case 't': s += '\t'; break;
                case 'u': {
                    uint32_t cp = hex4();
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (i + 2 > j.size() || j[i] != '\\' || j[i + 1] != 'u') fail("found a lone surrogate");
                        i += 2;
                        const uint32_t lo = hex4();
                        if (lo < 0xDC00 || lo > 0xDFFF) fail("found a bad surrogate pair");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    appendUtf8(s, cp);
                    break;
                }
                default: fail(std::string("found the escape \\") + e);
            }
        }
    };
    std::vector<std::pair<std::string, int64_t>> out;
    skip();
    if (i >= j.size() || j[i] != '{') fail("found no '{'");
    ++i;
    skip();
    if (i < j.size() && j[i] == '}') { ++i; }
    else {
        while (true) {
            skip();
            std::string key = str();
            skip();
            if (i >= j.size() || j[i] != ':') fail("found no ':'");
            ++i;
            skip();
            const size_t start = i;
            while (i < j.size() && j[i] >= '0' && j[i] <= '9') ++i;
            if (i == start || i - start > 12) fail("found no whole number id");
            out.emplace_back(std::move(key), std::stoll(j.substr(start, i - start)));
            skip();
            if (i < j.size() && j[i] == ',') { ++i; continue; }
            if (i < j.size() && j[i] == '}') { ++i; break; }
            fail("found neither ',' nor '}'");
        }
    }
    skip();
    if (i != j.size()) fail("found text after the object");
    return out;
}

}  // namespace

BpeTokenizer BpeTokenizer::fromText(const std::string& vocabJson, const std::string& mergesText,
                                    const std::string& vocabName, const std::string& mergesName) {
    BpeTokenizer t;
    const auto entries = parseVocab(vocabJson, vocabName);
    t.symbols_.assign(entries.size(), std::string());
    std::vector<bool> seen(entries.size(), false);
    for (const auto& [sym, id] : entries) {
        if (id < 0 || id >= static_cast<int64_t>(entries.size()) || seen[static_cast<size_t>(id)])
            throw TokenizerError(vocabName + ": expected the ids 0.." + std::to_string(entries.size() - 1) +
                                 " each once, found " + std::to_string(id) + " for '" + sym + "'");
        if (!t.ids_.emplace(sym, id).second) throw TokenizerError(vocabName + ": the symbol '" + sym + "' appears twice");
        seen[static_cast<size_t>(id)] = true;
        t.symbols_[static_cast<size_t>(id)] = sym;
    }
    const auto pad = t.ids_.find("<pad>");
    if (pad == t.ids_.end()) throw TokenizerError(vocabName + ": expected a '<pad>' symbol, found none");
    t.padId_ = pad->second;
    if (auto u = t.ids_.find("<unk>"); u != t.ids_.end()) t.unkId_ = u->second;
    if (auto m = t.ids_.find("<mask>"); m != t.ids_.end()) t.maskId_ = m->second;

    std::istringstream lines(mergesText);
    std::string line;
    int64_t lineNo = 0;
    while (std::getline(lines, line)) {
        ++lineNo;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || (lineNo == 1 && line.rfind("#version", 0) == 0)) continue;
        const size_t sp = line.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() || line.find(' ', sp + 1) != std::string::npos)
            throw TokenizerError(mergesName + ":" + std::to_string(lineNo) + ": expected a merge 'left right', found '" +
                                 line + "'");
        std::string a = line.substr(0, sp), b = line.substr(sp + 1);
        for (const std::string& part : {a, b, a + b})
            if (!t.ids_.count(part))
                throw TokenizerError(mergesName + ":" + std::to_string(lineNo) + ": the symbol '" + part +
                                     "' is not in " + vocabName);
        t.ranks_.emplace(std::make_pair(std::move(a), std::move(b)), static_cast<int64_t>(t.ranks_.size()));
    }
    return t;
}

BpeTokenizer BpeTokenizer::fromFiles(const std::string& vocabPath, const std::string& mergesPath) {
    return fromText(readFile(vocabPath), readFile(mergesPath), vocabPath, mergesPath);
}

const BpeTokenizer& BpeTokenizer::shimmerSsd() {
    static const BpeTokenizer t = fromText(
        std::string(reinterpret_cast<const char*>(kShimmerSsdVocab), kShimmerSsdVocabSize),
        std::string(reinterpret_cast<const char*>(kShimmerSsdMerges), kShimmerSsdMergesSize),
        "resources/tokenizer/vocab.json", "resources/tokenizer/merges.txt");
    return t;
}

std::vector<std::string> BpeTokenizer::pretokenize(const std::string& text) {
    // Code points with their byte offsets (one past the end last).
    std::vector<uint32_t> cps;
    std::vector<size_t> at;
    for (size_t i = 0; i < text.size();) {
        uint32_t cp = 0;
        const size_t n = utf8At(text, i, cp);
        if (n == 0)
            throw TokenizerError("text is not valid UTF-8 (byte " + std::to_string(i) + " of " +
                                 std::to_string(text.size()) + ", value " +
                                 std::to_string(static_cast<unsigned char>(text[i])) + ")");
        cps.push_back(cp);
        at.push_back(i);
        i += n;
    }
    at.push_back(text.size());
    const size_t n = cps.size();
    const auto cls = [&](size_t k) { return classOf(cps[k]); };
    const auto runOf = [&](size_t k, Cls c) {  // end of the run of class c from k
        while (k < n && cls(k) == c) ++k;
        return k;
    };
    const auto runOfOther = [&](size_t k) {
        while (k < n && cls(k) == Cls::Other) ++k;
        return k;
    };
    std::vector<std::string> out;
    size_t i = 0;
    while (i < n) {
        size_t end = i;
        // 's 't 're 've 'm 'll 'd
        if (cps[i] == '\'') {
            const auto is = [&](size_t k, char c) { return k < n && cps[k] == static_cast<uint32_t>(c); };
            if (is(i + 1, 's') || is(i + 1, 't') || is(i + 1, 'm') || is(i + 1, 'd')) end = i + 2;
            else if ((is(i + 1, 'r') && is(i + 2, 'e')) || (is(i + 1, 'v') && is(i + 2, 'e')) ||
                     (is(i + 1, 'l') && is(i + 2, 'l')))
                end = i + 3;
        }
        if (end == i) {
            const size_t s = cps[i] == ' ' ? i + 1 : i;  // the optional leading space
            if (s < n && cls(s) == Cls::Letter) end = runOf(s, Cls::Letter);
            else if (s < n && cls(s) == Cls::Digit) end = runOf(s, Cls::Digit);
            else if (s < n && cls(s) == Cls::Other) end = runOfOther(s);
        }
        if (end == i) {  // white space: \s+(?!\S), else \s+
            const size_t e = runOf(i, Cls::Space);
            end = (e < n && e - i >= 2) ? e - 1 : e;
        }
        out.push_back(text.substr(at[i], at[end] - at[i]));
        i = end;
    }
    return out;
}

std::vector<std::string> BpeTokenizer::bpe(const std::string& piece) const {
    const auto& table = byteTable();
    std::vector<std::string> word;
    for (unsigned char c : piece) word.push_back(table.symbol[c]);
    while (word.size() > 1) {
        int64_t best = std::numeric_limits<int64_t>::max();
        const std::pair<std::string, std::string>* bestPair = nullptr;
        for (size_t k = 0; k + 1 < word.size(); ++k) {
            auto it = ranks_.find({word[k], word[k + 1]});
            if (it != ranks_.end() && it->second < best) {
                best = it->second;
                bestPair = &it->first;
            }
        }
        if (!bestPair) break;
        std::vector<std::string> merged;
        for (size_t k = 0; k < word.size();) {
            if (k + 1 < word.size() && word[k] == bestPair->first && word[k + 1] == bestPair->second) {
                merged.push_back(word[k] + word[k + 1]);
                k += 2;
            } else {
                merged.push_back(word[k]);
                ++k;
            }
        }
        word.swap(merged);
    }
    return word;
}

std::vector<int64_t> BpeTokenizer::tokenize(const std::string& text) const {
    std::vector<int64_t> ids;
    for (const std::string& piece : pretokenize(text)) {
        for (const std::string& sym : bpe(piece)) {
            auto it = ids_.find(sym);
            if (it == ids_.end())
                throw TokenizerError("text '" + text + "': the symbol '" + sym + "' is not in the vocabulary");
            ids.push_back(it->second);
        }
    }
    return ids;
}

std::vector<int64_t> BpeTokenizer::encode(const std::string& text, int64_t seqLength) const {
    std::vector<int64_t> ids = tokenize(text);
    if (static_cast<int64_t>(ids.size()) > seqLength)
        throw TokenizerError("caption '" + text + "' has " + std::to_string(ids.size()) + " tokens, more than seq_length " +
                             std::to_string(seqLength));
    ids.resize(static_cast<size_t>(seqLength), padId_);
    return ids;
}

std::string BpeTokenizer::decode(const int64_t* ids, size_t count) const {
    const auto& table = byteTable();
    std::string out;
    for (size_t k = 0; k < count; ++k) {
        const int64_t id = ids[k];
        if (id < 0 || id >= vocabSize())
            throw TokenizerError("token id " + std::to_string(id) + " is outside the vocabulary's 0.." +
                                 std::to_string(vocabSize() - 1));
        if (id == padId_) break;
        if (id == unkId_ || id == maskId_) continue;
        const std::string& sym = symbols_[static_cast<size_t>(id)];
        for (size_t i = 0; i < sym.size();) {
            uint32_t cp = 0;
            const size_t n = utf8At(sym, i, cp);
            auto b = n ? table.toByte.find(cp) : table.toByte.end();
            if (b == table.toByte.end())
                throw TokenizerError("token " + std::to_string(id) + " ('" + sym + "') is not made of byte symbols");
            out += static_cast<char>(b->second);
            i += n;
        }
    }
    return out;
}

}  // namespace gw::data

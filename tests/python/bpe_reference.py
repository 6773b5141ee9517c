#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Byte-level BPE restated from the published GPT-2 description (Radford et al. 2019, section 2.2, and the
byte-to-unicode table and pre-tokenisation pattern GPT-2 published), for tst_text to compare GW Studio's
data/bpe_tokenizer.cpp with. Independent of it: the pieces come from Python's `re` with the pattern, the
merges from a rank table. Hugging Face's `tokenizers` is not needed.

Usage: bpe_reference.py VOCAB_JSON MERGES_TXT CAPTIONS_TXT
CAPTIONS_TXT holds one caption per line (UTF-8); prints, per caption, its ids separated by spaces.
"""
import json
import re
import sys

# GPT-2's pattern; \p{L} as "a word character that is neither a digit nor '_'", \p{N} as \d, and the
# third class as "neither space nor letter nor digit" (so '_' belongs to it, as in GPT-2).
PATTERN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


def byte_symbols():
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def main():
    vocab = json.load(open(sys.argv[1], encoding="utf-8"))
    ranks = {}
    with open(sys.argv[2], encoding="utf-8") as f:
        for n, line in enumerate(f):
            line = line.rstrip("\n")
            if n == 0 and line.startswith("#version") or not line:
                continue
            a, b = line.split(" ")
            ranks[(a, b)] = len(ranks)
    table = byte_symbols()
    for caption in open(sys.argv[3], encoding="utf-8").read().split("\n"):
        if caption == "":
            continue
        ids = []
        for piece in PATTERN.findall(caption):
            word = [table[b] for b in piece.encode("utf-8")]
            while len(word) > 1:
                pairs = [(ranks.get((word[i], word[i + 1]), None), i) for i in range(len(word) - 1)]
                pairs = [p for p in pairs if p[0] is not None]
                if not pairs:
                    break
                best = min(pairs)[0]
                a, b = [k for k, r in ranks.items() if r == best][0]
                merged, i = [], 0
                while i < len(word):
                    if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                        merged.append(a + b)
                        i += 2
                    else:
                        merged.append(word[i])
                        i += 1
                word = merged
            ids.extend(vocab[s] for s in word)
        print(" ".join(str(i) for i in ids))


main()

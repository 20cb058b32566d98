#!/usr/bin/python3
"""Reference GPT-2 byte-level BPE encoder: the normative algorithm of OpenAI's GPT-2
`encoder.py` (bytes_to_unicode, get_pairs, bpe() taking the min-rank pair each step,
the `regex` pre-tokenizer), extended to raw bytes input:

    text   = data.decode('utf-8', errors='surrogateescape')  # each invalid byte -> one lone surrogate
    pieces = regex.findall(PAT, text)
    piece bytes = piece.encode('utf-8', errors='surrogateescape')
    -> byte_encoder -> bpe() -> encoder.json ids

No special tokens: "<|endoftext|>" in the text is ordinary text.

Usage (run with Debian's /usr/bin/python3, which has python3-regex):
  gpt2_oracle.py --encoder tests/fixtures/gpt2/encoder.json --bpe tests/fixtures/gpt2/vocab.bpe \\
                 --in tests/tokenizer/corpus.hex --out FILE.ids [--decode-check]
      writes one line per corpus case (one hex-encoded case per input line): the ids
      separated by single spaces, an empty line for the empty case.
      --decode-check: also decode every case's ids back through decoder + byte_decoder and
      exit 1 unless every case gives back its original bytes.
  gpt2_oracle.py ... --text 'some text'     prints the ids of one UTF-8 string
  gpt2_oracle.py ... --hex 68656c6c6f       prints the ids of one hex-encoded byte string
  (add --pieces to also print the pre-tokenizer pieces as Python reprs)
"""
import argparse
import json
import os
import sys
import time

import regex as re

PAT_STR = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode character map (encoder.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2 ** 8):
        if b not in bs:
            bs.append(b)
            cs.append(2 ** 8 + n)
            n += 1
    cs = [chr(n) for n in cs]
    return dict(zip(bs, cs))


def get_pairs(word):
    """Set of adjacent symbol pairs in a word (tuple of symbols)."""
    pairs = set()
    prev_char = word[0]
    for char in word[1:]:
        pairs.add((prev_char, char))
        prev_char = char
    return pairs


class Encoder:
    def __init__(self, encoder, bpe_merges):
        self.encoder = encoder
        self.decoder = {v: k for k, v in self.encoder.items()}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        self.bpe_ranks = dict(zip(bpe_merges, range(len(bpe_merges))))
        self.cache = {}
        self.pat = re.compile(PAT_STR)
        # piece (str of byte-encoder chars) -> list of ids
        self.id_cache = {}

    def bpe(self, token):
        """encoder.py's bpe(), unchanged: repeatedly merge the lowest-rank pair."""
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        pairs = get_pairs(word)

        if not pairs:
            return token

        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float('inf')))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break

                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            new_word = tuple(new_word)
            word = new_word
            if len(word) == 1:
                break
            else:
                pairs = get_pairs(word)
        word = ' '.join(word)
        self.cache[token] = word
        return word

    def pieces(self, data):
        """Pre-tokenizer pieces of raw bytes, as str (lone surrogates for invalid bytes)."""
        text = data.decode('utf-8', errors='surrogateescape')
        return re.findall(self.pat, text)

    def encode_bytes(self, data):
        bpe_tokens = []
        for piece in self.pieces(data):
            token = ''.join(self.byte_encoder[b] for b in piece.encode('utf-8', errors='surrogateescape'))
            ids = self.id_cache.get(token)
            if ids is None:
                ids = [self.encoder[bpe_token] for bpe_token in self.bpe(token).split(' ')]
                self.id_cache[token] = ids
            bpe_tokens.extend(ids)
        return bpe_tokens

    def decode_bytes(self, ids):
        text = ''.join(self.decoder[t] for t in ids)
        return bytes(self.byte_decoder[c] for c in text)


def load(encoder_path, bpe_path):
    with open(encoder_path, 'r', encoding='utf-8') as f:
        encoder = json.load(f)
    with open(bpe_path, 'r', encoding='utf-8') as f:
        bpe_data = f.read()
    # encoder.py: first line is "#version: ...", the file ends with a newline.
    bpe_merges = [tuple(merge_str.split()) for merge_str in bpe_data.split('\n')[1:-1]]
    return Encoder(encoder, bpe_merges)


def read_corpus(path):
    cases = []
    with open(path, 'r', encoding='ascii') as f:
        for line in f:
            cases.append(bytes.fromhex(line.rstrip('\n')))
    return cases


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    fixtures = os.path.join(here, '..', 'fixtures', 'gpt2')
    ap = argparse.ArgumentParser(description='GPT-2 encoder.py reference tokenizer (raw bytes in).')
    ap.add_argument('--encoder', default=os.path.join(fixtures, 'encoder.json'))
    ap.add_argument('--bpe', default=os.path.join(fixtures, 'vocab.bpe'))
    ap.add_argument('--in', dest='inp', help='corpus: one hex-encoded case per line')
    ap.add_argument('--out', help='ids output, one line per case')
    ap.add_argument('--decode-check', action='store_true',
                    help='decode the ids of every case back to bytes; exit 1 unless all round-trip')
    ap.add_argument('--text', help='encode one UTF-8 string and print its ids')
    ap.add_argument('--hex', help='encode one hex-encoded byte string and print its ids')
    ap.add_argument('--pieces', action='store_true', help='with --text/--hex: also print the pieces')
    args = ap.parse_args()

    enc = load(args.encoder, args.bpe)
    assert len(enc.encoder) == 50257 and len(enc.bpe_ranks) == 50000, 'unexpected vocabulary size'

    if args.text is not None or args.hex is not None:
        data = args.text.encode('utf-8', errors='surrogateescape') if args.text is not None \
            else bytes.fromhex(args.hex)
        if args.pieces:
            for p in enc.pieces(data):
                print(repr(p))
        print(' '.join(map(str, enc.encode_bytes(data))))
        return 0

    if not args.inp:
        ap.error('--in (or --text/--hex) is required')
    cases = read_corpus(args.inp)
    t0 = time.perf_counter()
    all_ids = [enc.encode_bytes(c) for c in cases]
    t1 = time.perf_counter()
    ntok = sum(len(x) for x in all_ids)
    if args.out:
        with open(args.out, 'w', encoding='ascii', newline='\n') as f:
            for ids in all_ids:
                f.write(' '.join(map(str, ids)) + '\n')
    print('gpt2_oracle: %d cases, %d bytes, %d tokens, encode %.2f s'
          % (len(cases), sum(len(c) for c in cases), ntok, t1 - t0), file=sys.stderr)

    if args.decode_check:
        bad = 0
        for i, (c, ids) in enumerate(zip(cases, all_ids)):
            back = enc.decode_bytes(ids)
            if back != c:
                bad += 1
                if bad <= 5:
                    print('decode-check: case %d (line %d) does not round-trip: %r -> %r'
                          % (i, i + 1, c[:80], back[:80]), file=sys.stderr)
        if bad:
            print('decode-check: FAILED: %d of %d cases' % (bad, len(cases)), file=sys.stderr)
            return 1
        print('decode-check: ok: all %d cases round-trip' % len(cases), file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())

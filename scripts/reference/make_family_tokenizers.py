#!/usr/bin/env python3
"""Makes tests/data/tokenizers/: one small tokenizer of each kind the decoder
families use, built and trained with Hugging Face `tokenizers` in the layouts real
checkpoints ship, and the ids and decoded text the reference gives for a corpus of
more than 200 strings, which tests/unit/test_family_tokenizers.cpp compares
io::tokenizer against.

    .venv-ref/bin/python scripts/reference/make_family_tokenizers.py

The kinds (one folder each, with tokenizer.json, tokenizer_config.json and
cases.json):
  llama2     SentencePiece-style BPE as Llama 2 and TinyLlama's converted files
             have it: normalizer Prepend("▁") + Replace(" ", "▁"), no
             pre-tokenizer, BPE with byte_fallback (<0x00>..<0xFF> in the
             vocabulary after <unk>, <s>, </s>) and fuse_unk, decoder Replace("▁",
             " ") + ByteFallback + Fuse + Strip(" ", 1, 0), post-processor <s> $A
  mistral    the same model with the newer layout (transformers' legacy=False):
             no normalizer, Metaspace pre-tokenizer (prepend_scheme "first", no
             split), the same decoder chain
  metaspace  the same model, Metaspace pre-tokenizer and decoder with
             prepend_scheme "always" and split on "▁"
  llama3     Llama 3's byte-level BPE: Split with its regex (isolated) then
             ByteLevel without regex, ignore_merges, ByteLevel decoder, special
             tokens <|begin_of_text|>, <|end_of_text|>, <|eot_id|>
cases.json: [{"text", "ids", "decoded", "ids_with_specials"}]: encode(text,
add_special_tokens=False), decode(ids, skip_special_tokens=False) and encode(text)
(the post-processor's BOS added) for every text of the corpus.
Training is deterministic here (checked: trained twice); a `tokenizers` of another
version may pick other merges, which is why the files are committed.
"""
import json
import pathlib
import random
import sys

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_tokenizer_data import CASES as GPT2_CASES, TRAINING_TEXT  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "tokenizers"
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SP_SPECIAL = ["<unk>", "<s>", "</s>"]
L3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]

SCRIPTS = [
    "Հայերեն լեզու", "ქართული ენა", "हिन्दी भाषा बहुत सुंदर है।", "বাংলা ভাষা", "தமிழ் மொழி", "ภาษาไทยง่ายนิดเดียว",
    "ພາສາລາວ", "བོད་ཡིག", "አማርኛ ቋንቋ", "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ", "ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ", "ភាសាខ្មែរ", "සිංහල භාෂාව",
    "မြန်မာဘာသာ", "ייִדיש און עברית", "اردو زبان", "فارسی زبان شیرین است", "Ελληνικά με τόνους: άέήίόύώ ΐΰ",
    "Кириллица: ёЁ йЙ щЩ ъЪ", "Українська: їЇ єЄ ґҐ", "中文繁體與简体", "日本語：ひらがな、カタカナ、漢字",
    "한국어: 안녕하세요, 세계!", "ᄀᄁᄂ ᅡᅢᅣ (jamo)", "Tiếng Việt có dấu: ường ượng", "Türkçe: ıİ ğĞ şŞ",
    "Polski: zażółć gęślą jaźń", "Čeština: příliš žluťoučký kůň", "Íslenska: þú ð æ", "Dansk: rødgrød med fløde",
    "Gàidhlig: càil sìth", "Runic ᚠᚢᚦᚨᚱᚲ and Gothic 𐌰𐌱𐌲", "Math: ∀x∈ℝ, ∃y: x²+y²≥0 ∑∫∂√∞",
    "Box ┌─┐│└┘ and arrows ←↑→↓↔", "Currency: € £ ¥ ₹ ₽ ₿ ¢ $", "Braille ⠓⠑⠇⠇⠕",
]
EMOJI = [
    "👋", "👋🏻👋🏼👋🏽👋🏾👋🏿", "👩‍💻 👨‍👩‍👧‍👦 🏳️‍🌈", "🇯🇵🇺🇸🇩🇪", "1️⃣ #️⃣ *️⃣", "❤️ ♥ ☺️ ☺", "🦄🦄🦄 unicorns",
    "text🙂text", "🙂 leading", "trailing 🙂", "🧑🏽‍🚀 in space", "✌🏿 peace", "😀😃😄😁😆😅🤣😂",
]
COMBINING = [
    "e\u0301", "a\u0300\u0301\u0302\u0303", "Z\u0351\u0352\u0353a\u0354\u0355l\u0356\u0357go", "\u0301\u0301\u0301",
    "ñ vs n\u0303", "Å vs A\u030a vs \u212b", "ﬁ ligature ﬂ", "\u1100\u1161\u11a8 (Hangul jamo)",
    "क्षत्रिय", "\u0915\u094d\u200d\u0937", "ṩ ḍ̇ q̣̇", "x\u20d7 vector",
]
DIGITS = [
    "1", "12", "123", "1234", "12345", "123456", "1234567", "12345678901234567890", "3.14159265358979",
    "1,000,000.00", "-42", "+7", "0x1F 0b1010 0o17", "2024-12-04T21:50:00Z", "٠١٢٣٤٥٦٧٨٩", "１２３４５", "۱۲۳",
    "१२३४", "①②③", "Ⅳ Ⅸ Ⅻ", "½ ¾ ⅓", "x1y22z333w4444", "a1 b22 c333", "99 bottles", "007",
]
WHITESPACE = [
    " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n\n", " \n", "\n ", " \t \n \r\n ", "a\n", "\na", "a \n b",
    "word   word", "word\t\tword", "\u00a0nbsp\u00a0", "ideographic\u3000space", "em\u2003space",
    "mixed \u00a0\u3000 \t run", "trailing   ", "   leading", "a\r\nb\r\n\r\nc", "\r", "\r\r\n", " \r\n\t",
    "line\u2028separator", "para\u2029separator", "next\u0085line",
]
CONTRACTIONS = [
    "'S 'T 'RE 'VE 'M 'LL 'D", "'s't're've'm'll'd", "It'S I'Ll We'Re", "can't won't shouldn't've", "'ſ and 'ſt",
    "'", "''", "' s", "rock 'n' roll", "'tis 'twas", "O'Neil's", "don\u2019t (curly)",
]
SPECIAL_INSIDE = [
    "<s>", "</s>", "<unk>", "Hello<s>world", "<s><s></s>", " <s> ", "a </s> b", "<s>\n</s>", "<0x41>", "<0xFF><0x00>",
    "▁", "▁▁word", "x▁y", "<|begin_of_text|>", "hi<|eot_id|>there", "<|end_of_text|><|begin_of_text|>", "<|eot_id", "<s",
]
CODE = [
    "def f(x):\n    return x + 1\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }", "SELECT * FROM t WHERE id = 7;",
    "https://example.com/path?q=1&r=two#frag", "user@example.org", "C:\\Users\\name\\file.txt", "#include <vector>",
    "x = {\"key\": [1, 2.5, null, true]}", "$ ls -la | grep '.py'", "a->b && c || !d", "<html><body>Hi</body></html>",
]


def random_strings(n, seed=7):
    """Mixtures of every class: letters of several scripts, digits, marks, spaces,
    punctuation, emoji, specials."""
    pool = list("abcXYZ éñüß αβγ жщ 你好 ひら 한 ١٢ 123 \t\n\r  .,;:!?'\"-_()[]{}") + [
        "\u0301", "\u3000", "\u00a0", "🙂", "👍🏽", "<s>", "▁", "'s", "'LL", "<|eot_id|>", "\U0001F600", "𐌰",
    ]
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 40))) for _ in range(n)]


def corpus():
    texts = list(GPT2_CASES) + SCRIPTS + EMOJI + COMBINING + DIGITS + WHITESPACE + CONTRACTIONS + SPECIAL_INSIDE + CODE
    texts += ["a" * 200, "ab" * 150, "x" * 1000, "é" * 100, "🙂" * 50, "word " * 60, " " * 300, "\n" * 50]
    texts += random_strings(60)
    seen, out = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def sentencepiece_model(documents=None, vocab_size=700):
    """A SentencePiece-style BPE trained on the lighthouse text: words start with
    '▁' (trained with a Metaspace pre-tokenizer that splits there, so no merge
    crosses a word), an alphabet limited to the frequent characters (the rest go
    through byte fallback), and the 256 byte tokens placed after the three special
    tokens as Llama 2's vocabulary has them."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SP_SPECIAL,
                                  show_progress=False)
    tok.train_from_iterator(documents or TRAINING_TEXT.split("\n\n"), trainer)
    j = json.loads(tok.to_str())
    # The trainer numbers the alphabet in no fixed order: the characters by code
    # point, then each merge's result in merge order.
    vocab = {t: i for i, t in enumerate(SP_SPECIAL)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    merged = [a + b for a, b in j["model"]["merges"]]
    for t in sorted(t for t in j["model"]["vocab"] if t not in vocab and t not in merged) + merged:
        if t not in vocab:
            vocab[t] = len(vocab)
    if set(vocab) != set(j["model"]["vocab"]) | set(f"<0x{b:02X}>" for b in range(256)):
        sys.exit("the renumbered vocabulary lost or gained tokens")
    j["model"]["vocab"] = vocab
    for a in j["added_tokens"]:
        a["id"] = vocab[a["content"]]
    return j


def llama3_model(documents=None, vocab_size=600):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1, special_tokens=L3_SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(documents or TRAINING_TEXT.split("\n\n"), trainer)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", 0)])])
    return json.loads(tok.to_str())


def sp_layout(base, kind):
    tok = Tokenizer.from_str(json.dumps(base))
    chain = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    if kind == "llama2":
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tok.pre_tokenizer = None
        tok.decoder = chain
    elif kind == "mistral":
        tok.normalizer = None
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
        tok.decoder = chain
    else:
        tok.normalizer = None
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return tok


CONFIGS = {
    "llama2": {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
               "unk_token": "<unk>", "legacy": True, "tokenizer_class": "LlamaTokenizer"},
    "mistral": {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
                "unk_token": "<unk>", "legacy": False, "tokenizer_class": "LlamaTokenizer"},
    "metaspace": {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
                  "unk_token": "<unk>", "tokenizer_class": "LlamaTokenizer"},
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "tokenizer_class": "PreTrainedTokenizerFast"},
}


def write(kind, tok, texts):
    d = OUT / kind
    d.mkdir(parents=True, exist_ok=True)
    tok.save(str(d / "tokenizer.json"), pretty=True)
    (d / "tokenizer_config.json").write_text(json.dumps(CONFIGS[kind], indent=2) + "\n")
    cases = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                      "ids_with_specials": tok.encode(text).ids})
    lines = ",\n".join(" " + json.dumps(c, ensure_ascii=False) for c in cases)
    (d / "cases.json").write_text("[\n" + lines + "\n]\n", encoding="utf-8")
    return len(cases)


def main():
    sp, l3 = sentencepiece_model(), llama3_model()
    if json.dumps(sp) != json.dumps(sentencepiece_model()) or json.dumps(l3) != json.dumps(llama3_model()):
        sys.exit("training is not deterministic")
    texts = corpus()
    if len(texts) < 200:
        sys.exit(f"the corpus has {len(texts)} strings, fewer than 200")
    for kind in ("llama2", "mistral", "metaspace"):
        n = write(kind, sp_layout(sp, kind), texts)
    n = write("llama3", Tokenizer.from_str(json.dumps(l3)), texts)
    import tokenizers
    print(f"wrote {OUT}: 4 tokenizers, {n} texts each (tokenizers {tokenizers.__version__})")


if __name__ == "__main__":
    main()

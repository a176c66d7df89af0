#!/usr/bin/env python3
"""Makes tests/data/tokenizer/: a small GPT-2-style byte-level BPE tokenizer and
the ids the reference (Hugging Face `tokenizers`) gives for a set of texts, which
tests/unit/test_tokenizer.cpp compares io::tokenizer against.

    .venv-ref/bin/python scripts/reference/make_tokenizer_data.py
    (any Python with `pip install tokenizers` does; with `transformers` too, the
    two-file form is also checked against transformers' GPT2Tokenizer)

Writes, into tests/data/tokenizer/:
  tokenizer.json     the tokenizer (model BPE, ByteLevel pre-tokenizer with
                     add_prefix_space=False, ByteLevel decoder, <|endoftext|> as
                     the one special token, vocabulary of 500)
  vocab.json, merges.txt   the same model in GPT-2's two-file form
  cases.json         [{"text", "ids", "decoded"}]: encode(text,
                     add_special_tokens=False) and decode(ids,
                     skip_special_tokens=False) for every text in CASES, and
                     "pieces": the ByteLevel pre-tokenizer's split of the text
                     (GPT-2's pattern), as UTF-8 text
  cases_prefix_space.json  the same, with the pre-tokenizer's add_prefix_space=True
  tokenizer_added.json, cases_added.json   the tokenizer with more added tokens
                     (lstrip, rstrip, single_word, normalized, overlapping), and
                     the ids for ADDED_CASES
The training text and the cases are written here; training is deterministic (the
script trains twice and checks the two tokenizers are identical), so running it
again rewrites the same files.
"""
import json
import pathlib
import sys

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "tokenizer"
VOCAB_SIZE = 500
EOS = "<|endoftext|>"

TRAINING_TEXT = """\
The lighthouse keeper's log, kept in a blue notebook, says the storm arrived at 4:15 in
the morning. It didn't last long: by 6:30 the wind had dropped, and by 7 o'clock the
fishing boats were out again. "We've seen worse," she wrote. "I'm not worried, and
you're not to worry either." She'd kept the light for 23 years, since 2001, and she'll
keep it for a few more.

Numbers matter in a lighthouse. The lamp turns 3 times a minute; the beam reaches 18
nautical miles (about 33.3 km); the tower has 127 steps, and the keeper climbs them 4
or 5 times a day. In 1998 the old lamp, which burned 2,000 litres of oil a year, was
replaced by an electric one; it uses 1.5 kW, 60% less than before.

Visitors ask the same questions. Isn't it lonely? Don't you get bored? What do you do
when the fog comes in?! The answers are: no, no, and you sound the horn -- every 30
seconds, for as long as it takes. THE HORN IS LOUD. IT'S MEANT TO BE.

Some visitors come from far away. A café owner from Zürich brought crème brûlée; a
naïve student from São Paulo asked about the façade; a señor from Málaga told stories
of the Ångström family. Greek sailors said: Καλημέρα! Ο φάρος είναι όμορφος, και η
θάλασσα είναι ήρεμη σήμερα. A Russian poet wrote: Привет, маяк! Море сегодня спокойное.
A family from Tokyo left a note: 灯台はとても美しいです。ありがとう！ And a child drew a
lighthouse with emoji: 🌊🌊🏠💡🌊 and wrote 🙂 next to it.

def beam_angle(t):
    # The lamp turns three times a minute.
    return (t * 18) % 360

for t in range(0, 60, 5):
    print(t, beam_angle(t))

Tabs\tand\tspaces    are    kept;   lines end with newlines,
and  paragraphs  with  blank  lines.

The log ends here: "All's well. The light's on. We'll see tomorrow."
"""

CASES = [
    "Hello, world! This is a simple sentence.",
    "The lighthouse keeper's log says the storm arrived at 4:15 in the morning.",
    "I'm sure you're right: they've said it's what we'll do, and he'd agree. Don't!",
    "IT'S WHAT YOU'RE DOING, ISN'T IT? I'M SURE THEY'VE GONE. WE'LL SEE. HE'D KNOW.",
    "'s 't 're 've 'm 'll 'd 'S 'T 'x ''s 'sound",
    "In 2023, 1,234,567 people paid $3.50 for 42 items (about 0.5%); 007 and 1e10.",
    "   three leading spaces",
    "trailing spaces   ",
    "trailing newline\n",
    "tabs\tand\t\tmore\ttabs\t",
    "line one\nline two\n\nparagraph three\n\n\n",
    " \n ",
    "\n\n",
    "",
    " ",
    "x",
    "a  b   c    d     e",
    "windows\r\nline\r\nends\r\n",
    "Wait... what?!?! (really) [yes] {no} <maybe> --- *** @#$%^&*()_+=~`|\\/",
    "def f(x):\n    return x**2 + 1  # square, plus one\n\n\tpass\n",
    "Café crème brûlée, naïve façade, Ångström, señor, São Paulo, Zürich, ÆØÅ æøå ß",
    "Καλημέρα κόσμε! Η γλώσσα είναι ελληνική. ΑΒΓΔ αβγδ",
    "Привет, мир! Море сегодня спокойное.",
    "你好，世界！日本語のテキストです。灯台はとても美しいです。한국어 텍스트",
    "I love 🍕 and 🎉🎉! 👍🏽 👨\u200d👩\u200d👧 🇫🇷",
    "combining: e\u0301 a\u0300 n\u0303o, cafe\u0301\u0301, \u0301 alone",
    "مرحبا بالعالم שלום עולם",
    "digits in other scripts: ٣٤٥ ৩৪৫ ½ ² Ⅻ ⅻ 〇",
    "unicode spaces: a\u00a0b\u3000c\u2003d\u0085e\u2028f\u2029g\u202fh",
    "not spaces: a\u001cb\u001fc\u200bd\ufeffe\u180ef",
    "vertical\u000btab and form\u000cfeed",
    "controls \u0000\u0001\u007f\u0080\u009f end",
    EOS,
    "Hello" + EOS + "World",
    "first document." + EOS + " second document" + EOS,
    EOS + EOS + "\n" + EOS,
    "almost <|endoftext| and <|endoftext|>> and <|ENDOFTEXT|>",
    "abc123def 456ghi's x1y2z3 12345678901234567890",
    "a" * 300,
    " " * 100 + "end",
    "end" + " " * 100,
    "lighthouse lighthouse lighthouse keeper keeper's keepers",
    "The log ends here: \"All's well. The light's on. We'll see tomorrow.\"",
    "\U0001F600\U0001F601 \U00010348 \U0002A6A5 \U000E0001 \uFFFD",
]

# Added tokens with every flag, and texts that exercise them.
ADDED_SPECIAL = [
    AddedToken("<mask>", lstrip=True, special=True),
    AddedToken("[R]", rstrip=True, special=True),
    AddedToken("<ma", special=True),
    AddedToken("[LR]", lstrip=True, rstrip=True, special=True),
]
ADDED_PLAIN = [
    AddedToken("sw", single_word=True),
    AddedToken("light house", normalized=True),
    AddedToken("ZZ", normalized=False),
    AddedToken("mask>", normalized=True),
]
ADDED_CASES = [
    "I saw a <mask> cat",
    "  <mask>  x <mask>",
    "[R]   y [R]\n\nz [R]",
    "a  [LR]  b[LR][LR]  c",
    "<ma<mask><mask>mask><ma sk>",
    "sw swsw sw_ _sw sw. (sw) xsw swx sw1 1sw é sw éswé sw\u0301 ~sw~",
    "light house lighthouse light  house light housework",
    "ZZZ ZZ zz <|endoftext|>ZZ<mask>",
    "\xff<mask>\u3000<mask>\u3000",
    "",
]


def train():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=1,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # One "document" per paragraph, as a corpus would be.
    tok.train_from_iterator(TRAINING_TEXT.split("\n\n"), trainer)
    return tok


def byte_level_text(piece):
    """A byte-level piece ("Ġthe") back to the text it spells (" the")."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_of = {chr(c): b for b, c in zip(bs, cs)}
    return bytes(byte_of[c] for c in piece).decode("utf-8")


def cases_for(tok, texts=CASES, round_trip=True):
    out = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        decoded = tok.decode(ids, skip_special_tokens=False)
        if round_trip and decoded != text:
            sys.exit(f"the reference does not round-trip {text!r}: {decoded!r}")
        case = {"text": text, "ids": ids, "decoded": decoded}
        if round_trip and texts is CASES:
            case["pieces"] = [byte_level_text(p) for p, _ in tok.pre_tokenizer.pre_tokenize_str(text)]
            if "".join(case["pieces"]) != text:
                sys.exit(f"the pre-tokenizer's pieces do not spell {text!r}")
        out.append(case)
    return out


def write_cases(path, cases):
    # One case a line, so a diff shows which texts changed.
    lines = ",\n".join(" " + json.dumps(c, ensure_ascii=False) for c in cases)
    path.write_text("[\n" + lines + "\n]\n", encoding="utf-8")


def check_gpt2_tokenizer(cases):
    """With transformers installed: its GPT2Tokenizer on vocab.json + merges.txt
    gives the same ids (the two-file form treats <|endoftext|> as special)."""
    try:
        from transformers import GPT2Tokenizer
    except ImportError:
        print("transformers not installed: the two-file form is not cross-checked")
        return
    slow = GPT2Tokenizer(str(OUT / "vocab.json"), str(OUT / "merges.txt"))
    for c in cases:
        ids = slow.encode(c["text"], add_special_tokens=False)
        if ids != c["ids"]:
            sys.exit(f"GPT2Tokenizer disagrees on {c['text']!r}: {ids} vs {c['ids']}")
    print(f"GPT2Tokenizer agrees on all {len(cases)} cases")


def main():
    tok = train()
    if tok.to_str() != train().to_str():
        sys.exit("training is not deterministic")
    if tok.get_vocab_size() != VOCAB_SIZE:
        print(f"note: the vocabulary has {tok.get_vocab_size()} tokens, not {VOCAB_SIZE}")
    OUT.mkdir(parents=True, exist_ok=True)
    tok.save(str(OUT / "tokenizer.json"), pretty=True)
    tok.model.save(str(OUT))  # vocab.json, merges.txt
    cases = cases_for(tok)
    write_cases(OUT / "cases.json", cases)

    prefixed = Tokenizer.from_str(tok.to_str())
    prefixed.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    write_cases(OUT / "cases_prefix_space.json", cases_for(prefixed, round_trip=False))

    added = Tokenizer.from_str(tok.to_str())
    added.add_special_tokens(ADDED_SPECIAL)
    added.add_tokens(ADDED_PLAIN)
    added.save(str(OUT / "tokenizer_added.json"), pretty=True)
    write_cases(OUT / "cases_added.json", cases_for(added, ADDED_CASES, round_trip=False))

    check_gpt2_tokenizer(cases)
    import tokenizers
    print(f"wrote {OUT} ({tok.get_vocab_size()} tokens, {len(cases)} cases, tokenizers {tokenizers.__version__})")


if __name__ == "__main__":
    main()

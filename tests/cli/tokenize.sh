#!/usr/bin/env bash
# `scribe tokenize` on the tokenizer of every decoder family's kind
# (tests/data/tokenizers: Llama 2's, Mistral's, Metaspace's and Llama 3's layouts,
# made by scripts/reference/make_family_tokenizers.py with Hugging Face
# `tokenizers`): ids and decoded text equal the reference's; and `scribe generate`
# from text to text on tiny LLaMA checkpoints with the Llama 2 and Llama 3
# tokenizers (tests/data/llama2-sp-tiny, llama3-bpe-tiny): the BOS added, the
# greedy continuation's text equal to transformers'.
#   tokenize.sh SCRIBE DATA_DIR WORK_DIR
set -euo pipefail
scribe=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/common.sh"

python3 - "$scribe" "$data/tokenizers" <<'PY' || fail "scribe tokenize differs from the reference (above)"
import json, subprocess, sys
scribe, root = sys.argv[1], sys.argv[2]
checked = 0
for kind in ("llama2", "mistral", "metaspace", "llama3"):
    cases = json.load(open(f"{root}/{kind}/cases.json"))
    for c in cases[::9]:  # every ninth text: all the corpus's kinds of text, a second or two
        if "\0" in c["text"]:
            continue  # a command-line argument cannot hold NUL
        out = subprocess.run([scribe, "tokenize", f"{root}/{kind}", "--text", c["text"], "--json"], capture_output=True, check=True)
        ids = json.loads(out.stdout)["ids"]
        assert ids == c["ids"], (kind, c["text"], ids, c["ids"])
        if ids and "\ufffd" not in c["decoded"]:
            out = subprocess.run([scribe, "tokenize", f"{root}/{kind}", "--decode", ",".join(map(str, ids))], capture_output=True, check=True)
            assert out.stdout.decode("utf-8")[:-1] == c["decoded"], (kind, c["text"], out.stdout, c["decoded"])
        checked += 1
print(f"ok: scribe tokenize gives the reference's ids (and --decode its text) for {checked} texts of the four kinds")
PY

# --tokens: each id with its token's spelling.
got=$("$scribe" tokenize "$data/tokenizers/llama2" --text "Hi 🦄" --tokens)
contains "$got" -F "<0xF0>" || fail "--tokens shows no byte-fallback token: $got"
expect_error "scribe tokenize needs one of --text, --file or --decode" tokenize "$data/tokenizers/llama2"
expect_error "--decode: \"x\" is not an id" tokenize "$data/tokenizers/llama2" --decode "1,x"
expect_error "--decode: id 592 is outside the tokenizer's 592 tokens" tokenize "$data/tokenizers/llama2" --decode 592
echo "ok: --tokens spells the ids; missing and malformed input is refused"

python3 - "$scribe" "$data" <<'PY' || fail "generate with the Llama 2 / Llama 3 tokenizers differs from transformers (above)"
import json, subprocess, sys
scribe, data = sys.argv[1], sys.argv[2]
shown = 0
for model in ("llama2-sp-tiny", "llama3-bpe-tiny"):
    for p in json.load(open(f"{data}/{model}/golden.json"))["prompts"]:
        if "\ufffd" in p["continuation"]:
            continue  # a cut character: the reference's text has U+FFFD where generate prints the bytes
        out = subprocess.run([scribe, "generate", f"{data}/{model}", "--prompt", p["text"], "--greedy", "--max-new-tokens", "12",
                              "--threads", "1", "--quiet"], capture_output=True, check=True).stdout.decode("utf-8")
        assert out == p["text"] + p["continuation"] + "\n", (model, out, p["text"] + p["continuation"])
        shown += 1
assert shown >= 1, "no golden continuation is whole UTF-8"
print(f"ok: scribe generate with the Llama 2 and Llama 3 tokenizers prints transformers' greedy text ({shown} prompts)")
PY

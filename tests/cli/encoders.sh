#!/usr/bin/env bash
# `scribe classify`, `scribe embed` and `export-hlo` on the tiny encoder
# checkpoints (tests/data/*-tiny-cls, bert-tiny-embed; made by
# scripts/reference/make_encoder_golden.py): from text to labels, each input's
# label the argmax of Hugging Face's logits for it (golden.json) and its
# probabilities their softmax; the same at TP 2 as threads and as MPI processes;
# embeddings equal to golden.json's mean-pooled vectors; and clear errors.
#   encoders.sh SCRIBE DATA_DIR WORK_DIR
set -euo pipefail
scribe=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/common.sh"

# The golden inputs as a batch file (text, tab, pair), and Hugging Face's softmax of each.
batch_file() { python3 -c "
import json, sys
for r in json.load(open('$data/$1/golden.json'))['inputs']:
    print(r['text'] + ('\t' + r['pair'] if r['pair'] else ''))" > "$work/$1.tsv"; }
check_scores() {  # check_scores MODEL JSONL: labels and probabilities against golden.json
  python3 - "$data/$1" "$2" <<'PY'
import json, math, sys
folder, out = sys.argv[1], sys.argv[2]
rows = json.load(open(folder + "/golden.json"))["inputs"]
labels = json.load(open(folder + "/config.json"))["id2label"]
got = [json.loads(l) for l in open(out)]
assert len(got) == len(rows), (len(got), len(rows))
for g, r in zip(got, rows):
    logits = [float(x) for x in r["logits"]]
    top = max(logits)
    z = sum(math.exp(x - top) for x in logits)
    want = {labels[str(i)]: math.exp(x - top) / z for i, x in enumerate(logits)}
    assert g["text"] == r["text"] and g["pair"] == r["pair"], (g["text"], r["text"])
    assert g["label"] == labels[str(logits.index(top))], (g["label"], logits)
    for k, p in want.items():
        assert abs(g["scores"][k] - p) < 1e-4, (k, g["scores"][k], p)
PY
}

for model in bert-tiny-cls roberta-tiny-cls distilbert-tiny-cls; do
  batch_file $model
  "$scribe" classify "$data/$model" --batch-file "$work/$model.tsv" --truncate --json --threads 1 > "$work/$model.jsonl" 2>"$work/err" \
    || fail "$model classify: $(cat "$work/err")"
  check_scores $model "$work/$model.jsonl" || fail "$model: labels or probabilities differ from Hugging Face's"
  grep -q "tokens/s" "$work/err" || fail "$model: no tokens/s line: $(cat "$work/err")"
  "$scribe" classify "$data/$model" --batch-file "$work/$model.tsv" --truncate --json --tp 2 --threads 2 > "$work/$model-tp2.jsonl" 2>/dev/null
  check_scores $model "$work/$model-tp2.jsonl" || fail "$model at --tp 2: labels or probabilities differ"
done
echo "ok: classify's labels and probabilities equal Hugging Face's for BERT, RoBERTa and DistilBERT, at TP 1 and 2 (threads)"

if command -v mpirun >/dev/null && "$scribe" classify --help >/dev/null; then
  mpirun -np 2 "$scribe" classify "$data/bert-tiny-cls" --batch-file "$work/bert-tiny-cls.tsv" --truncate --json --tp 2 --threads 1 \
    > "$work/mpi.jsonl" 2>"$work/err" || fail "mpirun classify: $(cat "$work/err")"
  check_scores bert-tiny-cls "$work/mpi.jsonl" || fail "mpirun -np 2 classify --tp 2 differs (or a rank other than 0 printed)"
  mpirun -np 4 "$scribe" classify "$data/roberta-tiny-cls" --batch-file "$work/roberta-tiny-cls.tsv" --truncate --json --threads 1 \
    > "$work/mpi4.jsonl" 2>"$work/err" || fail "mpirun -np 4 classify: $(cat "$work/err")"
  check_scores roberta-tiny-cls "$work/mpi4.jsonl" || fail "mpirun -np 4 classify (TP 4 from mpirun's count) differs"
  # A batch from standard input, which only rank 0 has: every rank must get it.
  mpirun -np 2 "$scribe" classify "$data/bert-tiny-cls" --batch-file - --truncate --json --threads 1 \
    < "$work/bert-tiny-cls.tsv" > "$work/mpi-stdin.jsonl" 2>"$work/err" || fail "mpirun classify --batch-file -: $(cat "$work/err")"
  check_scores bert-tiny-cls "$work/mpi-stdin.jsonl" || fail "mpirun -np 2 classify --batch-file - differs"
  echo "ok: mpirun -np 2 and -np 4 classify give the same labels, printed once, a batch from standard input too"
fi

# The human form: each label with its probability, the most likely first; --top.
out=$("$scribe" classify "$data/bert-tiny-cls" --text "The miller opened the door." --pair "The door was opened." --top 2 2>/dev/null)
[ "$(grep -c '^    ' <<< "$out")" = 2 ] && contains "$out" "^\[0\] The miller opened the door.  ||  The door was opened." \
  || fail "classify --top 2 printed: $out"

# embed: the mean-pooled vectors (1_Pooling/config.json says mean) equal Hugging Face's.
batch_file bert-tiny-embed
"$scribe" embed "$data/bert-tiny-embed" --batch-file "$work/bert-tiny-embed.tsv" --truncate --out "$work/emb.json" 2>/dev/null
"$scribe" embed "$data/bert-tiny-embed" --batch-file "$work/bert-tiny-embed.tsv" --truncate --pooling cls --normalize --out "$work/cls.json" 2>/dev/null
python3 - "$data/bert-tiny-embed/golden.json" "$work/emb.json" "$work/cls.json" <<'PY' || fail "embed vectors differ from Hugging Face's"
import json, math, sys
rows = json.load(open(sys.argv[1]))["inputs"]
mean, cls = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
assert mean["pooling"] == "mean" and mean["dimension"] == 32 and cls["pooling"] == "cls" and cls["normalized"]
for r, m, c in zip(rows, mean["embeddings"], cls["embeddings"]):
    assert max(abs(a - float(b)) for a, b in zip(m, r["mean"])) < 1e-4
    want = [float(b) for b in r["cls"]]
    n = math.sqrt(sum(x * x for x in want))
    assert max(abs(a - b / n) for a, b in zip(c, want)) < 1e-4
PY
echo "ok: embed's mean-pooled and normalized [CLS] vectors equal Hugging Face's"

# export-hlo of an encoder: one module per bucket, the splits in the manifest.
"$scribe" export-hlo "$data/roberta-tiny-cls" --out "$work/hlo" --tp 2 --buckets 16,48 > /dev/null
python3 - "$work/hlo/manifest.json" <<'PY' || fail "encoder manifest"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["kind"] == "encoder" and m["tp"] == 2 and [x["bucket"] for x in m["modules"]] == [16, 48]
p = {x["name"]: x for x in m["modules"][0]["parameters"]}
assert p["encoder.layer.0.attention.self.query.weight"]["split"] == "heads"
assert p["encoder.layer.0.intermediate.dense.weight"]["split"] == "ffn"
assert "split" not in p["embeddings.word_embeddings.weight"]
assert [o["name"] for o in m["modules"][0]["outputs"]] == ["mean", "first", "logits"]
PY
echo "ok: export-hlo writes one module per bucket for an encoder, with its splits"

# Errors that name the thing.
long=$(python3 -c 'print("the mill " * 40)')
expect_error "is 82 tokens but the model reads at most 48; give --truncate" classify "$data/distilbert-tiny-cls" --text "$long"
expect_error "the model has no classifier (architectures BertModel)" classify "$data/bert-tiny-embed" --text hi
expect_error "is an encoder, not a decoder" generate "$data/bert-tiny-cls"
expect_error "is not an encoder Scribe runs" classify "$data/gpt2-tiny-a" --text hi
expect_error "2 --text but 1 --pair" classify "$data/bert-tiny-cls" --text a --text b --pair c
expect_error "give a text: --text TEXT" embed "$data/bert-tiny-embed"
expect_error "--pooling takes mean or cls" embed "$data/bert-tiny-embed" --text a --pooling max
expect_error "tp degree 3 does not divide num_attention_heads (4)" classify "$data/bert-tiny-cls" --text a --tp 3
expect_error "--train is for decoders" export-hlo "$data/bert-tiny-cls" --train --out "$work/x"
cp -r "$data/bert-tiny-cls" "$work/relative"
python3 - "$work/relative/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["position_embedding_type"] = "relative_key"; json.dump(c, open(sys.argv[1], "w"))
PY
expect_error "position_embedding_type \"relative_key\" is not supported" classify "$work/relative" --text a
echo "ok: encoder errors name the input, the flag or the field"

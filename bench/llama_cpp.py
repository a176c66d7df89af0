#!/usr/bin/env python3
"""llama.cpp as a live peer of the benchmarks: built here, fed the same checkpoints.

    llama_cpp.py build   --dir DIR [--version V]
        Fetches the source distribution of llama-cpp-python from PyPI (it vendors
        llama.cpp; the archive's SHA-256 is checked against PyPI's), builds
        `llama-bench` with the machine's own instruction set (GGML_NATIVE) into
        DIR (and `llama-batched-bench`, `llama-quantize`), and prints llama-bench's
        path. Cached: a second call reuses DIR.
    llama_cpp.py convert --dir DIR MODEL_DIR --dtype f32|f16|bf16|q8_0|q4_0 --out FILE
        Converts a Hugging Face folder to GGUF with the converter llama.cpp ships
        (convert_hf_to_gguf.py: its tensor names, transposes and the Q/K rotary
        permutation of LLaMA). The benchmarks' checkpoints have random weights and
        no tokenizer, so the vocabulary written is a synthetic one of the model's
        size (byte tokens and fillers): llama-bench feeds token ids, never text.
        q4_0 (which the converter does not write) is the f32 GGUF quantized by
        `llama-quantize --pure`: every matrix Q4_0, the token embedding and the
        output included, as Scribe's q4 holds them.
    llama_cpp.py bench   --dir DIR --gguf FILE --threads T [--prompt 128]
                         [--gen 32] [--depth 128] [--reps 3] [--batches 4,16] --json FILE
        Runs llama-bench: prefill of the prompt (pp), decode from an empty cache
        (tg) and decode after the prompt (tg at depth), tokens/s, as JSON; with
        --batches, also llama-batched-bench: B sequences, each its own prompt,
        decoded together (-npl B), their decode tokens/s summed (S_TG), the
        median of --reps runs. Where the native build's AMX kernels stop with
        SIGILL (llama.cpp's own bug on some Xeons), the same source is built
        again without AMX (DIR/build-no-amx), measured instead, and the JSON's
        "note" says so.

Used by decoder_bench (never by the tests). Needs cmake, a C++ compiler, and a
Python with torch and numpy (.venv-ref) for the converter.
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path

DEFAULT_VERSION = "0.3.36"


def fail(message):
    print(f"llama_cpp.py: {message}", file=sys.stderr)
    sys.exit(1)


def source_dir(root: Path) -> Path:
    found = sorted(root.glob("llama_cpp_python-*/vendor/llama.cpp"))
    return found[-1] if found else None


def fetch(root: Path, version: str) -> Path:
    src = source_dir(root)
    if src:
        return src
    root.mkdir(parents=True, exist_ok=True)
    url = "https://pypi.org/pypi/llama-cpp-python/json"
    try:
        meta = json.load(urllib.request.urlopen(url, timeout=60))
    except Exception as e:
        fail(f"cannot read {url}: {e} (the peer is built from PyPI's llama-cpp-python source distribution)")
    files = meta.get("releases", {}).get(version) or (meta["urls"] if meta["info"]["version"] == version else [])
    sdists = [u for u in files if u["packagetype"] == "sdist"]
    if not sdists:
        fail(f"llama-cpp-python {version} on PyPI has no source distribution (latest: {meta['info']['version']}; --version picks one)")
    sdist = sdists[0]
    sdist_url = urllib.parse.urljoin(url, sdist["url"])  # a mirror may answer with relative links
    archive = root / sdist["filename"]
    print(f"llama_cpp.py: fetching {sdist['filename']} ({sdist['size'] / 1e6:.0f} MB)", file=sys.stderr)
    with urllib.request.urlopen(sdist_url, timeout=600) as r, open(archive, "wb") as f:
        shutil.copyfileobj(r, f)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != sdist["digests"]["sha256"]:
        archive.unlink()
        fail(f"{sdist['filename']}: SHA-256 {digest} is not PyPI's {sdist['digests']['sha256']}")
    with tarfile.open(archive) as t:
        if hasattr(tarfile, "data_filter"):
            t.extractall(root, filter="data")
        else:  # Pythons before the extraction filters: refuse paths that leave root
            for m in t.getmembers():
                if m.name.startswith("/") or ".." in Path(m.name).parts:
                    fail(f"{sdist['filename']}: member {m.name!r} leaves the folder")
            t.extractall(root)
    archive.unlink()
    src = source_dir(root)
    if not src:
        fail(f"{sdist['filename']} holds no vendor/llama.cpp")
    return src


TARGETS = ["llama-bench", "llama-batched-bench", "llama-quantize"]


def build(root: Path, version: str, folder: str = "build", extra_flags=()) -> Path:
    binary = root / folder / "bin" / "llama-bench"
    if all((root / folder / "bin" / t).exists() for t in TARGETS):
        return binary
    src = fetch(root, version)
    if not shutil.which("cmake"):
        fail("cmake is missing (apt-get install cmake)")
    flags = ["-DGGML_NATIVE=ON", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
             "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=OFF", "-DCMAKE_BUILD_TYPE=Release", *extra_flags]
    print(f"llama_cpp.py: building llama-bench (GGML_NATIVE{' '.join([''] + list(extra_flags))}) into {root / folder} ...",
          file=sys.stderr)
    subprocess.run(["cmake", "-S", str(src), "-B", str(root / folder), *flags], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(root / folder), "--target", *TARGETS, "-j", str(os.cpu_count() or 1)],
                   check=True, stdout=subprocess.DEVNULL)
    for t in TARGETS:
        if not (root / folder / "bin" / t).exists():
            fail(f"the build made no {root / folder / 'bin' / t}")
    return binary


# llama.cpp 0.3.36's AMX kernels (its Q4_0/Q8_0 weights on Xeons with AMX-INT8)
# stop with SIGILL on some machines: the tile config it loads is built on the
# stack and optimised away, so the first tile load faults (llama.cpp PR 26954,
# open). There the peer is the same source built without AMX (-mno-amx-*), its
# other repacked x86 layouts kept, and the report says so.
NO_AMX_FOLDER = "build-no-amx"
NO_AMX_FLAGS = ["-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16",
                "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"]


def convert(root: Path, model: Path, dtype: str, out: Path):
    if dtype == "q4_0":
        tool = root / "build" / "bin" / "llama-quantize"
        if not tool.exists():
            fail(f"no {tool}: run `llama_cpp.py build --dir {root}` again")
        f32 = out.with_name(out.name + ".f32.gguf")
        convert(root, model, "f32", f32)
        done = subprocess.run([str(tool), "--pure", str(f32), str(out), "Q4_0"], capture_output=True, text=True)
        f32.unlink()
        if done.returncode != 0:
            fail(f"llama-quantize failed:\n{done.stderr[-2000:]}")
        return
    src = source_dir(root)
    if not src:
        fail(f"no llama.cpp source under {root}: run `llama_cpp.py build --dir {root}` first")
    sys.path.insert(0, str(src / "gguf-py"))
    sys.path.insert(0, str(src))
    import gguf
    import convert_hf_to_gguf as converter

    def synthetic_vocab(self):
        # SentencePiece-style: <unk>, <s>, </s>, the 256 byte tokens, then fillers.
        n = self.hparams["vocab_size"]
        if n < 259:
            fail(f"{model}: vocab_size {n} is below the 259 tokens of the synthetic vocabulary")
        tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + [f"\u2581t{i}" for i in range(259, n)]
        T = gguf.TokenType
        types = [T.UNKNOWN, T.CONTROL, T.CONTROL] + [T.BYTE] * 256 + [T.NORMAL] * (n - 259)
        w = self.gguf_writer
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        w.add_token_list(tokens)
        w.add_token_scores([0.0] * n)
        w.add_token_types(types)
        w.add_unk_token_id(0)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)

    # A GPT-2 config written by transformers 5 has n_positions but no n_ctx, which
    # the converter reads as the context length: the same value.
    from conversion import base
    load = base.ModelBase.load_hparams

    def load_with_context(*args, **kwargs):
        hparams = load(*args, **kwargs)
        if hparams.get("model_type") == "gpt2" and "n_ctx" not in hparams:
            hparams["n_ctx"] = hparams.get("n_positions", 1024)
        return hparams
    base.ModelBase.load_hparams = staticmethod(load_with_context)

    # The family's class, as the converter picks it, with the vocabulary above.
    pick = converter.get_model_class
    def with_synthetic_vocab(*args, **kwargs):
        family = pick(*args, **kwargs)
        return type(family.__name__, (family,), {"set_vocab": synthetic_vocab, "model_arch": family.model_arch})
    converter.get_model_class = with_synthetic_vocab
    out.parent.mkdir(parents=True, exist_ok=True)
    sys.argv = ["convert_hf_to_gguf.py", str(model), "--outtype", dtype, "--outfile", str(out)]
    converter.main()


def bench(root: Path, gguf_file: Path, threads: int, prompt: int, gen: int, depth: int, reps: int, version: str) -> dict:
    folder = "build"
    if not (root / folder / "bin" / "llama-bench").exists():
        fail(f"no {root / folder / 'bin' / 'llama-bench'}: run `llama_cpp.py build --dir {root}` first")
    note = None

    def run(prompt_n, gen_n, depth_n):
        nonlocal folder, note
        cmd = [str(root / folder / "bin" / "llama-bench"), "-m", str(gguf_file), "-t", str(threads), "-p", str(prompt_n),
               "-n", str(gen_n), "-d", str(depth_n), "-r", str(reps), "-o", "json", "-ngl", "0"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode == -signal.SIGILL and folder == "build":
            print(f"llama_cpp.py: `{' '.join(cmd)}` stopped with SIGILL (its AMX kernels); measuring llama.cpp built "
                  "without AMX", file=sys.stderr)
            build(root, version, NO_AMX_FOLDER, NO_AMX_FLAGS)
            folder, note = NO_AMX_FOLDER, "built without AMX: the native build's AMX kernels stopped with SIGILL here"
            return run(prompt_n, gen_n, depth_n)
        if done.returncode != 0:
            fail(f"`{' '.join(cmd)}` failed:\n{done.stderr[-2000:]}")
        return json.loads(done.stdout)

    # Prefill and decode from an empty cache (llama-bench's pp and tg), then decode
    # after the prompt (tg at depth), without the prefill at depth that one run of
    # both would add.
    rows = run(prompt, gen, 0) + run(0, gen, depth)
    result = {"build_commit": rows[0].get("build_commit"), "cpu_info": rows[0].get("cpu_info"), "threads": threads,
              "prompt": prompt, "gen": gen, "depth": depth, "reps": reps, "build": folder}
    if note:
        result["note"] = note
    for r in rows:
        if r["n_prompt"] > 0:
            result["prefill_tokens_per_s"] = r["avg_ts"]
        elif r["n_depth"] == 0:
            result["decode_empty_tokens_per_s"] = r["avg_ts"]
        else:
            result["decode_tokens_per_s"] = r["avg_ts"]
    return result


def batched(root: Path, gguf_file: Path, threads: int, prompt: int, gen: int, batches: list, reps: int,
            folder: str = "build") -> dict:
    """Decode tokens/s of B sequences decoded together, after a prompt each."""
    binary = root / folder / "bin" / "llama-batched-bench"
    if not binary.exists():
        fail(f"no {binary}: run `llama_cpp.py build --dir {root}` again")
    cmd = [str(binary), "-m", str(gguf_file), "-t", str(threads), "-tb", str(threads), "-c", str(max(batches) * (prompt + gen) + 64),
           "-b", "2048", "-ub", "512", "-npp", str(prompt), "-ntg", str(gen), "-npl", ",".join(map(str, batches)),
           "-ngl", "0", "--output-format", "jsonl"]
    speeds = {b: [] for b in batches}
    for _ in range(reps):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            fail(f"`{' '.join(cmd)}` failed:\n{done.stderr[-2000:]}")
        for line in (done.stdout + done.stderr).splitlines():
            line = line.strip()
            if line.startswith("{") and '"speed_tg"' in line:
                r = json.loads(line)
                speeds[r["pl"]].append(r["speed_tg"])
    out = {}
    for b, v in speeds.items():
        if not v:
            fail(f"`{' '.join(cmd)}` printed no result for batch {b}")
        out[str(b)] = sorted(v)[len(v) // 2]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["build", "convert", "bench"])
    p.add_argument("model", nargs="?", help="convert: the Hugging Face folder")
    p.add_argument("--dir", required=True, type=Path, help="where llama.cpp is fetched and built (cached)")
    p.add_argument("--version", default=DEFAULT_VERSION, help="llama-cpp-python's version on PyPI")
    p.add_argument("--dtype", choices=["f32", "f16", "bf16", "q8_0", "q4_0"], default="f32")
    p.add_argument("--out", type=Path)
    p.add_argument("--gguf", type=Path)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--prompt", type=int, default=128)
    p.add_argument("--gen", type=int, default=32)
    p.add_argument("--depth", type=int, default=128)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--batches", default="", help="bench: also batched decode of these batch sizes (4,16)")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    if a.command == "build":
        print(build(a.dir, a.version))
    elif a.command == "convert":
        if not a.model or not a.out:
            fail("convert needs MODEL_DIR and --out FILE")
        convert(a.dir, Path(a.model), a.dtype, a.out)
    else:
        if not a.gguf or not a.json:
            fail("bench needs --gguf FILE and --json FILE")
        result = bench(a.dir, a.gguf, a.threads, a.prompt, a.gen, a.depth, a.reps, a.version)
        if a.batches:
            batches = [int(b) for b in a.batches.split(",")]
            result["batched_decode_tokens_per_s"] = batched(a.dir, a.gguf, a.threads, a.prompt, a.gen, batches, a.reps,
                                                            result["build"])
        a.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Compiles the C++ code blocks of the documentation.

Every fenced block in docs/*.md and README.md is classified by its info string:

  ```cpp               a complete program: compiled with -std=c++2b -Wall -Wextra
                       -Werror and run; it must exit with status 0.
  ```cpp compile-fail  a program that must not compile; the compiler's output must
                       contain "[scribe]", so it fails for Scribe's reason and not
                       for a typo.
  ```c++               a fragment: not compiled.

Other languages are ignored. Each program runs in its own directory with TMPDIR
pointing there, so std::filesystem::temp_directory_path() is private to it.

Usage: check_docs.py --cxx COMPILER [ARGS...] --include DIR --out DIR [--root DIR]
(--cxx takes every argument up to the next option, e.g. "ccache c++").
"""
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import time

OPTIONS = ("--cxx", "--include", "--out", "--root")
# c++2b: C++23 in the one spelling every supported compiler takes (Clang 16 has no c++23).
FLAGS = ["-std=c++2b", "-Wall", "-Wextra", "-Werror"]
RUN_TIMEOUT_S = 120
COMPILE_TIMEOUT_S = 300


def parse_args(argv):
    args = {"--cxx": []}
    current = None
    for a in argv:
        if a in OPTIONS:
            current = a
            args.setdefault(a, [])
        elif current is None:
            sys.exit(f"check_docs: unexpected argument {a!r}")
        else:
            args.setdefault(current, []).append(a)
    for opt in ("--include", "--out", "--root"):
        if opt in args and len(args[opt]) != 1:
            sys.exit(f"check_docs: {opt} takes one value")
    if not args["--cxx"] or "--include" not in args or "--out" not in args:
        sys.exit(__doc__)
    root = args.get("--root", [os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")])[0]
    return args["--cxx"], args["--include"][0], args["--out"][0], os.path.abspath(root)


FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")


def blocks(path):
    """Yields (line of the opening fence, info string, code) for each fenced block."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = len(m.group(1)), m.group(2), m.group(3).strip()
        start = i + 1
        body = []
        i += 1
        while i < len(lines):
            c = FENCE.match(lines[i])
            if c and c.group(2)[0] == fence[0] and len(c.group(2)) >= len(fence) and not c.group(3).strip():
                break
            line = lines[i]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))):])  # the fence's indent
            i += 1
        else:
            raise SystemExit(f"{path}:{start}: unclosed code block")
        i += 1
        yield start, info, "\n".join(body) + "\n"


def classify(info, where):
    words = info.split()
    if not words or words[0] != "cpp":
        return None
    if words[1:] == []:
        return "run"
    if words[1:] == ["compile-fail"]:
        return "compile-fail"
    raise SystemExit(f"{where}: unknown attributes in ```{info} (use ```cpp, ```cpp compile-fail or ```c++)")


def run(cmd, timeout, **kw):
    """subprocess.run with captured text output; None when it times out."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        return None


ROOT = "."  # the source tree (main sets it); blocks find the demo model through SCRIBE_DEMO_MODEL, the tree through SCRIBE_SOURCE_DIR


def check(job, cxx, include):
    name, where, kind, code, workdir = job
    os.makedirs(workdir)
    src = os.path.join(workdir, name + ".cpp")
    with open(src, "w", encoding="utf-8") as f:
        f.write(code)
    if kind == "compile-fail":
        cmd = cxx + FLAGS + ["-fsyntax-only", "-I", include, src]
        r = run(cmd, COMPILE_TIMEOUT_S)
        if r is None:
            return False, f"{where}: the compiler did not finish in {COMPILE_TIMEOUT_S} s"
        if r.returncode == 0:
            return False, f"{where}: the block is tagged compile-fail but it compiled"
        if "[scribe]" not in r.stdout + r.stderr:
            return False, f"{where}: the block failed to compile, but not with a [scribe] diagnostic:\n{r.stderr[-4000:]}"
        return True, f"{where}: fails to compile, as it should"
    exe = os.path.join(workdir, name)
    start = time.monotonic()
    r = run(cxx + FLAGS + ["-I", include, src, "-o", exe], COMPILE_TIMEOUT_S)
    built = time.monotonic()
    if r is None:
        return False, f"{where}: the compiler did not finish in {COMPILE_TIMEOUT_S} s"
    if r.returncode != 0:
        return False, f"{where}: does not compile:\n{r.stderr[-6000:]}"
    r = run([exe], RUN_TIMEOUT_S, cwd=workdir,
            env=dict(os.environ, TMPDIR=workdir, SCRIBE_DEMO_MODEL=os.path.join(ROOT, "models", "demo-gpt2"),
                     SCRIBE_SOURCE_DIR=ROOT))
    if r is None:
        return False, f"{where}: did not finish in {RUN_TIMEOUT_S} s"
    if r.returncode != 0:
        return False, f"{where}: exited with status {r.returncode}:\n{r.stdout[-2000:]}{r.stderr[-2000:]}"
    return True, f"{where}: compiles ({built - start:.1f} s) and runs ({time.monotonic() - built:.1f} s)"


def main():
    global ROOT
    cxx, include, out, root = parse_args(sys.argv[1:])
    ROOT = root
    docs_dir = os.path.join(root, "docs")
    paths = sorted(os.path.join(docs_dir, p) for p in os.listdir(docs_dir) if p.endswith(".md")) \
        if os.path.isdir(docs_dir) else []
    readme = os.path.join(root, "README.md")
    if os.path.exists(readme):
        paths.append(readme)
    if not paths:
        sys.exit(f"check_docs: no Markdown files under {root}")

    jobs = []
    for path in paths:
        rel = os.path.relpath(path, root)
        stem = re.sub(r"[^A-Za-z0-9_]", "_", os.path.splitext(rel)[0])
        for line, info, code in blocks(path):
            where = f"{rel}:{line}"
            kind = classify(info, where)
            if kind:
                name = f"{stem}_{line}"
                jobs.append((name, where, kind, code, os.path.join(out, name)))
    if not jobs:
        sys.exit("check_docs: no ```cpp blocks found")

    shutil.rmtree(out, ignore_errors=True)  # no programs left from blocks that moved
    failures = 0
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for ok, message in pool.map(lambda j: check(j, cxx, include), jobs):
            print(("ok   " if ok else "FAIL ") + message, flush=True)
            failures += not ok
    print(f"{len(jobs) - failures} of {len(jobs)} blocks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

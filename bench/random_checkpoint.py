"""What bench/make_<model>.py share: a Hugging Face causal LM with random weights
(the model's own initialisation under a fixed seed), saved with
save_pretrained(safe_serialization=True) as config.json and model.safetensors into a
build folder, never the source tree. A stamp file records the config and the seed,
so that a second run with the same ones does nothing.

    make(program, doc, default_folder, seed, model, fields)

`model(transformers)` gives (config, model class); `fields` are the config's
attributes the stamp records.
"""
import argparse
import json
import os
import sys

STAMP = "scribe-bench.json"


def make(program, doc, default_folder, seed, model, fields):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(prog=program, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", default=os.path.join(root, "build", "bench", default_folder))
    ap.add_argument("--seed", type=int, default=seed)
    a = ap.parse_args()

    folder = os.path.abspath(a.folder)
    src = os.path.join(root, "")
    if (folder + os.sep).startswith(src) and not os.path.relpath(folder, root).startswith("build"):
        sys.exit(f"{program}: {folder} is inside the source tree; give a folder under a build directory")

    import torch
    import transformers

    config, model_class = model(transformers)
    want = {"seed": a.seed, "config": {k: getattr(config, k, None) for k in fields}}
    stamp = os.path.join(folder, STAMP)
    if os.path.exists(stamp) and os.path.exists(os.path.join(folder, "model.safetensors")):
        with open(stamp) as f:
            if json.load(f) == want:
                print(f"{program}: {folder} is up to date")
                return

    torch.manual_seed(a.seed)
    m = model_class(config).eval()
    params = sum(p.numel() for p in m.parameters())
    os.makedirs(folder, exist_ok=True)
    if os.path.exists(stamp):
        os.remove(stamp)
    m.save_pretrained(folder, safe_serialization=True)
    with open(stamp, "w") as f:
        json.dump(want, f, indent=1)
    print(f"{program}: wrote {params / 1e6:.1f}M parameters to {folder} "
          f"(torch {torch.__version__}, transformers {transformers.__version__}, seed {a.seed})")

"""Several runs' loss curves in one SVG picture, from their log.jsonl files (scribe
train's): the training loss's moving average of each run as a line, its
validation losses as dots of the same colour; then a table of each run's last
training loss (the mean of its last 5 % of steps), last validation loss and
median tokens/s. Standard library only.
    python3 bench/plot_losses.py --out curves.svg [--title T] NAME=LOG [NAME=LOG ...]
"""
import argparse
import json
import math
import statistics

COLOURS = ["#1f5fa8", "#d9531e", "#2a9d3a", "#8e44ad", "#c0392b", "#7f7f7f"]


def read(path):
    train, val, speed = [], [], []
    for line in open(path):
        e = json.loads(line)
        if "loss" in e:
            train.append((e["step"], e["loss"]))
            speed.append(e["tokens_per_s"])
        if "val_loss" in e:
            val.append((e["step"], e["val_loss"]))
    return train, val, speed


def smooth(points, n):
    out, total = [], 0.0
    for i, (s, v) in enumerate(points):
        total += v
        if i >= n:
            total -= points[i - n][1]
        if i + 1 >= n:
            out.append((s, total / n))
    return out


def ticks(lo, hi, n):
    raw = max(hi - lo, 1e-12) / n
    p = 10 ** math.floor(math.log10(raw))
    step = p if raw / p < 1.5 else 2 * p if raw / p < 3.5 else 5 * p if raw / p < 7.5 else 10 * p
    t, out = math.ceil(lo / step) * step, []
    while t <= hi + step * 1e-9:
        out.append(round(t, 10))
        t += step
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="loss")
    ap.add_argument("runs", nargs="+", help="NAME=path/to/log.jsonl")
    a = ap.parse_args()
    runs = []
    for r in a.runs:
        name, _, path = r.partition("=")
        train, val, speed = read(path)
        if not train:
            raise SystemExit(f"plot_losses: {path} has no training losses")
        n = max(1, len(train) // 40)
        runs.append((name, smooth(train, n), val, train, speed))
    # The y range: the smoothed curves after their first 5 % (the start is far above the rest).
    ys = [v for _, sm, val, _, _ in runs for s, v in sm[len(sm) // 20:] + val]
    y0, y1 = min(ys), max(ys)
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad
    x1 = max(s for _, sm, _, _, _ in runs for s, _ in sm)
    W, H, left, right, top, bottom = 760, 440, 64, 20, 40, 48
    X = lambda s: left + s / x1 * (W - left - right)
    Y = lambda v: top + (y1 - min(max(v, y0), y1)) / (y1 - y0) * (H - top - bottom)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           f'font-family="sans-serif" font-size="12">', '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{a.title}</text>']
    for t in ticks(y0, y1, 6):
        svg.append(f'<line x1="{left}" x2="{W - right}" y1="{Y(t):.1f}" y2="{Y(t):.1f}" stroke="#e4e4e4"/>')
        svg.append(f'<text x="{left - 6}" y="{Y(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    for t in ticks(0, x1, 8):
        svg.append(f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{H - bottom}" y2="{H - bottom + 5}" stroke="black"/>')
        svg.append(f'<text x="{X(t):.1f}" y="{H - bottom + 18}" text-anchor="middle">{t:g}</text>')
    svg.append(f'<path d="M{left} {top} V{H - bottom} H{W - right}" fill="none" stroke="black"/>')
    svg.append(f'<text x="{W / 2}" y="{H - 10}" text-anchor="middle">step</text>')
    svg.append(f'<text transform="translate(16 {H / 2}) rotate(-90)" text-anchor="middle">loss (nats/token), moving average; '
               f'dots: validation</text>')
    for i, (name, sm, val, _, _) in enumerate(runs):
        c = COLOURS[i % len(COLOURS)]
        pts = " ".join(f"{X(s):.1f},{Y(v):.1f}" for s, v in sm if s >= sm[len(sm) // 20][0])
        svg.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.6" points="{pts}"/>')
        for s, v in val:
            svg.append(f'<circle cx="{X(s):.1f}" cy="{Y(v):.1f}" r="3.5" fill="{c}"/>')
        ly = top + 12 + 18 * i
        svg.append(f'<line x1="{W - right - 150}" x2="{W - right - 126}" y1="{ly}" y2="{ly}" stroke="{c}" stroke-width="2"/>'
                   f'<text x="{W - right - 120}" y="{ly + 4}">{name}</text>')
    svg.append("</svg>")
    open(a.out, "w").write("\n".join(svg) + "\n")
    print(f"{'run':<14} {'train loss (last 5%)':>20} {'validation loss':>16} {'tokens/s':>9}")
    for name, _, val, train, speed in runs:
        tail = [v for _, v in train[-max(1, len(train) // 20):]]
        print(f"{name:<14} {statistics.mean(tail):>20.4f} {val[-1][1] if val else float('nan'):>16.4f} "
              f"{statistics.median(speed):>9.0f}")


if __name__ == "__main__":
    main()

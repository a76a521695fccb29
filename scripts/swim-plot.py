#!/usr/bin/env python3
"""Draws scripts/swim-sweep.sh's CSV as an SVG (no dependencies).

    scripts/swim-plot.py docs/swim/swim-loss.csv docs/swim/swim-loss.svg

Left: median detection time of a killed node (ms) vs packet loss.
Right: false-positive rate (share of views of up, reachable members that
showed them suspect or dead, while packets were lost) vs packet loss.
One line per variant; a hollow marker is a run the checker judged invalid.
"""
import csv
import sys

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
W, H = 900, 380
PANEL_W, PANEL_H = 340, 260
LEFT = [(70, 40), (520, 40)]


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def main(src, dst):
    rows = list(csv.DictReader(open(src)))
    variants = []
    for r in rows:
        if r["variant"] not in variants:
            variants.append(r["variant"])
    series = [
        ("median detection time (ms)", "detection_median_ms"),
        ("false-positive rate under loss", "false_positive_rate_under_loss"),
    ]
    losses = sorted({num(r["loss"]) for r in rows if num(r["loss"]) is not None})
    xmax = max(losses + [0.3])
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
    ]
    for (title, col), (x0, y0) in zip(series, LEFT):
        vals = [num(r[col]) for r in rows if num(r[col]) is not None]
        ymax = max(vals + [1e-9]) * 1.1
        if col.startswith("false"):
            ymax = max(ymax, 0.01)
        X = lambda x: x0 + x / xmax * PANEL_W
        Y = lambda y: y0 + PANEL_H - y / ymax * PANEL_H
        out.append(f'<text x="{x0 + PANEL_W / 2}" y="{y0 - 12}" text-anchor="middle" '
                   f'font-weight="bold">{title}</text>')
        out.append(f'<rect x="{x0}" y="{y0}" width="{PANEL_W}" height="{PANEL_H}" '
                   f'fill="none" stroke="#444"/>')
        for i in range(6):
            y = ymax * i / 5
            label = f"{y:.0f}" if ymax > 20 else f"{y:.3f}"
            out.append(f'<line x1="{x0}" x2="{x0 + PANEL_W}" y1="{Y(y):.1f}" y2="{Y(y):.1f}" '
                       f'stroke="#ddd"/>')
            out.append(f'<text x="{x0 - 6}" y="{Y(y) + 4:.1f}" text-anchor="end">{label}</text>')
        for x in losses:
            out.append(f'<text x="{X(x):.1f}" y="{y0 + PANEL_H + 16}" '
                       f'text-anchor="middle">{x * 100:.0f}%</text>')
        out.append(f'<text x="{x0 + PANEL_W / 2}" y="{y0 + PANEL_H + 34}" '
                   f'text-anchor="middle">packet loss</text>')
        for i, v in enumerate(variants):
            c = COLORS[i % len(COLORS)]
            pts = sorted(
                (num(r["loss"]), num(r[col]), r["verdict"])
                for r in rows
                if r["variant"] == v and num(r[col]) is not None
            )
            if len(pts) > 1:
                path = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y, _ in pts)
                out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
            for x, y, verdict in pts:
                fill = c if verdict == "true" else "white"
                out.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="4" fill="{fill}" '
                           f'stroke="{c}" stroke-width="2"><title>{v} at {x * 100:.0f}%: '
                           f'{y} (valid: {verdict})</title></circle>')
    lx = 70
    for i, v in enumerate(variants):
        c = COLORS[i % len(COLORS)]
        x = lx + i * 135
        out.append(f'<line x1="{x}" x2="{x + 20}" y1="{H - 14}" y2="{H - 14}" stroke="{c}" '
                   f'stroke-width="3"/>')
        out.append(f'<text x="{x + 25}" y="{H - 10}">{v}</text>')
    out.append("</svg>")
    open(dst, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: swim-plot.py IN.csv OUT.svg")
    main(sys.argv[1], sys.argv[2])

#!/usr/bin/env python3
"""A before/after table (Markdown) from two run.py outputs of the same kind:

  compare.py BEFORE.json AFTER.json

One row per figure both have: ours before, its ratio to the floor of that
run, ours after, its ratio, and the floor of the after run."""
import json
import sys


def rows(before, after):
    fb, fa = before["figures"], after["figures"]
    num = lambda x: isinstance(x, (int, float))
    ratio = lambda x, f: f"×{x / f:.2f}" if num(f) and f else "—"
    for w, figures in fa["ours"].items():
        for k, v in figures.items():
            b = fb.get("ours", {}).get(w, {}).get(k)
            if not num(v) or not num(b):
                continue
            floor_b = fb.get("floor", {}).get(w, {}).get(k)
            floor_a = fa.get("floor", {}).get(w, {}).get(k)
            shown = f"{floor_a:.4g}" if num(floor_a) else "—"
            yield f"| {w} `{k}` | {b:.4g} | {ratio(b, floor_b)} | {v:.4g} | {ratio(v, floor_a)} | {shown} |"


def main():
    with open(sys.argv[1]) as f:
        before = json.load(f)
    with open(sys.argv[2]) as f:
        after = json.load(f)
    print("| figure | ours before | / floor | ours after | / floor | floor |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows(before, after):
        print(r)


if __name__ == "__main__":
    main()

"""The drift page in a real browser: three files a lab might send, each scored
by `scorer score --html`, each page loaded in headless Chromium, its DOM
after load checked for what a reader must see, and a screenshot checked
not to be blank.

  alert.csv         the dataset with worst area in cm² (÷ 100) and worst texture + 6
  not-assessed.csv  its first 40 rows, unshifted (too few to assess)
  clean.csv         the dataset as it is

The headers are the lab's own (`Worst Area`, `Worst Texture`, `Worst Radius (mm)`):
the page must name the features so. Standard library only.

  python3 tests/drift_browser.py [--scorer target/debug/scorer] [--out target/drift-browser] [--height 900]

docs/drift_screenshot.sh runs it with the page's full height for the docs.
"""

import argparse
import csv
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# dataset header -> the lab's header
LAB_HEADERS = {"worst area": "Worst Area", "worst texture": "Worst Texture", "worst radius": "Worst Radius (mm)"}

AREA_SENTENCE = "The values of Worst Area are far below anything seen in training: check the units."
TEXTURE_SENTENCE = "The values of Worst Texture are mostly higher than in training"

# What each page's DOM must and must not hold after load.
PAGES = {
    "alert": {
        "must": ["Drift alert: ", AREA_SENTENCE, TEXTURE_SENTENCE, 'class="badge bad"', "How to read this",
                 '<span class="col">Worst Radius (mm)</span>'],
        "must_not": ["Drift not assessed", "No drift alert"],
    },
    "not-assessed": {
        "must": ["Drift not assessed", "Only 40 rows were scored", '<span class="badge na">not assessed</span>',
                 "How to read this", '<span class="col">Worst Area</span>'],
        "must_not": ['class="badge bad"', 'class="badge ok"', 'class="badge warn"', "card alerting", "PSI 1", "PSI 2"],
    },
    "clean": {
        "must": ["No drift alert", 'class="badge ok"', "How to read this", '<span class="col">Worst Texture</span>'],
        "must_not": ['class="badge bad"', "Drift not assessed", "The values of"],
    },
}


def write_files(out):
    with open(os.path.join(ROOT, "samples/wdbc.csv"), newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    area, texture = header.index("worst area"), header.index("worst texture")
    lab_header = [LAB_HEADERS.get(h, h) for h in header]

    def shifted(r):
        r = list(r)
        r[area] = repr(float(r[area]) / 100)
        r[texture] = repr(float(r[texture]) + 6)
        return r

    for name, rows in [("alert", [shifted(r) for r in body]), ("not-assessed", body[:40]), ("clean", body)]:
        with open(os.path.join(out, name + ".csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(lab_header)
            w.writerows(rows)


def chromium(*args):
    """Headless Chromium that fetches nothing: no network, no updates, a throwaway profile."""
    profile = tempfile.mkdtemp()
    try:
        return subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             "--user-data-dir=" + profile, *args],
            check=True, capture_output=True, timeout=120,
        ).stdout.decode("utf-8")
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def png_pixels(path):
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA PNG, unfiltered."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, chunk = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour = ihdr[:4]
    assert depth == 8 and colour in (2, 6), f"{path}: depth {depth}, colour type {colour}"
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def check_screenshot(path, width, height):
    w, h, bpp, rows = png_pixels(path)
    assert (w, h) == (width, height), f"{path}: {w}x{h}"
    colours, inked = set(), 0
    background = rows[0][:3]
    for y in range(0, h, 3):
        row = rows[y]
        for x in range(0, w * bpp, bpp * 3):
            px = row[x:x + 3]
            colours.add(px)
            inked += px != background
    sampled = ((h + 2) // 3) * ((w + 2) // 3)
    assert len(colours) > 50, f"{path}: {len(colours)} colours: blank?"
    assert inked / sampled > 0.05, f"{path}: {inked / sampled:.1%} of the page differs from its background: blank?"
    return len(colours), inked / sampled


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scorer", default=os.path.join(ROOT, "target/debug/scorer"))
    ap.add_argument("--out", default=os.path.join(ROOT, "target/drift-browser"))
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=900)
    args = ap.parse_args()
    if shutil.which("chromium") is None:
        sys.exit("FAIL: needs chromium (Debian: apt-get install -y chromium; .ci/run installs it)")
    out, scorer = os.path.abspath(args.out), os.path.abspath(args.scorer)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    write_files(out)
    env = {k: v for k, v in os.environ.items() if k not in ("MODEL_PATH", "CHALLENGER_MODEL_PATH", "DRIFT")}
    for name, want in PAGES.items():
        base = os.path.join(out, name)
        # Run where the files are: the page names its input as given, `alert.csv`.
        subprocess.run([scorer, "score", name + ".csv", "-o", name + ".out.csv", "--quiet", "--html", name + ".html"],
                       check=True, env=env, cwd=out, stdout=subprocess.DEVNULL)
        started = time.monotonic()
        dom = chromium("--dump-dom", "file://" + base + ".html")
        chromium(f"--window-size={args.width},{args.height}", "--screenshot=" + base + ".png",
                 "file://" + base + ".html")
        seconds = time.monotonic() - started
        missing = [m for m in want["must"] if m not in dom]
        present = [m for m in want["must_not"] if m in dom]
        assert not missing and not present, f"{name}: missing {missing}, present {present}"
        colours, inked = check_screenshot(base + ".png", args.width, args.height)
        print(f"{name}: DOM holds {len(want['must'])} expected texts and none of {len(want['must_not'])} others; "
              f"screenshot {colours} colours, {inked:.0%} inked; chromium {seconds:.1f} s")


if __name__ == "__main__":
    main()

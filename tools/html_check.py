#!/usr/bin/env python3
"""Check that an HTML report renders in headless Chromium: the screenshot is not blank and the
page holds the expected number of SVG charts.

    python3 tools/html_check.py FILE.html (--expect-svg N | --min-svg N)
        [--height PIXELS] [--screenshot OUT.png] [--chromium PATH]

What it does:
1. `chromium --headless --dump-dom file://FILE` and counts the `<svg` elements of the rendered
   DOM (what the browser parsed, not the bytes of the file).
2. `chromium --headless --screenshot` at 1200 × --height (default 2400) and decodes the PNG
   with zlib (stdlib only): the page is "not blank" when at least 2 % of the pixels differ from
   the background colour (the most common one) and there are at least 8 distinct colours
   (candles, lines, text).

Exit 0 when both hold; 1 with a message saying what is wrong otherwise; 2 on a usage error or
when Chromium is missing or fails (install Debian's `chromium` package). Stdlib Python only.
"""

import argparse
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections import Counter

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--no-first-run",
    "--disable-extensions",
]
MIN_INK_FRACTION = 0.02
MIN_COLOURS = 8
TIMEOUT_SECONDS = 120


def fail(message, code=1):
    print(f"html_check: {message}", file=sys.stderr)
    sys.exit(code)


def find_chromium(given):
    for name in [given] if given else ["chromium", "chromium-browser", "google-chrome"]:
        path = shutil.which(name)
        if path:
            return path
    fail(
        "no Chromium found (tried chromium, chromium-browser, google-chrome); "
        "install it with `apt-get install -y chromium` or pass --chromium PATH",
        2,
    )


def run_chromium(chromium, args, profile):
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    try:
        result = subprocess.run(
            command, capture_output=True, timeout=TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        fail(f"Chromium did not finish within {TIMEOUT_SECONDS} s: {' '.join(command)}", 2)
    if result.returncode != 0:
        tail = result.stderr.decode("utf-8", "replace")[-2000:]
        fail(f"Chromium exited with {result.returncode}: {' '.join(command)}\n{tail}", 2)
    return result.stdout


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data):
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat, header = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("the PNG has no IHDR chunk")
    width, height, depth, colour, _, _, interlace = header
    channels = {2: 3, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace != 0:
        raise ValueError(
            f"unsupported PNG (bit depth {depth}, colour type {colour}, interlace {interlace})"
        )
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                up_left = previous[i - channels] if i >= channels else 0
                line[i] = (line[i] + paeth(left, previous[i], up_left)) & 0xFF
        elif kind != 0:
            raise ValueError(f"unknown PNG filter {kind} on row {y}")
        rows.append(bytes(line))
        previous = line
    return width, height, channels, rows


def ink(png):
    """(fraction of pixels unlike the background, number of distinct colours)."""
    width, height, channels, rows = decode_png(png)
    colours = Counter()
    for line in rows:
        for x in range(0, width * channels, channels):
            colours[line[x : x + 3]] += 1
    total = width * height
    background = colours.most_common(1)[0][1] if colours else total
    return (total - background) / max(total, 1), len(colours)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html")
    count = parser.add_mutually_exclusive_group(required=True)
    count.add_argument("--expect-svg", type=int, help="exactly this many <svg> charts")
    count.add_argument("--min-svg", type=int, help="at least this many <svg> charts")
    parser.add_argument("--height", type=int, default=2400, help="screenshot height (px)")
    parser.add_argument("--screenshot", help="keep the screenshot at this path")
    parser.add_argument("--chromium", help="the Chromium binary")
    args = parser.parse_args()

    path = os.path.abspath(args.html)
    if not os.path.isfile(path):
        fail(f"{args.html} is not a file", 2)
    chromium = find_chromium(args.chromium)
    url = "file://" + path
    with tempfile.TemporaryDirectory(prefix="html_check.") as work:
        profile = os.path.join(work, "profile")
        dom = run_chromium(chromium, ["--dump-dom", url], profile).decode("utf-8", "replace")
        svgs = len(re.findall(r"<svg[\s>]", dom))
        shot = args.screenshot or os.path.join(work, "page.png")
        run_chromium(
            chromium,
            [f"--screenshot={os.path.abspath(shot)}", f"--window-size=1200,{args.height}", url],
            profile,
        )
        try:
            with open(shot, "rb") as f:
                fraction, colours = ink(f.read())
        except (OSError, ValueError, zlib.error) as e:
            fail(f"cannot read Chromium's screenshot {shot}: {e}", 2)

    problems = []
    if args.expect_svg is not None and svgs != args.expect_svg:
        problems.append(f"{svgs} <svg> charts in the rendered page, expected {args.expect_svg}")
    if args.min_svg is not None and svgs < args.min_svg:
        problems.append(f"{svgs} <svg> charts in the rendered page, expected at least {args.min_svg}")
    if fraction < MIN_INK_FRACTION or colours < MIN_COLOURS:
        problems.append(
            f"the screenshot looks blank: {fraction:.1%} of the pixels differ from the "
            f"background (need {MIN_INK_FRACTION:.0%}), {colours} colours (need {MIN_COLOURS})"
        )
    summary = f"{args.html}: {svgs} <svg> charts, {fraction:.1%} ink, {colours} colours"
    if problems:
        fail(f"{summary}: " + "; ".join(problems))
    print(f"html_check: ok: {summary}")


if __name__ == "__main__":
    main()

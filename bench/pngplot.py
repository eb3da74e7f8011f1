"""pngplot — line charts as PNG files in pure Python (zlib + a 5x7 bitmap font),
so the benchmark report needs no plotting package. Only what bench/run draws:
panels of step/line series over a shared x axis, axis ticks, a legend.
"""
import struct
import zlib

# 5x7 glyphs, one string of 7 rows of 5 pixels per character ('#' = ink).
_FONT_ROWS = {
    " ": ".....|.....|.....|.....|.....|.....|.....",
    "0": ".###.|#...#|#..##|#.#.#|##..#|#...#|.###.",
    "1": "..#..|.##..|..#..|..#..|..#..|..#..|.###.",
    "2": ".###.|#...#|....#|...#.|..#..|.#...|#####",
    "3": "#####|...#.|..#..|...#.|....#|#...#|.###.",
    "4": "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.",
    "5": "#####|#....|####.|....#|....#|#...#|.###.",
    "6": "..##.|.#...|#....|####.|#...#|#...#|.###.",
    "7": "#####|....#|...#.|..#..|.#...|.#...|.#...",
    "8": ".###.|#...#|#...#|.###.|#...#|#...#|.###.",
    "9": ".###.|#...#|#...#|.####|....#|...#.|.##..",
    "A": ".###.|#...#|#...#|#####|#...#|#...#|#...#",
    "B": "####.|#...#|#...#|####.|#...#|#...#|####.",
    "C": ".###.|#...#|#....|#....|#....|#...#|.###.",
    "D": "###..|#..#.|#...#|#...#|#...#|#..#.|###..",
    "E": "#####|#....|#....|####.|#....|#....|#####",
    "F": "#####|#....|#....|####.|#....|#....|#....",
    "G": ".###.|#...#|#....|#.###|#...#|#...#|.####",
    "H": "#...#|#...#|#...#|#####|#...#|#...#|#...#",
    "I": ".###.|..#..|..#..|..#..|..#..|..#..|.###.",
    "J": "..###|...#.|...#.|...#.|...#.|#..#.|.##..",
    "K": "#...#|#..#.|#.#..|##...|#.#..|#..#.|#...#",
    "L": "#....|#....|#....|#....|#....|#....|#####",
    "M": "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#",
    "N": "#...#|#...#|##..#|#.#.#|#..##|#...#|#...#",
    "O": ".###.|#...#|#...#|#...#|#...#|#...#|.###.",
    "P": "####.|#...#|#...#|####.|#....|#....|#....",
    "Q": ".###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#",
    "R": "####.|#...#|#...#|####.|#.#..|#..#.|#...#",
    "S": ".####|#....|#....|.###.|....#|....#|####.",
    "T": "#####|..#..|..#..|..#..|..#..|..#..|..#..",
    "U": "#...#|#...#|#...#|#...#|#...#|#...#|.###.",
    "V": "#...#|#...#|#...#|#...#|#...#|.#.#.|..#..",
    "W": "#...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#.",
    "X": "#...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#",
    "Y": "#...#|#...#|.#.#.|..#..|..#..|..#..|..#..",
    "Z": "#####|....#|...#.|..#..|.#...|#....|#####",
    ".": ".....|.....|.....|.....|.....|.##..|.##..",
    ",": ".....|.....|.....|.....|.##..|..#..|.#...",
    ":": ".....|.##..|.##..|.....|.##..|.##..|.....",
    "-": ".....|.....|.....|#####|.....|.....|.....",
    "+": ".....|..#..|..#..|#####|..#..|..#..|.....",
    "/": ".....|....#|...#.|..#..|.#...|#....|.....",
    "(": "...#.|..#..|.#...|.#...|.#...|..#..|...#.",
    ")": ".#...|..#..|...#.|...#.|...#.|..#..|.#...",
    "%": "##...|##..#|...#.|..#..|.#...|#..##|...##",
    "=": ".....|.....|#####|.....|#####|.....|.....",
    "_": ".....|.....|.....|.....|.....|.....|#####",
    "'": ".##..|..#..|.#...|.....|.....|.....|.....",
    "<": "...#.|..#..|.#...|#....|.#...|..#..|...#.",
    ">": ".#...|..#..|...#.|....#|...#.|..#..|.#...",
    "#": ".#.#.|.#.#.|#####|.#.#.|#####|.#.#.|.#.#.",
    "x": ".....|.....|#...#|.#.#.|..#..|.#.#.|#...#",
}
_FONT = {ch: [row for row in rows.split("|")] for ch, rows in _FONT_ROWS.items()}

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GREY = (200, 200, 200)
DARK = (90, 90, 90)


class Canvas:
    def __init__(self, width, height, background=WHITE):
        self.width = width
        self.height = height
        self.px = bytearray(bytes(background) * (width * height))

    def set(self, x, y, color):
        if 0 <= x < self.width and 0 <= y < self.height:
            i = (y * self.width + x) * 3
            self.px[i:i + 3] = bytes(color)

    def rect(self, x0, y0, x1, y1, color):
        for y in range(max(0, min(y0, y1)), min(self.height, max(y0, y1) + 1)):
            for x in range(max(0, min(x0, x1)), min(self.width, max(x0, x1) + 1)):
                i = (y * self.width + x) * 3
                self.px[i:i + 3] = bytes(color)

    def line(self, x0, y0, x1, y1, color, width=1):
        x0, y0, x1, y1 = int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1))
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        half = width // 2
        while True:
            for ox in range(-half, width - half):
                for oy in range(-half, width - half):
                    self.set(x0 + ox, y0 + oy, color)
            if x0 == x1 and y0 == y1:
                break
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def text(self, x, y, s, color=BLACK, scale=1):
        """Left-aligned at (x, y) top; unknown characters print as spaces."""
        for ch in s:
            glyph = _FONT.get(ch) or _FONT.get(ch.upper()) or _FONT[" "]
            for gy, row in enumerate(glyph):
                for gx, bit in enumerate(row):
                    if bit == "#":
                        self.rect(x + gx * scale, y + gy * scale, x + gx * scale + scale - 1,
                                  y + gy * scale + scale - 1, color)
            x += 6 * scale

    @staticmethod
    def text_width(s, scale=1):
        return len(s) * 6 * scale

    def png(self):
        raw = bytearray()
        stride = self.width * 3
        for y in range(self.height):
            raw.append(0)
            raw += self.px[y * stride:(y + 1) * stride]

        def chunk(kind, data):
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
                chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b""))


def _nice_step(span, ticks=6):
    if span <= 0:
        return 1
    raw = span / ticks
    mag = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1
    while mag > raw:
        mag /= 10
    for m in (1, 2, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def _fmt(v):
    return str(int(v)) if abs(v - round(v)) < 1e-9 else "%.1f" % v


def chart(path, title, panels, width=960, panel_height=260, xlabel="seconds"):
    """panels: list of dicts {title, ylabel, series: [(label, color, [(x, y)...], step)], hlines: [(y, label)]}.
    All panels share the x range. Writes a PNG to path."""
    margin_l, margin_r, margin_t, gap, margin_b = 70, 20, 34, 42, 40
    height = margin_t + len(panels) * panel_height + (len(panels) - 1) * gap + margin_b
    c = Canvas(width, height)
    c.text(margin_l, 10, title, BLACK, 2)
    xs = [x for p in panels for s in p["series"] for x, _ in s[2]]
    xmax = max(xs) if xs else 1
    xmin = 0
    plot_w = width - margin_l - margin_r
    xstep = _nice_step(xmax - xmin, 10)

    for n, p in enumerate(panels):
        top = margin_t + n * (panel_height + gap) + 14
        bottom = top + panel_height - 14
        ys = [y for s in p["series"] for _, y in s[2]] + [h[0] for h in p.get("hlines", [])]
        ymax = max(ys) * 1.08 if ys and max(ys) > 0 else 1
        ystep = _nice_step(ymax, 5)

        def X(x):
            return margin_l + (x - xmin) / (xmax - xmin or 1) * plot_w

        def Y(y):
            return bottom - y / ymax * (bottom - top)

        c.text(margin_l, top - 13, p["title"], BLACK, 1)
        # grid and ticks
        y = 0.0
        while y <= ymax:
            c.line(margin_l, Y(y), margin_l + plot_w, Y(y), GREY)
            label = _fmt(y)
            c.text(margin_l - 6 - c.text_width(label), int(Y(y)) - 3, label, DARK)
            y += ystep
        x = xmin
        while x <= xmax:
            c.line(X(x), top, X(x), bottom, GREY)
            label = _fmt(x)
            c.text(int(X(x)) - c.text_width(label) // 2, bottom + 5, label, DARK)
            x += xstep
        c.line(margin_l, top, margin_l, bottom, BLACK)
        c.line(margin_l, bottom, margin_l + plot_w, bottom, BLACK)
        c.text(4, top + 2, p.get("ylabel", ""), DARK)
        for hy, hlabel in p.get("hlines", []):
            for x0 in range(margin_l, margin_l + plot_w, 8):
                c.line(x0, Y(hy), min(x0 + 4, margin_l + plot_w), Y(hy), (220, 60, 60))
            c.text(margin_l + plot_w - c.text_width(hlabel) - 2, int(Y(hy)) - 10, hlabel, (220, 60, 60))
        # series
        for label, color, pts, step in p["series"]:
            prev = None
            for px_, py_ in pts:
                if prev is not None:
                    if step:
                        c.line(X(prev[0]), Y(prev[1]), X(px_), Y(prev[1]), color, 2)
                        c.line(X(px_), Y(prev[1]), X(px_), Y(py_), color, 2)
                    else:
                        c.line(X(prev[0]), Y(prev[1]), X(px_), Y(py_), color, 2)
                prev = (px_, py_)
        # legend
        lx = margin_l + 10
        for label, color, _, _ in p["series"]:
            c.rect(lx, top + 4, lx + 14, top + 8, color)
            c.text(lx + 18, top + 3, label, BLACK)
            lx += 18 + c.text_width(label) + 20
    c.text(margin_l + plot_w // 2 - c.text_width(xlabel) // 2, height - 14, xlabel, DARK)
    with open(path, "wb") as f:
        f.write(c.png())

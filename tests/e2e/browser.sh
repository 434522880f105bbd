# A real browser for the page tests: Debian's chromium, headless. Sourced.
#   browser_dom URL [ms]        the DOM after scripts ran (and ms of virtual time passed)
#   browser_shot URL FILE       a 1280x1400 screenshot (PNG)
#   png_check FILE W H          the PNG is W x H and not blank (python, no PIL)
# Run inside a namespace with `ip netns exec NS` in front, like any client.

browser() {
    # --no-sandbox: root in a test namespace; a fresh profile each time, nothing kept.
    local profile; profile=$(mktemp -d /tmp/ftpwatch-chromium.XXXXXX)
    timeout 60 "$@" --user-data-dir="$profile" 2>/dev/null
    local rc=$?
    rm -rf "$profile"
    return $rc
}
browser_dom() { # url [virtual ms]
    browser chromium --headless --no-sandbox --disable-gpu --virtual-time-budget="${2:-1000}" \
        --dump-dom "$1"
}
browser_shot() { # url file
    browser chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --window-size=1280,1400 --screenshot="$2" "$1" >/dev/null
}
png_check() { # file width height
    python3 - "$@" <<'PY'
import struct, sys, zlib
path, want_w, want_h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w = 8, b"", 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        assert (w, h) == (want_w, want_h), (w, h)
        assert depth == 8 and ctype in (2, 6), (depth, ctype)
        bpp = 3 if ctype == 2 else 4
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
raw, stride = zlib.decompress(idat), w * bpp
prev, rows, i = bytearray(stride), [], 0
for _ in range(h):
    f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b, c = prev[x], prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line)); prev = line
pixels = [r[x:x + 3] for r in rows[::4] for x in range(0, stride, 4 * bpp)]
colours = len(set(pixels))
inked = sum(1 for p in pixels if p != b"\xff\xff\xff") / len(pixels)
assert colours >= 8, f"only {colours} colours: blank?"
assert inked >= 0.01, f"only {inked:.1%} of the page is not white: blank?"
print(f"{w}x{h}, {colours} colours, {inked:.1%} inked")
PY
}

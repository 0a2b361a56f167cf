# SPDX-License-Identifier: MIT
# maptbl stats --plot FILE.svg: a well-formed standalone SVG (xmllint) whose numbers are the
# JSON's. The test reads the picture back: every histogram bar names its bucket and count, the
# counts equal the JSON histogram, and the drawn heights are proportional to them; the steps of
# the CDF polylines sit at the cumulative shares of files (and of bytes) that the JSON's value maps
# give. Merged inputs (020's fixtures), older inputs without bytes (011's: no bytes curve), a live
# walk, --per-file with --plot, and '--plot -' (the SVG on stdout, identical to the file).
. "$SRCDIR/tests/cli/lib.sh"
F=$SRCDIR/tests/cli/020-stats-yaml
OLD=$SRCDIR/tests/cli/011-stats-merge

# check_svg SVG JSON: prints what the SVG shows and whether it matches the JSON summary.
check_svg() {
	python3 - "$1" "$2" <<'EOF'
import json, sys
import xml.etree.ElementTree as ET
NS = "{http://www.w3.org/2000/svg}"
svg = ET.parse(sys.argv[1]).getroot()
doc = json.load(open(sys.argv[2]))
s = doc["summary"]
ok = True
def fail(msg):
    global ok
    ok = False
    print("MISMATCH:", msg)

bars = [e for e in svg.iter(NS + "rect") if e.get("class") == "bar"]
got = [(int(b.get("data-min")), int(b.get("data-max")), int(b.get("data-files"))) for b in bars]
want = [(h["min"], h["max"], h["files"]) for h in s["histogram"]]
if got != want:
    fail("bars %s, JSON histogram %s" % (got, want))
scale = None
for b, (lo, hi, n) in zip(bars, got):
    h = float(b.get("height"))
    if n == 0:
        if h != 0:
            fail("bucket %d-%d: no files but height %s" % (lo, hi, h))
        continue
    if scale is None:
        scale = h / n
    elif abs(h - n * scale) > 0.02:
        fail("bucket %d-%d: height %s, %s files at %s px/file" % (lo, hi, h, n, scale))
    if b.find(NS + "title") is None or ("%d files" % n) not in b.find(NS + "title").text.replace(",", ""):
        fail("bucket %d-%d: title %r" % (lo, hi, b.find(NS + "title").text))
print("bars:", " ".join("%d-%d:%d" % g for g in got))

# the CDF: the y of each step, against the shares from the value maps
pts = {}
for c in doc["classes"]:
    for e in c["extents_per_file"]:
        p = pts.setdefault(e[0], [0, 0, True])
        p[0] += e[1]
        if len(e) == 3:
            p[1] += e[2]
        else:
            p[2] = False
have_bytes = bool(pts) and all(p[2] for p in pts.values()) and s["bytes"] > 0
lines = {e.get("class").split()[0]: e for e in svg.iter(NS + "polyline")}
print("curves:", " ".join(sorted(lines)))
if ("cdf-bytes" in lines) != have_bytes:
    fail("a bytes curve %s, but the JSON %s bytes per extent count" %
         ("drawn" if "cdf-bytes" in lines else "missing", "has" if have_bytes else "has no"))
for name, idx, total in (("cdf-files", 0, s["files"]), ("cdf-bytes", 1, s["bytes"])):
    if name not in lines:
        continue
    e = lines[name]
    y0, y100 = float(e.get("data-y0")), float(e.get("data-y100"))
    xy = [tuple(map(float, p.split(","))) for p in e.get("points").split()]
    # points: for each value (x, y_before), (x, y_after), then the end of the axis
    steps = [xy[i][1] for i in range(1, len(xy) - 1, 2)]
    cum, want_y = 0, []
    for v in sorted(pts):
        cum += pts[v][idx]
        want_y.append(y0 - (y0 - y100) * cum / total)
    if len(steps) != len(want_y) or any(abs(a - b) > 0.02 for a, b in zip(steps, want_y)):
        fail("%s steps %s, JSON says %s" % (name, steps, want_y))
    if abs(xy[-1][1] - y100) > 0.02:
        fail("%s does not end at 100%%" % name)
    xs = [p[0] for p in xy]
    if xs != sorted(xs):
        fail("%s goes backwards" % name)
title = svg.find(NS + "title").text
if ("%s files" % format(s["files"], ",")) not in title:
    fail("title %r lacks the file count" % title)
print("title:", title)
print("the SVG matches the JSON" if ok else "THE SVG DOES NOT MATCH THE JSON")
EOF
}

echo "== merged fixture"
"$MAPTBL" stats --plot merged.svg --merge "$F/e1.json" "$F/e2.json" > summary.txt
echo "[exit $?]"
"$MAPTBL" stats --merge "$F/e1.json" "$F/e2.json" | cmp - summary.txt &&
	echo "the summary is printed as without --plot"
xmllint --noout merged.svg && echo "xmllint: well-formed"
grep -c '<svg xmlns="http://www.w3.org/2000/svg"' merged.svg
check_svg merged.svg "$F/both.json"
echo "== --plot with --json and --yaml"
"$MAPTBL" stats --json --plot j.svg --merge "$F/e1.json" "$F/e2.json" | cmp - "$F/both.json" &&
	echo "--json output unchanged"
"$MAPTBL" stats --yaml --plot y.svg --merge "$F/e1.json" "$F/e2.json" > /dev/null
cmp j.svg merged.svg && cmp y.svg merged.svg && echo "the same SVG"
echo "== --plot - (the SVG on stdout)"
"$MAPTBL" stats --plot - --merge "$F/e1.json" "$F/e2.json" > stdout.svg
echo "[exit $?]"
cmp stdout.svg merged.svg && echo "stdout holds the same SVG and nothing else"
echo "== older inputs: no bytes per extent count, no bytes curve"
"$MAPTBL" stats --plot old.svg --merge "$OLD/d1.json" "$OLD/d2.json" > /dev/null
xmllint --noout old.svg && echo "xmllint: well-formed"
check_svg old.svg "$OLD/both.json"
echo "== a live walk, and --per-file with --plot"
V=$(mktemp -d /var/tmp/maptbl-021.XXXXXX) || exit 1
trap 'rm -rf "$V"' EXIT
for i in 1 2 3 4 5 6 7 8; do head -c $((i * 10000)) /dev/urandom > "$V/f$i"; done
: > "$V/empty"
sync "$V"/*
"$MAPTBL" stats --json --plot live.svg "$V" > live.json
echo "[exit $?]"
xmllint --noout live.svg && echo "xmllint: well-formed"
check_svg live.svg live.json | tail -n 1
"$MAPTBL" stats --per-file --plot pf.svg "$V" | wc -l
xmllint --noout pf.svg && echo "--per-file --plot: well-formed"
echo "== an empty tree"
mkdir "$V/none"
"$MAPTBL" stats --json --plot none.svg "$V/none" > none.json
echo "[exit $?]"
xmllint --noout none.svg && grep -c 'no files' none.svg
check_svg none.svg none.json | tail -n 1
files

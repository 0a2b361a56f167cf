# SPDX-License-Identifier: MIT
# maptbl stats --yaml: the same document as --json, through libyaml. e1.json and e2.json are
# outputs of 'maptbl stats --json --top 3' over two directories of fragmented, sparse,
# preallocated and small files on ext4; both.json is one run over both. The YAML of their merge
# is golden; python3-yaml (another YAML reader) reads it as the very same data as the JSON, types
# included; YAML inputs merge exactly as JSON ones (also YAML written by another emitter, and the
# older two-number value maps of 011); the --per-file document is the same in JSON and in YAML.
. "$SRCDIR/tests/cli/lib.sh"
D=$SRCDIR/tests/cli/020-stats-yaml
OLD=$SRCDIR/tests/cli/011-stats-merge

# same_data A B: python3-yaml reads A (YAML or JSON) and B (JSON) as the same data; ints stay
# ints, floats floats, strings strings (json.dumps of both, keys sorted, must be equal).
same_data() {
	python3 - "$1" "$2" <<'EOF'
import json, sys, yaml
a = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
b = json.load(open(sys.argv[2], encoding="utf-8"))
ja, jb = json.dumps(a, sort_keys=True), json.dumps(b, sort_keys=True)
print("same data" if ja == jb else "DIFFERENT DATA:\n" + ja[:2000] + "\n" + jb[:2000])
EOF
}

echo "== the YAML of the merged fixture (golden)"
"$MAPTBL" stats --yaml --merge "$D/e1.json" "$D/e2.json" > m.yaml
echo "[exit $?]"
cat m.yaml
"$MAPTBL" stats --json --merge "$D/e1.json" "$D/e2.json" > m.json
cmp m.json "$D/both.json" && echo "the JSON merge equals the run over both"
echo "== read back by python3-yaml"
same_data m.yaml m.json
same_data m.yaml "$D/both.json"

echo "== YAML inputs merge like JSON inputs"
"$MAPTBL" stats --yaml --merge "$D/e1.json" > e1.yaml
"$MAPTBL" stats --yaml --merge "$D/e2.json" > e2.yaml
same_data e1.yaml "$D/e1.json"
"$MAPTBL" stats --json --merge e1.yaml e2.yaml | cmp - "$D/both.json" &&
	echo "merge e1.yaml e2.yaml --json equals the JSON run over both"
"$MAPTBL" stats --json --merge e2.yaml "$D/e1.json" | cmp - "$D/both.json" &&
	echo "a YAML and a JSON input together too"
"$MAPTBL" stats --yaml --merge e1.yaml e2.yaml | cmp - m.yaml && echo "merge of YAML to YAML too"
"$MAPTBL" stats --merge e1.yaml e2.yaml > t1.txt
"$MAPTBL" stats --merge "$D/e1.json" "$D/e2.json" > t2.txt
cmp t1.txt t2.txt && echo "and the readable summaries are the same"
cp e1.yaml e1.out
"$MAPTBL" stats --json --merge e1.out | cmp - "$D/e1.json" && echo "a YAML input named otherwise"
# YAML from another emitter: block style everywhere, its own quoting and key order
python3 -c 'import json, sys, yaml
d = json.load(open(sys.argv[1]))
print(yaml.safe_dump(d, default_flow_style=False, sort_keys=True, allow_unicode=True), end="")' \
	"$D/e2.json" > py.yaml
"$MAPTBL" stats --json --merge "$D/e1.json" py.yaml | cmp - "$D/both.json" &&
	echo "YAML written by python3-yaml merges the same"
# the older value maps (two numbers an entry) survive YAML too
"$MAPTBL" stats --yaml --merge "$OLD/d1.json" > d1.yaml
"$MAPTBL" stats --yaml --merge "$OLD/d2.json" > d2.yaml
grep -m1 -E '^  - \[[0-9]+, [0-9]+\]$' d1.yaml
"$MAPTBL" stats --json --merge d1.yaml d2.yaml | cmp - "$OLD/both.json" &&
	echo "the two-number maps of 011 merge through YAML to 011's both.json"

echo "== --per-file as a document: the same in JSON and YAML"
# on /var/tmp: FIEMAP needs a disk filesystem, and /tmp may be a tmpfs
V=$(mktemp -d /var/tmp/maptbl-020.XXXXXX) || exit 1
trap 'rm -rf "$V"' EXIT
OUT=$PWD
cd "$V" || exit 1
mkdir -p tree/sub empty
head -c 5000 /dev/urandom > tree/a
head -c 70000 /dev/urandom > "tree/with space"
printf 'x' > tree/yes
printf 'y' > tree/0123
printf 'z' > 'tree/sub/"quoted": #1'
printf 'w' > "tree/sub/$(printf 'bad\377name')"
: > tree/sub/empty
sync tree/* tree/sub/*
"$MAPTBL" stats --per-file --json tree missing > "$OUT/pf.json"
echo "[exit $?]"
"$MAPTBL" stats --per-file --yaml tree missing > "$OUT/pf.yaml"
echo "[exit $?]"
grep -F 'quoted' "$OUT/pf.yaml" | sed 's/, size:.*//'
python3 - "$OUT/pf.json" "$OUT/pf.yaml" <<'EOF'
import json, sys, yaml
j = json.load(open(sys.argv[1], encoding="utf-8"))
y = yaml.safe_load(open(sys.argv[2], encoding="utf-8"))
key = lambda r: r["path"]
for d in (j, y):
    d["files"].sort(key=key)
print("same data" if json.dumps(j, sort_keys=True) == json.dumps(y, sort_keys=True) else "DIFFERENT")
print("keys:", list(j.keys()))
print("row keys:", list(j["files"][0].keys()))
for r in j["files"]:
    print(repr(r["path"]), r["size"], "extents >= 1" if r["extents"] >= 1 else r["extents"])
print("errors:", j["errors"])
EOF
"$MAPTBL" stats --per-file --json empty
"$MAPTBL" stats --per-file --yaml empty
"$MAPTBL" stats --per-file tree/a | head -1
"$MAPTBL" stats --per-file --csv tree/a | head -1

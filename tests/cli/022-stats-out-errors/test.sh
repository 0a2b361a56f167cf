# SPDX-License-Identifier: MIT
# maptbl stats output options given bad input: --plot into a missing directory or onto a
# directory (status 1, checked before any walk, no file left), --json with --yaml and other
# misuse (status 2), unreadable --merge inputs (status 3), malformed or hostile YAML inputs
# (status 1, one line naming the file, line and problem); never a partial --plot file.
. "$SRCDIR/tests/cli/lib.sh"
F=$SRCDIR/tests/cli/020-stats-yaml
cp "$F/e1.json" e1.json
"$MAPTBL" stats --yaml --merge e1.json > e1.yaml

echo "== --plot where it cannot be written"
run stats --plot nodir/p.svg --merge e1.json
run stats --plot nodir/p.svg .
mkdir adir
run stats --plot adir --merge e1.json
run stats --json --plot nodir/p.svg --merge e1.json
touch afile
run stats --plot afile/p.svg --merge e1.json
files

echo "== misuse"
run stats --yaml --json --merge e1.json
run stats --json --yaml .
run --json stats --yaml .
run stats --yaml --per-file --csv .
run stats --plot - --json --merge e1.json
run stats --plot - --per-file .
run stats --plot "" --merge e1.json
run stats --plot
run stats --yaml --merge --threads 2 e1.json
files

echo "== unreadable --merge inputs"
run stats --plot p.svg --merge e1.json missing.json
run stats --yaml --merge adir
run stats --yaml --merge e1.yaml missing.yaml
run stats --plot p.svg missing-dir
files

echo "== malformed YAML inputs"
printf 'maptbl_stats: 1\ntop_n: [1, 2\n' > syntax.yaml
printf 'a: &x 1\nb: *x\n' > alias.yaml
printf 'maptbl_stats: 1\n---\nmaptbl_stats: 1\n' > two.yaml
printf 'maptbl_stats: 1\nmaptbl_stats: 1\n' > dup.yaml
printf -- '- 1\n- 2\n' > seq.yaml
printf 'garbage\n' > garbage.yaml
printf 'maptbl_stats: !!python/object:os.system 1\n' > tag.yaml
printf 'maptbl_stats: 1\ntop_n: 99999999999999999999\n' > big.yaml
python3 -c 'print("a: " + "[" * 100 + "]" * 100)' > deep.yaml
sed 's/^maptbl_stats: 1$/maptbl_stats: 9/' e1.yaml > version.yaml
# the class "<1M" claims one byte more than its value map holds
awk '/class: "<1M"/ { c = 1 } c && /^  bytes:/ { $2 = $2 + 1; c = 0 } { print }' e1.yaml |
	sed 's/^bytes:/  bytes:/' > bytes.yaml
printf '\xff\xfe junk\n' > binary.yaml
: > empty.yaml
for f in syntax alias two dup seq garbage tag big deep version bytes binary empty; do
	run stats --plot "$f.svg" --merge e1.json "$f.yaml"
done
run stats --json --merge dup.yaml
files

echo "== a write error on stdout"
"$MAPTBL" stats --yaml --merge e1.json > /dev/full
echo "[exit $?]"
"$MAPTBL" stats --per-file --yaml "$F" > /dev/full
echo "[exit $?]"

# SPDX-License-Identifier: MIT
# maptbl stats --merge on committed JSON outputs of 'maptbl stats --json --top 3' (d1.json and
# d2.json: two subdirectories of a small tree on ext4; both.json: one run over both). The merge
# equals the run over both, in any order; one input merges to itself; bad inputs give one line
# and status 1, unreadable ones status 3, misuse status 2.
. "$SRCDIR/tests/cli/lib.sh"
D=$SRCDIR/tests/cli/011-stats-merge
echo "== the merged summary"
run stats --merge "$D/d1.json" "$D/d2.json" | sed "s|$D/||"
"$MAPTBL" stats --json --merge "$D/d1.json" "$D/d2.json" > m.json
cmp m.json "$D/both.json" && echo "merge d1 d2 equals the run over both"
"$MAPTBL" stats --json --merge "$D/d2.json" "$D/d1.json" | cmp - "$D/both.json" &&
	echo "merge d2 d1 too"
"$MAPTBL" stats --json --merge "$D/d1.json" | cmp - "$D/d1.json" && echo "d1 alone merges to itself"
"$MAPTBL" stats --json --merge m.json "$D/d1.json" > m2.json
grep -m1 '"files"' m2.json
echo "== --top shortens the merged list"
"$MAPTBL" stats --merge --top 1 "$D/d1.json" "$D/d2.json" | sed -n '/most fragmented/,/^$/p'
echo "== bad inputs"
printf 'garbage\n' > bad.json
run stats --merge "$D/d1.json" bad.json
head -c 200 "$D/d1.json" > truncated.json
run stats --merge truncated.json
sed '0,/"maptbl_stats": 1/s//"maptbl_stats": 9/' "$D/d1.json" > version.json
run stats --merge version.json
# class "<1M" claims one file more than its value->count map holds
awk '/"class": "<1M"/ { c = 1 } c && /"files":/ { sub(/[0-9]+/, "4"); c = 0 } { print }' \
	"$D/d1.json" > inconsistent.json
run stats --merge inconsistent.json
run stats --json --merge bad.json
run stats --merge "$D/d1.json" missing.json
echo "== misuse"
run stats --merge
run stats --merge --per-file "$D/d1.json"
run stats --csv "$D"
run stats --per-file --json --csv "$D"
run stats --top 0 "$D"
count_lines stats --help

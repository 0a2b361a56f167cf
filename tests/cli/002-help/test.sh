# SPDX-License-Identifier: MIT
# Help: 'maptbl help X' and 'maptbl X --help' print the same text; exit statuses of the
# dispatcher; no prefix matching.
. "$SRCDIR/tests/cli/lib.sh"
for c in build verify dump lookup cat stats; do
	a=$("$MAPTBL" help $c); b=$("$MAPTBL" $c --help); d=$("$MAPTBL" $c -h)
	[ "$a" = "$b" ] && [ "$a" = "$d" ] && [ -n "$a" ] || fail "help $c differs from $c --help"
	echo "$c: $(printf '%s\n' "$a" | head -1)"
done
run --help
run help
run bui
run frobnicate
run help frobnicate
run --bogus verify x
run
run --json build --extents x -o y
"$MAPTBL" --version | sed "s/[0-9][0-9.]*/V/g"; echo "[exit $?]"

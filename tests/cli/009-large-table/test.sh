# SPDX-License-Identifier: MIT
# A table of 100,000 extents with unwritten ranges and long extents (wide leaves), at every
# node size: builds, verifies, and every lookup printed agrees with the list it came from (awk
# computes the expected answer independently).
. "$SRCDIR/tests/cli/lib.sh"
# MINSTD, exact in doubles: the same list with every awk (rand() differs between mawk and gawk).
awk 'function r() { x = (x * 48271) % 2147483647; return x / 2147483647 }
     BEGIN { x = 7; l = 0; p = 1000;
	for (i = 0; i < 100000; i++) {
		l += int(r() * 3) * int(r() * 100);
		n = (i % 997 == 0) ? 40000 + int(r() * 1000) : 1 + int(r() * 64);
		printf "%d %d %d%s\n", l, p, n, (i % 13 == 0) ? " unwritten" : "";
		l += n; p += n + int(r() * 2);
	} }' > big.txt
awk 'NR % 10007 == 1 { print $1, $1 + 1, $1 + $3 - 1, $1 + $3 }' big.txt | tr ' ' '\n' > probes.txt
for ns in 256 4096 65536; do
	"$MAPTBL" build -e big.txt -o big-$ns.mtb --node-size $ns > /dev/null || fail "build $ns"
	"$MAPTBL" verify -q big-$ns.mtb || fail "verify $ns"
	"$MAPTBL" --json dump big-$ns.mtb | grep -o '"depth":[0-9]*,"nodes":[0-9]*,"extents":[0-9]*,"unwritten":[0-9]*' | sed "s/^/$ns: /"
	# The dump lists every extent once.
	[ "$("$MAPTBL" dump big-$ns.mtb | grep -c '^ *[0-9]*: ')" = 100000 ] || fail "dump $ns"
	"$MAPTBL" lookup big-$ns.mtb $(cat probes.txt) | awk 'NR > 1 { print $1, $2, $3, $4 }' > got-$ns.txt
	[ $ns = 256 ] || cmp got-256.txt got-$ns.txt || fail "lookups differ between node sizes"
done
# Independent expectation from the list.
awk 'NR == FNR { L[NR] = $1; P[NR] = $2; N[NR] = $3; U[NR] = ($4 == "unwritten"); n = NR; next }
     { q = $1; s = "hole"; pb = "-"; run = 0;
       for (i = 1; i <= n; i++) {
	       if (q < L[i]) { run = L[i] - q; break }
	       if (q < L[i] + N[i]) { s = U[i] ? "unwritten" : "mapped"; pb = P[i] + q - L[i]; run = L[i] + N[i] - q; break }
       }
       print q, s, pb, run }' big.txt probes.txt > want.txt
cmp want.txt got-256.txt && echo "lookups agree with the list: $(wc -l < want.txt) probes"
grep -c hole want.txt | sed 's/^/holes probed: /'

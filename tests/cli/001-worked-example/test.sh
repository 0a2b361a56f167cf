# SPDX-License-Identifier: MIT
# The worked example of docs/FORMAT.md §9 through the command: build, verify, dump, lookup, and
# the exact bytes the spec prints.
. "$SRCDIR/tests/cli/lib.sh"
run build --extents "$SRCDIR/examples/worked-example.txt" -o we.mtb --node-size 256 --virtual-size 256K
run verify we.mtb
run dump we.mtb
run dump -X we.mtb
run dump --json we.mtb
run lookup we.mtb 3 10 17 50 63
run lookup -X we.mtb 0x3 0x11
run --json lookup we.mtb 3 10 17 50 64
echo "-- the bytes of FORMAT.md §9"
od -A x -t x1 -v we.mtb | sed -n '1,2p;4,6p;17,21p'

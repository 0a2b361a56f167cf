# SPDX-License-Identifier: MIT
# verify with several tables keeps going after a failure; the first failure decides the status.
. "$SRCDIR/tests/cli/lib.sh"
"$MAPTBL" build -e "$SRCDIR/examples/worked-example.txt" -o a.mtb -q
cp a.mtb b.mtb
printf 'garbage' > bad.mtb
run verify a.mtb bad.mtb missing.mtb b.mtb
run verify a.mtb missing.mtb bad.mtb b.mtb
run verify -q a.mtb b.mtb

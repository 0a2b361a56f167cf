# SPDX-License-Identifier: MIT
# '-' reads the list from stdin and writes the table to stdout, byte-identical to a file build.
. "$SRCDIR/tests/cli/lib.sh"
"$MAPTBL" build -e "$SRCDIR/examples/worked-example.txt" -o file.mtb -q
"$MAPTBL" build -e - -o - < "$SRCDIR/examples/worked-example.txt" > stdout.mtb
echo "[exit $?]"
cmp file.mtb stdout.mtb && echo "identical"
"$MAPTBL" verify - < stdout.mtb
echo "[exit $?]"
printf '0 1 2\n0 1 2\n' | "$MAPTBL" build -e - -o x.mtb
echo "[exit $?]"
files

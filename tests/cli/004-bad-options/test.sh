# SPDX-License-Identifier: MIT
# Bad options give a one-line message, "Try ... --help", status 2, and no output file.
. "$SRCDIR/tests/cli/lib.sh"
printf '0 100 5\n' > l.txt
run build -e l.txt
run build -o out.mtb
run build -e l.txt -o out.mtb --block-size 1000
run build -e l.txt -o out.mtb --block-size 256
run build -e l.txt -o out.mtb --node-size 128
run build -e l.txt -o out.mtb --node-size 3000
run build -e l.txt -o out.mtb --fill 0
run build -e l.txt -o out.mtb --fill 101
run build -e l.txt -o out.mtb --virtual-size 1000
run build -e l.txt -o out.mtb --virtual-size 10Q
run build -e l.txt -o out.mtb --virtual-size 0
run build -e l.txt -o out.mtb --virtual-size 99999999999E
run build -e l.txt -o out.mtb --frobnicate
run build -e l.txt -o out.mtb extra-argument
run verify
run dump
run dump a b
run lookup x
run lookup x notanumber
files
echo "== sizes with suffixes are accepted"
run build -e l.txt -o out.mtb --virtual-size 1MiB --block-size 1K --node-size 512 --fill 50
run lookup out.mtb 1023

# SPDX-License-Identifier: MIT
# Every kind of malformed extent list: one line naming the list, the line and the problem,
# status 1, and no output file (not even a temporary one).
. "$SRCDIR/tests/cli/lib.sh"
t() { # t NAME CONTENT
	printf "$2" > "$1.txt"
	echo "== $1"
	run build -e "$1.txt" -o out.mtb
	[ -e out.mtb ] && fail "$1: out.mtb was written"
	ls | grep -q 'tmp' && fail "$1: a temporary file was left"
}
t too-few '0 100\n'
t too-many '0 100 5 unwritten extra\n'
t not-a-number '0 100 five\n'
t negative '0 -100 5\n'
t overflow '0 100 99999999999999999999999\n'
t bad-hex '0x 100 5\n'
t unknown-flag '0 100 5 written\n'
t zero-length '# header\n0 100 5\n10 200 0\n'
t unsorted '10 100 5\n0 200 5\n'
t overlapping '0 100 10\n5 200 5\n'
t past-2-48 '281474976710655 0 2\n'
t physical-past-2-48 '0 281474976710655 2\n'
t nul-byte '0 100 5\n1\0000 200 5\n'
printf '0 100 5\n20 200 5\n' > fits.txt
echo "== past-virtual-size"
run build -e fits.txt -o out.mtb --virtual-size 80K
echo "== past-disk-size"
run build -e fits.txt -o out.mtb --disk-size 800K
echo "== missing-list"
run build -e no-such-list.txt -o out.mtb
echo "== directory-as-list"
mkdir d
run build -e d -o out.mtb
files
echo "== empty list builds an empty table"
: > empty.txt
run build -e empty.txt -o empty.mtb --virtual-size 1M
run lookup empty.mtb 0 255
echo "== comments, blank lines, CRLF, tabs and hex are fine"
printf '# a list\n\n0x0\t0x64 5   # first\r\n  20 200 5 unwritten\n' > ok.txt
run build -e ok.txt -o ok.mtb
run lookup ok.mtb 0 5 22

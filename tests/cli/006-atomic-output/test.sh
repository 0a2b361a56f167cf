# SPDX-License-Identifier: MIT
# Output is written atomically: a failed build leaves an existing table untouched and no
# temporary file; a write error on stdout is reported and fails the command.
. "$SRCDIR/tests/cli/lib.sh"
printf '0 100 5\n' > good.txt
printf '0 100 5\n3 200 5\n' > bad.txt
"$MAPTBL" build -e good.txt -o t.mtb -q
sum=$(cksum < t.mtb)
run build -e bad.txt -o t.mtb
[ "$(cksum < t.mtb)" = "$sum" ] || fail "failed build changed t.mtb"
files
echo "== into a missing directory"
run build -e good.txt -o no/such/dir/t.mtb
echo "== a full stdout"
if [ -w /dev/full ]; then
	"$MAPTBL" dump t.mtb > /dev/full 2> err.txt; echo "[exit $?]"; cat err.txt; rm err.txt
	"$MAPTBL" build -e good.txt -o - > /dev/full 2> err.txt; echo "[exit $?]"; cat err.txt; rm err.txt
else
	echo "SKIP: no /dev/full"; exit 77
fi
echo "== the table file mode follows the umask"
(umask 027; "$MAPTBL" build -e good.txt -o m.mtb -q; stat -c %a m.mtb)
echo "== a device as TABLE is written in place, not replaced"
# This used to rename a temporary file over the target, turning /dev/null into a regular file
# when run as root. A FIFO stands in for the device here.
mkfifo pipe
cat pipe > from-pipe &
"$MAPTBL" build -e good.txt -o pipe -q
echo "[exit $?]"
wait
[ -p pipe ] && echo "pipe is still a FIFO"
cmp from-pipe t.mtb && echo "the table went through it"
run build -e good.txt -o . -q

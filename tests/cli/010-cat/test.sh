# SPDX-License-Identifier: MIT
# maptbl cat reads the virtual disk through a table: mapped blocks from the device at their
# physical place, holes and unwritten blocks as zeros, up to the virtual size. dd computes the
# expected bytes independently.
. "$SRCDIR/tests/cli/lib.sh"
awk 'BEGIN { x = 1; for (i = 0; i < 65536; i++) { x = (x * 48271) % 2147483647; printf "%c", 65 + x % 26 } }' > disk.img
printf '0 10 2\n4 3 1 unwritten\n5 0 3\n' > l.txt
"$MAPTBL" build -e l.txt -o t.mtb --block-size 4096 --virtual-size 40K -q
run cat t.mtb
run cat t.mtb --device disk.img -o out.bin
{
	dd if=disk.img bs=4096 skip=10 count=2 status=none
	head -c 8192 /dev/zero         # blocks 2, 3: a hole
	head -c 4096 /dev/zero         # block 4: unwritten
	dd if=disk.img bs=4096 skip=0 count=3 status=none
	head -c 8192 /dev/zero         # blocks 8, 9: the tail of the virtual disk
} > want.bin
cmp want.bin out.bin && echo "cat -o equals the expected $(stat -c %s want.bin) bytes"
"$MAPTBL" cat t.mtb --device disk.img | cmp - want.bin && echo "cat to stdout too"
echo "== a device too small for the table"
head -c 20000 disk.img > small.img
run cat t.mtb --device small.img -o out2.bin
files
echo "== a FIFO as OUT is written in place"
mkfifo pipe
cat pipe > from-pipe &
run cat t.mtb --device disk.img -o pipe
wait
[ -p pipe ] && cmp from-pipe want.bin && echo "pipe is still a FIFO and got the disk"

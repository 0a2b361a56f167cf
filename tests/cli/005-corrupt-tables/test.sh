# SPDX-License-Identifier: MIT
# Corrupt, truncated and foreign tables: verify names the first problem and its byte offset
# (status 1); unsupported features and unreadable files give status 3; dump and lookup refuse.
. "$SRCDIR/tests/cli/lib.sh"
poke() { # poke FILE OFFSET HEXBYTE
	printf "\\x$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
"$MAPTBL" build -e "$SRCDIR/examples/worked-example.txt" -o good.mtb --node-size 256 -q
cp good.mtb magic.mtb; poke magic.mtb 1 00
cp good.mtb version.mtb; poke version.mtb 8 02
cp good.mtb incompat.mtb; poke incompat.mtb 25 01
cp good.mtb node-crc.mtb; poke node-crc.mtb 296 e9
cp good.mtb past-virtual.mtb; poke past-virtual.mtb 300 ff
cp good.mtb header-crc.mtb; poke header-crc.mtb 56 41
head -c 300 good.mtb > truncated.mtb
head -c 100 good.mtb > short.mtb
: > empty.mtb
head -c 512 /dev/zero > zeros.mtb
cat good.mtb good.mtb > doubled.mtb
for f in magic version incompat node-crc past-virtual header-crc truncated short empty zeros doubled; do
	echo "== $f"
	run verify $f.mtb
done
echo "== missing"
run verify missing.mtb
echo "== directory"
mkdir dir.mtb
run verify dir.mtb
echo "== dump and lookup refuse a corrupt table"
run dump node-crc.mtb
run lookup node-crc.mtb 0
run dump incompat.mtb
echo "== json"
run verify --json node-crc.mtb incompat.mtb

# SPDX-License-Identifier: MIT
# Helpers for the btrfs tests (sourced after lib.sh): btrfs-progs' own reading of the chunk tree,
# and filefrag's extents (btrfs logical addresses) translated through it, so that maptbl's chunk
# map is checked against an independent reader.

need_btrfs() {
	need_fs btrfs
	command -v btrfs >/dev/null || skip "no btrfs (btrfs-progs)"
	command -v filefrag >/dev/null || skip "no filefrag"
}

# btrfs_chunks DEV: "logical length devid offset type" per chunk (stripe 0), from dump-tree.
btrfs_chunks() {
	btrfs inspect-internal dump-tree -t chunk "$1" | awk '
		/CHUNK_ITEM/ { l = $6; sub(/\)/, "", l) }
		/^[ \t]*length / { len = $2; type = $8 }
		/stripe 0 devid/ { print l, len, $4, $6, type }'
}

# filefrag_devices FILE BS CHUNKS: filefrag -v's records translated through CHUNKS (btrfs_chunks
# output, stripe 0 of each chunk), as "devid lblk pblk len [unwritten]" in BS-byte blocks, pblk
# on that device, contiguous records of one device and kind merged (as maptbl merges them).
filefrag_devices() {
	filefrag -v -b"$2" "$1" | awk -v bs="$2" '
		BEGIN { n = 0 }
		NR == FNR { cl[n] = $1; clen[n] = $2; cdev[n] = $3; coff[n] = $4; n++; next }
		function emit(l, d, p, k, u) {
			if (have && d == pd && u == pu && pl + pn == l && pp + pn == p) { pn += k; return }
			if (have) print pd, pl, pp, pn pu
			pd = d; pl = l; pp = p; pn = k; pu = u; have = 1
		}
		/^ *[0-9]+:/ {
			if ($0 ~ /inline/) next
			gsub(/[:.]+/, " ")
			l = $2 * bs; p = $4 * bs; len = $6 * bs; u = ($0 ~ /unwritten/) ? " unwritten" : ""
			while (len > 0) {
				for (i = 0; i < n; i++)
					if (p >= cl[i] && p < cl[i] + clen[i]) break
				if (i == n) { print "no chunk for logical " p; exit 1 }
				take = cl[i] + clen[i] - p
				if (take > len) take = len
				emit(l / bs, cdev[i], (coff[i] + p - cl[i]) / bs, take / bs, u)
				l += take; p += take; len -= take
			}
		}
		END { if (have) print pd, pl, pp, pn pu }' "$3" -
}

# bmount DEV NAME [mount options]: mounts DEV on $WORK/NAME; sets MNT.
bmount() {
	local dev=$1 name=$2
	shift 2
	MNT=$WORK/$name
	mkdir -p "$MNT"
	mount "$@" "$dev" "$MNT" || { echo "mount $dev failed"; exit 1; }
	MOUNTS+=("$MNT")
}

# nocow_file NAME: an empty NOCOW file (chattr +C works only while a file is empty).
nocow_file() {
	: >"$1" && chattr +C "$1"
}

# disk_of TABLE: the disk recorded in the table.
disk_of() {
	"$MAPTBL" dump "$1" | sed -n 's/^Disk: \(.*\) (id .*/\1/p'
}

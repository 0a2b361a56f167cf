#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# maptbl stats: the progress line (files, MiB, rate) goes to stderr only when stderr is a
# terminal, and is erased at the end; otherwise stderr stays silent. script(1) gives the command
# a pseudo-terminal.
. "$(dirname "$0")/../lib.sh"
command -v script >/dev/null || { echo "SKIP: no script(1)"; exit 77; }
mkdir -p tree/d
for i in $(seq 40); do echo "$i" > "tree/d/f$i"; done
echo "== stderr is a terminal"
script -qec "'$MAPTBL' stats tree --json >/dev/null" /dev/null > tty.out
echo "[exit $?]"
grep -aq 'files, [0-9.]* MiB, [0-9]* files/s' tty.out && echo "progress line shown"
# the line is erased at the end: the output ends with CR and erase-line
[ "$(tail -c 4 tty.out | od -An -c | tr -d ' ')" = '\r033[K' ] && echo "and erased"
echo "== stderr is a file"
"$MAPTBL" stats tree --json > out.json 2> err.txt
echo "[exit $?] stderr: $(wc -c < err.txt) bytes"
grep -m1 '"files"' out.json

# SPDX-License-Identifier: MIT
# Helpers for tests/cli/*/test.sh (sourced). The tests print what they observe; run.sh compares it
# with the golden file, so every printed line is an assertion.

# run CMD...: runs $MAPTBL with the arguments, prints its output and then "[exit N]".
run() {
	"$MAPTBL" "$@" 2>&1
	echo "[exit $?]"
}

# count_lines CMD...: like run, but prints only the number of output lines and the status.
count_lines() {
	local out rc
	out=$("$MAPTBL" "$@" 2>&1)
	rc=$?
	echo "$(printf '%s\n' "$out" | wc -l) lines [exit $rc]"
}

# files: the files in the current directory (to show nothing partial was left behind).
files() {
	echo "files: $(ls -A | grep -v '^\.out$' | tr '\n' ' ')"
}

# fail MSG: a test.sh assertion that does not fit the golden output.
fail() {
	echo "ASSERTION FAILED: $*"
	exit 1
}

#!/bin/sh
# SPDX-License-Identifier: MIT
#
# build-installed.sh PREFIX
#
# Checks that an installed libmaptbl (cmake --install BUILD --prefix PREFIX) can be used the three
# ways a consumer would: examples/use_installed.c compiled with the flags from pkg-config and run
# against the shared library, linked with libmaptbl.a, and built by the CMake project in
# examples/cmake-consumer/ with find_package(maptbl). All runs must print the same, expected,
# lookups. Exits 0 on success, 1 on a failure, 2 on usage errors.
set -eu

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 PREFIX   (a directory libmaptbl was installed into)" >&2
	exit 2
fi
prefix=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/maptbl-installed.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
	echo "build-installed.sh: $*" >&2
	exit 1
}

# GNUInstallDirs puts the library in lib/ or lib/<multiarch>/ depending on the prefix: find the
# .pc file instead of guessing.
pc=$(find "$prefix" -path '*/pkgconfig/libmaptbl.pc' 2>/dev/null | head -n 1)
[ -n "$pc" ] || fail "no pkgconfig/libmaptbl.pc under $prefix"
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
cflags=$(pkg-config --cflags libmaptbl)
libs=$(pkg-config --libs libmaptbl)
libdir=$(pkg-config --variable=libdir libmaptbl)
libdir=$(cd "$libdir" && pwd) # the .pc file is relocatable: ${pcfiledir}/../..
echo "pkg-config: $pc"
echo "  cflags: $cflags"
echo "  libs:   $libs"
[ -f "$libdir/libmaptbl.so" ] || fail "$libdir/libmaptbl.so is missing"
[ -f "$libdir/libmaptbl.a" ] || fail "$libdir/libmaptbl.a is missing"

# What use_installed prints (docs/FORMAT.md §9), after its version line.
cat >"$tmp/expected" <<'OUT'
512-byte table, 3 extents, depth 1
block  3: mapped    pblk 1003  run 5
block 10: hole      pblk 0     run 6
block 17: unwritten pblk 2001  run 3
block 50: hole      pblk 0     run 14
block 64: past the end of the virtual disk
OUT

check() { # NAME OUTPUT-FILE
	echo "== $1"
	cat "$2"
	tail -n +2 "$2" | diff -u "$tmp/expected" - || fail "$1: unexpected output"
}

# 1. Shared library, flags from pkg-config; strict C11 to check the installed headers too.
strict="-std=c11 -pedantic -Wall -Wextra -Werror"
# shellcheck disable=SC2086 # the flags are word lists
$cc $strict $cflags -o "$tmp/use_shared" "$here/use_installed.c" $libs
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/use_shared" >"$tmp/out1"
LD_LIBRARY_PATH="$libdir" ldd "$tmp/use_shared" | grep -q "$libdir/libmaptbl.so" ||
	fail "the shared build did not load $libdir/libmaptbl.so"
check "pkg-config, shared" "$tmp/out1"

# 2. Static library: no libmaptbl.so needed at run time.
# shellcheck disable=SC2086
$cc $strict $cflags -o "$tmp/use_static" "$here/use_installed.c" "$libdir/libmaptbl.a"
if ldd "$tmp/use_static" | grep -q libmaptbl; then
	fail "the static build still needs libmaptbl.so"
fi
"$tmp/use_static" >"$tmp/out2"
check "pkg-config cflags, libmaptbl.a" "$tmp/out2"

# 3. CMake: find_package(maptbl) and the maptbl::maptbl / maptbl::maptbl_static targets.
cmake -S "$here/cmake-consumer" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_C_COMPILER="$cc" >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log" >&2; fail "cmake configure"; }
cmake --build "$tmp/cmake" >>"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log" >&2; fail "cmake build"; }
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/cmake/use_installed" >"$tmp/out3"
check "CMake find_package, maptbl::maptbl" "$tmp/out3"
"$tmp/cmake/use_installed_static" >"$tmp/out4"
check "CMake find_package, maptbl::maptbl_static" "$tmp/out4"

echo "build-installed.sh: all four builds print the expected lookups"

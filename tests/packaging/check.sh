#!/usr/bin/env bash
# Usage: check.sh SOURCE_ROOT WORK_DIR COMPILER...
# The ways another project takes Scribe, and that its package tells the truth:
#  1. `meson setup -Dtests=false -Dprogram=false` + `meson install` builds nothing
#     and installs only the headers, scribe.pc and scribe-mpi.pc.
#  2. Consumers built with only what the package declares. pkg-config sees only the
#     .pc files of scribe's requirements (Requires, followed recursively), and the
#     compiler (-nostdinc) sees its own headers (libstdc++, its builtins), libc's,
#     and of the rest of /usr/include only the files of the Debian packages that own
#     those .pc files: a requirement scribe.pc leaves out is a header not found.
#     With the flags of `pkg-config --cflags --libs scribe`, every installed header
#     but parallel/mpi.hpp compiles, and a program (scribe.hpp and cpu.hpp: a graph
#     run on the CPU, exported as HLO) builds and runs; parallel/mpi.hpp does not
#     compile without MPI, and compiles and links with scribe-mpi.pc.
#  3. Each requirement is needed: without its package's headers, the headers do not
#     compile.
#  4. A Meson subproject: dependency('scribe') and dependency('scribe-mpi').
# Steps 2 and 3 need dpkg (Debian); without it they are skipped and so is the test.
set -euo pipefail
src=$1 work=$2
shift 2
cxx=("$@")
here=$src/tests/packaging
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }

echo "== header-only install: meson setup -Dtests=false -Dprogram=false; meson install"
CXX="${cxx[*]}" meson setup "$work/lib" "$src" -Dtests=false -Dprogram=false >"$work/lib-setup.log" ||
  { cat "$work/lib-setup.log"; fail "meson setup"; }
if meson introspect --targets "$work/lib" | grep -q '"type": *"executable"'; then
  fail "-Dprogram=false still has a program to build"
fi
meson install -C "$work/lib" --destdir "$work/inst" >"$work/lib-install.log"
extra=$(cd "$work/inst" && find . ! -type d | grep -v -e '/include/scribe/' -e '/pkgconfig/scribe\.pc$' -e '/pkgconfig/scribe-mpi\.pc$' || true)
[ -z "$extra" ] || fail "installed more than the headers and the .pc files: $extra"
pc=$(find "$work/inst" -name scribe.pc)
[ -n "$pc" ] && [ -f "$(dirname "$pc")/scribe-mpi.pc" ] || fail "scribe.pc and scribe-mpi.pc not installed"
prefix=$(sed -n 's/^prefix=//p' "$pc")
inc=$work/inst$prefix/include
echo "ok: $(find "$inc" -name '*.hpp' | wc -l) headers, $(basename "$pc"), scribe-mpi.pc; nothing built"
grep '^Requires' "$pc" "$(dirname "$pc")/scribe-mpi.pc" | sed "s|^$work/inst||"

isolated=yes
command -v dpkg-query >/dev/null || isolated=no
if [ $isolated = yes ]; then
  echo "== consumers that see only the declared requirements"
  # The pkg-config files the consumers see: Scribe's (prefix moved into the staging
  # folder) and those of the requirements, collected below.
  pcdir=$work/pc
  mkdir -p "$pcdir"
  for f in "$pc" "$(dirname "$pc")/scribe-mpi.pc"; do
    sed "s|^prefix=.*|prefix=$work/inst$prefix|" "$f" >"$pcdir/$(basename "$f")"
  done
  host_pc() { PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" pkg-config "$@"; }
  iso_pc() { env -u PKG_CONFIG_PATH -u PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR="$pcdir" pkg-config "$@"; }

  # The requirements of package $1 (Requires and Requires.private), followed
  # recursively: owner_of[name] is the Debian package that owns name's .pc file,
  # which is copied to $pcdir.
  declare -A owner_of=()
  closure() {
    local names n path real
    names=$( (host_pc --print-requires "$1" && host_pc --print-requires-private "$1") | awk '{print $1}') ||
      fail "pkg-config cannot resolve the requirements of $1: $(host_pc --print-requires "$1" 2>&1 | tail -n 1)"
    for n in $names; do
      [ -z "${owner_of[$n]:-}" ] || continue
      if [ "$n" = scribe ]; then owner_of[$n]=scribe; closure "$n"; continue; fi  # scribe-mpi's
      path=$(host_pc --path "$n") || fail "no $n.pc"
      real=$(readlink -f "$path")
      cp "$real" "$pcdir/$n.pc"
      owner_of[$n]=$(dpkg-query -S "$real" | head -n 1 | sed 's/: .*//') || fail "no Debian package owns $real"
      closure "$n"
    done
  }
  closure scribe
  scribe_names=("${!owner_of[@]}")
  mpi=yes
  host_pc --exists mpi || mpi=no
  [ $mpi = no ] || closure scribe-mpi

  # /usr/include, one tree per Debian package: libc's (as much part of the
  # compiler as libstdc++) and the requirements' owners.
  libc_pkgs=$(dpkg-query -S /usr/include/stdio.h /usr/include/linux/types.h | sed 's/: .*//' | sort -u)
  tree() {
    local d=$work/root/${1%%:*}
    [ -d "$d" ] && return 0
    mkdir -p "$d"
    dpkg-query -L "$1" | grep -E '^/usr/(local/)?include/' | while read -r f; do
      [ -d "$f" ] && [ ! -L "$f" ] || printf '%s\n' "${f#/}"
    done >"$d.files"
    [ -s "$d.files" ] || return 0
    tar -C / -chf - --no-recursion -T "$d.files" | tar -C "$d" -xf -
  }
  for p in $libc_pkgs $(printf '%s\n' "${owner_of[@]}" | grep -vx scribe | sort -u); do tree "$p"; done

  # The compiler's own search list, with /usr/include and /usr/include/<dir> (the
  # folders every -dev package writes to) replaced by the trees of packages $@.
  mapfile -t sysdirs < <("${cxx[@]}" -x c++ -E -v - </dev/null 2>&1 |
    sed -n '/^#include <\.\.\.> search starts here:/,/^End of search list\./p' | sed '1d;$d;s/^ *//')
  [ ${#sysdirs[@]} -gt 0 ] || fail "cannot read the compiler's include search list"
  iso_flags() {
    local d r p
    iso=(-nostdinc)
    for d in "${sysdirs[@]}"; do
      r=$(readlink -f "$d")
      if [ "$r" = /usr/local/include ]; then continue; fi
      if [ "$r" = /usr/include ] || [[ $r == /usr/include/* && $r != /usr/include/*/* && $r != /usr/include/c++ ]]; then
        for p in "$@"; do [ ! -d "$work/root/${p%%:*}$r" ] || iso+=(-isystem "$work/root/${p%%:*}$r"); done
      else
        iso+=(-isystem "$r")
      fi
    done
  }
  owners() { local n; for n in "$@"; do [ "${owner_of[$n]}" = scribe ] || echo "${owner_of[$n]}"; done | sort -u; }
  mapfile -t scribe_pkgs < <(owners "${scribe_names[@]}")
  echo "scribe's requirements: ${scribe_names[*]} (Debian packages: ${scribe_pkgs[*]})"

  read -ra cflags <<<"$(iso_pc --cflags scribe)"
  read -ra libs <<<"$(iso_pc --libs scribe)"
  echo "pkg-config --cflags --libs scribe: ${cflags[*]//$work/WORK} ${libs[*]}"
  iso_flags $libc_pkgs "${scribe_pkgs[@]}"
  (cd "$inc" && find scribe -name '*.hpp' ! -path scribe/parallel/mpi.hpp | LC_ALL=C sort | sed 's/.*/#include <&>/'
   echo 'int main() {}') >"$work/all_headers.cpp"
  "${cxx[@]}" "${iso[@]}" "${cflags[@]}" -fsyntax-only "$work/all_headers.cpp" ||
    fail "the installed headers do not compile with only scribe.pc's requirements"
  echo "ok: every header but parallel/mpi.hpp compiles"
  "${cxx[@]}" "${iso[@]}" "${cflags[@]}" "$here/consumer.cpp" -o "$work/consumer-pc" "${libs[@]}" ||
    fail "the consumer does not build with only scribe.pc's requirements"
  "$work/consumer-pc" >"$work/consumer-pc.out" || { cat "$work/consumer-pc.out"; fail "the consumer failed"; }
  echo "ok: the consumer builds, runs a graph on the CPU and exports HLO"
  if echo '#include <scribe/parallel/mpi.hpp>' | "${cxx[@]}" "${iso[@]}" "${cflags[@]}" -x c++ -E - -o /dev/null 2>/dev/null; then
    fail "parallel/mpi.hpp compiles without MPI: scribe.pc brings MPI in"
  fi

  # Each requirement is needed: the headers without its package's files.
  for p in "${scribe_pkgs[@]}"; do
    rest=()
    for q in "${scribe_pkgs[@]}"; do [ "$q" = "$p" ] || rest+=("$q"); done
    iso_flags $libc_pkgs "${rest[@]}"
    if err=$("${cxx[@]}" "${iso[@]}" "${cflags[@]}" -E "$work/all_headers.cpp" -o /dev/null 2>&1); then
      fail "scribe.pc requires what $p provides, but the headers compile without it"
    fi
    echo "ok: without $p: $(grep -m1 'fatal error' <<<"$err" | sed -e "s|^$inc/||" -e "s|^$work/root/[^/]*/usr/include/||")"
  done

  if [ $mpi = yes ]; then
    mapfile -t mpi_pkgs < <(owners "${!owner_of[@]}")
    read -ra mcflags <<<"$(iso_pc --cflags scribe-mpi)"
    read -ra mlibs <<<"$(iso_pc --libs scribe-mpi)"
    iso_flags $libc_pkgs "${mpi_pkgs[@]}"
    "${cxx[@]}" "${iso[@]}" "${mcflags[@]}" "$here/mpi_consumer.cpp" -o "$work/mpi-consumer-pc" "${mlibs[@]}" ||
      fail "parallel/mpi.hpp does not build with only scribe-mpi.pc's requirements"
    echo "ok: parallel/mpi.hpp compiles and links with scribe-mpi.pc (Debian packages: ${mpi_pkgs[*]})"
  else
    echo "skipped: scribe-mpi.pc (no MPI here)"
  fi
else
  echo "skipped: the consumers with only the declared requirements need dpkg (Debian)"
fi

echo "== Meson subproject"
mkdir -p "$work/sub/subprojects"
ln -s "$src" "$work/sub/subprojects/scribe"
cp "$here/consumer.cpp" "$here/mpi_consumer.cpp" "$work/sub/"
cat > "$work/sub/meson.build" <<'MESON'
project('consumer', 'cpp')
subproject('scribe', default_options: ['tests=false'])
executable('consumer', 'consumer.cpp', dependencies: dependency('scribe'))
scribe_mpi = dependency('scribe-mpi', required: false)
if scribe_mpi.found()
  executable('mpi_consumer', 'mpi_consumer.cpp', dependencies: scribe_mpi)
endif
MESON
CXX="${cxx[*]}" meson setup "$work/sub/build" "$work/sub" >"$work/sub-setup.log" ||
  { cat "$work/sub-setup.log"; fail "meson setup of the subproject consumer"; }
ninja -C "$work/sub/build" >"$work/sub-build.log" || { cat "$work/sub-build.log"; fail "subproject consumer build"; }
"$work/sub/build/consumer" >/dev/null || fail "the subproject consumer failed"
echo "ok: subproject consumer builds and runs$([ -x "$work/sub/build/mpi_consumer" ] && echo ', scribe-mpi consumer builds')"
if [ $isolated = no ]; then exit 77; fi
echo "ok: installed and subproject consumers build and run"

# Sourced by demo.sh and test.sh: installs what is missing, and only that.
#   scribe_setup_system   Debian packages (compiler, Meson, Ninja, Catch2, xtensor, ...)
#   scribe_setup_bench    what only the benchmarks need (cmake, for llama.cpp)
#   scribe_setup_python   .venv with jax/jaxlib/numpy/pytest for the XLA suite
#   scribe_setup_reference  .venv-ref with torch/transformers/tokenizers, for the
#                         scripts that make test data and for the benchmarks' peers
# Both may be run again: they check before they install.
set -euo pipefail

SCRIBE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

scribe_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "scribe: need root to run: $*" >&2; return 1
  fi
}

scribe_setup_system() {
  scribe_apt g++ meson ninja-build pkg-config catch2 libxtensor-dev libxsimd-dev \
    nlohmann-json3-dev libopenblas-dev python3 python3-venv \
    libopenmpi-dev openmpi-bin `# tensor-parallel ranks as processes (mpirun)` \
    clang-19 `# the second compiler test.sh builds the suite with (build-clang19)` \
    libclang-rt-19-dev `# its libFuzzer and sanitizers, for tests/fuzz` \
    pybind11-dev python3-dev  # the Python package's native module (python/)
}

# What the benchmarks need beyond that: cmake, which builds llama.cpp (a peer of
# decoder_bench, bench/llama_cpp.py); never the tests.
scribe_setup_bench() {
  scribe_apt cmake
}

# Installs the Debian packages given that are missing.
scribe_apt() {
  local pkgs=("$@")
  local missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "scribe: installing Debian packages: ${missing[*]}"
    scribe_as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive scribe_as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# A virtual environment $1 with the requirements file $2 installed ($3 says what
# it is for); reinstalled only when the requirements change.
scribe_venv() {
  local venv=$1 req=$2 what=$3
  local stamp="$venv/.requirements"
  if [ -x "$venv/bin/python" ] && cmp -s "$req" "$stamp" 2>/dev/null; then return 0; fi
  echo "scribe: preparing $what in $(basename "$venv")"
  local py=/usr/bin/python3
  [ -x "$py" ] || py=$(command -v python3)
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
}

scribe_setup_python() {
  scribe_venv "$SCRIBE_ROOT/.venv" "$SCRIBE_ROOT/tests/xla/requirements.txt" "the Python environment for the XLA suite"
}

scribe_setup_reference() {
  scribe_venv "$SCRIBE_ROOT/.venv-ref" "$SCRIBE_ROOT/scripts/reference/requirements.txt" \
    "the reference Python environment (PyTorch, transformers)"
}

# Configures (once) and builds build dir $1 with extra Meson options $2...: every
# target, or only the ones named after a `--` (scribe_build DIR OPTIONS -- TARGETS).
# The compiler is Meson's choice (c++), or $CXX when the dir is first configured.
scribe_build() {
  local dir=$1; shift
  local opts=() targets=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  if [ $# -gt 0 ]; then shift; targets=("$@"); fi
  if [ ! -f "$SCRIBE_ROOT/$dir/build.ninja" ]; then
    meson setup "$SCRIBE_ROOT/$dir" "$SCRIBE_ROOT" "${opts[@]}"
  else
    # A build folder set up before an option existed knows no such option: then
    # it is set up again with the options (its build outputs are kept).
    meson configure "$SCRIBE_ROOT/$dir" "${opts[@]}" >/dev/null 2>&1 ||
      meson setup --reconfigure "$SCRIBE_ROOT/$dir" "$SCRIBE_ROOT" "${opts[@]}" >/dev/null
  fi
  ninja -C "$SCRIBE_ROOT/$dir" "${targets[@]}"
}

# The King James Version (1611, public domain) from Debian's bible-kjv, one verse a
# line with the references dropped (31,102 verses): the demo model's training
# text (scripts/train_demo.sh, bench/precision_study.sh). Installs bible-kjv if
# missing and writes the text to $1.
scribe_kjv_text() {
  if ! command -v bible >/dev/null; then
    echo "scribe: installing Debian's bible-kjv (the demo's training text)"
    scribe_as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive scribe_as_root apt-get install -y -qq bible-kjv >/dev/null
  fi
  bible -f Gen1:1-Rev22:21 | sed -E 's/^[1-3]?[A-Za-z]+[0-9]+:[0-9]+ //; s/[[:space:]]+$//' >"$1"
  local verses
  verses=$(wc -l <"$1")
  if [ "$verses" != 31102 ]; then
    echo "scribe: expected 31102 verses from \`bible\`, got $verses" >&2
    return 1
  fi
}

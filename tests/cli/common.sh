# Shared by the `scribe` program's checks (sourced; needs $scribe, $data, $work).
fail() { echo "FAIL: $*"; exit 1; }
# contains TEXT PATTERN...: grep -q on a here-string (`echo | grep -q` under pipefail
# fails when grep exits before echo has written).
contains() { local text=$1; shift; grep -q "$@" <<< "$text"; }

golden() {  # golden MODEL: the first golden prompt and its greedy continuation
  python3 -c "import json,sys; p=json.load(open('$data/$1/golden.json'))['prompts'][0]; sys.stdout.write(p['text']+p['greedy_text'])"
}
prompt() {  # prompt MODEL: the first golden prompt
  python3 -c "import json,sys; sys.stdout.write(json.load(open('$data/$1/golden.json'))['prompts'][0]['text'])"
}
expect_error() {  # expect_error TEXT ARGS...: exit status 1 and TEXT on stderr
  local text=$1; shift
  set +e; "$scribe" "$@" >/dev/null 2>"$work/err"; local rc=$?; set -e
  [ $rc = 1 ] || fail "'$*' exited $rc"
  grep -qF -- "$text" "$work/err" || fail "'$*' said: $(cat "$work/err")"
}
# OpenMPI never frees what MPI_Init allocates (a bare MPI_Init + MPI_Finalize program
# built with -fsanitize=address reports 57 leaks), so under the sanitizers the
# processes mpirun starts run without LeakSanitizer; every other check stays on.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # CI runs as root
export OMPI_MCA_rmaps_base_oversubscribe=1  # 4 ranks on a 2-core machine
mpirun() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" command mpirun "$@"; }

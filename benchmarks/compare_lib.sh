# compare_lib.sh: the shell shared by benchmarks/compare_vae.sh, compare_ae.sh and compare_ddpm.sh
# (sourced, not run): PyTorch's best environment on this machine, the quiet-machine wait, argument
# checks, the work directory, the interleaved rounds and the summary's Python helpers.
#
# A script sets CMP_NAME (its name in messages, "compare_vae.sh"), sources this file after its
# `set -euo pipefail` line (whose comment block above it is its --help), sets its own defaults
# (ROUNDS THREADS SEED ...) and defines
#   run_gentape ROUND SEED           one gentape run
#   run_torch ROUND SEED VARIANT     one reference run, VARIANT torch (best) or torch-plain (no
#                                    malloc tunables, with --plain)
# then calls cmp_rounds, which alternates the order of the engines from round to round so that a
# noisy machine's drift falls on both.
#
# PyTorch at its best here (benchmarks/reference/README.md): OpenBLAS via LD_LIBRARY_PATH,
# OPENBLAS_CORETYPE unset, glibc's malloc told not to unmap big temporaries, OMP_NUM_THREADS = T.

PY=/usr/bin/python3   # Debian's python: the one with python3-torch
OPENBLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-openmp
MALLOC_TUNABLES="glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295"
CMP_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The options every script takes (cmp_common_option), their defaults.
PLAIN=0
RUN_GENTAPE=1
RUN_TORCH=1
KEEP=""
QWAIT=0

cmp_usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[-1]}" | sed '$d; s/^# \{0,1\}//'; }

# ARGS...: one of the options every script takes, from the script's `case` fallback: sets CMP_SHIFT
# (how many arguments it used); an unknown option exits 2.
cmp_common_option() {
  CMP_SHIFT=2
  case "$1" in
    --rounds) ROUNDS="$2" ;;
    --threads) THREADS="$2" ;;
    --seed) SEED="$2" ;;
    --keep) KEEP="$2" ;;
    --quiet-wait) QWAIT="$2" ;;
    --plain) PLAIN=1; CMP_SHIFT=1 ;;
    --torch-only) RUN_GENTAPE=0; CMP_SHIFT=1 ;;
    --gentape-only) RUN_TORCH=0; CMP_SHIFT=1 ;;
    -h|--help) cmp_usage; exit 0 ;;
    *) echo "$CMP_NAME: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
}

# VAR...: each variable holds an integer >= 1 (VAR:0, >= 0); otherwise exits 2 naming it.
cmp_check_ints() {
  local spec v
  for spec in "$@"; do
    v="${spec%:0}"
    if ! [[ "${!v}" =~ ^[0-9]+$ ]] || { [ "${!v}" -lt 1 ] && [ "$v" = "$spec" ]; }; then
      echo "$CMP_NAME: $v must be a positive integer, got '${!v}'" >&2; exit 2
    fi
  done
}

# MODULE...: $PY imports them (exits 1 otherwise); warns when OpenBLAS is missing.
cmp_check_torch() {
  local mods="$1" m
  shift
  for m in "$@"; do mods+=", $m"; done
  "$PY" -c "import $mods" 2>/dev/null || { echo "$CMP_NAME: $PY has no ${mods//, //} (apt-get install python3-torch)" >&2; exit 1; }
  [ -e "$OPENBLAS_DIR/libblas.so.3" ] ||
    echo "$CMP_NAME: warning: $OPENBLAS_DIR missing (apt-get install libopenblas0-openmp); PyTorch will use whatever libblas.so.3 is" >&2
}

# TARGET: sets BENCH=$BUILD/benchmarks/TARGET; with DO_BUILD=1 configures $BUILD (Release) if it has
# no CMakeCache.txt and builds TARGET (a no-op when up to date). Exits 1 when there is no binary.
cmp_build_bench() {
  local tag="${CMP_NAME%.sh}" log="${TMPDIR:-/tmp}/${CMP_NAME%.sh}_build.$$.log"
  BENCH="$BUILD/benchmarks/$1"
  if [ "$DO_BUILD" = 1 ]; then
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
      echo "$tag: configuring $BUILD (Release)"
      cmake -S "$root" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release > /dev/null
    fi
    echo "$tag: building $1 in $BUILD (a no-op when up to date)"
    cmake --build "$BUILD" --target "$1" -j "$(nproc)" > "$log" 2>&1 || {
      echo "$CMP_NAME: building $1 failed:" >&2; tail -20 "$log" >&2; exit 1; }
    rm -f "$log"
  fi
  [ -x "$BENCH" ] || { echo "$CMP_NAME: no $BENCH (drop --no-build, or give --build DIR)" >&2; exit 1; }
}

# GLOB: sets work, the directory of the runs: --keep DIR (refused when it already holds files
# matching GLOB), or a temporary directory removed at exit.
cmp_workdir() {
  if [ -n "$KEEP" ]; then
    mkdir -p "$KEEP"; work="$(cd "$KEEP" && pwd)"
    if compgen -G "$work/$1" > /dev/null; then
      echo "$CMP_NAME: --keep $KEEP already holds runs: give a new or empty directory" >&2; exit 1
    fi
  else
    work="$(mktemp -d "${TMPDIR:-/tmp}/${CMP_NAME%.sh}.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
  fi
}
cmp_keep_note() { [ -n "$KEEP" ] || printf ' (removed at exit; --keep DIR keeps them)'; }

load() { cut -d' ' -f1-3 /proc/loadavg; }
busy_pct() {  # percent of all CPUs busy over the next $1 seconds (/proc/stat; iowait counts as idle)
  local a b
  read -r -a a < <(grep '^cpu ' /proc/stat); sleep "$1"; read -r -a b < <(grep '^cpu ' /proc/stat)
  local tot=0 idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) i
  for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
  echo $(( tot > 0 ? 100 * (tot - idle) / tot : 0 ))
}
wait_quiet() {
  [ "$QWAIT" -gt 0 ] || return 0
  local t0=$SECONDS b
  while :; do
    b=$(busy_pct 2)
    [ "$b" -lt 10 ] && return 0
    if ((SECONDS - t0 >= QWAIT)); then echo "      (still ${b}% busy after ${QWAIT} s of waiting: running anyway)"; return 0; fi
  done
}

# The engines that will run, for the first line of the report ("gentape torch ").
cmp_engines() {
  if [ "$RUN_GENTAPE" = 1 ]; then printf 'gentape '; fi
  if [ "$RUN_TORCH" = 1 ]; then printf 'torch '; fi
  if [ "$PLAIN" = 1 ]; then printf 'torch-plain '; fi
}

# The machine, its load now, and a warning when it is busy.
cmp_machine() {
  local b
  echo "  machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) CPUs; load average now $(load)"
  b=$(busy_pct 1)
  if [ "$b" -ge 25 ]; then
    echo "  warning: the machine is ${b}% busy: with several threads each, both engines slow down far more than"
    echo "  their share (a descheduled OpenMP thread stalls every barrier); compare medians, or use --quiet-wait W"
  fi
}

# ROUND LABEL SEED [WHAT]: waits for a quiet machine (--quiet-wait), then announces the run.
cmp_start() {
  wait_quiet
  printf '  [round %s] %-12s %sseed %s  (load %s)\n' "$1" "$2" "${4:+$4  }" "$3" "$(load)"
}

# MESSAGE LOG: a run failed: says so with the tail of its log, exits 1.
cmp_fail() {
  echo "$CMP_NAME: $1 ($2):" >&2; tail -20 "$2" >&2; exit 1
}

# VARIANT COMMAND...: runs COMMAND in PyTorch's best environment with $THREADS threads (VARIANT
# torch-plain: without the malloc tunables).
cmp_torch_env() {
  local tun=(GLIBC_TUNABLES="$MALLOC_TUNABLES")
  [ "$1" = torch-plain ] && tun=(-u GLIBC_TUNABLES)
  shift
  env -u OPENBLAS_CORETYPE "${tun[@]}" OMP_NUM_THREADS="$THREADS" \
    LD_LIBRARY_PATH="$OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"
}

# LOG: the reference's header (which BLAS, which environment), and a warning when its sgemm_ is
# not OpenBLAS's.
cmp_torch_header() {
  sed -n '1,2s/^/      /p' "$1"
  if ! grep -q '\[OpenBLAS' "$1"; then
    echo "      warning: PyTorch's sgemm_ is not OpenBLAS's here (see the line above): not PyTorch at its best" >&2
  fi
}

cmp_run_round() {  # round seed engine...: every engine once, in the given order
  local e
  for e in "${@:3}"; do
    case "$e" in
      gentape) if [ $RUN_GENTAPE = 1 ]; then run_gentape "$1" "$2"; fi ;;
      torch) if [ $RUN_TORCH = 1 ]; then run_torch "$1" "$2" torch; fi ;;
      torch-plain) if [ $RUN_TORCH = 1 ] && [ $PLAIN = 1 ]; then run_torch "$1" "$2" torch-plain; fi ;;
    esac
  done
}

# [PASS...]: ROUNDS rounds, round r with seed SEED+r-1; each round runs every pass (one, empty, by
# default) with every engine once, gentape first in odd rounds and last in even ones. run_gentape
# and run_torch read the current pass from PASS.
cmp_rounds() {
  local r passes=("$@")
  [ ${#passes[@]} -gt 0 ] || passes=("")
  for ((r = 1; r <= ROUNDS; r++)); do
    for PASS in "${passes[@]}"; do
      if ((r % 2 == 1)); then cmp_run_round $r $((SEED + r - 1)) gentape torch torch-plain
      else cmp_run_round $r $((SEED + r - 1)) torch-plain torch gentape; fi
    done
  done
  echo "  done (load $(load))"
  echo
}

# ARGS...: runs the Python program on stdin (a summary) with benchmarks/compare_lib.py importable.
cmp_python() {
  PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$CMP_HERE${PYTHONPATH:+:$PYTHONPATH}" "$PY" - "$@"
}

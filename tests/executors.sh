#!/usr/bin/env bash
# The executors of `cargo xtask reproduce`, on the smoke profile, against each other:
#   inline                 the reference run;
#   local --jobs 2         a worker killed mid-stage, the rerun completes: same artifacts;
#   slurm                  a real one-node Slurm cluster (Debian's slurm-wlm and munge,
#                          tests/cluster/slurm-cluster.sh): it runs as several jobs, one of
#                          them is scancel'ed, the resubmission runs only that job, and the
#                          artifacts equal the inline run's.
# And those of `tanas run` on tests/cluster/run-experiment.toml: `local --jobs 2` and `slurm`
# make what the inline run makes.
# The Slurm part needs root and apt-get (to install slurm-wlm and munge); without them it
# says SKIPPED and why. Run by .ci/run after `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=${TANAS_EXECUTOR_TEST_DIR:-/tmp/tanas-executors}
rm -rf "$work"
mkdir -p "$work"
chmod 755 "$work"
t0=$SECONDS

say() { echo "== executors ($((SECONDS - t0)) s): $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
reproduce() { cargo xtask reproduce --profile smoke "$@"; }

# The same artifacts and report numbers (tests/cluster/same-artifacts.py says what is compared).
same_artifacts() {
  python3 tests/cluster/same-artifacts.py "$1" "$2" || fail "$1 and $2 differ"
}

# Waits (at most 300 s) until a process whose command line matches $1 runs; prints its pid.
wait_for_process() {
  local pid
  for _ in $(seq 1 3000); do
    pid=$(pgrep -f -- "$1" | head -1) && [ -n "$pid" ] && { echo "$pid"; return 0; }
    sleep 0.1
  done
  return 1
}

cargo build --quiet -p tanas-cli -p xtask
bin=${CARGO_TARGET_DIR:-$root/target}/debug
experiment=tests/cluster/run-experiment.toml
# `tanas run` of the small experiment into $1 with the executor options that follow.
run_experiment() {
  local out=$1
  shift
  "$bin/tanas" run "$experiment" --out "$out" --json "$@" >"$out.json" 2>"$out.log" ||
    { tail -20 "$out.log"; fail "tanas run $* into $out"; }
}

say "inline"
reproduce --out "$work/inline" >"$work/inline.log" 2>&1 || { tail -20 "$work/inline.log"; fail "inline run"; }
[ -s "$work/inline/REPORT.md" ] || fail "inline: no REPORT.md"

say "local --jobs 2, a worker killed"
reproduce --out "$work/local" --executor local --jobs 2 >"$work/local-1.log" 2>&1 &
driver=$!
victim=$(wait_for_process "search --dict $work/local/") || fail "no search stage started"
kill -9 "$victim"
if wait "$driver"; then fail "local: the run with a killed worker succeeded"; fi
grep -q "failed" "$work/local-1.log" || fail "local: no failure reported: $(tail -3 "$work/local-1.log")"
reproduce --out "$work/local" --executor local --jobs 2 >"$work/local-2.log" 2>&1 ||
  { tail -20 "$work/local-2.log"; fail "local: the rerun failed"; }
same_artifacts "$work/inline" "$work/local"
say "local: the rerun rebuilt the killed stage; artifacts equal the inline run's"

say "tanas run: inline and local --jobs 2"
run_experiment "$work/run-inline"
run_experiment "$work/run-local" --executor local --jobs 2
same_artifacts "$work/run-inline" "$work/run-local"

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "SKIPPED: the Slurm executor test needs root and apt-get to install slurm-wlm and munge"
  exit 0
fi
if ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null; } ||
    fail "cannot install slurm-wlm and munge"
fi
export SLURM_CI_DIR=$work/cluster
# shellcheck source=tests/cluster/slurm-cluster.sh
. "$root/tests/cluster/slurm-cluster.sh"
trap slurm_down EXIT
slurm_up || fail "the Slurm cluster did not start"

say "slurm, one job cancelled"
out=$work/slurm
reproduce --out "$out" --executor slurm --poll-s 1 >"$work/slurm-1.log" 2>&1 &
driver=$!
victim=
for _ in $(seq 1 600); do
  victim=$(squeue -h -t R -o "%i %j" | awk '/search/ { print $1; exit }')
  [ -n "$victim" ] && break
  kill -0 "$driver" 2>/dev/null || break
  sleep 0.5
done
[ -n "$victim" ] || { tail -20 "$work/slurm-1.log"; fail "slurm: no search job ran"; }
scancel "$victim"
if wait "$driver"; then fail "slurm: the run with a cancelled job succeeded"; fi
grep -q "did not finish" "$work/slurm-1.log" || fail "slurm: no failure reported: $(tail -3 "$work/slurm-1.log")"
arrays=$(squeue -h -t all -o %F | sort -u | wc -l)
[ "$arrays" -ge 3 ] || fail "slurm: $arrays job arrays, expected several"
undone=$(comm -23 \
  <(python3 -c 'import json,sys; print("\n".join(j.replace("/",".") for a in json.load(open(sys.argv[1]))[0]["arrays"] for j in a["jobs"]))' "$out/slurm/submissions.json" | sort) \
  <(ls "$out/slurm/done" | sort))
[ -n "$undone" ] || fail "slurm: every job finished although one was cancelled"
find "$out/artifacts/store" -name stamp.json -printf '%p %T@\n' | sort >"$work/stamps-before"

# The resubmission as docs/cluster.md runs a reproduction: the driver itself a Slurm job.
say "slurm, resubmitted by a driver job"
sbatch --wait --job-name=tanas-driver --cpus-per-task=1 --mem=1G --time=30 \
  --output="$work/slurm-2.log" \
  --wrap "$bin/xtask reproduce --profile smoke --out $out --tanas $bin/tanas --executor slurm --poll-s 1" >/dev/null ||
  { tail -20 "$work/slurm-2.log"; fail "slurm: the resubmission failed"; }
resubmitted=$(python3 -c 'import json,sys; print("\n".join(j.replace("/",".") for a in json.load(open(sys.argv[1]))[1]["arrays"] for j in a["jobs"]))' "$out/slurm/submissions.json" | sort)
[ "$resubmitted" = "$undone" ] || fail "slurm: resubmitted [$resubmitted], expected only the unfinished [$undone]"
find "$out/artifacts/store" -name stamp.json -printf '%p %T@\n' | sort >"$work/stamps-after"
[ -z "$(comm -23 "$work/stamps-before" "$work/stamps-after")" ] || fail "slurm: the resubmission rebuilt finished artifacts"
same_artifacts "$work/inline" "$out"
# The first submission held exactly the nodes of the job graph `--plan` prints.
planned=$(reproduce --out "$out" --plan 2>/dev/null |
  python3 -c 'import json,sys; print("\n".join(n["id"].replace("/",".") for n in json.load(sys.stdin)["nodes"]))' | sort)
submitted=$(python3 -c 'import json,sys; print("\n".join(j.replace("/",".") for a in json.load(open(sys.argv[1]))[0]["arrays"] for j in a["jobs"]))' "$out/slurm/submissions.json" | sort)
[ -n "$planned" ] && [ "$planned" = "$submitted" ] || fail "slurm: submitted [$submitted], the plan has [$planned]"
say "slurm: $arrays arrays, the cancelled job [$undone] alone resubmitted; artifacts equal the inline run's"

say "tanas run: slurm"
run_experiment "$work/run-slurm" --executor slurm --poll-s 1 --job-cpus 1 --job-mem-mib 1024 --job-time-s 600
python3 -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1]))[0]["arrays"]) < 3)' \
  "$work/run-slurm/slurm/submissions.json" || fail "tanas run: not submitted as several arrays"
same_artifacts "$work/run-inline" "$work/run-slurm"
echo "executors: all passed"

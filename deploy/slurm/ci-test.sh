#!/usr/bin/env bash
# A real Slurm test of sharded sweeps (run by .ci/run): installs slurm-wlm and munge with apt-get,
# starts a private one-node cluster on localhost (munged, slurmctld, slurmd, all in a temporary
# folder with their own socket, ports and state), and stops it at the end whatever happens. Then:
#   1. shards workloads/sweeps/shard-demo.yaml (30 points) over 4 array tasks
#      (sbatch --array=0-3 --wait shard.sbatch) and merges with a job chained by
#      --dependency=afterok; the merged CSV, PNG and SVG must equal the unsharded sweep's (cmp);
#   2. deletes shard 2's output: merge must fail with exit 2 naming shard 2 of 4;
#   3. reruns shard 2 alone (sbatch --array=2), merges again, compares again.
# Needs root and apt-get (Debian); where packages cannot be installed it prints SKIPPED and why.
# CLUSTERSIM: the binary (default target/release/clustersim). SLURM_TEST_PORT: slurmctld's port
# (default 16817; slurmd uses the next one).
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
bin=${CLUSTERSIM:-$repo/target/release/clustersim}
spec=workloads/sweeps/shard-demo.yaml
start=$SECONDS
say() { echo "[slurm-test $((SECONDS - start))s] $*"; }
skip() {
  echo "SKIPPED: Slurm test: $*"
  exit 0
}
fail() {
  echo "FAILED: Slurm test: $*" >&2
  exit 1
}

[ -x "$bin" ] || fail "$bin is not built (cargo build --release)"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
[ "$(id -u)" = 0 ] || skip "installing and starting slurm-wlm and munge needs root (running as uid $(id -u))"
command -v apt-get >/dev/null 2>&1 || skip "no apt-get here (not Debian-like): cannot install slurm-wlm and munge"

work=$(mktemp -d /tmp/clustersim-slurm.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  local code=$?
  if [ -n "${SLURM_CONF:-}" ] && command -v scancel >/dev/null 2>&1; then
    timeout 5 scancel --user=root >/dev/null 2>&1 || true
  fi
  # stop what this script started, by process id, newest first
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[$i]}" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  [ ${#pids[@]} -gt 0 ] && say "stopped munged, slurmctld, slurmd (pids ${pids[*]})"
  if [ "$code" != 0 ] && [ -d "$work/log" ]; then
    for f in "$work"/log/* "$work"/jobs/*; do [ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done
  fi
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. packages
if command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 \
  && command -v sbatch >/dev/null 2>&1 && command -v munged >/dev/null 2>&1; then
  say "slurm-wlm and munge already installed"
else
  say "installing slurm-wlm and munge (apt-get)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; } \
    >"$work/apt.log" 2>&1; then
    echo "--- apt-get output (last lines):"
    tail -n 5 "$work/apt.log"
    skip "apt-get could not install slurm-wlm and munge (no registry access?)"
  fi
fi
say "slurm-wlm $(dpkg-query -W -f='${Version}' slurm-wlm 2>/dev/null), munge $(dpkg-query -W -f='${Version}' munge 2>/dev/null)"

# 2. munge: a private daemon with its own key and socket
mkdir -p "$work/munge" "$work/log" "$work/state" "$work/spool" "$work/out" "$work/jobs"
chmod 700 "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
socket=$work/munge/munge.socket
munged --force --key-file="$work/munge/munge.key" --socket="$socket" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/log/munged.log" \
  --seed-file="$work/munge/munged.seed" || fail "munged did not start (log: $work/log/munged.log)"
for _ in $(seq 50); do [ -s "$work/munge/munged.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$work/munge/munged.pid")")
munge -n --socket="$socket" | unmunge --socket="$socket" >/dev/null || fail "munge does not round-trip"

# 3. one node on localhost, 4 CPUs declared (config_overrides: the real count may be smaller)
host=$(hostname -s)
port=${SLURM_TEST_PORT:-16817}
export SLURM_CONF=$work/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=clustersim-ci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=4 State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -D -f "$SLURM_CONF" >>"$work/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >>"$work/log/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  state=$(sinfo -h -o %T 2>/dev/null | head -n 1)
  [ "$state" = idle ] && break
  sleep 0.2
done
[ "${state:-}" = idle ] || fail "the node did not come up (sinfo state: ${state:-none})"
say "cluster up: node $host idle (slurmctld on port $port)"

export CLUSTERSIM=$bin
out=$work/out
shard_job() { # ARRAY: one sbatch of the shard script, waiting for every task
  timeout 120 sbatch --parsable --wait --array="$1" -o "$work/jobs/shard-%A_%a.out" \
    deploy/slurm/shard.sbatch 4 "$out" sweep "$spec"
}
merge_job() { # AFTER MERGED: the merge job chained with afterok, waited for
  timeout 60 sbatch --parsable --wait --dependency="afterok:$1" --kill-on-invalid-dep=yes \
    -o "$work/jobs/merge-%j.out" deploy/slurm/merge.sbatch "$out" "$2"
}
same_as_unsharded() {
  for f in shard-demo.csv shard-demo.png shard-demo.svg; do
    cmp "$work/whole/$f" "$1/$f" || fail "$1/$f differs from the unsharded $f"
  done
  say "merged $(basename "$1")/: shard-demo.csv, .png, .svg identical to the unsharded sweep (cmp)"
}

# 4. the unsharded sweep, for reference
"$bin" sweep "$spec" --out "$work/whole" | head -n 1

# 5. four shards as an array job, then the merge job chained on it
array=$(shard_job 0-3) || fail "array job failed (logs: $work/jobs)"
say "array job $array (--array=0-3 --wait) done:"
cat "$work"/jobs/shard-*.out | grep -E '^sweep|wrote' | sed 's/^/    /'
merge=$(merge_job "$array" "$work/merged") || fail "merge job failed"
say "merge job $merge (--dependency=afterok:$array) done:"
sed -n '1p;$p' "$work/jobs/merge-$merge.out" | sed 's/^/    /'
same_as_unsharded "$work/merged"

# 6. a lost shard: merge names it and writes nothing
rm -r "$out/shard-2"
"$bin" merge "$out"/shard-* --out "$work/merged-lost" 2>"$work/lost.err"
code=$?
[ "$code" = 2 ] || fail "merge without shard 2 exited $code, expected 2"
grep -q 'shard 2 of 4 is missing' "$work/lost.err" || fail "merge did not name shard 2: $(cat "$work/lost.err")"
[ ! -e "$work/merged-lost" ] || fail "the failed merge wrote $work/merged-lost"
say "shard 2 deleted: merge exits 2: $(cat "$work/lost.err")"

# 7. shard 2 rerun alone, merged again
again=$(shard_job 2) || fail "rerun of shard 2 failed"
say "shard 2 rerun alone (job $again, --array=2):"
grep -hE '^sweep' "$work/jobs/shard-${again}_2.out" | sed 's/^/    /'
merge=$(merge_job "$again" "$work/merged-again") || fail "second merge job failed"
same_as_unsharded "$work/merged-again"

say "PASSED: Slurm test in $((SECONDS - start)) s"

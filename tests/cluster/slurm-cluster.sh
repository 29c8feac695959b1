#!/usr/bin/env bash
# A one-node Slurm cluster on this machine for the executor tests (Debian's slurm-wlm 22.05
# and munge, run as root, no systemd). Source it, then `slurm_up` / `slurm_down`.
# Everything (config, state, logs, munge key and socket) lives under $SLURM_CI_DIR, which must
# sit under world-executable directories (munged checks its socket's path).

SLURM_CI_DIR=${SLURM_CI_DIR:-/tmp/tanas-slurm}

slurm_up() {
  local d=$SLURM_CI_DIR h cpus mem a t0=$SECONDS
  h=$(hostname)
  cpus=$(nproc)
  mem=$(awk '/MemAvailable/{print int($2/1024*0.8)}' /proc/meminfo)
  a=$d
  while a=$(dirname "$a"); [ "$a" != / ]; do
    [ ! -d "$a" ] || [ -n "$(find "$a" -maxdepth 0 -perm -o+x)" ] ||
      { echo "slurm_up: $a is not world-executable (munged needs that)" >&2; return 1; }
  done
  mkdir -p "$d"/{state,spool,log,munge}
  chmod 755 "$d" "$d/munge"
  [ -s "$d/munge/munge.key" ] || mungekey --create --keyfile="$d/munge/munge.key" || return 1
  chmod 600 "$d/munge/munge.key"
  munged --key-file="$d/munge/munge.key" --socket="$d/munge/munge.sock" \
    --pid-file="$d/munge/munged.pid" --log-file="$d/log/munged.log" \
    --seed-file="$d/munge/munged.seed" || return 1
  cat >"$d/slurm.conf" <<CONF
ClusterName=tanas-test
SlurmctldHost=$h
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge/munge.sock
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$d/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=3600
SchedulerParameters=sched_interval=1
NodeName=$h CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Default=YES Nodes=ALL MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$d/slurm.conf
  slurmctld -f "$SLURM_CONF" || return 1
  slurmd -f "$SLURM_CONF" || return 1
  local i s
  for i in $(seq 1 120); do
    s=$(sinfo -h -N -o %t 2>/dev/null)
    [ "$s" = idle ] && { echo "slurm up in $((SECONDS - t0)) s"; return 0; }
    case $s in down* | drain*) scontrol update nodename="$h" state=resume 2>/dev/null ;; esac
    sleep 0.5
  done
  echo "slurm node not idle (state: $s)" >&2
  tail -n 30 "$d"/log/*.log >&2
  return 1
}

# Cancels what is left (job steps outlive a killed slurmd), then stops the daemons by pid.
slurm_down() {
  local d=$SLURM_CI_DIR f p
  if [ -n "${SLURM_CONF:-}" ] && [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
    scancel --full $(squeue -h -o %i) 2>/dev/null
    sleep 2
  fi
  for f in "$d/slurmd.pid" "$d/slurmctld.pid" "$d/munge/munged.pid"; do
    [ -s "$f" ] || continue
    p=$(cat "$f")
    kill "$p" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$p" 2>/dev/null && kill -9 "$p"
  done
  return 0
}

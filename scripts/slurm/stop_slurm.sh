#!/usr/bin/env bash
# Stop what start_slurm.sh started, by PID file only (never by process name).
set -uo pipefail
H=${CFRNA_SLURM_HOME:-/tmp/cfrna-slurm}

stop() {  # name pidfile
  local pid
  [[ -s $2 ]] || return 0
  pid=$(cat "$2")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { echo "$1: SIGKILL $pid"; kill -KILL "$pid"; }
    echo "$1: stopped (pid $pid)"
  fi
  rm -f "$2"
}

# running jobs survive slurmd (slurmstepd): cancel them while the controller is up
if [[ -s $H/run/slurmctld.pid ]] && kill -0 "$(cat "$H/run/slurmctld.pid")" 2>/dev/null; then
  export SLURM_CONF=$H/etc/slurm.conf
  jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
  if [[ -n ${jobs// } ]]; then
    echo "cancelling jobs: $jobs"
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null
    for _ in $(seq 150); do [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break; sleep 0.1; done
  fi
fi
stop slurmd "$H/run/slurmd.pid"
stop slurmctld "$H/run/slurmctld.pid"
stop munged "$H/munge/munged.pid"
exit 0

#!/usr/bin/env bash
# Start cfrna's single-node SLURM on localhost for tests and demos (no systemd, no cgroups).
#
# Everything (slurm.conf, munge key and socket, state, spool, logs, PID files) lives under
# $CFRNA_SLURM_HOME (default /tmp/cfrna-slurm); nothing is written to /etc. Needs root and the
# Debian packages slurmctld slurmd slurm-client munge (SLURM 22.05). Completed jobs are logged
# to $CFRNA_SLURM_HOME/log/jobcomp.txt (JobId=… JobState=…), which tests use instead of sacct.
#
#   bash scripts/slurm/start_slurm.sh && source /tmp/cfrna-slurm/env.sh   # then sbatch/squeue work
#   bash scripts/slurm/stop_slurm.sh
# SLURM's ports 6817/6818 are fixed, so only one instance per machine.
set -euo pipefail

H=${CFRNA_SLURM_HOME:-/tmp/cfrna-slurm}
die() { echo "start_slurm.sh: error: $*" >&2; exit 1; }

for b in munged mungekey munge unmunge slurmctld slurmd sbatch sinfo; do
  command -v "$b" >/dev/null || die "'$b' not found; apt-get install slurmctld slurmd slurm-client munge"
done
[[ $(id -u) == 0 ]] || die "must run as root (slurmd starts jobs as their submitting user)"

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
for pf in "$H/munge/munged.pid" "$H/run/slurmctld.pid" "$H/run/slurmd.pid"; do
  alive "$pf" && die "already running ($pf); run scripts/slurm/stop_slurm.sh first"
done

t0=$(date +%s%N)
mkdir -p "$H"/{etc,munge,state,spool,log,run}
chmod 755 "$H" "$H/munge"   # clients need o+x on the munge socket folder

# munge: own key, own socket
[[ -s $H/munge/munge.key ]] || mungekey --create --keyfile="$H/munge/munge.key" --force
chmod 400 "$H/munge/munge.key"
rm -f "$H/munge/munge.socket.2" "$H/munge/munge.socket.2.lock"
munged --force --key-file="$H/munge/munge.key" --socket="$H/munge/munge.socket.2" \
  --pid-file="$H/munge/munged.pid" --log-file="$H/munge/munged.log" --seed-file="$H/munge/munged.seed"
for _ in $(seq 50); do [[ -S $H/munge/munge.socket.2 ]] && break; sleep 0.1; done
munge -n -S "$H/munge/munge.socket.2" | unmunge -S "$H/munge/munge.socket.2" >/dev/null \
  || die "munged does not answer; see $H/munge/munged.log"

# node description from slurmd -C (CPUs, topology, memory of this host)
node=$(hostname -s)
hw=$(slurmd -C | head -1)
cpus=$(sed -E 's/.*CPUs=([0-9]+).*/\1/' <<<"$hw")
topo=$(grep -oE '(Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=[0-9]+' <<<"$hw" | tr '\n' ' ')
mem=$(( $(sed -E 's/.*RealMemory=([0-9]+).*/\1/' <<<"$hw") - 512 ))   # above the real value drains the node
defmem=$(( mem / cpus / 2 ))                                          # jobs without --mem must not take it all

cat > "$H/etc/slurm.conf" <<CONF
# written by cfrna scripts/slurm/start_slurm.sh
ClusterName=cfrna
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$H/munge/munge.socket.2
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$H/state
SlurmdSpoolDir=$H/spool
SlurmctldPidFile=$H/run/slurmctld.pid
SlurmdPidFile=$H/run/slurmd.pid
SlurmctldLogFile=$H/log/slurmctld.log
SlurmdLogFile=$H/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$H/log/jobcomp.txt
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2,sched_min_interval=200000
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=${defmem}
EnforcePartLimits=ALL
ReturnToService=2
MinJobAge=300
KillWait=5
InactiveLimit=0
SlurmdTimeout=60
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} ${topo}RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP
CONF
echo "export SLURM_CONF=$H/etc/slurm.conf" > "$H/env.sh"
export SLURM_CONF=$H/etc/slurm.conf

slurmctld
slurmd

state=""
for _ in $(seq 300); do
  state=$(sinfo -h -N -o '%T' 2>/dev/null | head -1 || true)
  case $state in idle|mixed|allocated|completing) break ;; esac
  state=""; sleep 0.1
done
[[ -n $state ]] || die "node not schedulable; see $H/log/slurmctld.log and slurmd.log"
echo "SLURM up: node $node, $cpus CPUs, $mem MB, in $(( ($(date +%s%N) - t0) / 1000000 )) ms; source $H/env.sh"

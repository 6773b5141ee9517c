#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# slurm-local.sh: a real, throw-away, one-node Slurm cluster on this machine.
#
# `gw sweep --slurm` hands a sweep to Slurm. To test that (CI does) or just to try it without
# access to a cluster, this script runs Debian's own Slurm daemons (slurm-wlm 22.05) and munge,
# reachable on loopback only. All they need (slurm.conf, munge key and socket, controller
# state, spool, pid files, logs) goes into one folder DIR: nothing under /etc is changed and no
# system service is involved, so several such clusters can run side by side.
#
# Usage:
#   packaging/slurm-local.sh start DIR    start munged, slurmctld and slurmd with all their files
#                                         in DIR (created), wait until the node is idle, then
#                                         write DIR/env.sh
#   packaging/slurm-local.sh stop DIR     cancel what is still queued, stop the daemons of DIR
#   packaging/slurm-local.sh status DIR   exit 0 when the daemons run and the node takes jobs
#
#   source DIR/env.sh                     then sbatch, squeue, sinfo, scancel, srun use the cluster
#
# The cluster has one node, `gwnode` (every CPU of this machine), in one partition, `debug`
# (the default; no time limit). Jobs run as the user who submits them.
#
# Needs root (munged must run as the munge user, slurmd runs jobs as their owners) and the
# Debian packages slurm-wlm and munge; the script installs nothing itself.
# SLURM_LOCAL_TIMEOUT: seconds `start` waits for the node to become ready (default 30).
# Exit status: 0 done (or, for status, cluster up); 1 failed (or, for status, cluster not up);
# 2 bad usage, not root, or missing packages.
set -euo pipefail

PATH=$PATH:/usr/sbin:/sbin
readonly PROG=slurm-local
readonly CLUSTER=gwlocal NODE=gwnode PARTITION=debug
readonly STOP_GRACE=15   # seconds between SIGTERM and SIGKILL when stopping a daemon
START_TIMEOUT=${SLURM_LOCAL_TIMEOUT:-30}

say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: %s\n' "$PROG" "$*" >&2; }

usage() {
  cat >&2 <<EOF
usage: $0 start DIR    start a one-node Slurm cluster with its state in DIR, write DIR/env.sh
       $0 stop DIR     stop the cluster started in DIR
       $0 status DIR   exit 0 when the cluster of DIR is up and its node takes jobs
EOF
  exit 2
}

# ---------------------------------------------------------------------------------------------
# Preconditions

require_root() {
  if [[ $(id -u) -ne 0 ]]; then
    warn "error: must run as root: munged has to run as the munge user and slurmd starts jobs as"
    warn "       the users who submit them (try: sudo $0 $*)"
    exit 2
  fi
}

require_tools() {
  local tool missing=()
  for tool in sbatch squeue sinfo scancel srun scontrol slurmctld slurmd munged mungekey \
              setpriv setsid flock; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    warn "error: not found: ${missing[*]}"
    warn "       install Debian's Slurm and munge with: apt-get install slurm-wlm munge"
    exit 2
  fi
  if ! getent passwd munge >/dev/null; then
    warn "error: there is no 'munge' user; reinstall the package: apt-get install --reinstall munge"
    exit 2
  fi
}

# Every path this script uses, derived from DIR (made absolute, so that stop and status find
# the daemons whichever folder they are called from).
set_paths() {
  DIR=$(realpath -m -- "$1")
  CONF=$DIR/slurm.conf
  ENV_SH=$DIR/env.sh
  LOCK=$DIR/.lock
  LOG_DIR=$DIR/log
  RUN_DIR=$DIR/run
  STATE_DIR=$DIR/state
  SPOOL_DIR=$DIR/spool
  MUNGE_DIR=$DIR/munge
  MUNGE_SOCKET=$MUNGE_DIR/munge.socket
  MUNGE_KEY=$MUNGE_DIR/munge.key
  MUNGE_PID=$MUNGE_DIR/munged.pid
  MUNGE_SEED=$MUNGE_DIR/munged.seed
  MUNGE_LOG=$MUNGE_DIR/munged.log
  CTLD_PID=$RUN_DIR/slurmctld.pid
  CTLD_LOG=$LOG_DIR/slurmctld.log
  SLURMD_PID=$RUN_DIR/slurmd.pid
  SLURMD_LOG=$LOG_DIR/slurmd.log
}

# slurm.conf cannot quote paths, and unix socket paths (munge's, and slurmd's per job step in
# its spool folder) must stay under 108 bytes, so DIR has to be short and plain.
check_dir_name() {
  if [[ ! $DIR =~ ^[A-Za-z0-9._/+-]+$ ]]; then
    warn "error: DIR may only hold letters, digits and . _ / + - (slurm.conf cannot quote): $DIR"
    exit 2
  fi
  if [[ ${#DIR} -gt 64 ]]; then
    warn "error: DIR is ${#DIR} characters long; keep it at 64 or less (unix socket paths are"
    warn "       limited to 108 bytes): $DIR"
    exit 2
  fi
}

# Serialise start and stop on one DIR. The lock's descriptor is closed in the daemons (see
# launch) so that it is released when this script ends.
take_lock() {
  exec {LOCK_FD}>>"$LOCK"
  if ! flock -w 60 "$LOCK_FD"; then
    warn "error: another $PROG start/stop has held $LOCK for a minute; giving up"
    exit 1
  fi
}

# ---------------------------------------------------------------------------------------------
# Helpers

# live_pid PIDFILE: print the pid recorded in PIDFILE if that process still runs and was started
# for this DIR (one of its arguments is, or ends in =, a path inside DIR). Fails otherwise, so a
# pid reused by another process is never taken for a daemon of DIR.
live_pid() {
  local pid
  [[ -r $1 ]] || return 1
  pid=$(tr -dc 0-9 <"$1")
  [[ -n $pid ]] || return 1
  pid_alive "$pid" || return 1
  tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" |
    awk -v d="$DIR/" 'index($0, d) == 1 || index($0, "=" d) { found = 1 } END { exit !found }' ||
    return 1
  echo "$pid"
}

# pid_alive PID: the process exists and is not a zombie (this machine's init may not reap the
# daemons, which are not our children).
pid_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# launch OUTFILE COMMAND...: start a daemon in its own session with standard input, output and
# error away from our caller (a test harness reading our output through a pipe must not wait for
# the daemons to close it) and no other inherited descriptor. The daemons fork into the
# background themselves, so this returns when their start-up parent does.
launch() {
  local out=$1
  shift
  (
    for fd in "/proc/$BASHPID/fd"/*; do
      fd=${fd##*/}
      if [[ $fd -gt 2 ]]; then exec {fd}>&- 2>/dev/null || true; fi
    done
    exec setsid "$@" </dev/null >>"$out" 2>&1
  )
}

# wait_until COMMAND...: run COMMAND every 0.2 s until it succeeds; fail at START_DEADLINE.
wait_until() {
  until "$@" >/dev/null 2>&1; do
    [[ $SECONDS -lt $START_DEADLINE ]] || return 1
    sleep 0.2
  done
}

# show_log FILE: the tail of a daemon's log, to explain a failure.
show_log() {
  if [[ -s $1 ]]; then
    warn "---- last lines of $1 ----"
    tail -n 25 -- "$1" | sed 's/^/    /' >&2
    warn "----"
  fi
}

# fail_daemon NAME LOG MESSAGE: report that daemon NAME did not come up, with its logs, and exit
# (the EXIT trap of start then stops whatever was started).
fail_daemon() {
  warn "error: $1: $3"
  show_log "$2"
  show_log "$LOG_DIR/$1.out"
  warn "(full log: $2)"
  exit 1
}

# wait_daemon NAME PIDFILE LOG: wait until the daemon NAME has written its pid file, or fail
# saying whether it died or is merely late.
wait_daemon() {
  wait_until live_pid "$2" && return 0
  if [[ -s $2 ]]; then
    fail_daemon "$1" "$3" "$1 (pid $(tr -dc 0-9 <"$2")) exited during start-up"
  fi
  fail_daemon "$1" "$3" "$1 wrote no pid file ($2) within ${START_TIMEOUT}s"
}

# port_taken PORT: something on this machine already uses the TCP port.
port_taken() {
  if command -v ss >/dev/null 2>&1; then
    [[ -n $(ss -Htan "sport = :$1" 2>/dev/null) ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# free_port [EXCLUDED...]: print a free TCP port below Linux's ephemeral range, picked at random
# so that clusters started at the same time are unlikely to choose the same one.
free_port() {
  local port
  for _ in $(seq 1 300); do
    port=$((20000 + RANDOM % 12000))
    [[ " $* " == *" $port "* ]] && continue
    port_taken "$port" || { echo "$port"; return 0; }
  done
  return 1
}

# Run a Slurm client command against this DIR's cluster, whatever the caller's SLURM_CONF.
slurm() { SLURM_CONF=$CONF "$@"; }

# node_state: the node's state as sinfo's long form prints it (idle, mixed, allocated, down*...).
node_state() { slurm timeout 10 sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n 1; }

node_ready() {
  case $(node_state) in
    idle | mixed | allocated | completing) return 0 ;;
    *) return 1 ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# start

prepare_dirs() {
  mkdir -p -- "$DIR"
  # munged runs as the munge user and must reach its folder inside DIR.
  chmod 0755 -- "$DIR"
  install -d -m 0755 -- "$LOG_DIR" "$RUN_DIR" "$SPOOL_DIR"
  install -d -m 0700 -- "$STATE_DIR"
  # Keep the previous start's logs, one generation, so that errors show this start's lines.
  local log
  for log in "$MUNGE_LOG" "$CTLD_LOG" "$SLURMD_LOG" "$LOG_DIR"/*.out; do
    if [[ -f $log ]]; then mv -f -- "$log" "$log.prev"; fi
  done
  # munge insists its socket folder is owned by it and not writable by others.
  install -d -o munge -g munge -m 0755 -- "$MUNGE_DIR"
  if ! setpriv --reuid=munge --regid=munge --clear-groups -- test -x "$MUNGE_DIR"; then
    warn "error: the munge user cannot reach $MUNGE_DIR: a folder above DIR is not searchable"
    warn "       by other users (e.g. /root). Choose a DIR under /tmp, or chmod o+x that folder."
    exit 2
  fi
}

# Each cluster gets its own munge key, kept in DIR across restarts.
prepare_munge_key() {
  [[ -s $MUNGE_KEY ]] && return 0
  if ! setpriv --reuid=munge --regid=munge --clear-groups -- \
      mungekey --create --keyfile="$MUNGE_KEY" >"$LOG_DIR/mungekey.out" 2>&1; then
    warn "error: mungekey could not create $MUNGE_KEY:"
    show_log "$LOG_DIR/mungekey.out"
    exit 1
  fi
}

write_config() {
  local cpus mem_mb ctld_port slurmd_port
  cpus=$(nproc)
  # RealMemory above what slurmd finds would drain the node: declare 90 % of MemTotal.
  mem_mb=$(awk '/^MemTotal:/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)
  ctld_port=$(free_port) || { warn "error: found no free TCP port for slurmctld"; exit 1; }
  slurmd_port=$(free_port "$ctld_port") || { warn "error: found no free TCP port for slurmd"; exit 1; }
  CTLD_PORT=$ctld_port SLURMD_PORT=$slurmd_port CPUS=$cpus MEM_MB=$mem_mb

  : >"$DIR/plugstack.conf"   # keep /etc/slurm/plugstack.conf's plugins out
  cat >"$CONF" <<EOF
# Written by packaging/slurm-local.sh start; rewritten (with new ports) at each start.
ClusterName=$CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root

AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET

StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$CTLD_LOG
SlurmdLogFile=$SLURMD_LOG
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$DIR/plugstack.conf

# No cgroups, no accounting database, no mail.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true

# Schedule each CPU on its own, without delay; a node that was down comes back by itself.
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=5
InactiveLimit=0

NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munged() {
  rm -f -- "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock" "$MUNGE_PID"
  if ! launch "$LOG_DIR/munged.out" setpriv --reuid=munge --regid=munge --clear-groups -- \
      munged --socket="$MUNGE_SOCKET" --key-file="$MUNGE_KEY" --pid-file="$MUNGE_PID" \
      --seed-file="$MUNGE_SEED" --log-file="$MUNGE_LOG" --origin=127.0.0.1; then
    fail_daemon munged "$MUNGE_LOG" "munged did not start"
  fi
  wait_daemon munged "$MUNGE_PID" "$MUNGE_LOG"
  wait_until test -S "$MUNGE_SOCKET" ||
    fail_daemon munged "$MUNGE_LOG" "munged did not create its socket $MUNGE_SOCKET"
  say "munged up (pid $(live_pid "$MUNGE_PID")), socket $MUNGE_SOCKET, log $MUNGE_LOG"
}

start_slurmctld() {
  # -c: start from a clean slate (no jobs or node states left over from an earlier start).
  if ! launch "$LOG_DIR/slurmctld.out" env SLURM_CONF="$CONF" slurmctld -c -f "$CONF"; then
    fail_daemon slurmctld "$CTLD_LOG" "slurmctld did not start"
  fi
  wait_daemon slurmctld "$CTLD_PID" "$CTLD_LOG"
  wait_until slurm scontrol ping ||
    fail_daemon slurmctld "$CTLD_LOG" "slurmctld does not answer on 127.0.0.1:$CTLD_PORT"
  say "slurmctld up on 127.0.0.1:$CTLD_PORT (pid $(live_pid "$CTLD_PID")), log $CTLD_LOG"
}

start_slurmd() {
  # -N: the host is called localhost in slurm.conf, which does not tell slurmd its node name.
  if ! launch "$LOG_DIR/slurmd.out" env SLURM_CONF="$CONF" slurmd -f "$CONF" -N "$NODE"; then
    fail_daemon slurmd "$SLURMD_LOG" "slurmd did not start"
  fi
  wait_daemon slurmd "$SLURMD_PID" "$SLURMD_LOG"
  say "slurmd up on 127.0.0.1:$SLURMD_PORT as node $NODE (pid $(live_pid "$SLURMD_PID")), log $SLURMD_LOG"
}

wait_node_ready() {
  if ! wait_until node_ready; then
    local state
    state=$(node_state)
    live_pid "$SLURMD_PID" >/dev/null ||
      fail_daemon slurmd "$SLURMD_LOG" "slurmd exited before node $NODE became ready"
    warn "error: node $NODE is not ready after ${START_TIMEOUT}s (sinfo says: ${state:-nothing})"
    show_log "$SLURMD_LOG"
    show_log "$CTLD_LOG"
    slurm scontrol show node "$NODE" 2>&1 | grep -E 'State=|Reason=' | sed 's/^ */    /' >&2 || true
    exit 1
  fi
}

write_env() {
  {
    echo "# Written by packaging/slurm-local.sh start: source it to make sbatch, squeue, sinfo,"
    echo "# scancel and srun use the one-node Slurm cluster in this folder."
    echo "export SLURM_CONF=$CONF"
    echo "export SLURM_LOCAL_DIR=$DIR"
  } >"$ENV_SH.tmp"
  mv -f -- "$ENV_SH.tmp" "$ENV_SH"
}

# Which of this DIR's daemons run now: "munged slurmctld slurmd", some of them, or nothing.
running_daemons() {
  local names=()
  live_pid "$MUNGE_PID" >/dev/null && names+=(munged)
  live_pid "$CTLD_PID" >/dev/null && names+=(slurmctld)
  live_pid "$SLURMD_PID" >/dev/null && names+=(slurmd)
  echo "${names[*]}"
}

on_start_exit() {
  local rc=$?
  trap - EXIT
  if [[ $rc -ne 0 ]]; then
    warn "start failed; stopping what it started in $DIR"
    stop_daemons >&2 || true
  fi
  exit "$rc"
}

cmd_start() {
  check_dir_name
  mkdir -p -- "$DIR"
  take_lock
  local running state
  running=$(running_daemons)
  if [[ $running == "munged slurmctld slurmd" ]]; then
    write_env
    if node_ready; then
      say "already running in $DIR (node $NODE: $(node_state)); to use it: source $ENV_SH"
    else
      state=$(node_state)
      say "already running in $DIR, but node $NODE is ${state:-not answering} (see: $0 status $DIR)"
    fi
    return 0
  fi
  if [[ -n $running ]]; then
    say "found a partly running cluster in $DIR ($running); stopping it first"
    stop_daemons
  fi

  START_DEADLINE=$((SECONDS + START_TIMEOUT))
  local t0=$SECONDS
  say "starting a one-node Slurm cluster in $DIR"
  trap on_start_exit EXIT
  rm -f -- "$ENV_SH"
  prepare_dirs
  prepare_munge_key
  write_config
  start_munged
  start_slurmctld
  start_slurmd
  wait_node_ready
  write_env
  trap - EXIT
  say "node $NODE is $(node_state) in partition $PARTITION ($CPUS CPUs, $MEM_MB MB) after $((SECONDS - t0)) s"
  say "to use it: source $ENV_SH"
}

# ---------------------------------------------------------------------------------------------
# stop

# Cancel every job so that no job step outlives slurmd (its slurmstepd would otherwise go on).
cancel_jobs() {
  local jobs deadline
  jobs=$(slurm timeout 10 squeue -h -o %i 2>/dev/null) || return 0
  [[ -n $jobs ]] || return 0
  say "cancelling $(wc -l <<<"$jobs") job(s)"
  slurm timeout 10 scancel --partition="$PARTITION" 2>/dev/null || true
  deadline=$((SECONDS + 12))
  while [[ $SECONDS -lt $deadline ]]; do
    jobs=$(slurm timeout 10 squeue -h -o %i 2>/dev/null) || return 0
    [[ -n $jobs ]] || return 0
    sleep 0.3
  done
  warn "warning: jobs still listed after cancelling them: $(tr '\n' ' ' <<<"$jobs")"
}

# stop_pids NAME=PID...: SIGTERM them all, wait, SIGKILL those left after STOP_GRACE seconds.
stop_pids() {
  local item pid left deadline
  for item in "$@"; do
    kill -TERM "${item#*=}" 2>/dev/null || true
  done
  deadline=$((SECONDS + STOP_GRACE))
  while :; do
    left=()
    for item in "$@"; do
      pid_alive "${item#*=}" && left+=("$item")
    done
    [[ ${#left[@]} -gt 0 ]] || return 0
    [[ $SECONDS -lt $deadline ]] || break
    sleep 0.2
  done
  for item in "${left[@]}"; do
    warn "warning: ${item%=*} (pid ${item#*=}) ignored SIGTERM for ${STOP_GRACE}s; sending SIGKILL"
    kill -KILL "${item#*=}" 2>/dev/null || true
  done
  deadline=$((SECONDS + 5))
  for item in "${left[@]}"; do
    while pid_alive "${item#*=}"; do
      if [[ $SECONDS -ge $deadline ]]; then
        warn "error: ${item%=*} (pid ${item#*=}) survives SIGKILL"
        return 1
      fi
      sleep 0.1
    done
  done
}

# proc_table: "PID PPID NAME" for each live process, read from /proc (procps may be absent).
proc_table() {
  local stat line pid name rest state ppid
  for stat in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$stat" || continue
    pid=${line%% *}
    name=${line#*(}
    name=${name%)*}
    rest=${line##*) }
    read -r state ppid _ <<<"$rest"
    [[ $state == Z ]] || echo "$pid $ppid $name"
  done
}

# stray_steps: the job steps that outlived this DIR's slurmd (when it died rather than being
# stopped): its slurmstepd processes, recognised by the SLURM_CONF they inherit from slurmd,
# and every process below them. Prints their pids.
stray_steps() {
  local table pid steps=()
  table=$(proc_table)
  while read -r pid; do
    if tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF "SLURM_CONF=$CONF"; then
      steps+=("$pid")
    fi
  done < <(awk '$3 == "slurmstepd" { print $1 }' <<<"$table")
  [[ ${#steps[@]} -gt 0 ]] || return 0
  awk -v roots="${steps[*]}" '
    { parent[$1] = $2 }
    END {
      n = split(roots, r, " ")
      for (i = 1; i <= n; i++) keep[r[i]] = 1
      do {
        grew = 0
        for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; grew = 1 }
      } while (grew)
      for (p in keep) print p
    }' <<<"$table"
}

# Kill the job steps left behind, with their processes, at once: their slurmstepd ignores
# SIGTERM, and nothing would clean up after them any more.
kill_stray_steps() {
  local strays pid deadline
  strays=$(stray_steps)
  [[ -n $strays ]] || return 0
  warn "warning: killing job steps left behind by slurmd, with their processes: pids ${strays//$'\n'/ }"
  # shellcheck disable=SC2086
  kill -KILL $strays 2>/dev/null || true
  deadline=$((SECONDS + 5))
  for pid in $strays; do
    while pid_alive "$pid" && [[ $SECONDS -lt $deadline ]]; do sleep 0.1; done
  done
}

stop_daemons() {
  local munged ctld slurmd t0=$SECONDS slurm_pids=()
  munged=$(live_pid "$MUNGE_PID") || munged=
  ctld=$(live_pid "$CTLD_PID") || ctld=
  slurmd=$(live_pid "$SLURMD_PID") || slurmd=
  if [[ -z $munged$ctld$slurmd ]]; then
    say "nothing running in $DIR"
  else
    [[ -n $ctld && -n $munged ]] && cancel_jobs
    [[ -n $ctld ]] && slurm_pids+=("slurmctld=$ctld") && say "stopping slurmctld (pid $ctld)"
    [[ -n $slurmd ]] && slurm_pids+=("slurmd=$slurmd") && say "stopping slurmd (pid $slurmd)"
    [[ ${#slurm_pids[@]} -eq 0 ]] || stop_pids "${slurm_pids[@]}"
    if [[ -n $munged ]]; then
      say "stopping munged (pid $munged)"
      stop_pids "munged=$munged"
    fi
    say "stopped in $((SECONDS - t0)) s"
  fi
  kill_stray_steps
  rm -f -- "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock" "$ENV_SH"
}

cmd_stop() {
  if [[ ! -d $DIR ]]; then
    say "nothing running in $DIR (no such folder)"
    return 0
  fi
  take_lock
  stop_daemons
}

# ---------------------------------------------------------------------------------------------
# status

cmd_status() {
  local ok=0 pid name pidfile log state
  for name in munged slurmctld slurmd; do
    case $name in
      munged) pidfile=$MUNGE_PID log=$MUNGE_LOG ;;
      slurmctld) pidfile=$CTLD_PID log=$CTLD_LOG ;;
      slurmd) pidfile=$SLURMD_PID log=$SLURMD_LOG ;;
    esac
    if pid=$(live_pid "$pidfile"); then
      say "$name running (pid $pid)"
    else
      say "$name not running (log: $log)"
      ok=1
    fi
  done
  if [[ $ok -eq 0 ]]; then
    state=$(node_state)
    say "node $NODE: ${state:-no answer from sinfo}"
    node_ready || ok=1
  fi
  [[ $ok -eq 0 ]] && say "up; to use it: source $ENV_SH"
  return "$ok"
}

# ---------------------------------------------------------------------------------------------

main() {
  [[ $# -eq 2 && -n $2 ]] || usage
  case $1 in
    start | stop | status) ;;
    *) usage ;;
  esac
  require_root "$@"
  require_tools
  set_paths "$2"
  "cmd_$1"
}

main "$@"

#!/usr/bin/env bash
# pcsc-rig-stop.sh - stop the pcscd that scripts/pcsc-rig-start.sh started, and only it
# (by its recorded pid, after checking the pid still belongs to pcscd). Safe to run when
# nothing is running. Uses the same PCSC_RIG_DIR as the start script.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
rig_dir=${PCSC_RIG_DIR:-$repo/target/pcsc-rig}

say() { printf 'pcsc-rig: %s\n' "$*" >&2; }

running() {
  local pid=${1:-}
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  local state
  state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null || echo Z)
  [ "$state" != Z ]
}

pid_file=$rig_dir/pcscd.pid
if [ ! -f "$pid_file" ]; then
  say "nothing to stop (no $pid_file)"
  rm -f "$rig_dir/env"
  exit 0
fi
pid=$(tr -d ' \n' <"$pid_file")
if running "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'pcscd'; then
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    running "$pid" || break
    sleep 0.1
  done
  if running "$pid"; then
    say "pcscd (pid $pid) still running after 5 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  say "stopped pcscd (pid $pid)"
else
  say "pcscd (pid $pid) is no longer running"
fi
# Remove pcscd's run files only when they are this pcscd's (a SIGKILL leaves them).
if [ -f /run/pcscd/pcscd.pid ] && [ "$(tr -d '\0\n ' </run/pcscd/pcscd.pid)" = "$pid" ] \
  && ! running "$pid"; then
  rm -f /run/pcscd/pcscd.pid /run/pcscd/pcscd.comm
fi
rm -f "$pid_file" "$rig_dir/env"
exit 0

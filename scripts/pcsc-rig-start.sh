#!/usr/bin/env bash
# pcsc-rig-start.sh - bring up keysmith's PC/SC test rig: a real pcscd with only the
# vsmartcard vpcd reader driver loaded. The virtual card itself is NOT started here:
# the NFC tests (fido-transport/tests/api/nfc.rs, nfc_client.rs) connect their own
# in-process card to vpcd's TCP port. Run as root, no stdin needed; safe to run again (idempotent).
#
# Settings (environment):
#   PCSC_RIG_DIR   state folder (default: <repo>/target/pcsc-rig): env file, pid, log
#   VPCD_PORT      vpcd's TCP port for slot 0 (default 35963; slot 1 is +1)
#   RIG_TIMEOUT    seconds to wait for pcscd and the reader (default 20)
#   PCSCD_DEBUG=1  run pcscd with --debug --apdu (APDU trace in pcscd.log)
#
# Writes $PCSC_RIG_DIR/env (shell syntax, one KEY=value a line):
#   PCSC_RIG_PCSCD_PID, PCSC_RIG_VPCD_PORT, PCSC_RIG_READER, PCSC_RIG_READERS
# Stop with scripts/pcsc-rig-stop.sh.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
rig_dir=${PCSC_RIG_DIR:-$repo/target/pcsc-rig}
port=${VPCD_PORT:-35963}
timeout=${RIG_TIMEOUT:-20}
driver=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
socket=/run/pcscd/pcscd.comm

say() { printf 'pcsc-rig: %s\n' "$*" >&2; }
fail() { say "error: $*"; exit 1; }

mkdir -p "$rig_dir"

# A process counts as running unless it is gone or a zombie (zombies linger here).
running() {
  local pid=${1:-}
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  local state
  state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null || echo Z)
  [ "$state" != Z ]
}

# Is anything listening on a TCP port? (state 0A = LISTEN in /proc/net/tcp*)
listening() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" '$2 ~ p"$" && $4 == "0A" { found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# --- 1. packages -------------------------------------------------------------------
missing=()
[ -x /usr/sbin/pcscd ] || command -v pcscd >/dev/null 2>&1 || missing+=(pcscd)
[ -f "$driver" ] || missing+=(vsmartcard-vpcd)
[ -f /usr/include/PCSC/winscard.h ] || missing+=(libpcsclite-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || fail "root is needed to install: ${missing[*]}"
  say "installing ${missing[*]} (apt, no recommends)"
  export DEBIAN_FRONTEND=noninteractive
  apt_log=$rig_dir/apt.log
  install_missing() {
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >>"$apt_log" 2>&1
  }
  if ! install_missing; then
    say "install failed; running apt-get update first"
    apt-get update -q </dev/null >>"$apt_log" 2>&1 || true
    install_missing || { tail -n 20 "$apt_log" >&2; fail "apt-get install ${missing[*]} failed"; }
  fi
fi
pcscd_bin=$(command -v pcscd 2>/dev/null || echo /usr/sbin/pcscd)

# --- 2. already running? -------------------------------------------------------------
pcscd_pid=""
if [ -f "$rig_dir/pcscd.pid" ] && running "$(cat "$rig_dir/pcscd.pid")" \
  && tr '\0' ' ' <"/proc/$(cat "$rig_dir/pcscd.pid")/cmdline" 2>/dev/null | grep -q pcscd; then
  pcscd_pid=$(cat "$rig_dir/pcscd.pid")
  if [ -f "$rig_dir/env" ]; then
    say "already running (pcscd pid $pcscd_pid); env file $rig_dir/env"
    cat "$rig_dir/env"
    exit 0
  fi
  say "pcscd (pid $pcscd_pid) from an earlier start is running; checking it"
elif [ -f /run/pcscd/pcscd.pid ]; then
  other=$(tr -d '\0\n ' </run/pcscd/pcscd.pid)
  if running "$other"; then
    fail "another pcscd (pid $other) is running that this script did not start; stop it first"
  fi
  rm -f /run/pcscd/pcscd.pid "$socket" # stale leftovers of a dead pcscd
fi
# Start a new pcscd unless our earlier one still runs (then only its readiness is
# checked and the env file written again).
if [ -z "$pcscd_pid" ]; then
  if listening "$port" || listening $((port + 1)); then
    fail "TCP port $port or $((port + 1)) is already taken; choose another VPCD_PORT"
  fi

  # --- 3. a reader configuration holding only vpcd -------------------------------------
  conf_dir=$rig_dir/reader.conf.d
  rm -rf "$conf_dir"
  mkdir -p "$conf_dir"
  port_hex=$(printf '0x%04X' "$port")
  {
    echo "FRIENDLYNAME \"Virtual PCD\""
    echo "DEVICENAME /dev/null:$port_hex"
    echo "LIBPATH $driver"
    echo "CHANNELID $port_hex"
  } >"$conf_dir/vpcd"

  # --- 4. pcscd: foreground mode (so $! is pcscd), backgrounded, never auto-exit --------
  mkdir -p /run/pcscd
  pcscd_args=(--foreground --config "$conf_dir")
  if [ "${PCSCD_DEBUG:-0}" = 1 ]; then pcscd_args+=(--debug --apdu); fi
  "$pcscd_bin" "${pcscd_args[@]}" </dev/null >"$rig_dir/pcscd.log" 2>&1 &
  pcscd_pid=$!
  echo "$pcscd_pid" >"$rig_dir/pcscd.pid"
  say "started pcscd (pid $pcscd_pid, log $rig_dir/pcscd.log)"
fi

# --- 5. wait for the readers ----------------------------------------------------------
# A real PC/SC client (libpcsclite through python's ctypes) lists them; without python,
# the socket plus vpcd's listening port are taken as the sign, with vpcd's fixed names.
reader_list() {
  if ! command -v python3 >/dev/null 2>&1; then
    printf 'Virtual PCD 00 00\nVirtual PCD 00 01\n'
    return 0
  fi
  python3 -c '
import ctypes, sys
pcsc = ctypes.CDLL("libpcsclite.so.1")
ctx = ctypes.c_long(0)
# SCARD_SCOPE_SYSTEM = 2
if pcsc.SCardEstablishContext(ctypes.c_ulong(2), None, None, ctypes.byref(ctx)) != 0:
    sys.exit(1)
size = ctypes.c_ulong(0)
if pcsc.SCardListReaders(ctx, None, None, ctypes.byref(size)) != 0:
    sys.exit(1)
buf = ctypes.create_string_buffer(size.value)
if pcsc.SCardListReaders(ctx, None, buf, ctypes.byref(size)) != 0:
    sys.exit(1)
pcsc.SCardReleaseContext(ctx)
for name in buf.raw[: size.value].split(b"\0"):
    if name:
        print(name.decode())
'
}
deadline=$((SECONDS + timeout))
readers=""
while :; do
  if ! running "$pcscd_pid"; then
    tail -n 20 "$rig_dir/pcscd.log" >&2
    fail "pcscd exited during start-up"
  fi
  if [ -S "$socket" ] && listening "$port"; then
    readers=$(reader_list 2>/dev/null || true)
    if printf '%s\n' "$readers" | grep -q '^Virtual PCD'; then break; fi
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    tail -n 20 "$rig_dir/pcscd.log" >&2
    fail "pcscd did not list the vpcd reader within ${timeout}s"
  fi
  sleep 0.2
done
reader=$(printf '%s\n' "$readers" | grep -m1 '^Virtual PCD')

# --- 6. env file ----------------------------------------------------------------------
{
  printf 'PCSC_RIG_PCSCD_PID=%s\n' "$pcscd_pid"
  printf 'PCSC_RIG_VPCD_PORT=%s\n' "$port"
  printf "PCSC_RIG_READER='%s'\n" "$reader"
  printf "PCSC_RIG_READERS='%s'\n" "$(printf '%s' "$readers" | paste -sd ';' -)"
} >"$rig_dir/env.tmp"
mv "$rig_dir/env.tmp" "$rig_dir/env"

say "ready: pcscd pid $pcscd_pid, vpcd card port 127.0.0.1:$port"
say "readers:"
printf '%s\n' "$readers" | sed 's/^/  /' >&2
say "card reader (slot 0): $reader"
say "env file: $rig_dir/env"
cat "$rig_dir/env"

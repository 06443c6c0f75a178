#!/usr/bin/env bash
# End-to-end: real Rasa 3.6 + the example bot's action server + coatcheck, all on loopback.
# Plants canary PII through coatcheck's channel webhook and fails if any of it shows up in
# Rasa's tracker store, Rasa's log, the action server's log, coatcheck's history or log.
# Unattended (no stdin), bounded waits, every process it starts is stopped on exit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
BOT="$ROOT/examples/rasa_bot"
WORK="${COATCHECK_E2E_WORK:-$HERE/work}"
RASA_VENV="${COATCHECK_RASA_VENV:-$HOME/.cache/coatcheck/rasa-3.6.21}"
CC_VENV="${COATCHECK_VENV:-$ROOT/.venv}"
PY310="${COATCHECK_PY310:-$HOME/.pyenv/versions/3.10.13/bin/python}"
CONVERSATIONS="${COATCHECK_E2E_CONVERSATIONS:-3}"

# Rasa's telemetry (and the Sentry error reports tied to it) would try to reach the
# internet: everything here stays on loopback.
export RASA_TELEMETRY_ENABLED=false

PIDS=()
log() { printf '%s e2e: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

cleanup() {
  local rc=$?
  local pid
  for pid in "${PIDS[@]}"; do
    # each service runs in its own session (setsid): stop its whole process group
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  [ "$rc" -eq 0 ] || log "logs are in $WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME LOGFILE CMD...: run CMD in its own session, stdin closed, output to LOGFILE
start() {
  local name="$1" out="$2"
  shift 2
  setsid "$@" </dev/null >"$out" 2>&1 &
  PIDS+=("$!")
  log "started $name (pid $!)"
}

# wait_http NAME URL SECONDS: poll until URL answers 2xx, or fail (also if the process died)
wait_http() {
  local name="$1" url="$2" limit="$3" pid="${PIDS[-1]}"
  local deadline=$((SECONDS + limit))
  until curl -fs -o /dev/null --max-time 2 "$url"; do
    kill -0 "$pid" 2>/dev/null || die "$name exited before it was ready"
    [ "$SECONDS" -lt "$deadline" ] || die "$name not ready after ${limit}s ($url)"
    sleep 0.5
  done
  log "$name is up ($url)"
}

free_port() {
  "$CC_VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- 1. the Rasa venv (cached; built only when missing or broken) ---------------------------
# A venv cannot be moved (its scripts name their interpreter), so it is built in place; pip
# installs rasa itself after its dependencies, so "rasa 3.6.21 imports" means complete.
rasa_ok() {
  [ -x "$RASA_VENV/bin/rasa" ] && "$RASA_VENV/bin/python" -c \
    'import rasa.version, sys; sys.exit(rasa.version.__version__ != "3.6.21")' 2>/dev/null
}
if ! rasa_ok; then
  log "no usable Rasa venv at $RASA_VENV: building it (about 5 minutes)"
  if [ -e "$RASA_VENV" ]; then
    # only ever delete something that is a venv (a typo in COATCHECK_RASA_VENV must not)
    [ -f "$RASA_VENV/pyvenv.cfg" ] || die "$RASA_VENV exists and is not a venv: not touching it"
    rm -rf "$RASA_VENV"
  fi
  mkdir -p "$(dirname "$RASA_VENV")"
  "$PY310" -m venv "$RASA_VENV"
  install_log="$(dirname "$RASA_VENV")/$(basename "$RASA_VENV").install.log"
  timeout 900 "$RASA_VENV/bin/pip" install --disable-pip-version-check rasa==3.6.21 \
    </dev/null >"$install_log" 2>&1 || { tail -20 "$install_log" >&2; die "pip install rasa failed"; }
  rasa_ok || die "the new Rasa venv at $RASA_VENV does not import rasa 3.6.21"
fi
[ -x "$CC_VENV/bin/python" ] || python3 -m venv "$CC_VENV"
if ! "$CC_VENV/bin/python" -c 'import coatcheck.middleware.service, coatcheck.vault, coatcheck.actions' 2>/dev/null; then
  log "installing coatcheck into $CC_VENV"
  timeout 600 "$CC_VENV/bin/pip" install --quiet -e "$ROOT"
fi

# --- 2. work dir, ports, config ------------------------------------------------------------
rm -rf "$WORK"
mkdir -p "$WORK"
RASA_PORT="$(free_port)"
ACTIONS_PORT="$(free_port)"
CC_PORT="$(free_port)"
[ "$RASA_PORT" != "$ACTIONS_PORT" ] && [ "$ACTIONS_PORT" != "$CC_PORT" ] && [ "$RASA_PORT" != "$CC_PORT" ] \
  || die "could not get three distinct free ports"

cat >"$WORK/endpoints.yml" <<EOF
action_endpoint:
  url: "http://127.0.0.1:$ACTIONS_PORT/webhook"
tracker_store:
  type: SQL
  dialect: "sqlite"
  db: "$WORK/tracker.db"
EOF
cp "$HERE/coatcheck.yml" "$WORK/coatcheck.yml"

# --- 3. train (offline, about 15 s) --------------------------------------------------------
log "training the bot"
(cd "$WORK" && timeout 300 "$RASA_VENV/bin/rasa" train \
  --config "$BOT/config.yml" --domain "$BOT/domain.yml" --data "$BOT/data" \
  --out "$WORK/models" --fixed-model-name bot </dev/null >"$WORK/train.log" 2>&1) \
  || die "training failed (see $WORK/train.log)"

# --- 4. coatcheck (first: it creates the keys the others need) -----------------------------
export COATCHECK_DATABASE_URL="sqlite:///$WORK/coatcheck.db"
export COATCHECK_KEY_FILE="$WORK/coatcheck.key"
export COATCHECK_APIKEYS_FILE="$WORK/coatcheck.apikeys"
export COATCHECK_CONFIG="$WORK/coatcheck.yml"
export COATCHECK_BOT_URL="http://127.0.0.1:$RASA_PORT/webhooks/rest/webhook"
export COATCHECK_HOST=127.0.0.1
export COATCHECK_PORT="$CC_PORT"
export COATCHECK_LOG_LEVEL=DEBUG
unset COATCHECK_MASTER_KEY
start coatcheck "$WORK/coatcheck.log" "$CC_VENV/bin/coatcheck" serve --log-level debug
wait_http coatcheck "http://127.0.0.1:$CC_PORT/health" 60
[ -s "$COATCHECK_APIKEYS_FILE" ] || die "coatcheck wrote no starter key file"
ACTION_KEY="$(timeout 60 "$CC_VENV/bin/coatcheck" apikey create --role action-server </dev/null)"

# --- 5. the action server (coatcheck's venv: rasa-sdk + the actions library) ---------------
(
  cd "$BOT"
  export SANIC_HOST=127.0.0.1 # rasa-sdk binds 0.0.0.0 unless told
  export COATCHECK_URL="http://127.0.0.1:$CC_PORT"
  export COATCHECK_ACTION_KEY="$ACTION_KEY"
  export PYTHONPATH="$BOT${PYTHONPATH:+:$PYTHONPATH}"
  exec setsid "$CC_VENV/bin/python" -m rasa_sdk --actions bot_actions -p "$ACTIONS_PORT" \
    </dev/null >"$WORK/actions.log" 2>&1
) &
PIDS+=("$!")
unset ACTION_KEY
log "started action server (pid ${PIDS[-1]})"
wait_http "action server" "http://127.0.0.1:$ACTIONS_PORT/health" 60

# --- 6. Rasa: REST channel only, loopback, INFO -----------------------------------------------
start rasa "$WORK/rasa.out" env -C "$WORK" "$RASA_VENV/bin/rasa" run \
  --model "$WORK/models/bot.tar.gz" --endpoints "$WORK/endpoints.yml" \
  --credentials "$BOT/credentials.yml" --interface 127.0.0.1 --port "$RASA_PORT" \
  --log-file "$WORK/rasa.log"
wait_http rasa "http://127.0.0.1:$RASA_PORT/" 180

# --- 7. drive and check -----------------------------------------------------------------------
log "driving $CONVERSATIONS conversations through coatcheck"
timeout 300 "$CC_VENV/bin/python" "$HERE/drive.py" \
  --gateway "http://127.0.0.1:$CC_PORT" --keys "$COATCHECK_APIKEYS_FILE" \
  --tracker-db "$WORK/tracker.db" --coatcheck-db "$WORK/coatcheck.db" \
  --conversations "$CONVERSATIONS" \
  --rasa-direct "http://127.0.0.1:$RASA_PORT/webhooks/rest/webhook" \
  --log "$WORK/rasa.log" --log "$WORK/rasa.out" --log "$WORK/actions.log" \
  --log "$WORK/coatcheck.log" --scan-dir "$WORK" </dev/null
log "passed"

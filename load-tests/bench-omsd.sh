# load-tests/bench-omsd.sh: an omsd for benchmarks, shared by load-tests/bench
# and load-tests/bench-ab (sourced, not run). The caller defines log and die.
#
#   bench_omsd_start OMSD DIR   config + fresh data dir DIR/omsd; waits until it
#                               listens; sets OMSD_PID URL SECRET ADMIN_URL DIR
#   bench_omsd_receipts off     PATCH /v1/policies/Global enable_delivery_receipts
#                               (the admin API); 1 when the server has no such
#                               setting (an omsd from before receipts)
#   bench_omsd_stop             SIGTERM, at most 30 s; sets OMSD_RC (124: killed)
# OMSD_WRAPPER, when set, is a command omsd runs under (valgrind ...); the
# waits for start and stop are then 120 s.

# Benchmark configuration: lifts the limits meant for real users.
bench_omsd_config() {  # FILE
  cat >"$1" <<'EOF'
# Benchmark configuration: lifts the limits meant for real users.
[limits]
send_rate_per_second = 100000000   # default 1,000/s per user: 8 senders carry the whole load here
send_burst = 100000000
max_connections = 1000000
idle_timeout_seconds = 600
[mailbox]
max_messages = 100000000           # default 10,000 per mailbox
max_bytes = 1000000000000
[delivery]
window = 256
[log]
level = "warn"
EOF
  # More settings for this run (e.g. [receipts] when receipts are on).
  [ -z "${BENCH_OMSD_EXTRA_TOML:-}" ] || printf '%s\n' "$BENCH_OMSD_EXTRA_TOML" >>"$1"
}

bench_omsd_polls() {  # 0.2 s polls: 30 s, or 120 s under a wrapper
  if [ -n "${OMSD_WRAPPER:-}" ]; then echo 600; else echo 150; fi
}

bench_omsd_start() {  # OMSD DIR
  local omsd=$1
  OMSD_DIR=$2
  mkdir -p "$OMSD_DIR"
  bench_omsd_config "$OMSD_DIR/omsd.toml"
  # shellcheck disable=SC2086 # OMSD_WRAPPER is a command line
  ${OMSD_WRAPPER:-} "$omsd" --data-dir "$OMSD_DIR/omsd" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --config "$OMSD_DIR/omsd.toml" >"$OMSD_DIR/omsd.log" 2>&1 &
  OMSD_PID=$!
  for _ in $(seq 1 "$(bench_omsd_polls)"); do
    [ -s "$OMSD_DIR/omsd/ports.json" ] && break
    kill -0 "$OMSD_PID" 2>/dev/null || { cat "$OMSD_DIR/omsd.log" >&2; die "omsd ($omsd) exited at start"; }
    sleep 0.2
  done
  [ -s "$OMSD_DIR/omsd/ports.json" ] || die "omsd ($omsd) did not write ports.json in time"
  URL="ws://127.0.0.1:$(jq -r .client "$OMSD_DIR/omsd/ports.json")/v1/ws"
  ADMIN_URL="http://127.0.0.1:$(jq -r .admin "$OMSD_DIR/omsd/ports.json")"
  SECRET=$OMSD_DIR/omsd/jwt.secret
}

# The Global policy's enable_delivery_receipts, through the admin API (as an
# operator would: omsctl policy set Global --enable-delivery-receipts B).
bench_omsd_receipts() {  # on|off
  local value=true code
  [ "$1" = off ] && value=false
  code=$(curl -sS -o "$OMSD_DIR/patch.out" -w '%{http_code}' -X PATCH \
    -H "Authorization: Bearer $(cat "$OMSD_DIR/omsd/admin.token")" -H 'Content-Type: application/json' \
    --data "{\"enable_delivery_receipts\":$value}" "$ADMIN_URL/v1/policies/Global" 2>>"$OMSD_DIR/patch.out") || code=000
  if [ "$code" != 200 ]; then
    log "PATCH Global enable_delivery_receipts=$value: HTTP $code $(cat "$OMSD_DIR/patch.out")"
    return 1
  fi
  log "Global policy: enable_delivery_receipts=$value"
}

bench_omsd_stop() {
  OMSD_RC=0
  [ -n "${OMSD_PID:-}" ] || return 0
  kill -TERM "$OMSD_PID" 2>/dev/null || true
  for _ in $(seq 1 "$(bench_omsd_polls)"); do kill -0 "$OMSD_PID" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$OMSD_PID" 2>/dev/null; then
    kill -KILL "$OMSD_PID" 2>/dev/null || true
    wait "$OMSD_PID" 2>/dev/null || true
    OMSD_RC=124
  else
    wait "$OMSD_PID" || OMSD_RC=$?
  fi
  OMSD_PID=
}

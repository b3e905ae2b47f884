# shellcheck shell=bash
# load-tests/peers/bench-peers.sh: the peers of load-tests/bench --peers
# (sourced, not run; the caller defines log, BUILD, PEERS_OUT and timeout_for).
#
#   peers_redis_store LABEL MESSAGES   Redis 7 Streams, appendfsync always: one
#                                      stream per mailbox (1,000), 8 clients x
#                                      16 pipelined XADDs of a 200 B body
#                                      (redis-benchmark); then XLEN over every
#                                      stream must equal MESSAGES
#   peers_mqtt LABEL SCENARIO ARGS...  a private Mosquitto, then oms-mqtt-bench
#                                      SCENARIO --port P ARGS
# Each starts its server on 127.0.0.1 with a port the OS chose free, on a
# fresh dir under BUILD (the disk omsd used), stops it by PID, and writes
# PEERS_OUT/LABEL.json (with "server_cpu_s": utime + stime of the server over
# the client's run) and PEERS_OUT/LABEL.txt. Return 1 when the run failed.

peers_free_port() {  # a port the OS gives out now (bound to 0, then released)
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

peers_cpu_s() {  # PID -> utime + stime in seconds (/proc/PID/stat fields 14, 15)
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

peers_stop() {  # PID: SIGTERM, at most 10 s, then SIGKILL
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

peers_versions() {  # -> JSON object of the peers' versions
  local redis mosq
  redis=$(redis-server --version 2>/dev/null | sed -n 's/.* v=\([0-9.]*\).*/\1/p')
  mosq=$(mosquitto -h 2>/dev/null | sed -n 's/^mosquitto version \([0-9.]*\).*/\1/p' | head -1)
  jq -n --arg r "${redis:-unknown}" --arg m "${mosq:-unknown}" '{redis: $r, mosquitto: $m}'
}

peers_redis_store() {  # LABEL MESSAGES
  local label=$1 messages=$2 dir port pid body rps stored cpu0 cpu1 t0 t1 rc=0
  dir=$(mktemp -d "$BUILD/bench-redis.XXXXXX")
  port=$(peers_free_port)
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync always \
    --save "" --daemonize no --logfile "$dir/redis.log" &
  pid=$!
  for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
    log "redis-server did not start (see $dir/redis.log)"
    peers_stop "$pid"
    return 1
  fi
  body=$(head -c 200 /dev/zero | tr '\0' x)
  log "redis-benchmark XADD mb:__rand_int__ (1,000 streams) -c 8 -P 16 -n $messages, appendfsync always"
  cpu0=$(peers_cpu_s "$pid")
  t0=$(date +%s%N)
  timeout "$(timeout_for 240)" redis-benchmark -h 127.0.0.1 -p "$port" -c 8 -P 16 -n "$messages" -r 1000 --csv \
    XADD 'mb:__rand_int__' '*' body "$body" >"$PEERS_OUT/$label.txt" 2>&1 || rc=$?
  t1=$(date +%s%N)
  cpu1=$(peers_cpu_s "$pid")
  rps=$(awk -F'","' 'NR > 1 && /^"XADD/ { print $2 }' "$PEERS_OUT/$label.txt" | tail -1)
  stored=$(redis-cli -p "$port" eval \
    "local n = 0 for _, k in ipairs(redis.call('keys', 'mb:*')) do n = n + redis.call('xlen', k) end return n" 0 2>/dev/null || echo 0)
  peers_stop "$pid"
  rm -rf "$dir"
  jq -n --argjson messages "$messages" --arg rps "${rps:-}" --argjson stored "${stored:-0}" \
    --argjson wall_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')" \
    --argjson cpu "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')" --argjson rc "$rc" \
    '{peer: "redis", appendfsync: "always", streams: 1000, clients: 8, pipeline: 16, body_bytes: 200,
      messages: $messages, stored: $stored,
      store: {rate_per_s: (if $rps == "" then null else ($rps | tonumber) end), client_wall_s: $wall_s,
              rate_wall_per_s: (if $wall_s > 0 then $stored / $wall_s else null end)},
      server_cpu_s: $cpu, exit: $rc,
      ok: ($rc == 0 and $stored == $messages and $rps != "")}' >"$PEERS_OUT/$label.json"
  log "redis: $(jq -r '"\(.store.rate_per_s // "n/a") msgs/s, \(.stored) of \(.messages) stored"' "$PEERS_OUT/$label.json")"
  [ "$(jq -r .ok "$PEERS_OUT/$label.json")" = true ]
}

# Mosquitto as a store-and-forward server: persistence on (the broker's
# default autosave: every 1,800 s and at shutdown, so a PUBACK is not durable),
# queues deep enough for every message, 20 QoS 1 messages in flight per client.
peers_mosquitto_conf() {  # FILE DIR PORT
  cat >"$1" <<EOF
listener $3 127.0.0.1
allow_anonymous true
user $(id -un)
persistence true
persistence_location $2/
persistence_file mosquitto.db
autosave_interval 1800
max_queued_messages 100000000
max_queued_bytes 0
max_inflight_messages 20
set_tcp_nodelay true
log_dest file $2/mosquitto.log
log_type error
log_type warning
EOF
}

peers_mqtt() {  # LABEL SCENARIO TIMEOUT ARGS...
  local label=$1 scenario=$2 limit=$3 dir port pid cpu0 cpu1 rc=0
  shift 3
  dir=$(mktemp -d "$BUILD/bench-mosquitto.XXXXXX")
  port=$(peers_free_port)
  peers_mosquitto_conf "$dir/mosquitto.conf" "$dir" "$port"
  mosquitto -c "$dir/mosquitto.conf" >"$dir/stdout.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  if ! kill -0 "$pid" 2>/dev/null; then
    log "mosquitto did not start: $(cat "$dir/stdout.log" "$dir/mosquitto.log" 2>/dev/null | tail -3)"
    rm -rf "$dir"
    return 1
  fi
  log "oms-mqtt-bench $scenario $* (mosquitto pid $pid, as $label)"
  cpu0=$(peers_cpu_s "$pid")
  timeout "$(timeout_for "$limit")" "$MQTT_BENCH" "$scenario" --port "$port" --tag "$label" \
    --timeout "$(timeout_for "$limit")" --json "$PEERS_OUT/$label.raw.json" "$@" >"$PEERS_OUT/$label.txt" 2>&1 || rc=$?
  cpu1=$(peers_cpu_s "$pid")
  peers_stop "$pid"
  cp "$dir/mosquitto.log" "$PEERS_OUT/$label.mosquitto.log" 2>/dev/null || true
  rm -rf "$dir"
  if [ ! -s "$PEERS_OUT/$label.raw.json" ]; then
    echo '{"ok": false}' >"$PEERS_OUT/$label.raw.json"
  fi
  jq --argjson cpu "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')" --argjson rc "$rc" \
    '. + {peer: "mosquitto", server_cpu_s: $cpu, exit: $rc}' "$PEERS_OUT/$label.raw.json" >"$PEERS_OUT/$label.json"
  rm -f "$PEERS_OUT/$label.raw.json"
  head -1 "$PEERS_OUT/$label.txt" >&2
  [ "$rc" = 0 ]
}

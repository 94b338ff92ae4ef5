#!/usr/bin/env bash
# End-to-end check of the operator's side with the real binary: a config file
# and TERN_* environment variables (flags > env > file), tern pub/sub
# against mosquitto_pub/sub, the admin endpoint (/healthz, /readyz,
# /metrics, the JSON API through curl and tern ctl), $SYS topics, one log
# line per connection open and close, and a graceful SIGTERM: a 5.0 client
# told 0x8B, a clean exit within --shutdown-timeout, and the data directory
# intact on restart. Run by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

for c in mosquitto_pub mosquitto_sub curl; do
  command -v "$c" >/dev/null || { echo "e2e-ops: $c not installed (.ci/run installs it)" >&2; exit 1; }
done

port=$((20000 + RANDOM % 20000))
aport=$((port + 1))
work=$(mktemp -d)
log="$work/tern.log"
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail=0
passed=0
check() { # name, want, got
  if [ "$2" == "$3" ]; then echo "ok   $1"; passed=$((passed + 1)); else echo "FAIL $1: want [$2] got [$3]"; fail=$((fail + 1)); fi
}
contains() { # name, needle, haystack
  if [[ "$3" == *"$2"* ]]; then echo "ok   $1"; passed=$((passed + 1)); else echo "FAIL $1: [$2] not in [$3]"; fail=$((fail + 1)); fi
}

# The file says port 1 and json logs; the environment overrides the listener
# and the admin address; a flag overrides the environment's sys interval.
cat >"$work/tern.toml" <<TOML
listen = "127.0.0.1:1"
allow-anonymous = true
log-format = "json"
data-dir = "$work/data"
sys-interval = "1h"
shutdown-timeout = "5s"
TOML
start() {
  TERN_LISTEN="127.0.0.1:$port" TERN_ADMIN_LISTEN="127.0.0.1:$aport" TERN_SYS_INTERVAL=1h \
    bin/tern serve --config "$work/tern.toml" --sys-interval 1s >>"$log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$aport/readyz")" == 200 ] && return 0
    sleep 0.1
  done
  echo "broker did not become ready"; cat "$log"; exit 1
}
start

eff=$(TERN_LISTEN="127.0.0.1:$port" bin/tern serve --config "$work/tern.toml" --sys-interval 1s --print-config)
contains "print-config: flag wins" 'sys-interval = "1s"' "$eff"
contains "print-config: env over file" "listen = \"127.0.0.1:$port\"" "$eff"
bad=$(bin/tern serve --config <(echo 'lisen = "x"') 2>&1 || true)
contains "unknown config key named" '"lisen"' "$bad"

check "/healthz" "200" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$aport/healthz")"

# tern sub and mosquitto_pub, mosquitto_sub and tern pub, at 5.0 and 3.1.1.
for v in 5 311; do
  bin/tern sub -p "$port" -V "$v" -t "ops/$v" -C 1 -W 5 -v >"$work/tsub" &
  spid=$!
  sleep 0.3
  mosquitto_pub -p "$port" -t "ops/$v" -m "to tern sub $v" -q 1
  wait "$spid" || true
  check "tern sub -V $v" "ops/$v to tern sub $v" "$(cat "$work/tsub")"
  mosquitto_sub -p "$port" -t "ops/p$v" -C 1 -W 5 >"$work/msub" &
  spid=$!
  sleep 0.3
  bin/tern pub -p "$port" -V "$v" -t "ops/p$v" -m "from tern pub $v" -q 2
  wait "$spid" || true
  check "tern pub -V $v" "from tern pub $v" "$(cat "$work/msub")"
done
spid=

# A persistent session that stays offline with messages queued for it.
mosquitto_sub -p "$port" -V mqttv5 -i keeper -c -x 3600 -t ops/keep -q 1 -C 1 -W 1 >/dev/null 2>&1 || true
for i in 1 2 3; do mosquitto_pub -p "$port" -t ops/keep -m "k$i" -q 1; done
bin/tern pub -p "$port" -t ops/retained -m kept -r -q 1

sessions=$(bin/tern ctl --admin "127.0.0.1:$aport" sessions list --state offline)
contains "ctl sessions list" "keeper" "$sessions"
show=$(curl -s "http://127.0.0.1:$aport/v1/sessions/keeper")
contains "API: queued messages of an offline session" '"queued":3' "$show"
check "ctl retained get" "kept" "$(bin/tern ctl --admin "127.0.0.1:$aport" --json retained get ops/retained | sed -n 's/.*"payload": *"\([^"]*\)".*/\1/p')"

metrics=$(curl -s "http://127.0.0.1:$aport/metrics")
contains "metrics: QoS 1 in" 'tern_messages_received_total{qos="1"}' "$metrics"
check "metrics: queued" "3" "$(echo "$metrics" | awk '$1=="tern_queued_messages"{print $2}')"
check "metrics: retained" "1" "$(echo "$metrics" | awk '$1=="tern_retained_messages"{print $2}')"
contains "metrics: WAL commit latency" "tern_wal_commit_duration_seconds_bucket" "$metrics"

# $SYS: published every second, retained; '#' does not see it.
check "\$SYS version" "tern 0.1.0-dev" "$(mosquitto_sub -p "$port" -t '$SYS/broker/version' -C 1 -W 3)"
check "# does not match \$SYS" "" "$(mosquitto_sub -p "$port" -t '#' -W 2 -v 2>/dev/null | grep '^\$SYS' || true)"

# A 5.0 client connected at SIGTERM hears 0x8B; the broker exits 0 in time.
mosquitto_sub -d -p "$port" -V mqttv5 -i watcher -t ops/none -W 20 >"$work/watch" 2>&1 &
spid=$!
sleep 0.5
start_ns=$(date +%s%N)
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
took_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
check "SIGTERM exit status" "0" "$rc"
if [ "$took_ms" -lt 5000 ]; then check "exit within --shutdown-timeout" "yes" "yes"; else check "exit within --shutdown-timeout" "<5000 ms" "$took_ms ms"; fi
wait "$spid" 2>/dev/null || true
spid=
contains "5.0 client told server shutting down" "Received DISCONNECT (139)" "$(cat "$work/watch")"

# One line per connection open and close, with the fields operators grep for.
opened=$(grep -c '"msg":"client connected".*"client_id":"watcher"' "$log" || true)
closed=$(grep '"msg":"connection closed"' "$log" | grep -c '"client_id":"watcher"' || true)
check "one open line for a connection" "1" "$opened"
check "one close line for a connection" "1" "$closed"
contains "close line fields" '"reason":"server shutting down"' "$(grep '"msg":"connection closed"' "$log" | grep '"client_id":"watcher"')"

# Restart on the same data directory: the queued messages and the retained one are there.
start
check "retained after restart" "kept" "$(mosquitto_sub -p "$port" -t ops/retained -C 1 -W 3)"
check "queued after restart" "k1 k2 k3" "$(mosquitto_sub -p "$port" -V mqttv5 -i keeper -c -x 3600 -t ops/keep -q 1 -C 3 -W 5 | tr '\n' ' ' | sed 's/ $//')"
kill -TERM "$pid"; wait "$pid" || true; pid=

echo "e2e-ops: $passed passed, $fail failed"
[ "$fail" -eq 0 ]

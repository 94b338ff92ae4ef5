#!/usr/bin/env bash
# End-to-end check with Debian's mosquitto-clients: bin/tern serves, and
# mosquitto_sub/mosquitto_pub talk to it at MQTT 3.1, 3.1.1 and 5.0 with QoS
# 0, 1 and 2, a retained message and a will. Run by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mosquitto_pub >/dev/null || ! command -v mosquitto_sub >/dev/null; then
  echo "e2e: mosquitto-clients not installed (apt-get install mosquitto-clients); .ci/run installs them" >&2
  exit 1
fi

port=$((20000 + RANDOM % 20000))
work=$(mktemp -d)
log="$work/tern.log"
bin/tern serve --listen "127.0.0.1:$port" --log-level debug >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for _ in $(seq 50); do
  mosquitto_pub -h 127.0.0.1 -p "$port" -t ready -m x -q 0 2>/dev/null && break
  sleep 0.1
done

fail=0
passed=0
check() { # name, want, got
  if [ "$2" == "$3" ]; then echo "ok   $1"; passed=$((passed + 1)); else echo "FAIL $1: want [$2] got [$3]"; fail=$((fail + 1)); fi
}

for v in mqttv31 mqttv311 mqttv5; do
  for q in 0 1 2; do
    mosquitto_sub -h 127.0.0.1 -p "$port" -V "$v" -q "$q" -t "e2e/$v/$q/#" -C 1 -W 5 -v >"$work/out" &
    sub=$!
    sleep 0.3
    mosquitto_pub -h 127.0.0.1 -p "$port" -V "$v" -q "$q" -t "e2e/$v/$q/x" -m "hello $v $q"
    wait "$sub" || true
    check "$v qos $q" "e2e/$v/$q/x hello $v $q" "$(cat "$work/out")"
  done
done

# Retained: stored, delivered to a later subscriber, cleared by an empty payload.
mosquitto_pub -h 127.0.0.1 -p "$port" -t e2e/retained -m kept -r -q 1
check "retained delivered on subscribe" "kept" "$(mosquitto_sub -h 127.0.0.1 -p "$port" -t e2e/retained -C 1 -W 3)"
mosquitto_pub -h 127.0.0.1 -p "$port" -t e2e/retained -n -r -q 1
check "retained cleared" "" "$(mosquitto_sub -h 127.0.0.1 -p "$port" -t e2e/retained -C 1 -W 1 2>/dev/null || true)"

# Will: a client that dies without DISCONNECT has its will published.
mosquitto_sub -h 127.0.0.1 -p "$port" -t e2e/will -C 1 -W 5 >"$work/will" &
sub=$!
sleep 0.3
mosquitto_sub -h 127.0.0.1 -p "$port" -t e2e/none -i dying --will-topic e2e/will --will-payload gone -q 1 &
dying=$!
sleep 0.5
kill -9 "$dying"
wait "$dying" 2>/dev/null || true
wait "$sub" || true
check "will published on abnormal close" "gone" "$(cat "$work/will")"

if [ "$fail" != 0 ]; then
  echo "--- broker log"; tail -n 50 "$log"
fi
echo "e2e: $passed passed, $fail failed"
[ "$fail" == 0 ]

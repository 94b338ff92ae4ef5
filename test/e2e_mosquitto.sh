#!/usr/bin/env bash
# End-to-end check with Debian's mosquitto-clients: bin/tern serves, and
# mosquitto_sub/mosquitto_pub talk to it at MQTT 3.1, 3.1.1 and 5.0 with QoS
# 0, 1 and 2, a retained message and a will; then a broker with a data
# directory is killed with SIGKILL and restarted, and a persistent session, its
# queued messages and a retained message are still there; then a broker with
# a TLS listener, a password file and an ACL serves the clients with --cafile,
# -u/-P and a client certificate. Run by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mosquitto_pub >/dev/null || ! command -v mosquitto_sub >/dev/null; then
  echo "e2e: mosquitto-clients not installed (apt-get install mosquitto-clients); .ci/run installs them" >&2
  exit 1
fi

port=$((20000 + RANDOM % 20000))
work=$(mktemp -d)
log="$work/tern.log"
bin/tern serve --listen "127.0.0.1:$port" --allow-anonymous --log-level debug >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" ${dpid:-} ${spid:-} 2>/dev/null || true
  wait "$pid" ${dpid:-} ${spid:-} 2>/dev/null || true
  rm -rf "$work"
}
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

# Persistence: a second broker with a data directory, killed with SIGKILL
# while a persistent subscriber is offline, keeps the session, its queued QoS 1
# and 2 messages and a retained message.
dport=$((port + 1))
dlog="$work/durable.log"
start_durable() {
  bin/tern serve --listen "127.0.0.1:$dport" --allow-anonymous --data-dir "$work/data" --admin-listen "" >>"$dlog" 2>&1 &
  dpid=$!
  for _ in $(seq 50); do
    mosquitto_pub -h 127.0.0.1 -p "$dport" -t ready -m x -q 0 2>/dev/null && return
    sleep 0.1
  done
}
start_durable
mosquitto_sub -h 127.0.0.1 -p "$dport" -i e2e-durable -c -q 2 -t 'e2e/durable/#' -W 1 >/dev/null 2>&1 || true
mosquitto_pub -h 127.0.0.1 -p "$dport" -q 1 -t e2e/durable/a -m one
mosquitto_pub -h 127.0.0.1 -p "$dport" -q 2 -t e2e/durable/b -m two
mosquitto_pub -h 127.0.0.1 -p "$dport" -q 1 -r -t e2e/kept -m retained
kill -9 "$dpid"
wait "$dpid" 2>/dev/null || true
start_durable
check "queued messages survive kill -9" "e2e/durable/a one
e2e/durable/b two" "$(mosquitto_sub -h 127.0.0.1 -p "$dport" -i e2e-durable -c -q 2 -t 'e2e/durable/#' -v -C 2 -W 5 2>/dev/null || true)"
check "retained survives kill -9" "retained" "$(mosquitto_sub -h 127.0.0.1 -p "$dport" -t e2e/kept -C 1 -W 3 2>/dev/null || true)"
kill "$dpid" 2>/dev/null || true
wait "$dpid" 2>/dev/null || true

# Security with the stock clients: a TLS listener (certificates made here
# with openssl), a password file written by tern passwd, an ACL, and a client
# certificate standing for the user name.
sport=$((port + 2))
slog="$work/secure.log"
tls="$work/tls"
mkdir -p "$tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=e2e-ca \
  -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls/san.ext"
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
  -extfile "$tls/san.ext" -out "$tls/server.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=device-7 \
  -keyout "$tls/client.key" -out "$tls/client.csr" 2>/dev/null
openssl x509 -req -in "$tls/client.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
  -out "$tls/client.pem" 2>/dev/null
echo 's3cret' | bin/tern passwd "$work/passwd" alice >/dev/null
printf 'user alice\ntopic readwrite sec/#\nuser device-7\ntopic write sec/devices/7\n' >"$work/acl"
bin/tern serve --listen "127.0.0.1:$((sport + 1))" --tls-listen "127.0.0.1:$sport" --tls-cert "$tls/server.pem" \
  --tls-key "$tls/server.key" --tls-client-ca "$tls/ca.pem" --tls-client-auth request --tls-cert-as-username \
  --password-file "$work/passwd" --acl-file "$work/acl" --admin-listen "" >"$slog" 2>&1 &
spid=$!
sec=(-h 127.0.0.1 -p "$sport" --cafile "$tls/ca.pem")
for _ in $(seq 50); do
  mosquitto_pub "${sec[@]}" -u alice -P s3cret -t sec/ready -m x 2>/dev/null && break
  sleep 0.1
done
mosquitto_sub "${sec[@]}" -u alice -P s3cret -t 'sec/#' -C 2 -W 5 -v >"$work/sec" &
sub=$!
sleep 0.3
mosquitto_pub "${sec[@]}" -u alice -P s3cret -q 1 -t sec/a -m 'over TLS'
mosquitto_pub "${sec[@]}" -u alice -P s3cret -q 1 -t other/a -m 'not allowed' || true
mosquitto_pub "${sec[@]}" --cert "$tls/client.pem" --key "$tls/client.key" -q 1 -t sec/devices/7 -m 'by certificate'
wait "$sub" || true
check "TLS, password file and ACL with mosquitto clients" "sec/a over TLS
sec/devices/7 by certificate" "$(cat "$work/sec")"
if mosquitto_pub "${sec[@]}" -u alice -P wrong -t sec/a -m x 2>/dev/null; then got=accepted; else got=refused; fi
check "wrong password refused" "refused" "$got"
if mosquitto_pub "${sec[@]}" -t sec/a -m x 2>/dev/null; then got=accepted; else got=refused; fi
check "anonymous refused" "refused" "$got"
kill "$spid" 2>/dev/null || true
wait "$spid" 2>/dev/null || true

if [ "$fail" != 0 ]; then
  echo "--- broker log"; tail -n 50 "$log"
  [ -f "${dlog:-}" ] && { echo "--- durable broker log"; tail -n 30 "$dlog"; }
  [ -f "${slog:-}" ] && { echo "--- secure broker log"; tail -n 30 "$slog"; }
fi
echo "e2e: $passed passed, $fail failed"
[ "$fail" == 0 ]

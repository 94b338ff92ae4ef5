// Package crash holds the kill -9 tests of the tern binary: a broker started
// with --durability sync is killed at random instants under load and
// restarted on the same data directory, and the tests check that nothing it
// acknowledged is lost (messages, subscriptions, sessions, retained messages)
// and that no QoS 2 message is delivered twice.
//
// The package has no code of its own: everything is in its tests, which build
// bin/tern themselves and drive it with a small raw MQTT client built on the
// codec, so that every packet id, DUP flag and acknowledgement is under the
// test's control. `go test ./test/crash` runs 20 kill points;
// `make crash-soak` runs 200 (TERN_CRASH_CYCLES).
package crash

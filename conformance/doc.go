// Package conformance holds ports of independent MQTT conformance suites to Go
// tests, run against a Tern broker started in the test on a loopback port.
//
// The suite ported so far is the Eclipse Paho interoperability suite
// (github.com/eclipse/paho.mqtt.testing, interoperability/client_test.py for
// MQTT 3.1.1 and interoperability/client_test5.py for MQTT 5.0): the same
// topics, QoS, order of operations and assertions, with the sleeps of the
// Python scripts replaced by waits for the packets they were waiting for, and
// keep-alives and expiry intervals scaled down so that the whole package runs
// in seconds. Each test names the Paho test it ports and the statements of the
// specification it checks. Where the Paho suite expects what its own test
// broker does but the specification leaves open, the test accepts every
// conforming behaviour and says so.
//
// The package has no code of its own, only tests.
package conformance

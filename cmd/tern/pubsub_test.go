package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// The tests run tern pub and tern sub through pubCmd and subCmd against a
// broker on a loopback port. Every sub has a -W, so that none outlives its
// test by more than a few seconds whatever goes wrong.

// brokerArgs starts a broker with o and returns the -h and -p flags of its
// plain listener.
func brokerArgs(t *testing.T, o engine.Options) []string {
	t.Helper()
	_, args := startBroker(t, o)
	return args
}

// startBroker starts a broker with o and returns it and the -h and -p flags
// of its plain listener.
func startBroker(t *testing.T, o engine.Options) (*engine.Server, []string) {
	t.Helper()
	s := testutil.StartBroker(t, o)
	host, port, err := net.SplitHostPort(s.Addr().String())
	testutil.Require(t, err, "broker address")
	return s, []string{"-h", host, "-p", port}
}

// runPub runs tern pub with args and stdin and returns its exit code and
// standard error.
func runPub(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := pubCmd(args, strings.NewReader(stdin), &stdout, &stderr)
	if stdout.Len() > 0 {
		t.Errorf("tern pub %q wrote to standard output: %q", args, stdout.String())
	}
	return code, stderr.String()
}

// mustPub runs tern pub and fails the test unless it succeeds.
func mustPub(t *testing.T, stdin string, args ...string) {
	t.Helper()
	if code, stderr := runPub(t, stdin, args...); code != 0 {
		t.Fatalf("tern pub %q: exit code %d: %s", args, code, stderr)
	}
}

// subRun is a tern sub running in the background.
type subRun struct {
	stdout, stderr testutil.LockedBuffer
	code           chan int
	cancel         context.CancelFunc
}

// startSub starts tern sub with args and -d, and returns once it has
// subscribed (its SUBACK is in the -d trace).
func startSub(t *testing.T, args ...string) *subRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &subRun{code: make(chan int, 1), cancel: cancel}
	args = append(args, "-d")
	go func() { s.code <- subCmd(ctx, args, &s.stdout, &s.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.code:
		case <-time.After(10 * time.Second):
			// The goroutines show where it is stuck.
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("tern sub did not return; stderr:\n%s\ngoroutines:\n%s", s.stderr.String(), buf)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.stderr.String(), "received SUBACK") {
		select {
		case code := <-s.code:
			s.code <- code // for the cleanup, which would wait for it in vain
			t.Fatalf("tern sub %q ended early (before the test published anything): exit code %d: %s", args, code, s.stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("tern sub %q did not subscribe in 5s: %s", args, s.stderr.String())
		}
	}
	return s
}

// wait returns the exit code and standard output of s, failing after 10s.
func (s *subRun) wait(t *testing.T) (int, string) {
	t.Helper()
	select {
	case code := <-s.code:
		s.code <- code // for the cleanup
		return code, s.stdout.String()
	case <-time.After(10 * time.Second):
		t.Fatalf("tern sub did not end in 10s; stderr: %s", s.stderr.String())
		return 0, ""
	}
}

// runSub runs tern sub to the end and returns its exit code, standard
// output and standard error.
func runSub(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := subCmd(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func join(a []string, b ...string) []string { return append(slices.Clone(a), b...) }

// A retained message published by tern pub reaches a later tern sub, at
// every protocol version, each client speaking the same.
func TestPubSubRetained(t *testing.T) {
	broker := brokerArgs(t, engine.Options{})
	f := func(version string) {
		t.Helper()
		topic := "retained/" + version
		mustPub(t, "", join(broker, "-V", version, "-t", topic, "-m", "hello "+version, "-r", "-q", "1")...)
		code, out, stderr := runSub(t, join(broker, "-V", version, "-t", topic, "-C", "1", "-v", "-W", "5")...)
		testutil.Equal(t, code, 0, "sub exit code; stderr "+stderr)
		testutil.Equal(t, out, topic+" hello "+version+"\n", "sub output")
	}
	f("5")
	f("311")
	f("mqttv31")
	f("mqttv5")
}

// Messages of QoS 1 and 2 arrive at the QoS they were published with (the
// subscription allows 2), and sub prints them in order.
func TestPubSubQoS(t *testing.T) {
	broker := brokerArgs(t, engine.Options{})
	f := func(version string) {
		t.Helper()
		filter := "qos/" + version + "/#"
		sub := startSub(t, join(broker, "-V", version, "-t", filter, "-q", "2", "-C", "3", "-F", "%q %t %p", "-W", "8")...)
		for q := range 3 {
			qs := string(rune('0' + q))
			mustPub(t, "", join(broker, "-V", version, "-q", qs, "-t", "qos/"+version+"/"+qs, "-m", "at "+qs)...)
		}
		code, out := sub.wait(t)
		testutil.Equal(t, code, 0, "sub exit code")
		// Each pub has its own connection: the broker may pass the QoS 0
		// one on after the next.
		lines := strings.SplitAfter(out, "\n")
		slices.Sort(lines)
		want := "0 qos/V/0 at 0\n1 qos/V/1 at 1\n2 qos/V/2 at 2\n"
		testutil.Equal(t, strings.Join(lines, ""), strings.ReplaceAll(want, "V", version), "sub output")
	}
	f("5")
	f("311")
}

// -l sends each line as a message: an empty line is an empty message, and a
// last line without a newline is sent too.
func TestPubLines(t *testing.T) {
	broker := brokerArgs(t, engine.Options{})
	f := func(version string) {
		t.Helper()
		sub := startSub(t, join(broker, "-V", version, "-t", "lines", "-q", "1", "-C", "3", "-v", "-W", "8")...)
		mustPub(t, "one\n\nthree", join(broker, "-V", version, "-t", "lines", "-q", "1", "-l")...)
		code, out := sub.wait(t)
		testutil.Equal(t, code, 0, "sub exit code")
		testutil.Equal(t, out, "lines one\nlines (null)\nlines three\n", "sub output")
	}
	f("5")
	f("311")
}

// -s sends all of standard input as one message, newlines and all; -N
// prints it without adding one.
func TestPubStdin(t *testing.T) {
	broker := brokerArgs(t, engine.Options{})
	sub := startSub(t, join(broker, "-t", "stdin", "-C", "1", "-N", "-W", "8")...)
	mustPub(t, "multi\nline\n", join(broker, "-t", "stdin", "-s")...)
	code, out := sub.wait(t)
	testutil.Equal(t, code, 0, "sub exit code")
	testutil.Equal(t, out, "multi\nline\n", "sub output")
}

// -f sends a file's bytes as they are.
func TestPubFile(t *testing.T) {
	broker := brokerArgs(t, engine.Options{})
	file := filepath.Join(t.TempDir(), "payload")
	testutil.Require(t, os.WriteFile(file, []byte("bin\x00\xff"), 0o600), "write payload")
	sub := startSub(t, join(broker, "-t", "file", "-C", "1", "-F", "%l %x", "-W", "8")...)
	mustPub(t, "", join(broker, "-t", "file", "-f", file)...)
	code, out := sub.wait(t)
	testutil.Equal(t, code, 0, "sub exit code")
	testutil.Equal(t, out, "5 62696e00ff\n", "sub output")

	code, stderr := runPub(t, "", join(broker, "-t", "file", "-f", file+".missing")...)
	testutil.Equal(t, code, 1, "exit code for a missing file")
	if !strings.Contains(stderr, "-f:") {
		t.Errorf("stderr %q does not name -f", stderr)
	}
}

// -n sends an empty message; with -r it deletes the retained message.
func TestPubNull(t *testing.T) {
	broker := brokerArgs(t, engine.Options{})
	// At QoS 1 the broker has stored (or deleted) the retained message when
	// pub returns; at QoS 0 it may not even have read the PUBLISH yet.
	mustPub(t, "", join(broker, "-t", "null", "-m", "kept", "-r", "-q", "1")...)
	sub := startSub(t, join(broker, "-t", "null", "-C", "2", "-v", "-W", "8")...)
	mustPub(t, "", join(broker, "-t", "null", "-n", "-r", "-q", "1")...)
	code, out := sub.wait(t)
	testutil.Equal(t, code, 0, "sub exit code")
	testutil.Equal(t, out, "null kept\nnull (null)\n", "sub output")

	code, out, _ = runSub(t, join(broker, "-t", "null", "-W", "0.3")...)
	testutil.Equal(t, code, 27, "exit code with no retained message left")
	testutil.Equal(t, out, "", "sub output")
}

// -W ends sub with mosquitto's exit code 27 when the messages do not come,
// and pub when the broker does not answer.
func TestSubTimeout(t *testing.T) {
	broker := brokerArgs(t, engine.Options{})
	start := time.Now()
	code, out, stderr := runSub(t, join(broker, "-t", "nothing/here", "-W", "0.3")...)
	testutil.Equal(t, code, 27, "exit code")
	testutil.Equal(t, out, "", "output")
	if !strings.Contains(stderr, "timed out") {
		t.Errorf("stderr %q does not say it timed out", stderr)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("-W 0.3 took %v", d)
	}
	// -C and -W: the count comes first.
	mustPub(t, "", join(broker, "-t", "early", "-m", "x", "-r", "-q", "1")...)
	code, out, _ = runSub(t, join(broker, "-t", "early", "-C", "1", "-W", "5")...)
	testutil.Equal(t, code, 0, "exit code when the count comes first")
	testutil.Equal(t, out, "x\n", "output")
}

func TestPubTimeout(t *testing.T) {
	// A listener that accepts and never answers CONNECT.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Require(t, err, "listen")
	var mu sync.Mutex
	var conns []net.Conn
	defer func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	f := func(version string) {
		t.Helper()
		code, stderr := runPub(t, "", "-h", host, "-p", port, "-V", version, "-t", "t", "-m", "x", "-W", "0.3")
		testutil.Equal(t, code, 27, "exit code; stderr "+stderr)
	}
	f("5")
	f("311")
}

// Without a broker pub says where it tried to connect and exits with 1.
func TestPubNoBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Require(t, err, "listen")
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close() // nothing listens there now
	f := func(version string) {
		t.Helper()
		code, stderr := runPub(t, "", "-h", host, "-p", port, "-V", version, "-t", "t", "-m", "x")
		testutil.Equal(t, code, 1, "exit code")
		if !strings.HasPrefix(stderr, "tern pub: cannot connect to "+ln.Addr().String()+": ") {
			t.Errorf("stderr %q", stderr)
		}
	}
	f("5")
	f("311")
}

// denyRules refuses the subscriptions to filters starting with "secret".
type denyRules struct{}

func (denyRules) CanPublish([]byte) bool          { return true }
func (denyRules) CanSubscribe(filter []byte) bool { return !bytes.HasPrefix(filter, []byte("secret")) }
func (denyRules) CanReceive([]byte) bool          { return true }

// sub reports each refused subscription with its reason, goes on with the
// others, and exits with 1 when all are refused.
func TestSubRefusedSubscription(t *testing.T) {
	broker := brokerArgs(t, engine.Options{Authorize: func(*engine.ConnectInfo) engine.Rules { return denyRules{} }})
	f := func(version, reason string) {
		t.Helper()
		code, _, stderr := runSub(t, join(broker, "-V", version, "-t", "secret/#", "-W", "5")...)
		testutil.Equal(t, code, 1, "exit code with every subscription refused")
		testutil.Equal(t, stderr, `tern sub: subscription to "secret/#" refused: `+reason+"\n", "stderr")

		mustPub(t, "", join(broker, "-V", version, "-t", "open", "-m", "fine", "-r", "-q", "1")...)
		code, out, stderr := runSub(t, join(broker, "-V", version, "-t", "secret/#", "-t", "open", "-C", "1", "-W", "5")...)
		testutil.Equal(t, code, 0, "exit code with one subscription granted")
		testutil.Equal(t, out, "fine\n", "output")
		testutil.Equal(t, stderr, `tern sub: subscription to "secret/#" refused: `+reason+"\n", "stderr")
	}
	f("5", "not authorized (0x87)")
	f("311", "failure (0x80)")
}

// -R leaves out the retained messages sent on subscribing and does not
// count them.
func TestSubNoRetained(t *testing.T) {
	broker := brokerArgs(t, engine.Options{})
	f := func(version string) {
		t.Helper()
		topic := "stale/" + version
		// At QoS 0 the broker may take the PUBLISH after sub's SUBSCRIBE,
		// and pass "old" on as a live message that -R does not leave out:
		// at QoS 1 it is retained before pub returns.
		mustPub(t, "", join(broker, "-V", version, "-t", topic, "-m", "old", "-r", "-q", "1")...)
		sub := startSub(t, join(broker, "-V", version, "-t", topic, "-R", "-C", "1", "-v", "-W", "8")...)
		mustPub(t, "", join(broker, "-V", version, "-t", topic, "-m", "new")...)
		code, out := sub.wait(t)
		testutil.Equal(t, code, 0, "sub exit code")
		testutil.Equal(t, out, topic+" new\n", "sub output")
	}
	f("5")
	f("311")
}

// -T leaves out the messages whose topic matches a filter.
func TestSubFilterOut(t *testing.T) {
	broker := brokerArgs(t, engine.Options{})
	sub := startSub(t, join(broker, "-t", "f/#", "-T", "f/skip/#", "-T", "+/noise", "-C", "1", "-v", "-W", "8")...)
	mustPub(t, "", join(broker, "-t", "f/skip/a", "-m", "1")...)
	mustPub(t, "", join(broker, "-t", "f/noise", "-m", "2")...)
	mustPub(t, "", join(broker, "-t", "f/keep", "-m", "3")...)
	code, out := sub.wait(t)
	testutil.Equal(t, code, 0, "sub exit code")
	testutil.Equal(t, out, "f/keep 3\n", "sub output")
}

// --retained-only prints the retained messages and ends at the first live
// one, without printing it.
func TestSubRetainedOnly(t *testing.T) {
	broker := brokerArgs(t, engine.Options{})
	mustPub(t, "", join(broker, "-t", "ro/a", "-m", "A", "-r", "-q", "1")...) // stored once acknowledged
	sub := startSub(t, join(broker, "-t", "ro/#", "--retained-only", "-v", "-W", "8")...)
	// Retained messages and a live one from another client may arrive in
	// either order: publish the live one once the retained one is in.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(sub.stdout.String(), "ro/a A") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	mustPub(t, "", join(broker, "-t", "ro/b", "-m", "live")...)
	code, out := sub.wait(t)
	testutil.Equal(t, code, 0, "sub exit code")
	testutil.Equal(t, out, "ro/a A\n", "sub output")
}

// --remove-retained deletes each retained message it receives.
func TestSubRemoveRetained(t *testing.T) {
	broker := brokerArgs(t, engine.Options{})
	f := func(version string) {
		t.Helper()
		prefix := "rr" + version + "/"
		// At QoS 1, so that both are retained before sub subscribes (a live
		// one would be printed and counted, not removed).
		mustPub(t, "", join(broker, "-V", version, "-t", prefix+"a", "-m", "A", "-r", "-q", "1")...)
		mustPub(t, "", join(broker, "-V", version, "-t", prefix+"b", "-m", "B", "-r", "-q", "1")...)
		// -R -C 2 counts the two deletions coming back live, so the
		// deletions are done when sub ends.
		code, out, stderr := runSub(t, join(broker, "-V", version, "-t", prefix+"#", "--remove-retained", "-R", "-C", "2", "-v", "-W", "5")...)
		testutil.Equal(t, code, 0, "sub exit code; stderr "+stderr)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		slices.Sort(lines)
		testutil.Equal(t, strings.Join(lines, ","), prefix+"a (null),"+prefix+"b (null)", "sub output")
		code, out, _ = runSub(t, join(broker, "-V", version, "-t", prefix+"#", "-W", "0.3")...)
		testutil.Equal(t, code, 27, "exit code with the retained messages gone")
		testutil.Equal(t, out, "", "sub output")
	}
	f("5")
	f("311")
}

// The 5.0 properties -D gives a PUBLISH reach a paho subscriber as given.
func TestPubProperties(t *testing.T) {
	s := testutil.StartBroker(t, engine.Options{})
	host, port, _ := net.SplitHostPort(s.Addr().String())
	c := testutil.ConnectV5(t, s.Addr().String(), &paho.Connect{ClientID: "props-sub", CleanStart: true})
	_, err := c.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "props", QoS: 1}}})
	testutil.Require(t, err, "subscribe")
	mustPub(t, "", "-h", host, "-p", port, "-t", "props", "-m", "22.5", "-q", "1",
		"-D", "publish", "user-property", "unit", "celsius",
		"-D", "publish", "user-property", "unit", "kelvin", // user properties repeat, in order
		"-D", "publish", "message-expiry-interval", "60",
		"-D", "publish", "content-type", "text/plain",
		"-D", "publish", "response-topic", "props/reply",
		"-D", "publish", "correlation-data", "req-1",
		"-D", "publish", "payload-format-indicator", "1")
	m := c.Recv(t)
	testutil.Equal(t, string(m.Payload), "22.5", "payload")
	p := m.Properties
	if p == nil {
		t.Fatal("no properties")
	}
	testutil.Equal(t, len(p.User), 2, "user properties")
	testutil.Equal(t, p.User[0], paho.UserProperty{Key: "unit", Value: "celsius"}, "first user property")
	testutil.Equal(t, p.User[1], paho.UserProperty{Key: "unit", Value: "kelvin"}, "second user property")
	if p.MessageExpiry == nil || *p.MessageExpiry < 58 || *p.MessageExpiry > 60 {
		t.Errorf("message expiry %v, want 60 less the seconds it waited", p.MessageExpiry)
	}
	testutil.Equal(t, p.ContentType, "text/plain", "content type")
	testutil.Equal(t, p.ResponseTopic, "props/reply", "response topic")
	testutil.Equal(t, string(p.CorrelationData), "req-1", "correlation data")
	if p.PayloadFormat == nil || *p.PayloadFormat != 1 {
		t.Errorf("payload format %v, want 1", p.PayloadFormat)
	}
}

// sub prints the properties of a message with -F.
func TestSubPrintsProperties(t *testing.T) {
	broker := brokerArgs(t, engine.Options{})
	sub := startSub(t, join(broker, "-t", "fp", "-C", "1", "-W", "8",
		"-D", "subscribe", "subscription-identifier", "7",
		"-F", `%t|%C|%R|%D|%F|%S|%P|%p|%-4l|%03q|\t|%.2t`)...)
	mustPub(t, "", join(broker, "-t", "fp", "-m", "payload",
		"-D", "publish", "content-type", "text/plain", "-D", "publish", "response-topic", "re",
		"-D", "publish", "correlation-data", "cd", "-D", "publish", "payload-format-indicator", "1",
		"-D", "publish", "user-property", "a", "1", "-D", "publish", "user-property", "b", "2")...)
	code, out := sub.wait(t)
	testutil.Equal(t, code, 0, "sub exit code")
	testutil.Equal(t, out, "fp|text/plain|re|cd|1|7|a:1 b:2|payload|7   |0|\t|fp\n", "sub output")
}

// -D and -x need MQTT 5.0.
func TestPubSubPropertiesNeed5(t *testing.T) {
	f := func(run func(args ...string) (int, string), args ...string) {
		t.Helper()
		code, stderr := run(args...)
		testutil.Equal(t, code, 2, "exit code")
		if !strings.Contains(stderr, "MQTT 5.0") {
			t.Errorf("%q: stderr %q does not say the flag needs MQTT 5.0", args, stderr)
		}
	}
	pub := func(args ...string) (int, string) { return runPub(t, "", args...) }
	sub := func(args ...string) (int, string) {
		code, _, stderr := runSub(t, args...)
		return code, stderr
	}
	f(pub, "-V", "311", "-t", "t", "-m", "x", "-D", "publish", "user-property", "k", "v")
	f(pub, "-D", "publish", "message-expiry-interval", "60", "-V", "mqttv311", "-t", "t", "-m", "x")
	f(pub, "-V", "31", "-t", "t", "-m", "x", "-x", "60")
	f(sub, "-V", "311", "-t", "t", "-D", "subscribe", "subscription-identifier", "1")
	f(sub, "-V", "311", "-t", "t", "-D", "connect", "session-expiry-interval", "1")
}

// Bad flags exit with 2 and a message that names the flag, before any
// connection.
func TestPubSubBadFlags(t *testing.T) {
	f := func(cmd string, want string, args ...string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		var code int
		if cmd == "pub" {
			code = pubCmd(args, strings.NewReader(""), &stdout, &stderr)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			code = subCmd(ctx, args, &stdout, &stderr)
			cancel()
		}
		if code != 2 {
			t.Errorf("tern %s %q: exit code %d, want 2", cmd, args, code)
		}
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("tern %s %q: stderr %q does not contain %q", cmd, args, stderr.String(), want)
		}
	}
	f("pub", "-q needs 0, 1 or 2", "-t", "t", "-m", "x", "-q", "3")
	f("pub", "-q needs 0, 1 or 2", "-t", "t", "-m", "x", "-q")
	f("pub", "-t needs a value", "-m", "x", "-t")
	f("pub", "unknown flag -z", "-t", "t", "-m", "x", "-z")
	f("pub", "give the message with one of -m, -f, -s, -l and -n", "-t", "t")
	f("pub", "-n conflicts", "-t", "t", "-m", "x", "-n")
	f("pub", `-t "a/#" is not a topic name`, "-t", "a/#", "-m", "x")
	f("pub", "-t given twice", "-t", "a", "-t", "b", "-m", "x")
	f("pub", "-v is a flag of tern sub", "-t", "t", "-m", "x", "-v")
	f("pub", "-p needs a number from 1 to 65535", "-t", "t", "-m", "x", "-p", "http")
	f("pub", "-V needs 5, 311 or 31", "-t", "t", "-m", "x", "-V", "4")
	f("pub", "-c needs a client identifier", "-t", "t", "-m", "x", "-c")
	f("pub", "--cert and --key go together", "-t", "t", "-m", "x", "--cert", "c.pem")
	f("pub", "--tls-version needs tlsv1.2 or tlsv1.3", "-t", "t", "-m", "x", "--tls-version", "tlsv1.0")
	f("pub", "need --will-topic", "-t", "t", "-m", "x", "--will-qos", "1")
	f("pub", "--retain takes no value", "-t", "t", "-m", "x", "--retain=1")
	f("pub", "-W needs seconds", "-t", "t", "-m", "x", "-W", "0")
	f("pub", "--repeat does not go with -l", "-t", "t", "-l", "--repeat", "2")
	f("pub", `unexpected argument "extra"`, "-t", "t", "-m", "x", "extra")
	f("pub", "-D needs CMD PROP VALUE", "-t", "t", "-m", "x", "-D", "publish", "content-type")
	f("pub", `-D "subscribe": CMD is connect, publish, disconnect, will`, "-t", "t", "-m", "x", "-D", "subscribe", "user-property", "k", "v")
	f("pub", `-D publish "colour": unknown property`, "-t", "t", "-m", "x", "-D", "publish", "colour", "red")
	f("pub", "-D connect content-type: not a property of connect", "-t", "t", "-m", "x", "-D", "connect", "content-type", "x")
	f("pub", "-D publish content-type: given twice", "-t", "t", "-m", "x", "-D", "publish", "content-type", "a", "-D", "publish", "content-type", "b")
	f("pub", "-D publish payload-format-indicator needs a number from 0 to 1", "-t", "t", "-m", "x", "-D", "publish", "payload-format-indicator", "2")
	f("pub", "-D will content-type: not sent by paho.golang", "-t", "t", "-m", "x", "--will-topic", "w", "-D", "will", "content-type", "x")
	f("pub", "-D user-property needs KEY VALUE", "-t", "t", "-m", "x", "-D", "publish", "user-property", "k")
	f("sub", "at least one -t FILTER", "-v")
	f("sub", `-t "a/#/b" is not a valid topic filter`, "-t", "a/#/b")
	f("sub", "-C needs a number from 1", "-t", "t", "-C", "0")
	f("sub", "-m is a flag of tern pub", "-t", "t", "-m", "x")
	f("sub", `-D "publish": CMD is connect, subscribe, disconnect, will`, "-t", "t", "-D", "publish", "content-type", "x")
	f("sub", "-D subscribe subscription-identifier needs a number from 1 to 268435455", "-t", "t", "-D", "subscribe", "subscription-identifier", "0")
	f("sub", `-F "%z": unknown conversion %z`, "-t", "t", "-F", "%z")
	f("sub", `-T "a#" is not a valid topic filter`, "-t", "t", "-T", "a#")
	f("sub", "-x needs seconds from 0 to 4294967295", "-t", "t", "-x", "soon")
}

// --help lists every flag of the command, and the -D properties.
func TestPubSubHelp(t *testing.T) {
	common := []string{"session-expiry-interval", "receive-maximum", "maximum-packet-size", "topic-alias-maximum",
		"request-problem-information", "request-response-information", "reason-string", "will-delay-interval", "user-property"}
	f := func(cmd string, props []string, run func(args []string, stdout *bytes.Buffer) int) {
		t.Helper()
		for _, h := range []string{"--help", "-help"} {
			var stdout bytes.Buffer
			testutil.Equal(t, run([]string{"-t", "x", h}, &stdout), 0, cmd+" "+h+" exit code")
			usage := stdout.String()
			for _, fl := range clientFlags {
				if fl.names == nil || !strings.Contains(fl.cmds, cmd) {
					continue
				}
				for _, n := range fl.names {
					if !strings.Contains(usage, n) {
						t.Errorf("tern %s %s does not list %s", cmd, h, n)
					}
				}
			}
			for _, name := range props {
				if !strings.Contains(usage, name) {
					t.Errorf("tern %s %s does not list property %s", cmd, h, name)
				}
			}
		}
	}
	f("pub", join(common, "payload-format-indicator", "message-expiry-interval", "content-type", "response-topic", "correlation-data"), func(args []string, stdout *bytes.Buffer) int {
		return pubCmd(args, strings.NewReader(""), stdout, &bytes.Buffer{})
	})
	f("sub", join(common, "subscription-identifier"), func(args []string, stdout *bytes.Buffer) int {
		return subCmd(t.Context(), args, stdout, &bytes.Buffer{})
	})
}

// Over TLS with a client certificate, at 5.0 and 3.1.1; without the CA the
// handshake fails, --insecure included (it skips the host name only).
func TestPubSubTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "pubsub CA")
	caFile := filepath.Join(dir, "ca.pem")
	testutil.Require(t, os.WriteFile(caFile, ca.PEM, 0o600), "write CA")
	certPEM, keyPEM := ca.IssuePEM(t, "cli", false)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testutil.Require(t, os.WriteFile(certFile, certPEM, 0o600), "write cert")
	testutil.Require(t, os.WriteFile(keyFile, keyPEM, 0o600), "write key")
	s := testutil.StartBroker(t, engine.Options{
		TLSListen: "127.0.0.1:0",
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "broker", true)},
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool},
	})
	_, port, _ := net.SplitHostPort(s.TLSAddr().String())
	f := func(host, version string) {
		t.Helper()
		tlsArgs := []string{"-h", host, "-p", port, "-V", version, "--cafile", caFile, "--cert", certFile, "--key", keyFile}
		topic := "tls/" + version
		mustPub(t, "", join(tlsArgs, "-t", topic, "-m", "secret", "-r", "-q", "1")...)
		code, out, stderr := runSub(t, join(tlsArgs, "-t", topic, "-C", "1", "-v", "-W", "5")...)
		testutil.Equal(t, code, 0, "sub exit code; stderr "+stderr)
		testutil.Equal(t, out, topic+" secret\n", "sub output")

		for _, flag := range []string{"--tls", "--insecure"} {
			code, stderr = runPub(t, "", "-h", host, "-p", port, "-V", version, flag, "--cert", certFile, "--key", keyFile, "-t", topic, "-m", "x", "-W", "5")
			testutil.Equal(t, code, 1, flag+" without the CA: exit code")
			if !strings.Contains(stderr, "TLS handshake") || !strings.Contains(stderr, "certificate") {
				t.Errorf("%s without the CA: stderr %q", flag, stderr)
			}
		}
	}
	f("127.0.0.1", "5")
	f("localhost", "311")
}

// A refused CONNECT prints the reason and exits with 1; the accepted user
// gets through.
func TestPubSubRefused(t *testing.T) {
	broker := brokerArgs(t, engine.Options{Authenticate: func(c *engine.ConnectInfo) codec.ReasonCode {
		if string(c.Username) == "alice" && string(c.Password) == "secret" {
			return codec.Success
		}
		return codec.NotAuthorized
	}})
	f := func(version, want string) {
		t.Helper()
		code, stderr := runPub(t, "", join(broker, "-V", version, "-u", "mallory", "-P", "guess", "-t", "t", "-m", "x")...)
		testutil.Equal(t, code, 1, "pub exit code")
		testutil.Equal(t, stderr, "tern pub: "+want+"\n", "pub stderr")
		code, _, stderr = runSub(t, join(broker, "-V", version, "-t", "t", "-W", "5")...)
		testutil.Equal(t, code, 1, "sub exit code")
		testutil.Equal(t, stderr, "tern sub: "+want+"\n", "sub stderr")
		mustPub(t, "", join(broker, "-V", version, "-u", "alice", "-P", "secret", "-t", "t", "-m", "x")...)
	}
	f("5", "connection refused: not authorized (0x87)")
	f("311", "connection refused: not authorized (0x05)")
}

// With -c the session outlives sub: a message published while it is away
// comes on the next run, once, because sub acknowledged it before leaving.
func TestSubPersistentSession(t *testing.T) {
	srv, broker := startBroker(t, engine.Options{})
	f := func(version string) {
		t.Helper()
		id := "persist-" + version
		args := join(broker, "-V", version, "-c", "-i", id, "-q", "1", "-t", "away/"+version, "-v")
		first := startSub(t, join(args, "-W", "8")...) // subscribes and leaves
		first.cancel()
		code, _ := first.wait(t)
		testutil.Equal(t, code, 0, "first run exit code")
		mustPub(t, "", join(broker, "-V", version, "-q", "1", "-t", "away/"+version, "-m", "while away")...)
		code, out, stderr := runSub(t, join(args, "-C", "1", "-W", "5")...)
		testutil.Equal(t, code, 0, "second run exit code; stderr "+stderr)
		testutil.Equal(t, out, "away/"+version+" while away\n", "second run output")
		// sub has sent PUBACK and DISCONNECT, but the broker reads them in
		// its own time: a third run that connected before it did would take
		// the session over with the message still in flight, and get it again
		// (as MQTT requires). Once the broker has closed the connection it
		// has read all of it: the message must be acknowledged by then.
		info := offlineSession(t, srv, id)
		testutil.Equal(t, info.Inflight, 0, "messages in flight after the second run (not acknowledged before DISCONNECT?)")
		testutil.Equal(t, info.Queued, 0, "messages queued after the second run")
		code, out, _ = runSub(t, join(args, "-W", "0.3")...)
		testutil.Equal(t, code, 27, "third run exit code")
		testutil.Equal(t, out, "", "third run output (a redelivery?)")
	}
	f("5")
	f("311")
}

// offlineSession waits until the broker has closed the connection of the
// session of client id, and returns the session.
func offlineSession(t *testing.T, srv *engine.Server, id string) engine.SessionInfo {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, _, err := srv.Session(id)
		testutil.Require(t, err, "session "+id)
		if !info.Online {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s still online 5s after its client left", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Cancelling sub's context (SIGINT) ends it with exit code 0.
func TestSubInterrupt(t *testing.T) {
	broker := brokerArgs(t, engine.Options{})
	sub := startSub(t, join(broker, "-t", "quiet", "-W", "8")...)
	sub.cancel()
	code, _ := sub.wait(t)
	testutil.Equal(t, code, 0, "exit code; stderr "+sub.stderr.String())

	// Interrupted before it has connected and subscribed: the same. (The
	// -d trace shows SUBACK as it is read, before the library passes it on,
	// so the cancel above may also come while sub waits for it.)
	for _, version := range []string{"5", "311"} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var stdout, stderr bytes.Buffer
		code := subCmd(ctx, join(broker, "-V", version, "-t", "quiet", "-W", "8"), &stdout, &stderr)
		testutil.Equal(t, code, 0, "-V "+version+" exit code when interrupted at once; stderr "+stderr.String())
	}
}

// -d prints the packets, as mosquitto's clients do.
func TestPubDebug(t *testing.T) {
	broker := brokerArgs(t, engine.Options{})
	f := func(version string, want ...string) {
		t.Helper()
		code, stderr := runPub(t, "", join(broker, "-V", version, "-i", "dbg", "-d", "-q", "1", "-t", "d/t", "-m", "hello")...)
		testutil.Equal(t, code, 0, "exit code")
		for _, w := range want {
			if !strings.Contains(stderr, w+"\n") {
				t.Errorf("-V %s -d: %q not in\n%s", version, w, stderr)
			}
		}
	}
	f("5", "Client dbg sending CONNECT", "Client dbg received CONNACK (0)",
		"Client dbg sending PUBLISH (d0, q1, r0, m1, 'd/t', ... (5 bytes))",
		"Client dbg received PUBACK (m1, rc16)", // 0x10: no matching subscribers
		"Client dbg sending DISCONNECT (0)")
	f("311", "Client dbg sending CONNECT", "Client dbg received CONNACK (0)",
		"Client dbg sending PUBLISH (d0, q1, r0, m1, 'd/t', ... (5 bytes))",
		"Client dbg received PUBACK (m1, rc0)", "Client dbg sending DISCONNECT")
}

// A sub whose session another client takes over exits with 1 and the
// broker's reason; its will (--will-*) is published.
func TestSubWillOnTakeover(t *testing.T) {
	s := testutil.StartBroker(t, engine.Options{})
	host, port, _ := net.SplitHostPort(s.Addr().String())
	watcher := testutil.ConnectV5(t, s.Addr().String(), &paho.Connect{ClientID: "will-watcher", CleanStart: true})
	_, err := watcher.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "will/t", QoS: 1}}})
	testutil.Require(t, err, "subscribe")
	sub := startSub(t, "-h", host, "-p", port, "-i", "taken", "-t", "x", "-W", "8",
		"--will-topic", "will/t", "--will-payload", "gone", "--will-qos", "1", "-D", "will", "user-property", "why", "taken over")
	testutil.ConnectV5(t, s.Addr().String(), &paho.Connect{ClientID: "taken", CleanStart: true})
	code, _ := sub.wait(t)
	testutil.Equal(t, code, 1, "exit code")
	if !strings.Contains(sub.stderr.String(), "tern sub: disconnected by the broker: session taken over (0x8E)") {
		t.Errorf("stderr %q does not give the reason", sub.stderr.String())
	}
	m := watcher.Recv(t)
	testutil.Equal(t, string(m.Payload), "gone", "will payload")
	if u := m.Properties.User; len(u) != 1 || u[0] != (paho.UserProperty{Key: "why", Value: "taken over"}) {
		t.Errorf("will user properties %v", u)
	}
}

func TestPubSubTopicMatches(t *testing.T) {
	f := func(filter, topic string, want bool) {
		t.Helper()
		testutil.Equal(t, topicMatches(filter, topic), want, filter+" ~ "+topic)
	}
	f("a/b", "a/b", true)
	f("a/+", "a/b", true)
	f("a/+", "a/b/c", false)
	f("a/#", "a", true) // MQTT-4.7.1-2
	f("a/#", "a/b/c", true)
	f("#", "$SYS/x", false) // MQTT-4.7.2-1
	f("+/x", "$SYS/x", false)
	f("$SYS/#", "$SYS/x", true)
	f("a/+/c", "a//c", true)
	f("a/b", "a/b/c", false)
}

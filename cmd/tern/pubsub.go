package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// tern pub and tern sub are MQTT clients on the command line, with the
// flags and habits of mosquitto_pub and mosquitto_sub (pubsub_args.go), so
// that scripts and fingers move over. MQTT 5.0 goes through paho.golang,
// 3.1.1 and 3.1 through paho.mqtt.golang (pubsub_v5.go, pubsub_v3.go);
// the rest does not know which.

// Exit codes. 27 is mosquitto's MOSQ_ERR_TIMED_OUT, which its clients exit
// with when -W runs out; scripts test for it.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitTimedOut = 27
)

// settleTimeout bounds how long sub waits, before DISCONNECT, for the
// library to acknowledge the messages it has handed over.
const settleTimeout = 2 * time.Second

// pubCmd is tern pub: it publishes a message (-m, -f, -s, -n), or one per
// line of stdin (-l), and returns the exit code.
func pubCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	errw := &syncWriter{w: stderr}
	defer errw.close()
	o, code := parseClientArgs("pub", args, stdout, errw)
	if o == nil {
		return code
	}
	ctx, cancel := o.withTimeout(context.Background())
	defer cancel()

	var payload []byte
	switch o.source {
	case srcMessage:
		payload = o.message
	case srcFile:
		b, err := os.ReadFile(o.file)
		if err != nil {
			fmt.Fprintf(errw, "tern pub: -f: %v\n", err)
			return exitFailed
		}
		payload = b
	case srcStdin:
		b, err := io.ReadAll(stdin)
		if err != nil {
			fmt.Fprintf(errw, "tern pub: -s: cannot read standard input: %v\n", err)
			return exitFailed
		}
		payload = b
	}

	w := newWire(o, errw)
	c, err := connect(ctx, o, w, nil)
	if err != nil {
		return o.fail(ctx, errw, err)
	}
	defer c.disconnect()
	m := &message{topic: o.topics[0], qos: o.qos, retain: o.retain, props: o.props[propPublish]}
	if o.source == srcLines {
		return pubLines(ctx, o, c, m, stdin, errw)
	}
	m.payload = payload
	for i := range o.repeat {
		if i > 0 && o.repeatDelay > 0 {
			select {
			case <-time.After(o.repeatDelay):
			case <-ctx.Done():
				return o.fail(ctx, errw, ctx.Err())
			}
		}
		if err := c.publish(ctx, m); err != nil {
			return o.fail(ctx, errw, err)
		}
	}
	return exitOK
}

// pubLines publishes each line of stdin as a message until EOF.
func pubLines(ctx context.Context, o *clientOpts, c mqttClient, m *message, stdin io.Reader, errw io.Writer) int {
	type line struct {
		b   []byte
		err error // the read's error; io.EOF at the end
	}
	lines := make(chan line)
	quit := make(chan struct{})
	defer close(quit)
	// A goroutine reads, so that -W and a lost connection end the command
	// while it waits for a line. It stays blocked in Read if stdin never
	// ends; the process exits soon after.
	go func() {
		r := bufio.NewReader(stdin)
		for {
			b, err := r.ReadBytes('\n')
			b = bytes.TrimSuffix(b, []byte{'\n'})
			if err != nil && len(b) == 0 { // nothing after the last newline
				b = nil
			}
			select {
			case lines <- line{b, err}:
			case <-quit:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		select {
		case l := <-lines:
			if l.b != nil {
				m.payload = l.b
				if err := c.publish(ctx, m); err != nil {
					return o.fail(ctx, errw, err)
				}
			}
			if errors.Is(l.err, io.EOF) {
				return exitOK
			}
			if l.err != nil {
				fmt.Fprintf(errw, "tern pub: -l: cannot read standard input: %v\n", l.err)
				return exitFailed
			}
		case err := <-c.lost():
			return o.fail(ctx, errw, err)
		case <-ctx.Done():
			return o.fail(ctx, errw, ctx.Err())
		}
	}
}

// subCmd is tern sub: it subscribes to the -t filters and prints the
// messages until ctx ends (SIGINT), -C messages were printed or -W runs out,
// and returns the exit code.
func subCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	errw := &syncWriter{w: stderr}
	defer errw.close()
	o, code := parseClientArgs("sub", args, stdout, errw)
	if o == nil {
		return code
	}
	tctx, cancel := o.withTimeout(ctx)
	defer cancel()

	// The library hands each message over and waits until it is printed,
	// so that it is acknowledged only then. stop releases it when sub ends.
	msgs := make(chan *message)
	stop := make(chan struct{})
	stopOnce := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}
	defer stopOnce()
	onMessage := func(m *message) {
		m.handled = make(chan struct{})
		select {
		case msgs <- m:
		case <-stop:
			return
		}
		select {
		case <-m.handled:
		case <-stop:
		}
	}
	w := newWire(o, errw)
	c, err := connect(tctx, o, w, onMessage)
	if err != nil {
		if ctx.Err() != nil { // interrupted while connecting: a normal end too
			return exitOK
		}
		return o.fail(tctx, errw, err)
	}
	// finish acknowledges what was handed over and disconnects.
	finish := func() {
		stopOnce()
		sctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		w.settle(sctx)
		cancel()
		c.disconnect()
	}

	codes, err := c.subscribe(tctx, o.topics, o.qos, o.props[propSubscribe])
	if err != nil {
		stopOnce()
		c.disconnect()
		// Interrupted while waiting for SUBACK: a normal end, as it is
		// later (the -d trace shows SUBACK before the library has passed it
		// on, so a script or a test may well interrupt sub right then).
		if ctx.Err() != nil {
			return exitOK
		}
		return o.fail(tctx, errw, fmt.Errorf("subscribe: %w", err))
	}
	refused := 0
	for i, rc := range codes {
		if rc >= 0x80 {
			refused++
			fmt.Fprintf(errw, "tern sub: subscription to %q refused: %s (0x%02X)\n", o.topics[i], reasonName(o.version, 0, rc), rc)
		}
	}
	if refused == len(codes) {
		finish()
		return exitFailed
	}

	printed := 0
	var out []byte
	for {
		select {
		case m := <-msgs:
			if o.retainedOnly && !m.retain {
				close(m.handled)
				finish()
				return exitOK
			}
			show := !(o.noRetained && m.retain)
			for _, f := range o.filterOut {
				show = show && !topicMatches(f, m.topic)
			}
			if show {
				out = appendMessage(out[:0], o, m, time.Now())
				if _, err := stdout.Write(out); err != nil {
					close(m.handled)
					finish()
					fmt.Fprintf(errw, "tern sub: %v\n", err)
					return exitFailed
				}
				printed++
			}
			close(m.handled)
			if o.removeRetained && m.retain {
				// mosquitto_sub's --remove-retained publishes at QoS 1.
				if err := c.publish(tctx, &message{topic: m.topic, qos: 1, retain: true}); err != nil {
					fmt.Fprintf(errw, "tern sub: cannot remove the retained message of %q: %v\n", m.topic, err)
				}
			}
			if o.count > 0 && printed >= o.count {
				finish()
				return exitOK
			}
		case err := <-c.lost():
			stopOnce()
			fmt.Fprintf(errw, "tern sub: %v\n", err)
			return exitFailed
		case <-tctx.Done():
			finish()
			if ctx.Err() != nil { // interrupted: a normal end
				return exitOK
			}
			return o.fail(tctx, errw, tctx.Err())
		}
	}
}

// withTimeout applies -W to ctx.
func (o *clientOpts) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if o.timeout > 0 {
		return context.WithTimeout(ctx, o.timeout)
	}
	return context.WithCancel(ctx)
}

// fail reports err and returns the exit code: exitTimedOut when -W ran
// out, else exitFailed.
func (o *clientOpts) fail(ctx context.Context, errw io.Writer, err error) int {
	if o.timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		fmt.Fprintf(errw, "tern %s: timed out after %v (-W)\n", o.cmd, o.timeout)
		return exitTimedOut
	}
	fmt.Fprintf(errw, "tern %s: %v\n", o.cmd, err)
	return exitFailed
}

package crash

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

// Environment knobs. Only TERN_CRASH_CYCLES and TERN_CRASH_SEED are for
// everyday use; the others are for debugging the test itself.
//
//	TERN_CRASH_CYCLES      kill points (default 20; make crash-soak: 200)
//	TERN_CRASH_SEED        seed of the kill instants and message mix (default: time)
//	TERN_CRASH_TIMEOUT     bound of the whole test (default 30s + 3s per cycle)
//	TERN_CRASH_DURABILITY  --durability of the broker (default sync; batch and
//	                       none may lose acknowledged messages: the test should fail)
//	TERN_CRASH_RATE        new messages per second per publisher (default 1500)
//	TERN_CRASH_MEMORY=1    run the broker without --data-dir, also when the
//	                       binary has it (with kills the checks must then fail)
//	TERN_CRASH_NOKILL=1    break the client connections instead of killing the
//	                       broker: checks the test's own clients, passes on any
//	                       correct broker, durable or not
//	TERN_CRASH_KEEP=1      keep the data directory and broker log
//	TERN_CRASH_BIN=path    test this binary instead of building ./cmd/tern
func envInt(t *testing.T, name string, def int64) int64 {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

// TestKill9 kills the broker with SIGKILL at random instants while
// publishers load it and restarts it on the same data directory. The promise
// of --durability sync: nothing acknowledged is lost (messages, subscriptions,
// sessions, retained messages) and no QoS 2 message is delivered twice.
//
// Each cycle:
//  1. publishers (persistent sessions, 3.1.1 and 5.0) send QoS 0/1/2
//     messages with unique payloads, some retained, while the persistent
//     subscribers are offline (s5 is online every other cycle);
//  2. after 100-800 ms the broker is killed, then restarted;
//  3. publishers reconnect and resend what was in flight until acknowledged
//     (MQTT-4.4.0-1), and publish probes;
//  4. subscribers reconnect (session present must be 1) and drain;
//  5. checks: every acknowledged message reached every matching subscriber,
//     QoS 2 ones exactly once over the whole test, at the right QoS; the
//     probes prove the subscriptions survived; a new subscriber gets the
//     last acknowledged (or a later) retained message of every topic.
//
// One cycle in three also kills the broker a second time, at a random
// instant of step 3 or step 4; one restart in eight is killed during the
// broker's start-up (recovery) before the restart that counts.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the broker binary; not with -short")
	}
	cycles := int(envInt(t, "TERN_CRASH_CYCLES", 20))
	seed := envInt(t, "TERN_CRASH_SEED", time.Now().UnixNano())
	budget := time.Duration(envInt(t, "TERN_CRASH_TIMEOUT", 0)) * time.Second
	if budget == 0 {
		budget = 30*time.Second + time.Duration(cycles)*3*time.Second
	}
	rate := int(envInt(t, "TERN_CRASH_RATE", 1500))
	durability := os.Getenv("TERN_CRASH_DURABILITY")
	if durability == "" {
		durability = "sync"
	}
	noKill := os.Getenv("TERN_CRASH_NOKILL") != ""
	t.Logf("seed %d: rerun with TERN_CRASH_SEED=%d TERN_CRASH_CYCLES=%d", seed, seed, cycles)
	start := time.Now()
	deadline := start.Add(budget)

	tmp := t.TempDir()
	if os.Getenv("TERN_CRASH_KEEP") != "" {
		var err error
		if tmp, err = os.MkdirTemp("", "tern-crash-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("keeping %s", tmp)
	}
	bin := os.Getenv("TERN_CRASH_BIN")
	if bin == "" {
		bin = buildTern(t, tmp)
		t.Logf("built %s in %s", bin, time.Since(start).Round(time.Millisecond))
	}
	flags := serveFlags(t, bin)
	dataDir := filepath.Join(tmp, "data")
	b := &broker{bin: bin, addr: freePort(t), logPath: filepath.Join(tmp, "tern.log")}
	b.args = []string{"serve", "--listen", b.addr, "--event-loops", "2",
		// No queue limit: the subscribers are offline while publishers run,
		// and an offline session's full queue refuses what a 3.1.1 publisher
		// cannot be told about (see README), which is not what this test is
		// about.
		"--max-queued-messages", "0"}
	persistent := flags["data-dir"] && os.Getenv("TERN_CRASH_MEMORY") == ""
	switch {
	case persistent:
		b.args = append(b.args, "--data-dir", dataDir, "--durability", durability)
	case os.Getenv("TERN_CRASH_MEMORY") != "" || noKill:
		t.Logf("running the broker without --data-dir (memory only)")
	default:
		t.Skip("tern serve has no --data-dir yet; TERN_CRASH_MEMORY=1 runs against the memory-only broker (and must fail)")
	}
	if flags["admin-listen"] {
		b.args = append(b.args, "--admin-listen", "")
	}
	if flags["allow-anonymous"] {
		b.args = append(b.args, "--allow-anonymous")
	}
	t.Cleanup(func() { _ = b.kill() })
	if err := b.start(time.Now().Add(15 * time.Second)); err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewSource(seed))
	tr := newTracker()
	conns := &connSet{}
	v3, v5 := codec.Version311, codec.Version5
	subs := []*subscriber{
		newSubscriber("s1", v3, []filter{{"crash/d/#", 1}}, tr, conns),
		newSubscriber("s2", v5, []filter{{"crash/d/+/q2", 2}, {"crash/r/#", 2}}, tr, conns),
		newSubscriber("s3", v3, []filter{{"crash/d/+/q2", 2}, {retainedFilter, 1}}, tr, conns),
		newSubscriber("s4", v5, []filter{{"crash/d/#", 2}}, tr, conns),
		newSubscriber("s5", v5, []filter{{"crash/#", 2}}, tr, conns), // online every other cycle
	}
	online := subs[4]
	var pubs []*publisher
	for i, v := range []byte{v3, v5, v3, v5} {
		pubs = append(pubs, newPublisher(fmt.Sprintf("p%d", i), v, rate, rng.Int63(), tr, conns))
	}
	for _, s := range subs {
		c, err := s.connect(b.addr, time.Now().Add(5*time.Second))
		if err != nil {
			t.Fatalf("%s: %v", s.rec.name, err)
		}
		c.disconnect()
		conns.remove(c)
	}

	// interrupt is the crash: kill -9, or in the no-kill mode a broken
	// connection for every client. restart undoes it.
	interrupt := func() {
		if noKill {
			conns.closeAll()
			return
		}
		if err := b.kill(); err != nil {
			tr.failf("%v", err)
		}
	}
	// restart starts the broker again. One time in eight it first kills it
	// once more during its start-up, at a random instant of recovery.
	var recoveryKills []string
	restart := func() error {
		if noKill {
			return nil
		}
		if rng.Intn(8) == 0 {
			d := time.Duration(rng.Intn(300)) * time.Millisecond
			listening, err := b.killDuringStart(d)
			if err != nil {
				// It exited before the kill: start-up failed on its own.
				return fmt.Errorf("start-up that was to be killed after %s: %w; log:\n%s", d, err, b.logDigest(20))
			}
			recoveryKills = append(recoveryKills, fmt.Sprintf("%s (listening: %v)", d, listening))
		}
		return b.start(minTime(deadline, time.Now().Add(15*time.Second)))
	}
	// phase runs one function per client concurrently. With killAfter > 0 it
	// interrupts them at that instant, unless they finished before, restarts
	// and runs them again; the errors of the interrupted run are expected.
	// It reports whether it interrupted.
	phase := func(name string, fns map[string]func() error, killAfter time.Duration) (bool, error) {
		run := func() map[string]error {
			var wg sync.WaitGroup
			var mu sync.Mutex
			errs := map[string]error{}
			for who, fn := range fns {
				wg.Go(func() {
					if err := fn(); err != nil {
						mu.Lock()
						errs[who] = err
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			return errs
		}
		var errs map[string]error
		fired := false
		if killAfter > 0 {
			killed := make(chan struct{})
			timer := time.AfterFunc(killAfter, func() { interrupt(); close(killed) })
			errs = run()
			if fired = !timer.Stop(); fired {
				<-killed
				if err := restart(); err != nil {
					return true, err
				}
				errs = run()
			}
		} else {
			errs = run()
		}
		for who, err := range errs {
			tr.failf("%s %s: %v", name, who, err)
		}
		return fired, nil
	}

	var totalAcked, totalSent int
	for cycle := 1; cycle <= cycles; cycle++ {
		if time.Now().After(deadline) {
			t.Fatalf("overall timeout: %d of %d cycles done in %s (TERN_CRASH_TIMEOUT=%d); seed %d",
				cycle-1, cycles, time.Since(start).Round(time.Millisecond), int(budget.Seconds()), seed)
		}
		tr.setCycle(cycle)
		cycleStart := time.Now()
		load := time.Duration(100+rng.Intn(701)) * time.Millisecond
		extra, extraIn := time.Duration(0), ""
		if rng.Intn(3) == 0 {
			// The settle takes tens of milliseconds, the drain hundreds.
			extraIn = []string{"settle", "drain"}[rng.Intn(2)]
			extra = time.Duration(1+rng.Intn(map[string]int{"settle": 50, "drain": 400}[extraIn])) * time.Millisecond
		}
		isOnline := cycle%2 == 0

		// 1-2: load, then the crash.
		var wg sync.WaitGroup
		if isOnline {
			c, err := online.connect(b.addr, minTime(deadline, time.Now().Add(5*time.Second)))
			if err != nil {
				tr.failf("%s: %v", online.rec.name, err)
			} else {
				wg.Go(func() { _ = online.listen(c, deadline) })
			}
		}
		for _, p := range pubs {
			// The load ends with the crash: its errors are expected. A
			// broker that refuses the publishers fails the settle below.
			wg.Go(func() { _ = p.session(b.addr, deadline, true) })
		}
		time.Sleep(load)
		if err := b.alive(); err != nil {
			tr.failf("before the kill: %v", err)
		}
		interrupt()
		wg.Wait()
		tRestart := time.Now()
		if err := restart(); err != nil {
			t.Fatalf("cycle %d: restart: %v", cycle, err)
		}
		tSettle := time.Now()

		// 3: publishers settle, probes.
		pubs[1].extra = []*msg{
			{payload: fmt.Sprintf("probe-c%03d-d-q1", cycle), topic: "crash/d/probe/q1", qos: 1, probe: true},
			{payload: fmt.Sprintf("probe-c%03d-d-q2", cycle), topic: "crash/d/probe/q2", qos: 2, probe: true},
			{payload: fmt.Sprintf("probe-c%03d-r-q2", cycle), topic: "crash/r/probe/q2", qos: 2, probe: true},
		}
		fns := map[string]func() error{}
		for _, p := range pubs {
			fns[p.name] = func() error {
				return p.session(b.addr, minTime(deadline, time.Now().Add(10*time.Second)), false)
			}
		}
		firedS, err := phase("settle", fns, pick(extraIn == "settle", extra))
		if err != nil {
			t.Fatalf("cycle %d: restart: %v", cycle, err)
		}
		var sent, acked1, acked2, ackedRet, q0, refused, resent, stuck int
		for _, p := range pubs {
			s := p.takeStats()
			sent, acked1, acked2, ackedRet = sent+s.sent, acked1+s.acked1, acked2+s.acked2, ackedRet+s.ackedRet
			q0, refused, resent = q0+s.q0, refused+s.refused, resent+s.resent
			stuck += p.inFlight()
		}
		totalSent += sent
		totalAcked += acked1 + acked2 + ackedRet
		if stuck > 0 {
			tr.failf("%d messages still unacknowledged after the publishers reconnected", stuck)
		}

		// 4: subscribers drain.
		tDrain := time.Now()
		fns = map[string]func() error{}
		for _, s := range subs {
			fns[s.rec.name] = func() error {
				return s.drain(b.addr, minTime(deadline, time.Now().Add(20*time.Second)))
			}
		}
		firedD, err := phase("drain", fns, pick(extraIn == "drain", extra))
		if err != nil {
			t.Fatalf("cycle %d: restart: %v", cycle, err)
		}

		// 5: checks.
		tCheck := time.Now()
		tr.checkDelivered()
		version := []byte{v3, v5}[cycle%2]
		if got, err := readRetained(b.addr, version, tr.retainedTopics(), minTime(deadline, time.Now().Add(10*time.Second))); err != nil {
			tr.failf("retained check: %v", err)
		} else {
			tr.checkRetained(got)
		}
		if err := b.alive(); err != nil {
			tr.failf("%v", err)
		}

		how := "kill -9"
		if noKill {
			how = "connections broken"
		}
		if firedS || firedD {
			how += fmt.Sprintf(", again %s into %s", extra, extraIn)
		}
		if len(recoveryKills) > 0 {
			how += fmt.Sprintf(", during recovery after %s", strings.Join(recoveryKills, ", "))
			recoveryKills = recoveryKills[:0]
		}
		ms := func(a, b time.Time) time.Duration { return b.Sub(a).Round(time.Millisecond) }
		t.Logf("cycle %2d: load %s then %s; sent %d, acked q1=%d q2=%d retained=%d (q0 %d, refused %d, resent after reconnect %d); delivered%s; %s (restart %s, settle %s, drain %s, retained %s)",
			cycle, load, how, sent, acked1, acked2, ackedRet, q0, refused, resent, tr.cycleStats(), ms(cycleStart, time.Now()),
			ms(tRestart, tSettle), ms(tSettle, tDrain), ms(tDrain, tCheck), ms(tCheck, time.Now()))
		if fails := tr.newFailures(); len(fails) > 0 {
			if time.Now().After(deadline) {
				t.Errorf("overall timeout (TERN_CRASH_TIMEOUT=%d) reached during cycle %d: the failures below may only be its consequence",
					int(budget.Seconds()), cycle)
			}
			for _, f := range fails {
				t.Error(f)
			}
			report(t, b, bin, dataDir, persistent, seed, cycle)
			return
		}
	}
	t.Logf("%d cycles in %s: %d messages sent, %d acknowledged, all delivered; seed %d",
		cycles, time.Since(start).Round(time.Millisecond), totalSent, totalAcked, seed)
}

// report logs what helps explain a failure: the seed, the broker's warnings
// and last lines, and `tern wal check` of the data directory.
func report(t *testing.T, b *broker, bin, dataDir string, persistent bool, seed int64, cycle int) {
	t.Helper()
	t.Errorf("failed in cycle %d; seed %d (TERN_CRASH_SEED=%d; TERN_CRASH_KEEP=1 keeps the data directory)", cycle, seed, seed)
	_ = b.kill()
	t.Log(b.logDigest(40))
	if persistent {
		out, err := exec.Command(bin, "wal", "check", "--data-dir", dataDir).CombinedOutput()
		t.Logf("tern wal check --data-dir %s (%v):\n%s", dataDir, err, strings.TrimSpace(string(out)))
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func pick(cond bool, d time.Duration) time.Duration {
	if cond {
		return d
	}
	return 0
}

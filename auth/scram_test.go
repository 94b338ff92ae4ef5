package auth

import (
	"strings"
	"testing"

	"github.com/tern-mqtt/tern/internal/testutil"
)

func scramRun(t *testing.T, p *Passwords, user, password string) (ok, serverVerified bool) {
	t.Helper()
	c := &testutil.ScramClient{User: user, Password: password}
	x := p.StartScram()
	serverFirst, done, err := x.Step(c.First())
	if err != nil || done {
		t.Fatalf("first step: %v %v", done, err)
	}
	final, err := c.Final(serverFirst)
	if err != nil {
		t.Fatal(err)
	}
	serverFinal, done, err := x.Step(final)
	if err != nil {
		return false, false
	}
	return done && x.User() == user, c.Verify(serverFinal)
}

func TestScram(t *testing.T) {
	p, err := ParsePasswords(strings.NewReader("sam:" + ScramHash([]byte("pass word"), 4096) + "\n" + mosquittoFile))
	if err != nil {
		t.Fatal(err)
	}
	if ok, verified := scramRun(t, p, "sam", "pass word"); !ok || !verified {
		t.Fatalf("right password: ok %v, server verified %v", ok, verified)
	}
	for _, c := range [][2]string{{"sam", "wrong"}, {"nobody", "pass word"}, {"alice", "secret1"}} { // alice has no SCRAM keys
		if ok, _ := scramRun(t, p, c[0], c[1]); ok {
			t.Errorf("%s/%s authenticated", c[0], c[1])
		}
	}
	// A SCRAM line serves a plain-password CONNECT too.
	if !p.Check([]byte("sam"), []byte("pass word")) || p.Check([]byte("sam"), []byte("x")) {
		t.Fatal("Check against a SCRAM line")
	}
	x := p.StartScram()
	if _, _, err := x.Step([]byte("p=tls-unique,,n=sam,r=abc")); err == nil {
		t.Fatal("channel binding accepted")
	}
	// An unknown user's server-first looks like a real one's: same
	// iteration count, a salt nobody can compute without the process's key.
	first := func(user string) map[string]string {
		sf, _, err := p.StartScram().Step([]byte("n,,n=" + user + ",r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		return scramAttrs(string(sf))
	}
	known, unknown := first("sam"), first("nobody")
	if known["i"] != unknown["i"] || len(known["s"]) != len(unknown["s"]) {
		t.Fatalf("server-first for a real user %v and an unknown one %v differ", known, unknown)
	}
	if first("nobody")["s"] != unknown["s"] {
		t.Fatal("an unknown user's salt changes between exchanges")
	}
	// "y,," (the client could bind, thinks we cannot) is accepted (RFC 5802 section 6).
	c := &testutil.ScramClient{User: "sam", Password: "pass word"}
	y := p.StartScram()
	sf, _, err := y.Step(append([]byte("y"), c.First()[1:]...))
	if err != nil {
		t.Fatalf("y,, refused: %v", err)
	}
	final, _ := c.Final(sf)
	final = []byte(strings.Replace(string(final), "c=biws", "c=eSws", 1))
	if _, done, err := y.Step(final); err == nil || done {
		t.Fatal("a proof computed over n,, was accepted for a y,, exchange")
	}
}

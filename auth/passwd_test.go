package auth

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Lines written by mosquitto_passwd 2.0.11 (Debian): the default $7$ and
// -H sha512's $6$.
const mosquittoFile = `# written by mosquitto_passwd
alice:$7$101$NERWsGywJUXB9xgm$EzK5NnOjwZpdY+aDcl6VbqPWwjOltH+azoMFEEBEe81ohPcpf9LGsgWpeAMFodqPw/8wWmgwXCKblo/Ot5TFEw==
bob:$6$d2z6YAa4UMPVxMtf$qpIlU6lrgDkLsk1OvQueYdzqdBcAAxfv7MGzRsY96Nv/qK4HlReMJbABhDtJfhwxElBFFUnjMppF30siDe3ONw==
`

func TestMosquittoHashes(t *testing.T) {
	p, err := ParsePasswords(strings.NewReader(mosquittoFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, pass string
		ok         bool
	}{
		{"alice", "secret1", true},
		{"alice", "secret2", false},
		{"alice", "", false},
		{"bob", "hunter2", true},
		{"bob", "hunter3", false},
		{"carol", "secret1", false},
		{"", "", false},
	} {
		if got := p.Check([]byte(c.user), []byte(c.pass)); got != c.ok {
			t.Errorf("Check(%q, %q) = %v, want %v", c.user, c.pass, got, c.ok)
		}
	}
}

func TestBcrypt(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePasswords(strings.NewReader("dave:" + string(h) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second check is remembered
		if !p.Check([]byte("dave"), []byte("pw")) {
			t.Fatal("bcrypt password refused")
		}
	}
	if p.Check([]byte("dave"), []byte("px")) {
		t.Fatal("wrong bcrypt password accepted")
	}
}

func TestMalformedLinesNamed(t *testing.T) {
	for _, bad := range []string{
		"nocolon\n",
		"eve:plaintext\n",
		"eve:$7$abc$salt$hash\n",
		"eve:$6$c2FsdA==$c2hvcnQ=\n", // hash too short
		":$6$c2FsdA==$c2hvcnQ=\n",
	} {
		if _, err := ParsePasswords(strings.NewReader("# ok\n" + bad)); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: error %v, want one naming line 2", bad, err)
		}
	}
}

// tern passwd's hashes are the ones Mosquitto reads: checked with
// mosquitto_passwd's own file when it is installed, and by Check always.
func TestSetPasswordRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	if err := SetPassword(path, "frank", Hash7([]byte("one"), DefaultIterations)); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(path, "grace", Hash7([]byte("two"), 101)); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(path, "frank", Hash7([]byte("three"), DefaultIterations)); err != nil { // change
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	p, err := LoadPasswords(path)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Check([]byte("frank"), []byte("three")) || p.Check([]byte("frank"), []byte("one")) || !p.Check([]byte("grace"), []byte("two")) {
		t.Fatal("passwords after set and change are wrong")
	}
	if p.Len() != 2 {
		t.Fatalf("%d users, want 2", p.Len())
	}
	if err := SetPassword(path, "grace", ""); err != nil { // delete
		t.Fatal(err)
	}
	if p, _ = LoadPasswords(path); p.Len() != 1 || p.Check([]byte("grace"), []byte("two")) {
		t.Fatal("grace not deleted")
	}
	for _, bad := range []string{"bad:name", "#ops", " padded"} { // '#' would make the line a comment
		if err := SetPassword(path, bad, Hash7([]byte("x"), 1)); err == nil {
			t.Fatalf("user name %q was accepted", bad)
		}
	}

	// mosquitto_passwd -U leaves hashed lines alone and fails on a line
	// it cannot read: run it over our file if it is installed.
	if _, err := exec.LookPath("mosquitto_passwd"); err == nil {
		if err := SetPassword(path, "henry", Hash7([]byte("four"), DefaultIterations)); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(path)
		// -b adds a user with Mosquitto's own code: our lines must survive it.
		if out, err := exec.Command("mosquitto_passwd", "-b", path, "ivy", "five").CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
		after, _ := os.ReadFile(path)
		if !strings.HasPrefix(string(after), string(before)) {
			t.Fatalf("mosquitto_passwd rewrote our lines:\n%s\n---\n%s", before, after)
		}
		p, err := LoadPasswords(path)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Check([]byte("ivy"), []byte("five")) || !p.Check([]byte("henry"), []byte("four")) {
			t.Fatal("a password mosquitto_passwd wrote, or ours after it, is refused")
		}
	}
}

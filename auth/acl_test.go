package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A file in Mosquitto's acl_file format, as its documentation writes one,
// plus our clientid and certname sections.
const aclFile = `# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic deny alice/secret
topic sensors/+/temp

user bob
topic write bob/out
topic read $SYS/broker/uptime

clientid gateway-7
topic write gw/7/#

certname device-9.example
topic write dev/9/#

pattern read users/%u/inbox/#
pattern write clients/%c/status
`

func mustACL(t *testing.T) *ACL {
	t.Helper()
	a, err := ParseACL(strings.NewReader(aclFile))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestACLPublishAndReceive(t *testing.T) {
	a := mustACL(t)
	alice := a.For(Client{Username: "alice", HasUsername: true, ClientID: "a1"})
	bob := a.For(Client{Username: "bob", HasUsername: true, ClientID: "b1"})
	anon := a.For(Client{ClientID: "x"})
	gw := a.For(Client{Username: "carol", HasUsername: true, ClientID: "gateway-7"})
	dev := a.For(Client{Username: "dan", HasUsername: true, ClientID: "d", CertName: "device-9.example"})
	for _, c := range []struct {
		who     string
		r       *Rules
		topic   string
		pub, rx bool
	}{
		{"alice", alice, "alice/a", true, true},
		{"alice", alice, "alice", true, true}, // alice/# matches its parent (MQTT-4.7.1-2)
		{"alice", alice, "alice/secret", false, false},
		{"alice", alice, "alice/secret/x", true, true}, // the deny is for one topic only
		{"alice", alice, "sensors/k/temp", true, true}, // no access word: readwrite
		{"alice", alice, "sensors/k/hum", false, false},
		{"alice", alice, "public/news", false, false}, // anonymous rules are for anonymous clients
		{"alice", alice, "users/alice/inbox/1", false, true},
		{"alice", alice, "users/bob/inbox/1", false, false},
		{"alice", alice, "clients/a1/status", true, false},
		{"bob", bob, "bob/out", true, false},
		{"bob", bob, "$SYS/broker/uptime", false, true},
		{"bob", bob, "alice/a", false, false},
		{"anon", anon, "public/news", false, true},
		{"anon", anon, "users//inbox/1", false, false}, // %u without a user name: no rule
		{"gw", gw, "gw/7/a", true, false},
		{"dev", dev, "dev/9/a", true, false},
		{"dev", dev, "dev/8/a", false, false},
	} {
		if got := c.r.CanPublish([]byte(c.topic)); got != c.pub {
			t.Errorf("%s publish %q = %v, want %v", c.who, c.topic, got, c.pub)
		}
		if got := c.r.CanReceive([]byte(c.topic)); got != c.rx {
			t.Errorf("%s receive %q = %v, want %v", c.who, c.topic, got, c.rx)
		}
	}
}

func TestACLSubscribe(t *testing.T) {
	a := mustACL(t)
	alice := a.For(Client{Username: "alice", HasUsername: true, ClientID: "a1"})
	bob := a.For(Client{Username: "bob", HasUsername: true, ClientID: "b1"})
	for _, c := range []struct {
		r      *Rules
		filter string
		ok     bool
	}{
		{alice, "alice/#", true},
		{alice, "alice/+", true},
		{alice, "#", true}, // meets alice/#: deliveries are filtered one by one
		{alice, "alice/secret", false},
		{alice, "bob/#", false},
		{alice, "users/alice/inbox/+", true},
		{alice, "users/+/inbox/#", true}, // meets users/alice/inbox/#
		{alice, "users/bob/inbox/#", false},
		{bob, "$SYS/#", true},
		{bob, "#", true},                // meets the pattern users/bob/inbox/#
		{bob, "+/broker/uptime", false}, // + does not reach $SYS (MQTT-4.7.2-1), bob's grant there
		{bob, "bob/out", false},
	} {
		if got := c.r.CanSubscribe([]byte(c.filter)); got != c.ok {
			t.Errorf("%s subscribe %q = %v, want %v", c.r.client.Username, c.filter, got, c.ok)
		}
	}
}

// A user name that is a wildcard is not substituted into a pattern, which
// would grant it every inbox.
func TestACLWildcardUserName(t *testing.T) {
	a := mustACL(t)
	for _, name := range []string{"#", "+", "a/b"} {
		r := a.For(Client{Username: name, HasUsername: true, ClientID: "c"})
		if r.CanReceive([]byte("users/x/inbox/1")) || r.CanSubscribe([]byte("users/#")) {
			t.Errorf("user %q was granted other users' inboxes", name)
		}
	}
}

func TestACLReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(path, []byte("user u\ntopic read a/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := LoadACL(path)
	if err != nil {
		t.Fatal(err)
	}
	r := a.For(Client{Username: "u", HasUsername: true})
	if !r.CanReceive([]byte("a/1")) || r.CanReceive([]byte("b/1")) {
		t.Fatal("rules before reload are wrong")
	}
	if err := os.WriteFile(path, []byte("user u\ntopic read b/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if r.CanReceive([]byte("a/1")) || !r.CanReceive([]byte("b/1")) {
		t.Fatal("a connected client's rules did not follow the reload")
	}
	if err := os.WriteFile(path, []byte("bogus line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("bad file: %v, want an error naming line 1", err)
	}
	if !r.CanReceive([]byte("b/1")) {
		t.Fatal("a failed reload dropped the rules in force")
	}
}

func TestACLMalformed(t *testing.T) {
	// "topic deny" with no topic would otherwise grant readwrite on a topic
	// named "deny".
	for _, bad := range []string{"topic read a/#/b", "topic read a+", "user", "frobnicate x", "topic deny", "pattern read"} {
		if _, err := ParseACL(strings.NewReader(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestFilterRelations(t *testing.T) {
	split := func(s string) []string { return strings.Split(s, "/") }
	for _, c := range []struct {
		f, g          string
		cover, inters bool
	}{
		{"a/#", "a/b/c", true, true},
		{"a/#", "a", true, true},
		{"a/+", "a/b", true, true},
		{"a/+", "a/#", false, true},
		{"a/b", "a/+", false, true},
		{"#", "$SYS/x", false, false},
		{"+/x", "$SYS/x", false, false},
		{"$SYS/#", "$SYS/x", true, true},
		{"a/b", "c/d", false, false},
		{"a/+/c", "a/b/+", false, true},
		{"a/b", "a/b/c", false, false},
	} {
		if got := covers(split(c.f), split(c.g)); got != c.cover {
			t.Errorf("covers(%q, %q) = %v", c.f, c.g, got)
		}
		if got := intersects(split(c.f), split(c.g)); got != c.inters {
			t.Errorf("intersects(%q, %q) = %v", c.f, c.g, got)
		}
	}
}

// TestACLCheckAllocs: CanReceive runs per delivery to a client with an ACL;
// it must not allocate (a topic's []byte is matched as is).
func TestACLCheckAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r := mustACL(t).For(Client{Username: "alice", HasUsername: true, ClientID: "a1"})
	topic := []byte("users/alice/inbox/a-topic-longer-than-32-bytes/x")
	r.CanReceive(topic) // rules built on first use
	if a := testing.AllocsPerRun(100, func() { r.CanReceive(topic); r.CanPublish(topic) }); a != 0 {
		t.Fatalf("%v allocations per check", a)
	}
}

package auth

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"github.com/tern-mqtt/tern/codec"
)

// Access is what a rule grants.
type Access uint8

const (
	Read  Access = 1 << iota // receive messages: subscribe, and each delivery
	Write                    // publish, wills included
	Deny                     // neither; a matching deny wins over any grant
)

// ACL is an access-control file in Mosquitto's acl_file format, so that
// existing files work unchanged:
//
//	# comment
//	topic [read|write|readwrite|deny] TOPIC     rules for the section it is in
//	user NAME                                   rules below apply to this user name
//	pattern [read|write|readwrite|deny] TOPIC   rules for every client; %u is the user name, %c the client id
//
// Topic rules before any section apply to clients without a user name.
// Our additions: "clientid ID" and "certname NAME" sections, whose topic
// rules apply to the client with that client id, or whose TLS certificate
// has that common name. A client chooses its client id: clientid sections
// identify nobody and belong with authentication (a password or a
// certificate) that decides who may use the id. TOPIC may hold + and #. Without a grant, access is
// denied; a matching deny rule beats any grant. Safe for concurrent use;
// Reload replaces the rules, and clients' Rules pick the new ones up.
type ACL struct {
	path string
	cur  atomic.Pointer[aclRules]
	gen  atomic.Uint64
}

type rule struct {
	access Access
	topic  filter
}

// filter is a topic filter of a rule, whole (for matching topic names with
// codec.MatchTopic, without a conversion per delivery) and in levels (for
// comparing with other filters: covers, intersects).
type filter struct {
	s      string
	levels []string
}

func newFilter(s string) filter { return filter{s: s, levels: strings.Split(s, "/")} }

func (f filter) matches(topic []byte) bool { return codec.MatchTopic(f.s, topic) }

type aclRules struct {
	anonymous []rule
	users     map[string][]rule
	clientIDs map[string][]rule
	certNames map[string][]rule
	patterns  []rule // with %u / %c
}

// LoadACL reads an ACL file.
func LoadACL(path string) (*ACL, error) {
	a := &ACL{path: path}
	if err := a.Reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// ParseACL reads ACL rules from r (Reload is then a no-op).
func ParseACL(r io.Reader) (*ACL, error) {
	rs, err := parseACL(r)
	if err != nil {
		return nil, err
	}
	a := &ACL{}
	a.cur.Store(rs)
	a.gen.Add(1)
	return a, nil
}

// Reload reads the file again; on an error the old rules stay.
func (a *ACL) Reload() error {
	if a.path == "" {
		return nil
	}
	f, err := os.Open(a.path)
	if err != nil {
		return err
	}
	defer f.Close()
	rs, err := parseACL(f)
	if err != nil {
		return fmt.Errorf("%s: %w", a.path, err)
	}
	a.cur.Store(rs)
	a.gen.Add(1)
	return nil
}

func parseACL(r io.Reader) (*aclRules, error) {
	rs := &aclRules{users: map[string][]rule{}, clientIDs: map[string][]rule{}, certNames: map[string][]rule{}}
	type sectionKey struct{ kind, name string }
	sections := map[sectionKey]*[]rule{}
	section := &rs.anonymous
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		keyword, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch keyword {
		case "user", "clientid", "certname":
			if rest == "" {
				return nil, fmt.Errorf("line %d: %s without a name", n, keyword)
			}
			k := sectionKey{keyword, rest}
			if sections[k] == nil {
				sections[k] = new([]rule)
			}
			section = sections[k]
		case "topic", "pattern":
			access, topic := Read|Write, rest
			switch rest {
			case "read", "write", "readwrite", "deny":
				return nil, fmt.Errorf("line %d: %s %s without a topic", n, keyword, rest)
			}
			if w, t, ok := strings.Cut(rest, " "); ok {
				switch w {
				case "read":
					access, topic = Read, t
				case "write":
					access, topic = Write, t
				case "readwrite":
					access, topic = Read|Write, t
				case "deny":
					access, topic = Deny, t
				}
			}
			topic = strings.TrimSpace(topic)
			if err := validFilter(topic); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			ru := rule{access: access, topic: newFilter(topic)}
			if keyword == "pattern" {
				rs.patterns = append(rs.patterns, ru)
			} else {
				*section = append(*section, ru)
			}
		default:
			return nil, fmt.Errorf("line %d: unknown keyword %q (want topic, pattern, user, clientid or certname)", n, keyword)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for k, list := range sections {
		switch k.kind {
		case "user":
			rs.users[k.name] = *list
		case "clientid":
			rs.clientIDs[k.name] = *list
		case "certname":
			rs.certNames[k.name] = *list
		}
	}
	return rs, nil
}

// validFilter checks a filter of a rule by MQTT's rules; "$share/" has no
// meaning in a rule (the filter after it is what is checked).
func validFilter(f string) error {
	if err := codec.ValidateFilter([]byte(f), codec.Version311); err != nil {
		return fmt.Errorf("topic %q: %w", f, err)
	}
	return nil
}

// Client is who a client is, for the rules.
type Client struct {
	Username    string
	HasUsername bool
	ClientID    string
	CertName    string // common name of its TLS client certificate; empty without one
}

// Rules are one client's rules: the ACL's current rules that apply to it,
// with %u and %c replaced. Not safe for concurrent use (one per connection,
// used on its event loop).
type Rules struct {
	acl    *ACL
	client Client
	gen    uint64
	list   []rule
}

// For returns the rules of client.
func (a *ACL) For(c Client) *Rules {
	r := &Rules{acl: a, client: c}
	r.refresh()
	return r
}

func (r *Rules) refresh() {
	gen := r.acl.gen.Load()
	if gen == r.gen && r.list != nil {
		return
	}
	rs := r.acl.cur.Load()
	c := r.client
	var list []rule
	if c.HasUsername {
		list = append(list, rs.users[c.Username]...)
	} else {
		list = append(list, rs.anonymous...)
	}
	list = append(list, rs.clientIDs[c.ClientID]...)
	if c.CertName != "" {
		list = append(list, rs.certNames[c.CertName]...)
	}
	for _, p := range rs.patterns {
		if ru, ok := substitute(p, c); ok {
			list = append(list, ru)
		}
	}
	if list == nil {
		list = []rule{} // not nil: refreshed
	}
	r.list, r.gen = list, gen
}

// substitute fills %u and %c in a pattern. A user name or client id that
// holds a wildcard or a level separator is not substituted (the rule is
// skipped): a user called "#" must not be granted every topic.
func substitute(p rule, c Client) (rule, bool) {
	levels := make([]string, len(p.topic.levels))
	for i, l := range p.topic.levels {
		if strings.Contains(l, "%u") {
			if !c.HasUsername || strings.ContainsAny(c.Username, "+#/") {
				return rule{}, false
			}
			l = strings.ReplaceAll(l, "%u", c.Username)
		}
		if strings.Contains(l, "%c") {
			if strings.ContainsAny(c.ClientID, "+#/") {
				return rule{}, false
			}
			l = strings.ReplaceAll(l, "%c", c.ClientID)
		}
		levels[i] = l
	}
	return rule{access: p.access, topic: newFilter(strings.Join(levels, "/"))}, true
}

// CanPublish reports whether the client may publish to topic (a topic name,
// no wildcards).
func (r *Rules) CanPublish(topic []byte) bool { return r.allowed(topic, Write) }

// CanReceive reports whether a message on topic may be delivered to the
// client.
func (r *Rules) CanReceive(topic []byte) bool { return r.allowed(topic, Read) }

func (r *Rules) allowed(topic []byte, want Access) bool {
	r.refresh()
	granted := false
	for i := range r.list {
		ru := &r.list[i]
		if !ru.topic.matches(topic) {
			continue
		}
		if ru.access&Deny != 0 {
			return false
		}
		if ru.access&want != 0 {
			granted = true
		}
	}
	return granted
}

// CanSubscribe reports whether the client may subscribe to filter: some
// read rule meets it (a topic could match both) and no deny rule covers it
// (every topic it matches is denied). Deliveries are checked one by one
// too (CanReceive), so a filter wider than the grants receives only what
// they allow, as in Mosquitto.
func (r *Rules) CanSubscribe(filter []byte) bool {
	r.refresh()
	f := strings.Split(string(filter), "/")
	granted := false
	for i := range r.list {
		ru := &r.list[i]
		if ru.access&Deny != 0 {
			if covers(ru.topic.levels, f) {
				return false
			}
			continue
		}
		if ru.access&Read != 0 && intersects(ru.topic.levels, f) {
			granted = true
		}
	}
	return granted
}

// wildcardFirst reports whether a filter's first level is a wildcard, which
// does not match topics starting with $ (MQTT-4.7.2-1).
func wildcardFirst(f []string) bool { return f[0] == "+" || f[0] == "#" }

// covers reports whether every topic matching filter g matches filter f.
func covers(f, g []string) bool {
	if strings.HasPrefix(g[0], "$") && wildcardFirst(f) {
		return false
	}
	for i := range g {
		if i == len(f) {
			return false
		}
		switch {
		case f[i] == "#":
			return true
		case g[i] == "#":
			return false
		case f[i] == "+":
		case g[i] == "+" || f[i] != g[i]:
			return false
		}
	}
	return len(f) == len(g) || len(f) == len(g)+1 && f[len(g)] == "#"
}

// intersects reports whether some topic matches both filters.
func intersects(f, g []string) bool {
	if strings.HasPrefix(f[0], "$") && wildcardFirst(g) || strings.HasPrefix(g[0], "$") && wildcardFirst(f) {
		return false
	}
	for i := 0; ; i++ {
		if i == len(f) || i == len(g) {
			return len(f) == len(g) || i < len(f) && f[i] == "#" || i < len(g) && g[i] == "#"
		}
		if f[i] == "#" || g[i] == "#" {
			return true
		}
		if f[i] != "+" && g[i] != "+" && f[i] != g[i] {
			return false
		}
	}
}

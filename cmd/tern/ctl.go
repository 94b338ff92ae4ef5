package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
)

const ctlUsage = `usage: tern ctl [flags] <command> [arguments] [flags]

Asks a running broker about its sessions, subscriptions and retained
messages, and acts on them, through its admin endpoint (tern serve
--admin-listen; the API is described in docs/admin-api.md).

commands:
  sessions list [--prefix P] [--state online|offline] [--limit N] [--after ID] [--all]
  sessions show ID          a session and its subscriptions
  sessions kick ID          disconnect the client (a 5.0 client gets DISCONNECT
                            0x98, administrative action); its session stays
  sessions delete ID        end the session as if it had expired, disconnecting
                            its client first
  subscriptions list [--client-prefix P] [--filter F] [--topic T] [--limit N]
                     [--after CURSOR] [--all]
  retained list [--filter F] [--limit N] [--after TOPIC] [--all]
  retained get TOPIC        a retained message, its payload included
  retained delete TOPIC     clear it, as an empty retained PUBLISH would,
                            without delivering anything
  stats                     the broker's counters

flags of every command:
  --admin HOST:PORT   the broker's admin endpoint (default: read from
                      DIR/admin.addr with --data-dir, else 127.0.0.1:18083)
  --data-dir DIR      the broker's data directory, to find the endpoint
  --token-file FILE   file holding the endpoint's bearer token (the broker's
                      --admin-token-file; that name works here too)
  --json              print the API's JSON answer instead of a table

A list prints one page (--limit, default 100, at most 10000) and says on
stderr where the next one starts; --all prints every page. An ID or TOPIC
that starts with '-' goes after "--".

exit codes: 0 done, 1 the broker answered an error (printed) or could not be
reached, 2 bad usage
`

// defaultAdminAddr is where `make run` puts the admin endpoint.
const defaultAdminAddr = "127.0.0.1:18083"

// ctlClient talks to the admin endpoint: directly (a proxy has no business
// between an operator and the broker), never following a redirect (one on a
// DELETE would act on another path), and giving up after a bound a little
// longer than the API's own (apiTimeout).
var ctlClient = &http.Client{
	Transport: &http.Transport{
		Proxy:              nil,
		DialContext:        (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		DisableCompression: true,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       apiTimeout + 20*time.Second,
}

// ctl is one run of `tern ctl`: the flags every command has, and where the
// answers go.
type ctl struct {
	admin, dataDir, tokenFile string
	json                      bool
	stdout, stderr            io.Writer

	addr, where, token string // resolved by connect
}

// ctlCmd runs `tern ctl ...` and returns the exit code.
func ctlCmd(args []string, stdout, stderr io.Writer) int {
	c := &ctl{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("tern ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, ctlUsage) }
	c.commonFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	args = fs.Args()
	if len(args) == 0 {
		fmt.Fprint(stderr, ctlUsage)
		return 2
	}
	noun, verb := args[0], ""
	if len(args) > 1 {
		verb = args[1]
	}
	switch noun + " " + verb {
	case "sessions list":
		return c.sessionsList(args[2:])
	case "sessions show":
		return c.sessionsShow(args[2:])
	case "sessions kick":
		return c.sessionsAct(args[2:], "kick")
	case "sessions delete":
		return c.sessionsAct(args[2:], "delete")
	case "subscriptions list":
		return c.subscriptionsList(args[2:])
	case "retained list":
		return c.retainedList(args[2:])
	case "retained get":
		return c.retainedGet(args[2:])
	case "retained delete":
		return c.retainedDelete(args[2:])
	}
	switch noun {
	case "stats":
		return c.stats(args[1:])
	case "help":
		fmt.Fprint(stdout, ctlUsage)
		return 0
	case "sessions", "subscriptions", "retained":
		if verb == "" {
			fmt.Fprintf(stderr, "tern ctl %s: missing subcommand\n\n%s", noun, ctlUsage)
		} else {
			fmt.Fprintf(stderr, "tern ctl %s: unknown subcommand %q\n\n%s", noun, verb, ctlUsage)
		}
		return 2
	}
	fmt.Fprintf(stderr, "tern ctl: unknown command %q\n\n%s", noun, ctlUsage)
	return 2
}

// commonFlags defines the flags of every command on fs, keeping the values
// given before the command as their defaults.
func (c *ctl) commonFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.admin, "admin", c.admin, "`HOST:PORT` of the broker's admin endpoint (default: read from DIR/admin.addr with --data-dir, else "+defaultAdminAddr+")")
	fs.StringVar(&c.dataDir, "data-dir", c.dataDir, "the broker's data `DIR`, whose admin.addr names the endpoint")
	fs.StringVar(&c.tokenFile, "token-file", c.tokenFile, "`FILE` holding the endpoint's bearer token (the broker's --admin-token-file)")
	// The name serve and tern wal tail use for the same file.
	fs.StringVar(&c.tokenFile, "admin-token-file", c.tokenFile, "the same as --token-file")
	fs.BoolVar(&c.json, "json", c.json, "print the API's JSON answer instead of a table")
}

// flagSet returns the flag set of a command, with the common flags; its
// usage prints synopsis and help.
func (c *ctl) flagSet(name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet("tern ctl "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "usage: tern ctl %s %s\n\n%s\n\nflags:\n", name, synopsis, help)
		fs.PrintDefaults()
	}
	c.commonFlags(fs)
	return fs
}

// parse parses a command's arguments, flags and positional ones in any
// order ("--" ends the flags), wants exactly nargs positional ones and
// finds the endpoint. ok is false when the caller should return code.
func (c *ctl) parse(fs *flag.FlagSet, args []string, nargs int) (pos []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0, false
			}
			return nil, 2, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if len(pos) != nargs {
		if len(pos) < nargs {
			fmt.Fprintf(c.stderr, "%s: missing argument\n", fs.Name())
		} else {
			fmt.Fprintf(c.stderr, "%s: unexpected argument %q\n", fs.Name(), pos[nargs])
		}
		fs.Usage()
		return nil, 2, false
	}
	if code := c.connect(); code != 0 {
		return nil, code, false
	}
	return pos, 0, true
}

// connect finds the endpoint's address and reads the token.
func (c *ctl) connect() int {
	c.addr, c.where = c.admin, "--admin"
	switch {
	case c.addr != "":
	case c.dataDir != "":
		c.where = filepath.Join(c.dataDir, adminAddrFile)
		b, err := os.ReadFile(c.where)
		if errors.Is(err, os.ErrNotExist) {
			return c.fail("no broker publishes an admin endpoint in %s (no %s): is it running, with --admin-listen? "+
				"--admin HOST:PORT names the endpoint", c.dataDir, c.where)
		}
		if err != nil {
			return c.fail("cannot read the admin address: %v", err)
		}
		c.addr = strings.TrimSpace(string(b))
	default:
		c.addr, c.where = defaultAdminAddr, "the default; --admin or --data-dir name another"
	}
	if c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return c.fail("cannot read the admin token: %v", err)
		}
		if c.token = strings.TrimSpace(string(b)); c.token == "" {
			return c.fail("the admin token file %s is empty", c.tokenFile)
		}
	}
	return 0
}

func (c *ctl) fail(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "tern ctl: "+format+"\n", args...)
	return 1
}

// call sends a request to the API and returns the body of a 2xx answer;
// otherwise it prints why and returns the exit code. path is escaped
// already (pathElem).
func (c *ctl) call(method, path string, q url.Values) (body []byte, code int) {
	u := "http://" + c.addr + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return nil, c.fail("bad admin address %q (from %s): %v", c.addr, c.where, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := ctlClient.Do(req)
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // without the URL, which says nothing more
		}
		return nil, c.fail("cannot reach the broker's admin endpoint at %s (from %s): %v", c.addr, c.where, err)
	}
	defer resp.Body.Close()
	// A page of 10,000 sessions is a few MB; a retained payload at most the
	// broker's packet size, in base64.
	body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, c.fail("lost the connection to the broker at %s: %v", c.addr, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if resp.StatusCode == http.StatusUnauthorized {
			msg += " (pass the broker's token with --token-file)"
		}
		return nil, c.fail("%s (%s)", msg, resp.Status)
	}
	return body, 0
}

// get calls the API and decodes its answer into v, or, with --json, prints
// it as it is (indented) when print is true.
func (c *ctl) get(method, path string, q url.Values, v any, print bool) int {
	body, code := c.call(method, path, q)
	if code != 0 {
		return code
	}
	if c.json && print {
		return c.printJSON(body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return c.fail("cannot read the broker's answer: %v", err)
	}
	return 0
}

func (c *ctl) printJSON(body []byte) int {
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSpace(body), "", "  "); err != nil {
		return c.fail("cannot read the broker's answer: %v", err)
	}
	out.WriteByte('\n')
	_, _ = c.stdout.Write(out.Bytes())
	return 0
}

// pathElem escapes s as one element of a path: '/' and every other byte
// that is not plain included, and "." and ".." too, which a path would
// otherwise lose to cleaning.
func pathElem(s string) string {
	switch s {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(s)
}

// listFlags are the paging flags of a list command.
type listFlags struct {
	limit int
	after string
	all   bool
}

func (l *listFlags) define(fs *flag.FlagSet, after string) {
	fs.IntVar(&l.limit, "limit", 0, "entries per page, 1-10000 (default 100)")
	fs.StringVar(&l.after, "after", "", "start after this `"+after+"` (the next of the previous page)")
	fs.BoolVar(&l.all, "all", false, "print every page")
}

// list prints a list, following the pages with --all: with --json as the
// API's page (one page holding every item with --all), else through table.
func list[T any](c *ctl, path string, q url.Values, l listFlags, table func(*tabwriter.Writer, []T)) int {
	if l.limit != 0 {
		q.Set("limit", strconv.Itoa(l.limit))
	}
	if l.after != "" {
		q.Set("after", l.after)
	}
	var all page[T]
	for {
		var p page[T]
		if code := c.get(http.MethodGet, path, q, &p, c.json && !l.all); code != 0 || c.json && !l.all {
			return code
		}
		all.Items = append(all.Items, p.Items...)
		all.Next = p.Next
		if !l.all || p.Next == "" {
			break
		}
		q.Set("after", p.Next)
	}
	if c.json {
		if all.Items == nil {
			all.Items = []T{}
		}
		b, _ := json.Marshal(all)
		return c.printJSON(b)
	}
	tw := newTable(c.stdout)
	table(tw, all.Items)
	_ = tw.Flush()
	if all.Next != "" {
		fmt.Fprintf(c.stderr, "(more: --all prints every page; the next one is --after %s)\n", shellWord(all.Next))
	}
	return 0
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0) }

func (c *ctl) sessionsList(args []string) int {
	fs := c.flagSet("sessions list", "[--prefix P] [--state online|offline] [--limit N] [--after ID] [--all]",
		"Lists the sessions in client id order: client id, state, protocol version, listener and\n"+
			"remote address when online, subscriptions, queued and in-flight messages, session expiry.")
	prefix := fs.String("prefix", "", "only client ids starting with `P`")
	state := fs.String("state", "", "only online or offline sessions")
	var l listFlags
	l.define(fs, "ID")
	if _, code, ok := c.parse(fs, args, 0); !ok {
		return code
	}
	q := url.Values{}
	if *prefix != "" {
		q.Set("prefix", *prefix)
	}
	if *state != "" {
		q.Set("state", *state)
	}
	return list(c, "/v1/sessions", q, l, func(tw *tabwriter.Writer, items []engine.SessionInfo) {
		fmt.Fprintln(tw, "CLIENT ID\tSTATE\tPROTOCOL\tLISTENER\tREMOTE\tSUBS\tQUEUED\tINFLIGHT\tEXPIRY")
		for _, s := range items {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", cell(s.ClientID), onlineState(s.Online),
				protocolName(s.Protocol), orDash(s.Listener), cell(orDash(s.Remote)), s.Subscriptions, s.Queued,
				s.Inflight, expiry(s.ExpiryInterval))
		}
	})
}

func (c *ctl) sessionsShow(args []string) int {
	fs := c.flagSet("sessions show", "ID", "Prints a session and its subscriptions.")
	pos, code, ok := c.parse(fs, args, 1)
	if !ok {
		return code
	}
	var d sessionDetail
	if code := c.get(http.MethodGet, "/v1/sessions/"+pathElem(pos[0]), nil, &d, true); code != 0 || c.json {
		return code
	}
	s := d.Session
	tw := newTable(c.stdout)
	fmt.Fprintf(tw, "client id:\t%s\n", cell(s.ClientID))
	fmt.Fprintf(tw, "state:\t%s\n", onlineState(s.Online))
	fmt.Fprintf(tw, "protocol:\t%s\n", protocolName(s.Protocol))
	if s.Online {
		fmt.Fprintf(tw, "listener:\t%s\n", s.Listener)
		fmt.Fprintf(tw, "remote:\t%s\n", cell(s.Remote))
		fmt.Fprintf(tw, "connected since:\t%s\n", s.ConnectedSince.Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "session expiry:\t%s\n", expiry(s.ExpiryInterval))
	fmt.Fprintf(tw, "durable:\t%t\n", s.Durable)
	fmt.Fprintf(tw, "queued:\t%d messages, %d bytes\n", s.Queued, s.QueuedBytes)
	fmt.Fprintf(tw, "in flight:\t%d out, %d QoS 2 in\n", s.Inflight, s.InboundQoS2)
	fmt.Fprintf(tw, "subscriptions:\t%d\n", s.Subscriptions)
	_ = tw.Flush()
	if len(d.Subscriptions) > 0 {
		fmt.Fprintln(c.stdout)
		tw = newTable(c.stdout)
		fmt.Fprintln(tw, "FILTER\tQOS\tOPTIONS")
		for _, sub := range d.Subscriptions {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", cell(sub.Filter), sub.QoS, subOptions(sub))
		}
		_ = tw.Flush()
	}
	return 0
}

// sessionsAct kicks a client or deletes its session.
func (c *ctl) sessionsAct(args []string, verb string) int {
	help, method, suffix, done := "Disconnects the client: a 5.0 client gets DISCONNECT 0x98 (administrative action),\n"+
		"its will is published, its session stays.", http.MethodPost, "/disconnect", "disconnected"
	if verb == "delete" {
		help, method, suffix, done = "Ends the session as if it had expired: its subscriptions, queue and stored state go,\n"+
			"a pending will is published. A connected client is disconnected first (0x98).", http.MethodDelete, "", "deleted the session of"
	}
	fs := c.flagSet("sessions "+verb, "ID", help)
	pos, code, ok := c.parse(fs, args, 1)
	if !ok {
		return code
	}
	body, code := c.call(method, "/v1/sessions/"+pathElem(pos[0])+suffix, nil)
	if code != 0 {
		return code
	}
	if c.json {
		return c.printJSON(body)
	}
	fmt.Fprintf(c.stdout, "%s %s\n", done, cell(pos[0]))
	return 0
}

func (c *ctl) subscriptionsList(args []string) int {
	fs := c.flagSet("subscriptions list", "[--client-prefix P] [--filter F] [--topic T] [--limit N] [--after CURSOR] [--all]",
		"Lists the subscriptions in client id and filter order.")
	clientPrefix := fs.String("client-prefix", "", "only of client ids starting with `P`")
	filter := fs.String("filter", "", "only this exact topic `filter` (a shared one with its $share/GROUP/)")
	topic := fs.String("topic", "", "only the filters matching this `topic` name")
	var l listFlags
	l.define(fs, "CURSOR")
	if _, code, ok := c.parse(fs, args, 0); !ok {
		return code
	}
	q := url.Values{}
	for k, v := range map[string]string{"client_prefix": *clientPrefix, "filter": *filter, "topic": *topic} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return list(c, "/v1/subscriptions", q, l, func(tw *tabwriter.Writer, items []engine.SubscriptionInfo) {
		fmt.Fprintln(tw, "CLIENT ID\tFILTER\tQOS\tOPTIONS")
		for _, s := range items {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", cell(s.ClientID), cell(s.Filter), s.QoS, subOptions(s))
		}
	})
}

func (c *ctl) retainedList(args []string) int {
	fs := c.flagSet("retained list", "[--filter F] [--limit N] [--after TOPIC] [--all]",
		"Lists the retained messages in topic order, without their payloads.")
	filter := fs.String("filter", "", "only topics matching this topic `filter` (default #, which leaves out $ topics)")
	var l listFlags
	l.define(fs, "TOPIC")
	if _, code, ok := c.parse(fs, args, 0); !ok {
		return code
	}
	q := url.Values{}
	if *filter != "" {
		q.Set("filter", *filter)
	}
	return list(c, "/v1/retained", q, l, func(tw *tabwriter.Writer, items []engine.RetainedInfo) {
		fmt.Fprintln(tw, "TOPIC\tQOS\tPAYLOAD BYTES\tCREATED\tEXPIRES")
		for _, m := range items {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", cell(m.Topic), m.QoS, m.PayloadSize,
				m.Created.Format(time.RFC3339), orDash(timeOrEmpty(m.ExpiresAt)))
		}
	})
}

func (c *ctl) retainedGet(args []string) int {
	fs := c.flagSet("retained get", "TOPIC", "Prints the retained message on TOPIC, its payload included: as text when it is\n"+
		"UTF-8 (quoted when it holds control characters), else in base64.")
	pos, code, ok := c.parse(fs, args, 1)
	if !ok {
		return code
	}
	var d struct {
		engine.RetainedInfo
		Text          *string `json:"payload"`
		PayloadBase64 string  `json:"payload_base64"`
	}
	if code := c.get(http.MethodGet, "/v1/retained/"+pathElem(pos[0]), nil, &d, true); code != 0 || c.json {
		return code
	}
	tw := newTable(c.stdout)
	fmt.Fprintf(tw, "topic:\t%s\n", cell(d.Topic))
	fmt.Fprintf(tw, "qos:\t%d\n", d.QoS)
	fmt.Fprintf(tw, "created:\t%s\n", d.Created.Format(time.RFC3339))
	if !d.ExpiresAt.IsZero() {
		fmt.Fprintf(tw, "expires:\t%s\n", d.ExpiresAt.Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "size:\t%d bytes, payload %d\n", d.Size, d.PayloadSize)
	if d.Text != nil {
		fmt.Fprintf(tw, "payload:\t%s\n", printable(*d.Text))
	} else {
		fmt.Fprintf(tw, "payload (base64):\t%s\n", d.PayloadBase64)
	}
	_ = tw.Flush()
	return 0
}

func (c *ctl) retainedDelete(args []string) int {
	fs := c.flagSet("retained delete", "TOPIC", "Clears the retained message on TOPIC, as a retained PUBLISH with an empty payload\n"+
		"would, without delivering anything; returns once the change is durable.")
	pos, code, ok := c.parse(fs, args, 1)
	if !ok {
		return code
	}
	body, code := c.call(http.MethodDelete, "/v1/retained/"+pathElem(pos[0]), nil)
	if code != 0 {
		return code
	}
	if c.json {
		return c.printJSON(body)
	}
	fmt.Fprintf(c.stdout, "deleted the retained message on %s\n", cell(pos[0]))
	return 0
}

func (c *ctl) stats(args []string) int {
	fs := c.flagSet("stats", "", "Prints the broker's counters: connections, sessions, messages, drops, queues, the store.")
	if _, code, ok := c.parse(fs, args, 0); !ok {
		return code
	}
	var s brokerStats
	if code := c.get(http.MethodGet, "/v1/stats", nil, &s, true); code != 0 || c.json {
		return code
	}
	tw := newTable(c.stdout)
	kv := func(k, format string, args ...any) { fmt.Fprintf(tw, k+":\t"+format+"\n", args...) }
	kv("version", "%s", s.Version)
	kv("started", "%s (up %s)", s.Started.Format(time.RFC3339), (time.Duration(s.UptimeSeconds) * time.Second).String())
	if s.Ready {
		kv("ready", "yes")
	} else {
		kv("ready", "no: %s", s.NotReady)
	}
	kv("connections", "%d (%d past CONNECT)", s.Connections, s.Online)
	for _, l := range s.Listeners {
		if l.Name != "tcp" && l.Sockets == 0 {
			continue
		}
		kv("  "+l.Name, "%d sockets; clients 3.1: %d, 3.1.1: %d, 5.0: %d", l.Sockets, l.Clients["3.1"], l.Clients["3.1.1"], l.Clients["5.0"])
	}
	kv("sessions", "%d (%d offline)", s.Sessions, max(s.Sessions-int(s.Online), 0))
	kv("subscriptions", "%d", s.Subscriptions)
	kv("retained", "%d messages, %d bytes", s.RetainedMessages, s.RetainedBytes)
	kv("messages received", "QoS 0: %d, QoS 1: %d, QoS 2: %d", s.MessagesReceived.QoS0, s.MessagesReceived.QoS1, s.MessagesReceived.QoS2)
	kv("messages sent", "QoS 0: %d, QoS 1: %d, QoS 2: %d", s.MessagesSent.QoS0, s.MessagesSent.QoS1, s.MessagesSent.QoS2)
	kv("packets received", "%d", s.PacketsReceived)
	kv("bytes", "%d received, %d sent", s.BytesReceived, s.BytesSent)
	for _, r := range dropReasons {
		kv("dropped "+r, "%d", s.MessagesDropped[r])
	}
	kv("queued", "%d messages, %d bytes", s.Queues.Queued, s.Queues.QueuedBytes)
	kv("in flight", "%d out, %d QoS 2 in", s.Queues.InflightOut, s.Queues.InflightIn)
	kv("acl denied", "%d", s.ACLDenied)
	kv("limited", "%d", s.Limited)
	kv("publishers paused", "%d", s.PublishersPaused)
	kv("publishes held back", "%d", s.PublishesHeldBack)
	kv("retained refused", "%d", s.RetainedRefused)
	kv("store refused", "%d", s.StoreRefused)
	kv("connections refused", "%d", s.ConnectionsRefused)
	kv("accept errors", "%d", s.AcceptErrors)
	kv("tls handshake failures", "%d", s.TLSHandshakeFailures)
	kv("event loops", "%d, busy %.1fs", s.EventLoops, s.EventLoopBusySeconds)
	if st := s.Store; st != nil {
		kv("store", "%d changes, %d commits, %d syncs, %d refused, %d failed, %d recoveries",
			st.Changes, st.Commits, st.Syncs, st.Refused, st.Failed, st.Recoveries)
		if st.Error != "" {
			kv("store error", "%s", st.Error)
		}
	}
	_ = tw.Flush()
	return 0
}

// cell returns s for a table column: as it is when it is plain, quoted in
// Go syntax when it is empty or holds a space or a character that is not
// graphic. Client ids and topics come from the network: a control sequence
// in one must not reach the terminal, and a space must not pass for a
// column break.
func cell(s string) string {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsGraphic(r) }) {
		return strconv.Quote(s)
	}
	return s
}

// printable returns s as it is when every character is printable (spaces
// included), else quoted in Go syntax.
func printable(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}

// shellWord quotes s for a POSIX shell when it needs it.
func shellWord(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_./:=@%+,", r)))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func onlineState(online bool) string {
	if online {
		return "online"
	}
	return "offline"
}

func protocolName(level byte) string {
	switch level {
	case codec.Version31:
		return engine.ProtocolNames[0]
	case codec.Version311:
		return engine.ProtocolNames[1]
	case codec.Version5:
		return engine.ProtocolNames[2]
	}
	return strconv.Itoa(int(level))
}

// expiry renders a Session Expiry Interval.
func expiry(sec uint32) string {
	if sec == 0xFFFFFFFF {
		return "never"
	}
	return (time.Duration(sec) * time.Second).String()
}

func subOptions(s engine.SubscriptionInfo) string {
	var o []string
	if s.NoLocal {
		o = append(o, "no_local")
	}
	if s.RetainAsPublished {
		o = append(o, "retain_as_published")
	}
	if s.RetainHandling != 0 {
		o = append(o, "retain_handling="+strconv.Itoa(int(s.RetainHandling)))
	}
	if s.Identifier != 0 {
		o = append(o, "id="+strconv.FormatUint(uint64(s.Identifier), 10))
	}
	return orDash(strings.Join(o, ","))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func timeOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339)
}

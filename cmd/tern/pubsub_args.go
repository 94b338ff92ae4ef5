package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

// The flags of tern pub and tern sub are mosquitto_pub's and mosquitto_sub's:
// single-dash letters that take the next argument as their value (-t TOPIC),
// long names (--will-topic TOPIC or --will-topic=TOPIC), and -D, which takes
// three or four. The standard flag package reads none of -D, repeated -t and
// "-h is the host" the way mosquitto's users type them, hence this loop.

// msgSource is where tern pub takes the message from.
type msgSource int

const (
	srcNone    msgSource = iota
	srcMessage           // -m
	srcFile              // -f
	srcStdin             // -s: all of standard input, one message
	srcLines             // -l: one message per line of standard input
	srcNull              // -n: an empty message
)

// clientOpts is what the flags of tern pub and tern sub ask for.
type clientOpts struct {
	cmd string // "pub" or "sub"

	host          string
	port          int  // 0 until parsed: 1883, or 8883 with TLS
	version       byte // codec.Version5, Version311 or Version31
	id            string
	user          string
	password      string
	userSet       bool
	passwordSet   bool
	keepAlive     uint16
	persistent    bool    // -c: no clean start
	sessionExpiry *uint32 // -x
	debug         bool
	timeout       time.Duration // -W; 0 waits for ever

	tls        bool // set by any TLS flag
	caFile     string
	certFile   string
	keyFile    string
	insecure   bool
	tlsVersion uint16 // 0: 1.2 or later

	willTopic      string // "" for no will
	willPayload    []byte
	willQoS        byte
	willRetain     bool
	willPayloadSet bool
	willQoSSet     bool

	topics []string            // pub: the one topic; sub: the filters
	qos    byte                // pub: of the message; sub: of the subscriptions
	props  [numPropCmds]*props // -D, by packet

	// pub
	retain      bool
	source      msgSource
	message     []byte // -m
	file        string // -f
	repeat      int    // --repeat
	repeatDelay time.Duration

	// sub
	verbose        bool // -v
	noEOL          bool // -N
	noRetained     bool // -R
	retainedOnly   bool
	removeRetained bool
	count          int      // -C; 0 for ever
	filterOut      []string // -T
	format         string   // -F
	formatSet      bool
}

// flagDef is one flag of the table that both parses and documents them.
// A def without names is a heading of the usage text.
type flagDef struct {
	names []string // "-t", "--topic"
	arg   string   // what the value is called in the usage text; "" for a switch
	cmds  string   // "pub", "sub" or "pub sub"
	help  string
	// set applies the flag. value returns the next argument; a switch does
	// not call it, -D calls it three or four times.
	set func(o *clientOpts, value func() (string, error)) error
}

var errNeedsValue = errors.New("needs a value")

// clientFlags are the flags of tern pub and tern sub, in the order of the
// usage text.
var clientFlags = []flagDef{
	{help: "message (pub):"},
	{names: []string{"-t", "--topic"}, arg: "TOPIC", cmds: "pub", help: "topic to publish to (required)",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			if err != nil {
				return err
			}
			if len(o.topics) > 0 {
				return errors.New("given twice: tern pub publishes to one topic")
			}
			o.topics = append(o.topics, s)
			return nil
		}},
	{names: []string{"-m", "--message"}, arg: "MESSAGE", cmds: "pub", help: "send MESSAGE",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			if err != nil {
				return err
			}
			o.message = []byte(s)
			return o.setSource(srcMessage)
		}},
	{names: []string{"-f", "--file"}, arg: "FILE", cmds: "pub", help: "send the contents of FILE as the message",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			if err != nil {
				return err
			}
			o.file = s
			return o.setSource(srcFile)
		}},
	{names: []string{"-s", "--stdin-file"}, cmds: "pub", help: "send all of standard input as one message",
		set: func(o *clientOpts, _ func() (string, error)) error { return o.setSource(srcStdin) }},
	{names: []string{"-l", "--stdin-line"}, cmds: "pub", help: "send each line of standard input as a message (without its newline; empty lines are empty messages)",
		set: func(o *clientOpts, _ func() (string, error)) error { return o.setSource(srcLines) }},
	{names: []string{"-n", "--null-message"}, cmds: "pub", help: "send an empty message (with -r: delete the retained message)",
		set: func(o *clientOpts, _ func() (string, error)) error { return o.setSource(srcNull) }},
	{names: []string{"-q", "--qos"}, arg: "QOS", cmds: "pub", help: "quality of service, 0, 1 or 2 (default 0)", set: setQoS(func(o *clientOpts) *byte { return &o.qos })},
	{names: []string{"-r", "--retain"}, cmds: "pub", help: "retain the message",
		set: func(o *clientOpts, _ func() (string, error)) error { o.retain = true; return nil }},
	{names: []string{"--repeat"}, arg: "N", cmds: "pub", help: "publish the message N times (not with -l)",
		set: func(o *clientOpts, v func() (string, error)) error {
			n, err := intValue(v, 1, math.MaxInt32)
			o.repeat = n
			return err
		}},
	{names: []string{"--repeat-delay"}, arg: "SECONDS", cmds: "pub", help: "wait SECONDS (a decimal) between repeats (default 0)",
		set: func(o *clientOpts, v func() (string, error)) error {
			d, err := secondsValue(v, true)
			o.repeatDelay = d
			return err
		}},

	{help: "subscription (sub):"},
	{names: []string{"-t", "--topic"}, arg: "FILTER", cmds: "sub", help: "topic filter to subscribe to (required, repeatable)",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			o.topics = append(o.topics, s)
			return err
		}},
	{names: []string{"-q", "--qos"}, arg: "QOS", cmds: "sub", help: "maximum quality of service of the subscriptions, 0, 1 or 2 (default 0)", set: setQoS(func(o *clientOpts) *byte { return &o.qos })},
	{names: []string{"-T", "--filter-out"}, arg: "FILTER", cmds: "sub", help: "do not print messages whose topic matches FILTER (repeatable)",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			o.filterOut = append(o.filterOut, s)
			return err
		}},
	{names: []string{"-C"}, arg: "N", cmds: "sub", help: "exit after printing N messages",
		set: func(o *clientOpts, v func() (string, error)) error {
			n, err := intValue(v, 1, math.MaxInt32)
			o.count = n
			return err
		}},
	{names: []string{"-R"}, cmds: "sub", help: "do not print stale retained messages (those sent on subscribing)",
		set: func(o *clientOpts, _ func() (string, error)) error { o.noRetained = true; return nil }},
	{names: []string{"--retained-only"}, cmds: "sub", help: "print only the retained messages, exit on the first live one",
		set: func(o *clientOpts, _ func() (string, error)) error { o.retainedOnly = true; return nil }},
	{names: []string{"--remove-retained"}, cmds: "sub", help: "delete each retained message received (publish an empty retained message to its topic)",
		set: func(o *clientOpts, _ func() (string, error)) error { o.removeRetained = true; return nil }},

	{help: "output (sub):"},
	{names: []string{"-v", "--verbose"}, cmds: "sub", help: `print "TOPIC PAYLOAD" ("TOPIC (null)" for an empty payload), not the payload alone`,
		set: func(o *clientOpts, _ func() (string, error)) error { o.verbose = true; return nil }},
	{names: []string{"-N"}, cmds: "sub", help: "no newline after each message",
		set: func(o *clientOpts, _ func() (string, error)) error { o.noEOL = true; return nil }},
	{names: []string{"-F"}, arg: "FORMAT", cmds: "sub", help: formatHelp,
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			o.format, o.formatSet = s, true
			return err
		}},

	{help: "connection:"},
	{names: []string{"-h", "--host"}, arg: "HOST", cmds: "pub sub", help: "broker host (default 127.0.0.1)",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			o.host = s
			return err
		}},
	{names: []string{"-p", "--port"}, arg: "PORT", cmds: "pub sub", help: "broker port (default 1883, or 8883 with TLS)",
		set: func(o *clientOpts, v func() (string, error)) error {
			n, err := intValue(v, 1, 65535)
			o.port = n
			return err
		}},
	{names: []string{"-V", "--protocol-version"}, arg: "VERSION", cmds: "pub sub", help: "MQTT version: 5, 311 or 31 (or mqttv5, mqttv311, mqttv31; default 5)",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			if err != nil {
				return err
			}
			switch strings.TrimPrefix(strings.ToLower(s), "mqttv") {
			case "5":
				o.version = codec.Version5
			case "311":
				o.version = codec.Version311
			case "31":
				o.version = codec.Version31
			default:
				return fmt.Errorf("needs 5, 311 or 31, not %q", s)
			}
			return nil
		}},
	{names: []string{"-i", "--id"}, arg: "ID", cmds: "pub sub", help: "client identifier (default tern-pub- or tern-sub- and 8 random hex digits)",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			if err == nil && s == "" {
				err = errors.New("needs a non-empty identifier")
			}
			o.id = s
			return err
		}},
	{names: []string{"-u", "--username"}, arg: "USER", cmds: "pub sub", help: "user name",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			o.user, o.userSet = s, true
			return err
		}},
	{names: []string{"-P", "--pw"}, arg: "PASSWORD", cmds: "pub sub", help: "password",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			o.password, o.passwordSet = s, true
			return err
		}},
	{names: []string{"-k", "--keepalive"}, arg: "SECONDS", cmds: "pub sub", help: "keep alive interval, 0 for none (default 60)",
		set: func(o *clientOpts, v func() (string, error)) error {
			n, err := intValue(v, 0, 65535)
			o.keepAlive = uint16(n)
			return err
		}},
	{names: []string{"-c", "--disable-clean-session"}, cmds: "pub sub", help: "keep the session after disconnecting (needs -i; on 5.0 the session never expires unless -x says)",
		set: func(o *clientOpts, _ func() (string, error)) error { o.persistent = true; return nil }},
	{names: []string{"-x"}, arg: "SECONDS", cmds: "pub sub", help: "5.0 session expiry interval; -1 or 4294967295 for never (default 0, or never with -c)",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			if err != nil {
				return err
			}
			var n uint64 = math.MaxUint32
			if s != "-1" && s != "∞" {
				if n, err = strconv.ParseUint(s, 10, 32); err != nil {
					return fmt.Errorf("needs seconds from 0 to 4294967295, or -1, not %q", s)
				}
			}
			e := uint32(n)
			o.sessionExpiry = &e
			return nil
		}},
	{names: []string{"-W"}, arg: "SECONDS", cmds: "pub sub", help: "give up after SECONDS (a decimal) with exit code 27, as mosquitto does",
		set: func(o *clientOpts, v func() (string, error)) error {
			d, err := secondsValue(v, false)
			o.timeout = d
			return err
		}},
	{names: []string{"-d", "--debug"}, cmds: "pub sub", help: "print every packet sent and received to standard error",
		set: func(o *clientOpts, _ func() (string, error)) error { o.debug = true; return nil }},
	{names: []string{"-D", "--property"}, arg: "CMD PROP VALUE", cmds: "pub sub", help: propertyHelp, set: setProperty},

	{help: "will:"},
	{names: []string{"--will-topic"}, arg: "TOPIC", cmds: "pub sub", help: "topic of the will message, which the broker publishes when the connection ends without DISCONNECT",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			o.willTopic = s
			return err
		}},
	{names: []string{"--will-payload"}, arg: "PAYLOAD", cmds: "pub sub", help: "payload of the will message (default empty)",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			o.willPayload, o.willPayloadSet = []byte(s), true
			return err
		}},
	{names: []string{"--will-qos"}, arg: "QOS", cmds: "pub sub", help: "quality of service of the will message (default 0)",
		set: func(o *clientOpts, v func() (string, error)) error {
			o.willQoSSet = true
			return setQoS(func(o *clientOpts) *byte { return &o.willQoS })(o, v)
		}},
	{names: []string{"--will-retain"}, cmds: "pub sub", help: "retain the will message",
		set: func(o *clientOpts, _ func() (string, error)) error { o.willRetain = true; return nil }},

	{help: "TLS (any of these turns it on):"},
	{names: []string{"--cafile"}, arg: "FILE", cmds: "pub sub", help: "trust the CA certificates of PEM FILE (default: the system's)",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			o.caFile, o.tls = s, true
			return err
		}},
	{names: []string{"--cert"}, arg: "FILE", cmds: "pub sub", help: "client certificate, PEM (with --key)",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			o.certFile, o.tls = s, true
			return err
		}},
	{names: []string{"--key"}, arg: "FILE", cmds: "pub sub", help: "client private key, PEM (with --cert)",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			o.keyFile, o.tls = s, true
			return err
		}},
	{names: []string{"--insecure"}, cmds: "pub sub", help: "do not check that the broker's certificate names the host (the chain is still checked)",
		set: func(o *clientOpts, _ func() (string, error)) error { o.insecure, o.tls = true, true; return nil }},
	{names: []string{"--tls", "--tls-use-os-certs"}, cmds: "pub sub", help: "use TLS, trusting the system's CA certificates",
		set: func(o *clientOpts, _ func() (string, error)) error { o.tls = true; return nil }},
	{names: []string{"--tls-version"}, arg: "VERSION", cmds: "pub sub", help: "use exactly this TLS version: tlsv1.2 or tlsv1.3 (default 1.2 or later)",
		set: func(o *clientOpts, v func() (string, error)) error {
			s, err := v()
			if err != nil {
				return err
			}
			switch strings.TrimPrefix(strings.ToLower(s), "tlsv") {
			case "1.2":
				o.tlsVersion = 0x0303 // tls.VersionTLS12
			case "1.3":
				o.tlsVersion = 0x0304 // tls.VersionTLS13
			default:
				return fmt.Errorf("needs tlsv1.2 or tlsv1.3, not %q", s)
			}
			o.tls = true
			return nil
		}},
}

const formatHelp = `print each message as FORMAT (overrides -v): %t topic, %p payload, ` +
	`%x/%X payload in hex, %l payload length, %q QoS, %r retain flag, %m packet id, ` +
	`%U Unix time, %I ISO 8601 time, 5.0 properties %C content type, %D correlation data, ` +
	`%E message expiry, %F payload format, %R response topic, %S subscription id, ` +
	`%P user properties (key:value ...), %% a %; %-10t, %05l, %.3p set width and precision; ` +
	`\n \t \\ \e \0 escapes`

const propertyHelp = `set a 5.0 property of a packet as mosquitto does, e.g. -D publish ` +
	`content-type text/plain, -D publish user-property KEY VALUE (repeatable); the list is below`

func setQoS(field func(o *clientOpts) *byte) func(*clientOpts, func() (string, error)) error {
	return func(o *clientOpts, v func() (string, error)) error {
		s, err := v()
		if err != nil {
			return errors.New("needs 0, 1 or 2")
		}
		if len(s) != 1 || s[0] < '0' || s[0] > '2' {
			return fmt.Errorf("needs 0, 1 or 2, not %q", s)
		}
		*field(o) = s[0] - '0'
		return nil
	}
}

func intValue(v func() (string, error), lo, hi int) (int, error) {
	s, err := v()
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("needs a number from %d to %d, not %q", lo, hi, s)
	}
	return n, nil
}

func secondsValue(v func() (string, error), zeroOK bool) (time.Duration, error) {
	s, err := v()
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || (f == 0 && !zeroOK) || f > 1e9 {
		if zeroOK {
			return 0, fmt.Errorf("needs seconds, 0 or more, not %q", s)
		}
		return 0, fmt.Errorf("needs seconds, more than 0, not %q", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

func (o *clientOpts) setSource(s msgSource) error {
	if o.source != srcNone && o.source != s {
		return errors.New("conflicts with an earlier message flag: give one of -m, -f, -s, -l and -n")
	}
	o.source = s
	return nil
}

// lookupFlag finds the flag named name that cmd has.
func lookupFlag(cmd, name string) *flagDef {
	for i := range clientFlags {
		f := &clientFlags[i]
		if !strings.Contains(f.cmds, cmd) {
			continue
		}
		for _, n := range f.names {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// parseClientArgs reads the arguments of tern pub or tern sub (cmd). On
// --help it prints the usage and returns nil, 0; on an error it says which
// flag is wrong and returns nil, 2.
func parseClientArgs(cmd string, args []string, stdout, stderr io.Writer) (*clientOpts, int) {
	o := &clientOpts{cmd: cmd, host: "127.0.0.1", version: codec.Version5, keepAlive: 60, repeat: 1}
	fail := func(format string, a ...any) (*clientOpts, int) {
		fmt.Fprintf(stderr, "tern %s: %s\n", cmd, fmt.Sprintf(format, a...))
		fmt.Fprintf(stderr, "(tern %s --help lists the flags)\n", cmd)
		return nil, exitUsage
	}
	for i := 0; i < len(args); i++ {
		name := args[i]
		if name == "--help" || name == "-help" {
			printClientUsage(stdout, cmd)
			return nil, exitOK
		}
		if len(name) < 2 || name[0] != '-' {
			return fail("unexpected argument %q: every value follows its flag", name)
		}
		var inline *string // the VALUE of --name=VALUE
		if eq := strings.IndexByte(name, '='); strings.HasPrefix(name, "--") && eq > 0 {
			v := name[eq+1:]
			name, inline = name[:eq], &v
		}
		f := lookupFlag(cmd, name)
		if f == nil {
			if lookupFlag(other(cmd), name) != nil {
				return fail("%s is a flag of tern %s, not tern %s", name, other(cmd), cmd)
			}
			return fail("unknown flag %s", name)
		}
		used := false
		value := func() (string, error) {
			if inline != nil && !used {
				used = true
				return *inline, nil
			}
			if i+1 >= len(args) {
				return "", errNeedsValue
			}
			i++
			return args[i], nil
		}
		if err := f.set(o, value); err != nil {
			return fail("%s %v", name, err)
		}
		if inline != nil && !used {
			return fail("%s takes no value", name)
		}
	}
	if err := o.check(); err != nil {
		return fail("%v", err)
	}
	return o, 0
}

func other(cmd string) string {
	if cmd == "pub" {
		return "sub"
	}
	return "pub"
}

// check validates what the flags say together and fills the defaults that
// depend on other flags.
func (o *clientOpts) check() error {
	if len(o.topics) == 0 {
		if o.cmd == "pub" {
			return errors.New("-t TOPIC is required")
		}
		return errors.New("at least one -t FILTER is required")
	}
	for _, t := range o.topics {
		if o.cmd == "pub" {
			if err := codec.ValidateTopicName([]byte(t)); err != nil {
				return fmt.Errorf("-t %q is not a topic name one can publish to: %v", t, err)
			}
		} else if err := codec.ValidateFilter([]byte(t), o.version); err != nil {
			return fmt.Errorf("-t %q is not a valid topic filter: %v", t, err)
		}
	}
	for _, t := range o.filterOut {
		if err := codec.ValidateFilter([]byte(t), codec.Version5); err != nil {
			return fmt.Errorf("-T %q is not a valid topic filter: %v", t, err)
		}
	}
	if o.cmd == "pub" {
		if o.source == srcNone {
			return errors.New("give the message with one of -m, -f, -s, -l and -n")
		}
		if o.source == srcLines && o.repeat > 1 {
			return errors.New("--repeat does not go with -l")
		}
	}
	if o.version != codec.Version5 {
		for c, p := range o.props {
			if p != nil {
				return fmt.Errorf("-D %s: properties need MQTT 5.0 (-V 5), not -V %s", propCmdNames[c], versionName(o.version))
			}
		}
		if o.sessionExpiry != nil {
			return fmt.Errorf("-x: a session expiry interval needs MQTT 5.0 (-V 5), not -V %s", versionName(o.version))
		}
	}
	if o.persistent && o.id == "" {
		return errors.New("-c needs a client identifier (-i): the session is found again by it")
	}
	if o.id == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.id = "tern-" + o.cmd + "-" + hex.EncodeToString(b[:])
	}
	if o.version == codec.Version5 && o.persistent && o.sessionExpiry == nil {
		never := uint32(math.MaxUint32)
		o.sessionExpiry = &never
	}
	if o.willTopic == "" && (o.willPayloadSet || o.willQoSSet || o.willRetain || o.props[propWill] != nil) {
		return errors.New("--will-payload, --will-qos, --will-retain and -D will need --will-topic")
	}
	if o.willTopic != "" {
		if err := codec.ValidateTopicName([]byte(o.willTopic)); err != nil {
			return fmt.Errorf("--will-topic %q is not a topic name: %v", o.willTopic, err)
		}
	}
	if (o.certFile == "") != (o.keyFile == "") {
		return errors.New("--cert and --key go together")
	}
	if o.port == 0 {
		o.port = 1883
		if o.tls {
			o.port = 8883
		}
	}
	if o.formatSet {
		if err := checkFormat(o.format); err != nil {
			return fmt.Errorf("-F %q: %v", o.format, err)
		}
	}
	return nil
}

func versionName(v byte) string {
	switch v {
	case codec.Version31:
		return "31"
	case codec.Version311:
		return "311"
	}
	return "5"
}

// printClientUsage prints the usage of tern pub or tern sub from the flag
// table, so that --help says what the parser does.
func printClientUsage(w io.Writer, cmd string) {
	if cmd == "pub" {
		fmt.Fprint(w, `usage: tern pub -t TOPIC (-m MESSAGE | -f FILE | -s | -l | -n) [flags]

Publishes a message, or one per line of standard input with -l, and exits.
The flags are mosquitto_pub's. Exit code 0: published (acknowledged at QoS 1
and 2); 1: connection refused or lost, or the broker refused the message;
2: bad flags; 27: -W timed out.
`)
	} else {
		fmt.Fprint(w, `usage: tern sub -t FILTER [-t FILTER...] [flags]

Subscribes and prints the messages received, one a line, until interrupted,
-C messages or -W seconds. The flags are mosquitto_sub's. Exit code 0: done;
1: connection refused or lost, or every subscription refused; 2: bad flags;
27: -W timed out.
`)
	}
	type line struct{ left, help string }
	var lines []line
	width := 0
	for _, f := range clientFlags {
		if f.names == nil {
			if strings.Contains(f.help, "("+other(cmd)+")") {
				continue
			}
			lines = append(lines, line{help: f.help})
			continue
		}
		if !strings.Contains(f.cmds, cmd) {
			continue
		}
		left := "  " + strings.Join(f.names, ", ")
		if f.arg != "" {
			left += " " + f.arg
		}
		width = max(width, len(left))
		lines = append(lines, line{left, f.help})
	}
	for _, l := range lines {
		if l.left == "" {
			fmt.Fprintf(w, "\n%s\n", l.help)
			continue
		}
		fmt.Fprintf(w, "%-*s  %s\n", width, l.left, wrap(l.help, width+2, 100))
	}
	fmt.Fprintf(w, "%-*s  %s\n", width, "  --help", "print this")

	fmt.Fprintf(w, "\n5.0 properties, -D CMD PROP VALUE (user-property takes KEY VALUE):\n")
	for _, c := range propCmds(cmd) {
		var names []string
		for name, spec := range propSpecs {
			if slices.Contains(strings.Fields(spec.cmds), c) && (c != "will" || slices.Contains(willSent, name)) {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		fmt.Fprintf(w, "%-*s  %s\n", width, "  "+c, wrap(strings.Join(names, ", "), width+2, 100))
	}
}

// wrap breaks s into lines of at most limit columns, indenting the
// continuation lines by indent.
func wrap(s string, indent, limit int) string {
	var b strings.Builder
	col := indent
	for i, word := range strings.Fields(s) {
		if i > 0 {
			if col+1+len(word) > limit {
				b.WriteString("\n" + strings.Repeat(" ", indent))
				col = indent
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(word)
		col += len(word)
	}
	return b.String()
}

package main

// The settings of tern serve come from four places: the defaults, a TOML
// file (--config or TERN_CONFIG), TERN_* environment variables and the
// command line; the command line wins over the environment, the environment
// over the file. There is no second list of settings to drift from the
// flags: a file key and an environment variable are a flag's name in another
// spelling, and every value goes through the flag's own Set.

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pelletier/go-toml/v2"
)

const (
	configFlag      = "config"       // may come from TERN_CONFIG, not from the file
	printConfigFlag = "print-config" // command line only
	envPrefix       = "TERN_"
)

// source says where a flag's effective value came from.
type source uint8

const (
	fromDefault source = iota
	fromFile
	fromEnv
	fromFlag
)

// serveConfig is what loadConfig found besides the flag values themselves.
type serveConfig struct {
	file       string            // the config file read; "" if none
	sources    map[string]source // by flag name; a flag not in it has its default
	unknownEnv []unknownVar      // TERN_ variables that name no flag, by name
}

// unknownVar is a TERN_ variable that names no flag, with a hint at the
// variable it may have meant.
type unknownVar struct{ name, hint string }

// sourceOf describes where flag name got its value, for --print-config.
func (c *serveConfig) sourceOf(name string) string {
	switch c.sources[name] {
	case fromFile:
		return "file"
	case fromEnv:
		return "env " + envName(name)
	case fromFlag:
		return "flag"
	}
	return "default"
}

// loadConfig sets the flags of fs, already parsed from the command line,
// that the command line did not set: from the environment if a TERN_
// variable names them, else from the config file. Values of the file and
// the environment are checked even where the command line overrides them,
// so a broken setting does not wait for the day the flag is dropped. Every
// problem is reported, one per line of the error.
//
// A flag set from the file or the environment counts as set for fs.Visit,
// as one from the command line: serve tells admin-listen = "" from no
// admin-listen at all that way.
//
// A TERN_ variable that names no flag is not an error: test suites set
// TERN_TEST_STORE, TERN_CRASH_* and others in the environment the broker
// inherits. They are returned in unknownEnv for serve to warn about.
func loadConfig(fs *flag.FlagSet, environ []string) (*serveConfig, error) {
	if !fs.Parsed() {
		panic("BUG: loadConfig before fs.Parse")
	}
	cfg := &serveConfig{sources: map[string]source{}}
	cli := map[string]string{}
	fs.Visit(func(f *flag.Flag) { cli[f.Name] = f.Value.String() })

	env := map[string]string{} // flag name → value
	unknown := map[string]bool{}
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) {
			continue
		}
		if f := envFlag(fs, name); f != nil {
			env[f.Name] = val
		} else if !unknown[name] {
			unknown[name] = true
			cfg.unknownEnv = append(cfg.unknownEnv, unknownVar{name, envHint(fs, name)})
		}
	}
	slices.SortFunc(cfg.unknownEnv, func(a, b unknownVar) int { return strings.Compare(a.name, b.name) })

	if v, ok := cli[configFlag]; ok {
		cfg.file = v
	} else {
		cfg.file = env[configFlag]
	}
	var errs []error
	if cfg.file != "" {
		vals, err := readConfigFile(fs, cfg.file)
		if err != nil {
			return nil, err
		}
		for _, name := range slices.Sorted(maps.Keys(vals)) {
			if err := fs.Set(name, vals[name]); err != nil {
				errs = append(errs, fmt.Errorf("config file %s: key %q: invalid %s value %q: %v",
					cfg.file, name, flagType(fs.Lookup(name)), vals[name], err))
				continue
			}
			cfg.sources[name] = fromFile
		}
	}
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if err := fs.Set(name, env[name]); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: invalid %s value for --%s: %v",
				envName(name), env[name], flagType(fs.Lookup(name)), name, err))
			continue
		}
		cfg.sources[name] = fromEnv
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// The file or the environment may have replaced a value the command
	// line gave: put the command line's back.
	for name, val := range cli {
		if err := fs.Set(name, val); err != nil {
			panic(fmt.Sprintf("BUG: --%s does not take back its own value %q: %v", name, val, err))
		}
		cfg.sources[name] = fromFlag
	}
	return cfg, nil
}

// configErr prints the error of loadConfig, a line per problem, and returns
// the exit code of a usage error.
func configErr(err error) int {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintln(os.Stderr, "tern serve:", line)
	}
	return 2
}

// warnUnknownEnv logs the TERN_ variables that name no flag, which are
// ignored; see loadConfig for why they are not an error.
func (c *serveConfig) warnUnknownEnv(logger *slog.Logger) {
	for _, v := range c.unknownEnv {
		logger.Warn("environment variable names no serve flag; ignored", "var", v.name, "hint", v.hint)
	}
}

// readConfigFile reads the TOML file at path and returns each key's value in
// the string form the flag of that name parses. Every key must be a flag
// of fs other than --config and --print-config, and every value of the
// flag's type; the error names each key that is not.
func readConfigFile(fs *flag.FlagSet, path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config file: %w", err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("config file %s:%d:%d: %v", path, row, col, de)
		}
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	vals := make(map[string]string, len(doc))
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(doc)) {
		v, err := configValue(fs, key, doc[key])
		if err != nil {
			errs = append(errs, fmt.Errorf("config file %s: %w", path, err))
			continue
		}
		vals[key] = v
	}
	return vals, errors.Join(errs...)
}

// configValue converts v, the TOML value of key, to the string the flag of
// that name parses, after checking its TOML type: strings for string and
// duration flags, integers for int and uint flags, booleans for bool flags,
// and integers or floats for float flags.
func configValue(fs *flag.FlagSet, key string, v any) (string, error) {
	if key == configFlag || key == printConfigFlag {
		return "", fmt.Errorf("key %q: --%s is not a setting of the file", key, key)
	}
	f := fs.Lookup(key)
	if f == nil {
		return "", fmt.Errorf("unknown key %q%s", key, didYouMean(fs, key, false))
	}
	typ := flagType(f)
	switch x := v.(type) {
	case string:
		if typ == "string" || typ == "duration" {
			return x, nil
		}
	case int64:
		if typ == "int" || typ == "uint" || typ == "float" {
			return strconv.FormatInt(x, 10), nil
		}
	case float64:
		if typ == "float" {
			return strconv.FormatFloat(x, 'g', -1, 64), nil
		}
	case bool:
		if typ == "bool" {
			return strconv.FormatBool(x), nil
		}
	}
	return "", fmt.Errorf("key %q: want %s, got %s", key, wantTOML[typ], describeTOML(v))
}

// wantTOML describes the TOML value each flag type takes.
var wantTOML = map[string]string{
	"string":   "a string",
	"duration": `a duration string such as "10s"`,
	"int":      "an integer",
	"uint":     "an integer",
	"float":    "a number",
	"bool":     "true or false",
}

func describeTOML(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case int64:
		return fmt.Sprintf("the integer %d", x)
	case float64:
		return fmt.Sprintf("the float %v", x)
	case bool:
		return fmt.Sprintf("%v", x)
	case map[string]any:
		return "a table"
	case []any:
		return "an array"
	}
	return "a date or time"
}

// flagType names the type of a serve flag's value, from its Get.
func flagType(f *flag.Flag) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		panic(fmt.Sprintf("BUG: serve flag --%s of type %T has no Get", f.Name, f.Value))
	}
	switch g.Get().(type) {
	case string:
		return "string"
	case bool:
		return "bool"
	case time.Duration:
		return "duration"
	case int, int64:
		return "int"
	case uint, uint64:
		return "uint"
	case float64:
		return "float"
	}
	panic(fmt.Sprintf("BUG: serve flag --%s of unsupported type %T", f.Name, g.Get()))
}

// envName is the environment variable of flag name: TERN_MAX_CONNECTIONS
// for max-connections.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// envFlag returns the flag environment variable name sets, or nil.
// --print-config has none: it is for the command line only.
func envFlag(fs *flag.FlagSet, name string) *flag.Flag {
	key := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, envPrefix), "_", "-"))
	f := fs.Lookup(key)
	if f == nil || key == printConfigFlag || envName(key) != name {
		return nil
	}
	return f
}

// didYouMean suggests the setting a mistyped key (or, with env, the flag
// name spelled from a mistyped variable) most likely meant: the same with
// '-' for '_', or the closest name within two edits.
func didYouMean(fs *flag.FlagSet, key string, env bool) string {
	best, bestDist := "", 3
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == printConfigFlag || (f.Name == configFlag && !env) {
			return
		}
		d := editDistance(strings.ReplaceAll(key, "_", "-"), f.Name)
		if d < bestDist {
			best, bestDist = f.Name, d
		}
	})
	switch {
	case best == "":
		return ""
	case env:
		return fmt.Sprintf(" (did you mean %s?)", envName(best))
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// envHint is the hint logged for name, a TERN_ variable that names no flag.
func envHint(fs *flag.FlagSet, name string) string {
	if name == envName(printConfigFlag) {
		return "--print-config is for the command line only"
	}
	if s := didYouMean(fs, strings.ToLower(strings.TrimPrefix(name, envPrefix)), true); s != "" {
		return strings.TrimSuffix(strings.TrimPrefix(s, " ("), ")")
	}
	return "tern serve --help lists the flags; the variable of --max-connections is TERN_MAX_CONNECTIONS"
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// printConfig writes the effective settings of fs as a TOML file that
// --config reads back: every flag but --config and --print-config, in the
// groups of docs/configuration.md, each with its source in a comment.
func printConfig(w io.Writer, fs *flag.FlagSet, cfg *serveConfig) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# tern serve: effective settings; the comment after each says where it came from")
	fmt.Fprintln(bw, "# (default, file, env VARIABLE or flag). Defaults are commented out: some depend on")
	fmt.Fprintln(bw, "# whether they are given at all (admin-listen) or on the machine (event-loops), so")
	fmt.Fprintln(bw, "# this output, used as a --config file, runs the broker the same way.")
	if cfg.file != "" {
		fmt.Fprintf(bw, "# Config file: %s\n", cfg.file)
	}
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	for _, g := range groupFlags(fs) {
		fmt.Fprintf(tw, "\n# %s\n", g.title)
		for _, f := range g.flags {
			src := cfg.sourceOf(f.Name)
			comment := ""
			if src == "default" {
				comment = "# "
			}
			fmt.Fprintf(tw, "%s%s = %s\t# %s\n", comment, f.Name, tomlValue(flagType(f), f.Value.String()), src)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// tomlValue writes s, a value of a flag of type typ in the flag's string
// form, as the TOML value the config file takes for it.
func tomlValue(typ, s string) string {
	switch typ {
	case "string", "duration":
		return tomlString(s)
	case "float":
		x, err := strconv.ParseFloat(s, 64)
		switch {
		case err != nil:
			return tomlString(s) // not reached: the flag printed it
		case math.IsInf(x, 1):
			return "inf"
		case math.IsInf(x, -1):
			return "-inf"
		case math.IsNaN(x):
			return "nan"
		}
		s = strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".e") {
			s += ".0" // a TOML float, not an integer
		}
	}
	return s
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// configGroups orders the serve settings into the groups of
// docs/configuration.md, docs/tern.example.toml and --print-config. A flag
// missing here is listed under "Other", and TestConfigGroups fails until
// it is placed.
var configGroups = []struct {
	title string
	flags []string
}{
	{"Listeners", []string{"listen", "tls-listen", "ws-listen", "wss-listen", "proxy-protocol",
		"event-loops", "connect-timeout"}},
	{"Limits", []string{"max-connections", "listener-max-connections", "max-connections-per-ip",
		"max-connect-rate-per-ip", "max-packet-size", "max-inflight", "max-queued-messages",
		"max-queued-bytes", "max-outbound-bytes", "slow-consumer-timeout", "max-session-expiry",
		"max-keepalive", "topic-alias-max", "max-subscriptions", "max-topic-length", "max-topic-levels",
		"max-publish-rate", "max-publish-bytes-rate", "retain-available", "max-retained-messages",
		"max-retained-bytes"}},
	{"Persistence", []string{"data-dir", "durability", "sync-interval", "min-free-bytes",
		"retained-cache-bytes"}},
	{"Security", []string{"allow-anonymous", "password-file", "acl-file", "jwt-key", "jwt-audience",
		"tls-cert", "tls-key", "tls-client-ca", "tls-client-auth", "tls-cert-as-username"}},
	{"Logging", []string{"log-level", "log-format"}},
	{"Admin and operations", []string{"admin-listen", "admin-token-file", "pprof-listen",
		"sys-interval", "shutdown-timeout"}},
}

type flagGroup struct {
	title string
	flags []*flag.Flag
}

// groupFlags returns the settings of fs, all flags but --config and
// --print-config, in configGroups order; flags of no group come last, under
// "Other", in name order.
func groupFlags(fs *flag.FlagSet) []flagGroup {
	placed := map[string]bool{configFlag: true, printConfigFlag: true}
	var out []flagGroup
	for _, g := range configGroups {
		fg := flagGroup{title: g.title}
		for _, name := range g.flags {
			if f := fs.Lookup(name); f != nil && !placed[name] {
				fg.flags = append(fg.flags, f)
				placed[name] = true
			}
		}
		out = append(out, fg)
	}
	other := flagGroup{title: "Other"}
	fs.VisitAll(func(f *flag.Flag) {
		if !placed[f.Name] {
			other.flags = append(other.flags, f)
		}
	})
	if len(other.flags) > 0 {
		out = append(out, other)
	}
	return out
}

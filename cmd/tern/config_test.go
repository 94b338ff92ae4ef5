package main

import (
	"bufio"
	"bytes"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-mqtt/tern/internal/testutil"
)

// writeConfig writes content to tern.toml in a new temporary directory and
// returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tern.toml")
	testutil.Require(t, os.WriteFile(path, []byte(content), 0o600), "write config")
	return path
}

// loadServe parses args into new serve flags and loads the environment of
// the process and the config file, as serve does.
func loadServe(t *testing.T, args ...string) (*flag.FlagSet, *serveSettings, *serveConfig, error) {
	t.Helper()
	fs, s := newServeFlags()
	fs.SetOutput(new(bytes.Buffer))
	testutil.Require(t, fs.Parse(args), "parse flags")
	cfg, err := loadConfig(fs, os.Environ())
	return fs, s, cfg, err
}

// TestConfigPrecedence: a flag wins over TERN_*, which wins over the file,
// which wins over the default, for each type of flag.
func TestConfigPrecedence(t *testing.T) {
	// file is a TOML value, env the variable's value, cli the flag's; ""
	// leaves each out.
	f := func(key, file, env, cli, want, wantSource string) {
		t.Helper()
		t.Run(key+"/"+wantSource, func(t *testing.T) {
			args := []string{"--config", writeConfig(t, "")}
			if file != "" {
				args[1] = writeConfig(t, key+" = "+file+"\n")
			}
			if env != "" {
				t.Setenv(envName(key), env)
			}
			if cli != "" {
				args = append(args, "--"+key+"="+cli)
			}
			fs, _, cfg, err := loadServe(t, args...)
			testutil.Require(t, err, "load")
			testutil.Equal(t, fs.Lookup(key).Value.String(), want, key)
			testutil.Equal(t, cfg.sourceOf(key), wantSource, "source of "+key)
		})
	}
	// string
	f("listen", "", "", "", "127.0.0.1:1883", "default")
	f("listen", `"0.0.0.0:1883"`, "", "", "0.0.0.0:1883", "file")
	f("listen", `"0.0.0.0:1883"`, "0.0.0.0:1884", "", "0.0.0.0:1884", "env TERN_LISTEN")
	f("listen", `"0.0.0.0:1883"`, "0.0.0.0:1884", "0.0.0.0:1885", "0.0.0.0:1885", "flag")
	// int and int64
	f("max-connections", "5000", "", "", "5000", "file")
	f("max-connections", "5_000", "6000", "", "6000", "env TERN_MAX_CONNECTIONS")
	f("max-connections", "5000", "6000", "7000", "7000", "flag")
	f("min-free-bytes", "-1", "", "", "-1", "file")
	f("min-free-bytes", "-1", "1024", "", "1024", "env TERN_MIN_FREE_BYTES")
	// uint
	f("max-keepalive", "60", "", "", "60", "file")
	f("max-keepalive", "60", "120", "", "120", "env TERN_MAX_KEEPALIVE")
	f("max-keepalive", "60", "120", "30", "30", "flag")
	// bool
	f("allow-anonymous", "true", "", "", "true", "file")
	f("allow-anonymous", "true", "false", "", "false", "env TERN_ALLOW_ANONYMOUS")
	f("allow-anonymous", "false", "false", "true", "true", "flag")
	f("retain-available", "false", "", "", "false", "file")
	// duration
	f("connect-timeout", `"3s"`, "", "", "3s", "file")
	f("connect-timeout", `"3s"`, "4s", "", "4s", "env TERN_CONNECT_TIMEOUT")
	f("connect-timeout", `"3s"`, "4s", "1m30s", "1m30s", "flag")
	f("sys-interval", `"-1s"`, "", "", "-1s", "file")
	// float, also from a TOML integer
	f("max-publish-rate", "2.5", "", "", "2.5", "file")
	f("max-publish-rate", "3", "", "", "3", "file")
	f("max-publish-rate", "2.5", "4.5", "", "4.5", "env TERN_MAX_PUBLISH_RATE")
	f("max-publish-rate", "2.5", "4.5", "100", "100", "flag")
}

// TestConfigSettings: values from the file and the environment reach
// serveSettings and the engine's options, and count as set for fs.Visit.
func TestConfigSettings(t *testing.T) {
	path := writeConfig(t, `
listen = "0.0.0.0:1"
sys-interval = "-1s"
max-session-expiry = 3600
admin-listen = ""
`)
	t.Setenv("TERN_DATA_DIR", "/var/lib/tern")
	t.Setenv("TERN_ADMIN_TOKEN_FILE", "") // set, to the empty string
	fs, s, cfg, err := loadServe(t, "--config", path, "--max-inflight", "10")
	testutil.Require(t, err, "load")
	testutil.Equal(t, s.o.Listen, "0.0.0.0:1", "Options.Listen")
	testutil.Equal(t, s.o.SysInterval, -time.Second, "Options.SysInterval")
	testutil.Equal(t, s.o.MaxInflight, 10, "Options.MaxInflight")
	testutil.Equal(t, s.maxSessionExp, uint(3600), "max-session-expiry")
	testutil.Equal(t, s.dataDir, "/var/lib/tern", "data-dir")
	testutil.Equal(t, s.configFile, path, "config")
	testutil.Equal(t, cfg.sourceOf("admin-token-file"), "env TERN_ADMIN_TOKEN_FILE", "an empty variable counts as set")
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range []string{"listen", "admin-listen", "data-dir", "max-inflight", "config"} {
		if !set[name] {
			t.Errorf("--%s not visited as set", name)
		}
	}
	if set["log-level"] {
		t.Error("--log-level visited as set, but nothing sets it")
	}
}

// TestConfigViaEnv: TERN_CONFIG names the file when --config does not;
// --config "" reads none.
func TestConfigViaEnv(t *testing.T) {
	path := writeConfig(t, "max-connections = 42\n")
	t.Setenv("TERN_CONFIG", path)
	fs, _, cfg, err := loadServe(t)
	testutil.Require(t, err, "load")
	testutil.Equal(t, fs.Lookup("max-connections").Value.String(), "42", "max-connections")
	testutil.Equal(t, cfg.file, path, "file read")

	fs, _, cfg, err = loadServe(t, "--config", "")
	testutil.Require(t, err, "load")
	testutil.Equal(t, fs.Lookup("max-connections").Value.String(), "1000000", "max-connections")
	testutil.Equal(t, cfg.file, "", "file read")

	t.Setenv("TERN_CONFIG", filepath.Join(t.TempDir(), "missing.toml"))
	if _, _, _, err := loadServe(t); err == nil || !strings.Contains(err.Error(), "cannot read config file") {
		t.Fatalf("missing TERN_CONFIG file: err %v", err)
	}
}

// TestConfigFileErrors: a key that is no setting, a value of the wrong type
// or a bad value is an error naming the key, also where a flag overrides it.
func TestConfigFileErrors(t *testing.T) {
	f := func(content string, want ...string) {
		t.Helper()
		path := writeConfig(t, content)
		_, _, _, err := loadServe(t, "--config", path, "--max-connections", "5")
		if err == nil {
			t.Fatalf("%q loaded without error", content)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%q: error %q does not say %q", content, err, w)
			}
		}
		if !strings.HasPrefix(err.Error(), "config file "+path) && !strings.HasPrefix(err.Error(), "cannot read") {
			t.Fatalf("%q: error %q does not name the file", content, err)
		}
	}
	f("foo = 1", `unknown key "foo"`)
	f("max-conections = 5", `unknown key "max-conections" (did you mean "max-connections"?)`)
	f("max_queued_messages = 5", `(did you mean "max-queued-messages"?)`)
	f("foo = 1\nbar = 2", `unknown key "foo"`, `unknown key "bar"`)
	f("[listeners]\nlisten = \"x\"", `unknown key "listeners"`)
	f(`max-connections = "abc"`, `key "max-connections": want an integer, got the string "abc"`)
	f(`max-inflight = 1.5`, `key "max-inflight": want an integer, got the float 1.5`)
	f(`allow-anonymous = "yes"`, `key "allow-anonymous": want true or false`)
	f(`connect-timeout = 10`, `key "connect-timeout": want a duration string such as "10s", got the integer 10`)
	f(`connect-timeout = "10x"`, `key "connect-timeout": invalid duration value "10x"`)
	f(`max-keepalive = -5`, `key "max-keepalive": invalid uint value "-5"`)
	f(`listen = ["a"]`, `key "listen": want a string, got an array`)
	f(`listen = { host = "a" }`, `key "listen": want a string, got a table`)
	f(`listen = 1979-05-27`, `key "listen": want a string, got a date or time`)
	f(`max-publish-rate = true`, `key "max-publish-rate": want a number`)
	f(`config = "other.toml"`, `key "config": --config is not a setting of the file`)
	f(`print-config = true`, `key "print-config"`)
	f("listen = \"a\"\nlisten = \"b\"", "tern.toml:2:")
	f("listen = ", "tern.toml:1:")
}

// TestConfigEnvErrors: a bad value in a TERN_ variable of a flag is an
// error naming the variable; serve exits 2.
func TestConfigEnvErrors(t *testing.T) {
	f := func(name, val, want string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, val)
			_, _, _, err := loadServe(t)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("%s=%s: err %v, want %q", name, val, err, want)
			}
			if rc := serve(nil); rc != 2 {
				t.Fatalf("serve with %s=%s = %d, want 2", name, val, rc)
			}
		})
	}
	f("TERN_MAX_CONNECTIONS", "abc", `TERN_MAX_CONNECTIONS="abc": invalid int value for --max-connections`)
	f("TERN_SYS_INTERVAL", "fast", `TERN_SYS_INTERVAL="fast": invalid duration value for --sys-interval`)
	f("TERN_ALLOW_ANONYMOUS", "yes please", `TERN_ALLOW_ANONYMOUS="yes please": invalid bool value`)
	f("TERN_MAX_KEEPALIVE", "-1", `TERN_MAX_KEEPALIVE="-1": invalid uint value`)
	// A flag does not hide a broken variable.
	t.Setenv("TERN_MAX_INFLIGHT", "many")
	if _, _, _, err := loadServe(t, "--max-inflight", "5"); err == nil {
		t.Fatal("TERN_MAX_INFLIGHT=many loaded without error under --max-inflight 5")
	}
}

// TestConfigUnknownEnv: TERN_ variables that name no flag are warned about,
// with a hint when one is close, and ignored.
func TestConfigUnknownEnv(t *testing.T) {
	t.Setenv("TERN_MAX_CONECTIONS", "5")
	t.Setenv("TERN_max_connections", "6")
	t.Setenv("TERN_TEST_STORE", "sync")
	t.Setenv("TERN_PRINT_CONFIG", "1")
	fs, s, cfg, err := loadServe(t)
	testutil.Require(t, err, "load")
	testutil.Equal(t, fs.Lookup("max-connections").Value.String(), "1000000", "max-connections")
	testutil.Equal(t, s.printConfig, false, "print-config from the environment")
	var log bytes.Buffer
	cfg.warnUnknownEnv(slog.New(slog.NewTextHandler(&log, nil)))
	f := func(name, hint string) {
		t.Helper()
		for line := range strings.SplitSeq(log.String(), "\n") {
			if strings.Contains(line, "level=WARN") && strings.Contains(line, "var="+name+" ") {
				if !strings.Contains(line, hint) {
					t.Fatalf("warning for %s without %q: %s", name, hint, line)
				}
				return
			}
		}
		t.Fatalf("no warning for %s in\n%s", name, log.String())
	}
	f("TERN_MAX_CONECTIONS", "did you mean TERN_MAX_CONNECTIONS?")
	f("TERN_max_connections", "did you mean TERN_MAX_CONNECTIONS?")
	f("TERN_TEST_STORE", "tern serve --help lists the flags")
	f("TERN_PRINT_CONFIG", "command line only")
}

// TestPrintConfig: --print-config writes every setting with its source, as
// a TOML file that loads back to the same settings.
func TestPrintConfig(t *testing.T) {
	path := writeConfig(t, "listen = \"0.0.0.0:1\"\nmax-connections = 5000\nmax-publish-rate = 3\n")
	t.Setenv("TERN_LOG_LEVEL", "debug")
	t.Setenv("TERN_MAX_CONNECTIONS", "6000")
	args := []string{"--config", path, "--max-inflight", "10", "--jwt-audience", `a "quoted" \ value`}
	fs, _, cfg, err := loadServe(t, args...)
	testutil.Require(t, err, "load")
	var out bytes.Buffer
	testutil.Require(t, printConfig(&out, fs, cfg), "print")

	lines := map[string]string{} // key → the rest of its line
	for line := range strings.SplitSeq(out.String(), "\n") {
		line = strings.TrimPrefix(line, "# ") // defaults are printed commented out
		if k, rest, ok := strings.Cut(line, " = "); ok && !strings.HasPrefix(k, "#") {
			lines[k] = strings.Join(strings.Fields(rest), " ")
		}
	}
	f := func(key, want string) {
		t.Helper()
		testutil.Equal(t, lines[key], want, "line of "+key)
	}
	f("listen", `"0.0.0.0:1" # file`)
	f("max-connections", "6000 # env TERN_MAX_CONNECTIONS")
	f("max-publish-rate", "3.0 # file")
	f("log-level", `"debug" # env TERN_LOG_LEVEL`)
	f("max-inflight", "10 # flag")
	f("jwt-audience", `"a \"quoted\" \\ value" # flag`)
	f("connect-timeout", `"10s" # default`)
	f("allow-anonymous", "false # default")
	f("max-retained-bytes", "0 # default")
	f("config", "")
	f("print-config", "")
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	testutil.Equal(t, len(lines), n-2, "settings printed")

	// Loaded back, in an environment without the variables, the output
	// gives the same settings.
	os.Unsetenv("TERN_LOG_LEVEL")
	os.Unsetenv("TERN_MAX_CONNECTIONS")
	fs2, _, _, err := loadServe(t, "--config", writeConfig(t, out.String()))
	testutil.Require(t, err, "load the printed config")
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != configFlag {
			testutil.Equal(t, fs2.Lookup(f.Name).Value.String(), f.Value.String(), "--"+f.Name+" loaded back")
		}
	})

	// serve --print-config prints it and exits 0 without starting.
	stdout := os.Stdout
	tmp, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	testutil.Require(t, err, "create")
	os.Stdout = tmp
	rc := serve(append(args, "--print-config"))
	os.Stdout = stdout
	testutil.Equal(t, rc, 0, "serve --print-config exit code")
	got, err := os.ReadFile(tmp.Name())
	testutil.Require(t, err, "read")
	if !bytes.Contains(got, []byte("max-inflight = 10")) {
		t.Fatalf("serve --print-config wrote\n%s", got)
	}
}

// TestConfigGroups: every setting is in exactly one group of configGroups,
// and every name there is a setting.
func TestConfigGroups(t *testing.T) {
	fs, _ := newServeFlags()
	seen := map[string]bool{}
	for _, g := range configGroups {
		for _, name := range g.flags {
			if fs.Lookup(name) == nil || name == configFlag || name == printConfigFlag {
				t.Errorf("group %s: %q is not a setting", g.title, name)
			}
			if seen[name] {
				t.Errorf("%q in two groups", name)
			}
			seen[name] = true
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !seen[f.Name] && f.Name != configFlag && f.Name != printConfigFlag {
			t.Errorf("--%s is in no group of configGroups (config.go): place it", f.Name)
		}
	})
}

// TestConfigReferenceUpToDate: docs/configuration.md is what gendocs
// writes from the flags now.
func TestCLIReferenceUpToDate(t *testing.T) {
	have, err := os.ReadFile(filepath.Join("..", "..", cliPath))
	testutil.Require(t, err, "read the CLI reference")
	if !bytes.Equal(have, cliReference()) {
		t.Fatalf("%s is stale: run `go run ./cmd/tern gendocs` (or `make docs`)", cliPath)
	}
}

func TestConfigReferenceUpToDate(t *testing.T) {
	have, err := os.ReadFile(filepath.Join("..", "..", referencePath))
	testutil.Require(t, err, "read the reference")
	if !bytes.Equal(have, configReference()) {
		t.Fatalf("%s is stale: run `go run ./cmd/tern gendocs` (or `make docs`)", referencePath)
	}
}

// TestExampleConfig: docs/tern.example.toml loads, each line commented out
// in it loads too, and it mentions every setting.
func TestExampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "tern.example.toml")
	_, _, _, err := loadServe(t, "--config", path)
	testutil.Require(t, err, "load the example")

	data, err := os.ReadFile(path)
	testutil.Require(t, err, "read the example")
	setting := regexp.MustCompile(`^#?\s*([a-z0-9-]+)\s*=`)
	mentioned := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		m := setting.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		mentioned[m[1]] = true
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "#"))
		if _, _, _, err := loadServe(t, "--config", writeConfig(t, line)); err != nil {
			t.Errorf("%s:%d: %v", path, n, err)
		}
	}
	fs, _ := newServeFlags()
	fs.VisitAll(func(f *flag.Flag) {
		if !mentioned[f.Name] && f.Name != configFlag && f.Name != printConfigFlag {
			t.Errorf("%s does not mention %s: add it, commented out, to its group", path, f.Name)
		}
	})
}

// TestServeConfigFile runs serve with its listener and anonymous access
// from a config file (and the log level from the environment): a client
// connects without a user name, and SIGTERM stops it.
func TestServeConfigFile(t *testing.T) {
	addr := "127.0.0.1:" + freePort(t)
	path := writeConfig(t, `
listen = "`+addr+`"
allow-anonymous = true
shutdown-timeout = "3s"
sys-interval = "-1s"
`)
	t.Setenv("TERN_LOG_LEVEL", "error")
	code := make(chan int, 1)
	go func() { code <- serve([]string{"--config", path}) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _, err := testutil.DialV5(addr, &paho.Connect{ClientID: "from-config", CleanStart: true})
		if err == nil {
			_ = c.Disconnect(&paho.Disconnect{})
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no anonymous connection to the listener of the config file: %v", err)
		}
		select {
		case rc := <-code:
			t.Fatalf("serve returned %d", rc)
		case <-time.After(20 * time.Millisecond):
		}
	}
	testutil.Require(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM), "kill")
	select {
	case rc := <-code:
		testutil.Equal(t, rc, 0, "exit code")
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return")
	}
}

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// cliResult is what one in-process run of the CLI printed and returned.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI executes `troupe args...` in-process, as main does: stderr holds
// what the command wrote there and the error main would print.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	r := runCLIContext(context.Background(), args...)
	return r.stdout, r.stderr, r.code
}

func runCLIContext(ctx context.Context, args ...string) cliResult {
	var out, errOut bytes.Buffer
	root := newRootCommand()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	code := execute(ctx, root, &errOut)
	return cliResult{out.String(), errOut.String(), code}
}

// startCLI runs `troupe args...` in the background until ctx ends; the
// channel delivers the result.
func startCLI(ctx context.Context, args ...string) <-chan cliResult {
	done := make(chan cliResult, 1)
	go func() { done <- runCLIContext(ctx, args...) }()
	return done
}

// TestUsageErrorsExit2: whatever cobra refuses before a command runs is a
// usage error, exit 2 as the docs promise, and a missing argument is named.
func TestUsageErrorsExit2(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string
	}{
		"unknown command":           {args: []string{"bogus"}, want: `unknown command "bogus" for "troupe"`},
		"unknown chain subcommand":  {args: []string{"chain", "bogus"}, want: `unknown command "bogus" for "troupe chain"`},
		"argument to version":       {args: []string{"version", "x"}, want: `unknown command "x" for "troupe version"`},
		"unknown flag":              {args: []string{"run", "--bogus", "a.wasm"}, want: "unknown flag: --bogus"},
		"bad flag value":            {args: []string{"run", "--tick", "soon", "a.wasm"}, want: `invalid argument "soon" for "--tick" flag`},
		"bad bool flag value":       {args: []string{"run", "--once=maybe", "a.wasm"}, want: `invalid argument "maybe" for "--once" flag`},
		"run without ACTOR":         {args: []string{"run"}, want: "missing ACTOR (usage: troupe run [flags] ACTOR...)"},
		"request without DATA":      {args: []string{"request", "a"}, want: "missing DATA (usage: troupe request [flags] NAME DATA)"},
		"send with three arguments": {args: []string{"send", "a", "b", "c"}, want: "want NAME and DATA, got 3 arguments"},
		"chain verify without PATH": {args: []string{"chain", "verify"}, want: "missing PATH (usage: troupe chain verify"},
		"chain show without PATH":   {args: []string{"chain", "show"}, want: "missing PATH (or NAMESPACE/NAME with --from-host)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, tc.args...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d with %q", code, stderr, exitUsage, tc.want)
			}
			if !strings.Contains(stderr, "--help' for usage.") {
				t.Errorf("no pointer to --help in %q", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q: a usage error prints nothing there", stdout)
			}
		})
	}
}

func TestHelpAndVersionExit0(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"chain"}, {"chain", "verify", "--help"}, {"version"}} {
		if stdout, stderr, code := runCLI(t, args...); code != 0 || stdout == "" {
			t.Errorf("troupe %q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

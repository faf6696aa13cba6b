package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/actorhost"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/testutil"
)

// localRun is a `troupe run` binary serving ACTORs on its own socket.
type localRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	socket string
	state  string
	stdout bytes.Buffer
	stderr bytes.Buffer
	waited chan error
}

// messengers writes copies of the messenger test actor named names into a
// new directory: actors of one run need names of their own.
func messengers(t *testing.T, names ...string) []string {
	t.Helper()
	dir := t.TempDir()
	wasm := mustRead(t, testModule("messenger"))
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(dir, n+".wasm")
		mustWrite(t, paths[i], wasm)
	}
	return paths
}

// startLocalRun starts `troupe run args...` with its own state root and
// socket and waits until the socket answers; the test's cleanup stops it.
func startLocalRun(t *testing.T, args ...string) *localRun {
	t.Helper()
	return startLocalRunIn(t, t.TempDir(), args...)
}

// startLocalRunIn is startLocalRun with the state root given: a second run
// on it resumes the first one's actors.
func startLocalRunIn(t *testing.T, state string, args ...string) *localRun {
	t.Helper()
	r := &localRun{t: t, state: state, waited: make(chan error, 1)}
	r.socket = filepath.Join(r.state, "troupe", "run.sock")
	r.cmd = exec.Command(troupeBinary(t), append([]string{"run"}, args...)...)
	r.cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+r.state)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.waited <- r.cmd.Wait() }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.waited
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := r.info(); err == nil {
			return r
		}
		select {
		case err := <-r.waited:
			r.waited <- err
			t.Fatalf("troupe run exited (%v) before serving:\n%s\n%s", err, r.stdout.String(), r.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("troupe run does not serve %s after 30s:\n%s", r.socket, r.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is an HTTP client of the run's socket.
func (r *localRun) client() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", r.socket)
	}}, Timeout: 5 * time.Second}
}

// info is the server's GET /v1/info.
func (r *localRun) info() (map[string]any, error) {
	resp, err := r.client().Get("http://troupe/v1/info")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// stop sends SIGTERM and returns the run's exit status.
func (r *localRun) stop() int {
	r.t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r.t.Fatal(err)
	}
	select {
	case err := <-r.waited:
		r.waited <- err
	case <-time.After(60 * time.Second):
		r.t.Fatalf("troupe run did not stop on SIGTERM:\n%s", r.stderr.String())
	}
	return r.cmd.ProcessState.ExitCode()
}

// chainDir is the default chain directory of the run's actor name.
func (r *localRun) chainDir(name string) string {
	return filepath.Join(r.state, "troupe", "actors", name)
}

// cli runs the troupe binary (request, send) against the run's socket.
func (r *localRun) cli(stdin []byte, args ...string) (stdout, stderr string, code int) {
	r.t.Helper()
	cmd := exec.Command(troupeBinary(r.t), append(args[:1:1], append([]string{"--socket", r.socket}, args[1:]...)...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		r.t.Fatal(err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// TestLocalRunMessages: actors of one run reach one another by name, and
// `troupe request`/`troupe send` reach them from outside: responses
// verbatim or as JSON, errors on stderr with exit 1, and both sides of a
// request in the chains.
func TestLocalRunMessages(t *testing.T) {
	paths := messengers(t, "a", "b")
	r := startLocalRun(t, append(paths, testModule("counter"))...)

	// The socket is the owner's only.
	for path, want := range map[string]os.FileMode{r.socket: 0o600, filepath.Dir(r.socket): 0o700} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, mode %v; want %v", path, err, fi.Mode().Perm(), want)
		}
	}
	info, err := r.info()
	if err != nil || info["pid"] != float64(r.cmd.Process.Pid) || info["protocol"] != "v1" {
		t.Errorf("/v1/info: %v %v; want pid %d, protocol v1", info, err, r.cmd.Process.Pid)
	}

	// Two sends to b, queued then handled in order.
	for range 2 {
		if out, errOut, code := r.cli(nil, "send", "b", "i"); code != 0 || out != "" || errOut != "" {
			t.Fatalf("send b i: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
	// a asks b for its counter (a<len><target><message>): actor to
	// actor by name. The sends may not be handled yet, but b's mailbox is
	// FIFO: the request comes after them.
	out, errOut, code := r.cli(nil, "request", "a", "a\x01bg")
	if code != 0 || len(out) != 4 || binary.LittleEndian.Uint32([]byte(out)) != 2 {
		t.Fatalf("request a (asking b): exit %d, stdout %q, stderr %q; want b's counter 2 as 4 bytes", code, out, errOut)
	}

	tests := map[string]struct {
		args       []string
		stdin      []byte
		code       int
		stdout     string
		stderrHas  string
		stdoutFile string
	}{
		"echo verbatim, no newline off a terminal": {args: []string{"request", "a", "ehello\n"}, stdout: "ehello\n"},
		"from stdin":               {args: []string{"request", "a", "-"}, stdin: []byte("e\x00\xff"), stdout: "e\x00\xff"},
		"from a file":              {args: []string{"request", "a", "@FILE"}, stdoutFile: "efrom a file", stdout: "efrom a file"},
		"json that parses":         {args: []string{"request", "--json", "a", `{"x": [1, 2]}`}, stdout: `{"x":[1,2]}` + "\n"},
		"json string":              {args: []string{"request", "--json", "a", `hi "there"`}, stdout: `"hi \"there\""` + "\n"},
		"json base64":              {args: []string{"request", "--json", "a", "-"}, stdin: []byte{0xff, 0xfe}, stdout: `{"base64":"//4="}` + "\n"},
		"by id":                    {args: []string{"request", "ID", "eid"}, stdout: "eid"},
		"missing actor":            {args: []string{"request", "nobody", "x"}, code: 1, stderrHas: `no such actor: "nobody"`},
		"send to a missing actor":  {args: []string{"send", "nobody", "x"}, code: 1, stderrHas: `no such actor: "nobody"`},
		"no handler":               {args: []string{"send", "counter", "x"}, code: 1, stderrHas: "actor counter does not handle messages"},
		"no request handler":       {args: []string{"request", "counter", "x"}, code: 1, stderrHas: "actor counter does not handle requests"},
		"no response":              {args: []string{"request", "a", "n"}, code: 1, stderrHas: "gave no response"},
		"cycle through the actors": {args: []string{"request", "a", "a\x01ba\x01ae"}, stdout: "request cycle: a → b → a"},
		"missing file":             {args: []string{"request", "a", "@/nonexistent"}, code: 2, stderrHas: "no such file"},
		"no server":                {args: []string{"request", "--socket", "NONE", "a", "x"}, code: 3, stderrHas: "no troupe run is listening on"},
		"no server for send":       {args: []string{"send", "--socket", "NONE", "a", "x"}, code: 3, stderrHas: "no troupe run is listening on"},
	}
	id, _ := info["actors"].([]any)[0].(map[string]any)["id"].(string)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			args := append([]string(nil), tc.args...)
			for i, a := range args {
				switch a {
				case "@FILE":
					p := filepath.Join(t.TempDir(), "data")
					mustWrite(t, p, []byte(tc.stdoutFile))
					args[i] = "@" + p
				case "ID":
					args[i] = id
				case "NONE":
					args[i] = filepath.Join(t.TempDir(), "none.sock")
				}
			}
			out, errOut, code := r.cli(tc.stdin, args...)
			if code != tc.code || out != tc.stdout || !strings.Contains(errOut, tc.stderrHas) {
				t.Fatalf("troupe %q: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q",
					args, code, out, errOut, tc.code, tc.stdout, tc.stderrHas)
			}
		})
	}
	// A caller's traceparent travels with its message into b's chain.
	const trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req, _ := http.NewRequest(http.MethodPost, "http://troupe/v1/actors/b/send", strings.NewReader("x"))
	req.Header.Set("traceparent", trace)
	resp, err := r.client().Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("send with a traceparent: %v %v", resp, err)
	}
	resp.Body.Close()

	// A handler's error fails its actor (as a failed tick would), and the
	// requester hears why; b then takes no more messages, a still does.
	if _, errOut, code := r.cli(nil, "request", "b", "E"); code != 1 || !strings.Contains(errOut, "failed handling the request (HandlerFailed): handler failed on purpose") {
		t.Errorf("request b E: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := r.cli(nil, "send", "b", "i"); code != 1 || !strings.Contains(errOut, "actor b is not running (Failed)") {
		t.Errorf("send to the failed b: exit %d, stderr %q", code, errOut)
	}
	if out, _, code := r.cli(nil, "request", "a", "estill"); code != 0 || out != "estill" {
		t.Errorf("a after b failed: exit %d, %q", code, out)
	}

	if code := r.stop(); code != 1 || !strings.Contains(r.stderr.String(), "actor b failed: HandlerFailed") {
		t.Errorf("troupe run: exit %d (want 1: b failed), stderr:\n%s", code, r.stderr.String())
	}
	if _, err := os.Lstat(r.socket); !os.IsNotExist(err) {
		t.Errorf("the socket is left behind: %v", err)
	}
	// Both sides of a's request to b are in the chains, tied by the
	// request id; the external sender is recorded as such.
	aEvents := chainEvents(t, r.chainDir("a"))
	bEvents := chainEvents(t, r.chainDir("b"))
	for _, k := range []chain.Kind{chain.KindRequestReceived, chain.KindRequestSent, chain.KindResponseReceived, chain.KindHandlerResult} {
		if countKind(aEvents, k) == 0 {
			t.Errorf("a's chain has no %s", k)
		}
	}
	for _, k := range []chain.Kind{chain.KindMessageReceived, chain.KindRequestReceived, chain.KindHandlerResult} {
		if countKind(bEvents, k) == 0 {
			t.Errorf("b's chain has no %s", k)
		}
	}
	if !chainHas(bEvents, chain.KindMessageReceived, `"external":"troupe-cli"`) {
		t.Errorf("b's MessageReceived does not record the external sender")
	}
	if !chainHas(bEvents, chain.KindMessageReceived, `"traceparent":"`+trace+`"`) {
		t.Errorf("b's chain does not record the caller's traceparent")
	}
	if !chainHas(bEvents, chain.KindRequestReceived, `"name":"a"`) {
		t.Errorf("b's RequestReceived does not record a as its sender")
	}
}

func chainHas(evs []chain.Event, kind chain.Kind, data string) bool {
	for _, ev := range evs {
		if ev.Kind == kind && strings.Contains(string(ev.Data), data) {
			return true
		}
	}
	return false
}

// TestLocalRunSocketOwnership: a second run on a live socket exits 2
// naming the first's pid and changes nothing; a stale socket (its run
// died) is replaced; a file that is not a socket is left alone.
func TestLocalRunSocketOwnership(t *testing.T) {
	paths := messengers(t, "a")
	r := startLocalRun(t, paths...)
	second := exec.Command(troupeBinary(t), "run", "--socket", r.socket, "--chain-dir", t.TempDir(), paths[0])
	out, err := second.CombinedOutput()
	want := "another troupe run (pid " + strconv.Itoa(r.cmd.Process.Pid) + ") is listening on " + r.socket
	if second.ProcessState.ExitCode() != exitUsage || !strings.Contains(string(out), want) {
		t.Fatalf("second run: %v, %s; want exit 2 with %q", err, out, want)
	}
	if _, err := r.info(); err != nil {
		t.Fatalf("the first run no longer serves: %v", err)
	}

	// kill -9 leaves the socket file behind, stale.
	if err := r.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-r.waited
	r.waited <- nil
	if fi, err := os.Lstat(r.socket); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("after kill -9 the socket should be left: %v", err)
	}
	third := exec.Command(troupeBinary(t), "run", "--socket", r.socket, paths[0])
	third.Env = append(os.Environ(), "XDG_STATE_HOME="+r.state)
	third.Stdout, third.Stderr = &r.stdout, &r.stderr
	r.cmd = third
	r.waited = make(chan error, 1)
	if err := third.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.waited <- third.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := r.info()
		if err == nil && info["pid"] == float64(third.Process.Pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stale socket was not replaced: %v\n%s", err, r.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, _, code := r.cli(nil, "request", "a", "eback"); code != 0 || out != "eback" {
		t.Errorf("request after the restart: exit %d, %q", code, out)
	}
	if code := r.stop(); code != 0 {
		t.Errorf("exit %d:\n%s", code, r.stderr.String())
	}

	notSocket := filepath.Join(t.TempDir(), "file")
	mustWrite(t, notSocket, []byte("keep me"))
	_, stderr, code := runCLI(t, "run", "--socket", notSocket, "--chain-dir", t.TempDir(), paths[0])
	if code != exitUsage || !strings.Contains(stderr, "exists and is not a socket") {
		t.Errorf("run on a regular file: exit %d, %q", code, stderr)
	}
	if got := string(mustRead(t, notSocket)); got != "keep me" {
		t.Errorf("the file became %q", got)
	}
}

// TestLocalRunSeveralOnce: with several ACTORs, --once runs every init in
// the order given, each with its own chain directory under the state
// root, and serves no socket; --name and --chain-dir are usage errors.
func TestLocalRunSeveralOnce(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	paths := messengers(t, "first", "second")
	stdout, stderr, code := runCLI(t, "run", "--once", paths[0], paths[1], testModule("counter"))
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var starts []int64
	for _, name := range []string{"first", "second", "counter"} {
		evs := chainEvents(t, filepath.Join(state, "troupe", "actors", name))
		if countKind(evs, chain.KindInitResult) != 1 || evs[len(evs)-1].Kind != chain.KindActorStop {
			t.Errorf("%s's chain: %d InitResults, last event %s", name, countKind(evs, chain.KindInitResult), evs[len(evs)-1].Kind)
		}
		starts = append(starts, evs[0].Time)
		if !strings.Contains(stdout, "actor   "+name+" ") {
			t.Errorf("no summary of %s in %q", name, stdout)
		}
	}
	for i := 1; i < len(starts); i++ {
		if starts[i] < starts[i-1] {
			t.Errorf("actor %d started before actor %d: %v", i, i-1, starts)
		}
	}
	if _, err := os.Lstat(filepath.Join(state, "troupe", "run.sock")); !os.IsNotExist(err) {
		t.Errorf("--once made a socket: %v", err)
	}

	for name, args := range map[string][]string{
		"--name":         {"--name", "x"},
		"--chain-dir":    {"--chain-dir", t.TempDir()},
		"duplicate name": {},
	} {
		t.Run(name, func(t *testing.T) {
			second := paths[1]
			want := args
			if name == "duplicate name" {
				second, want = paths[0], []string{"are both named \"first\""}
			}
			_, stderr, code := runCLI(t, append(append([]string{"run", "--once"}, args...), paths[0], second)...)
			if code != exitUsage || !strings.Contains(stderr, want[0]) {
				t.Errorf("exit %d, %q; want exit 2 naming %s", code, stderr, want[0])
			}
		})
	}
}

// TestDeliveryStatus pins the protocol's HTTP status and reason of each
// engine error (docs/troupe-run.md lists them).
func TestDeliveryStatus(t *testing.T) {
	tests := map[string]struct {
		err    error
		status int
		reason string
	}{
		"no such actor": {actorhost.ErrNoSuchActor, 404, "NoSuchActor"},
		"namespace":     {actorhost.ErrNamespaceNotAllowed, 403, "NamespaceNotAllowed"},
		"not running":   {actorhost.ErrActorNotRunning, 409, "ActorNotRunning"},
		"no handler":    {actorhost.ErrNoHandler, 409, "NoHandler"},
		"mailbox full":  {actorhost.ErrMailboxFull, 429, "MailboxFull"},
		"rate limited":  {actorhost.ErrRateLimited, 429, "RateLimited"},
		"too large":     {actorhost.ErrMessageTooLarge, 413, "MessageTooLarge"},
		"no response":   {actorhost.ErrNoResponse, 422, "NoResponse"},
		"handler":       {&actorhost.HandlerError{Target: "x", Reason: actorhost.ReasonTrap}, 422, "HandlerFailed"},
		"cycle":         {actorhost.ErrRequestCycle, 508, "RequestCycle"},
		"timeout":       {context.DeadlineExceeded, 504, "Timeout"},
		"other":         {errors.New("boom"), 500, "Internal"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			status, reason := deliveryStatus(tc.err)
			if status != tc.status || reason != tc.reason {
				t.Errorf("%v: %d %s; want %d %s", tc.err, status, reason, tc.status, tc.reason)
			}
		})
	}
}

// TestLocalRunTimeoutAndFullMailbox: a request to an actor that never
// answers times out at its requestTimeout (exit 1, "timed out"), and while
// the actor is stuck its bounded mailbox refuses what is over the bound at
// once. The actor comes from a YAML in a namespace: a caller outside still
// names it without one.
func TestLocalRunTimeoutAndFullMailbox(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "slow.wasm"), mustRead(t, testModule("messenger")))
	yaml := filepath.Join(dir, "slow.yaml")
	mustWrite(t, yaml, []byte(`apiVersion: theater.troupe.dev/v1alpha1
kind: Actor
metadata: {name: slow, namespace: dev}
spec:
  component: {path: slow.wasm}
  limits: {callTimeout: 20s, requestTimeout: 300ms, mailboxMessages: 2}
`))
	r := startLocalRun(t, yaml)
	// namespace/name reaches it too (escaped in the URL's path).
	if out, errOut, code := r.cli(nil, "request", "dev/slow", "ens"); code != 0 || out != "ens" {
		t.Errorf("request dev/slow: exit %d, %q, stderr %q", code, out, errOut)
	}
	start := time.Now()
	_, errOut, code := r.cli(nil, "request", "slow", "L") // loops until its 20s call deadline
	if code != 1 || !strings.Contains(errOut, "request to slow timed out") {
		t.Fatalf("request slow L: exit %d, stderr %q; want exit 1, timed out", code, errOut)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the request took %s: it waited for the call's deadline, not the request timeout", took)
	}
	for i := range 2 {
		if _, errOut, code := r.cli(nil, "send", "slow", "i"); code != 0 {
			t.Fatalf("send %d: exit %d, %q", i, code, errOut)
		}
	}
	if _, errOut, code := r.cli(nil, "send", "slow", "i"); code != 1 || !strings.Contains(errOut, "mailbox full: slow holds 2 messages") {
		t.Errorf("send over the bound: exit %d, stderr %q; want exit 1, mailbox full", code, errOut)
	}
	// The stuck call would hold a graceful stop for its grace period:
	// the cleanup kills the run instead.
}

// TestCounterPairExample runs the counter pair of examples in one run: a
// request from outside reaches the client, which asks the counter by
// name; both counts survive a restart of the run.
func TestCounterPairExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the examples with the Go toolchain")
	}
	root := t.TempDir()
	var yamls []string
	for _, name := range []string{"counter", "counter-client"} {
		yaml := filepath.Join(root, "examples", name, "actor.yaml")
		mustWrite(t, yaml, mustRead(t, filepath.Join("..", "..", "examples", name, "actor.yaml")))
		mustWrite(t, filepath.Join(root, "bin", "examples", name+".wasm"), testutil.BuildExample(t, name))
		yamls = append(yamls, yaml)
	}
	r := startLocalRun(t, yamls...)
	for _, want := range []string{`{"asked":1,"counter":{"count":2}}`, `{"asked":2,"counter":{"count":5}}`} {
		n := "2"
		if strings.Contains(want, `"asked":2`) {
			n = "3"
		}
		if out, errOut, code := r.cli(nil, "request", "counter-client", "add "+n); code != 0 || out != want {
			t.Fatalf("request counter-client 'add %s': exit %d, %q, stderr %q; want %s", n, code, out, errOut, want)
		}
	}
	if out, _, code := r.cli(nil, "request", "counter", "bogus"); code != 0 || !strings.Contains(out, `unknown command \"bogus\"`) {
		t.Errorf("a bad request: exit %d, %q; want the counter's error in its answer", code, out)
	}
	if code := r.stop(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, r.stderr.String())
	}

	// The next run resumes both states.
	r2 := startLocalRunIn(t, r.state, yamls...)
	if out, errOut, code := r2.cli(nil, "request", "counter-client", "get"); code != 0 || out != `{"asked":3,"counter":{"count":5}}` {
		t.Errorf("after the restart: exit %d, %q, stderr %q", code, out, errOut)
	}
	if code := r2.stop(); code != 0 {
		t.Errorf("exit %d:\n%s", code, r2.stderr.String())
	}
}

// TestLocalRunCrossNamespace: `troupe run` applies acceptMessagesFrom to
// its actors' YAML namespaces: an actor of another namespace is refused
// unless listed (a selector matches nothing locally); the CLI, an external
// caller, always gets through.
func TestLocalRunCrossNamespace(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "m.wasm"), mustRead(t, testModule("messenger")))
	actor := func(name, ns, extra string) string {
		p := filepath.Join(dir, name+".yaml")
		mustWrite(t, p, []byte("apiVersion: theater.troupe.dev/v1alpha1\nkind: Actor\nmetadata: {name: "+name+", namespace: "+ns+"}\nspec:\n  component: {path: m.wasm}\n"+extra))
		return p
	}
	r := startLocalRun(t,
		actor("closed", "t", ""),
		actor("open", "t", "  acceptMessagesFrom: {namespaces: [a], namespaceSelector: {}}\n"),
		actor("froma", "a", ""),
		actor("fromb", "b", ""),
	)
	ask := func(target string) string { return "a" + string(rune(len(target))) + target + "g" }
	tests := []struct {
		sender, target string
		refused        bool
	}{
		{"froma", "t/closed", true},
		{"froma", "t/open", false},
		{"fromb", "t/open", true}, // {} selects nothing without namespace labels
		{"open", "closed", false}, // same namespace, bare name
	}
	for _, tc := range tests {
		out, errOut, code := r.cli(nil, "request", tc.sender, ask(tc.target))
		if code != 0 {
			t.Fatalf("request %s: exit %d, %s", tc.sender, code, errOut)
		}
		if got := strings.Contains(out, "namespace not allowed"); got != tc.refused {
			t.Errorf("%s asking %s answered %q; refused %v, want %v", tc.sender, tc.target, out, got, tc.refused)
		}
	}
	if _, errOut, code := r.cli(nil, "request", "t/closed", "g"); code != 0 {
		t.Errorf("the CLI asking t/closed: exit %d, %s", code, errOut)
	}
}

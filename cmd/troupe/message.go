package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/troupe-dev/troupe/internal/limits"
	"github.com/troupe-dev/troupe/internal/textutil"
)

func init() {
	subcommands = append(subcommands, newRequestCommand, newSendCommand)
}

// exitNoServer: no `troupe run` listens on the socket.
const exitNoServer = 3

// messageOptions are the flags of `troupe request` and `troupe send`.
type messageOptions struct {
	socket  string
	json    bool
	cluster clusterFlags
}

// deliver reads DATA and delivers it to NAME's op: on the local socket,
// or in cluster mode through the API server.
func (o *messageOptions) deliver(cmd *cobra.Command, op, name, data string) ([]byte, error) {
	if name == "" {
		return nil, usageError("NAME is empty")
	}
	if !o.cluster.on(cmd) {
		return deliver(cmd.Context(), o.socket, op, name, data, cmd.InOrStdin())
	}
	if o.socket != "" {
		return nil, usageError("--socket is for a local troupe run: it does not go with --kubeconfig, --context, -n or kubectl troupe")
	}
	msg, err := readData(data, cmd.InOrStdin())
	if err != nil {
		return nil, err
	}
	return deliverCluster(cmd.Context(), &o.cluster, op, name, msg)
}

// clusterHelp is the cluster mode's part of request's and send's help.
const clusterHelp = `

Cluster mode: with --kubeconfig, --context or -n/--namespace, or when run as
the kubectl plugin ` + "`kubectl troupe`" + ` (ln -s troupe kubectl-troupe, on the
PATH), NAME is an Actor of the cluster, in -n's namespace or else the
context's, reached through the API server's aggregated API
gateway.troupe.dev with your own kubeconfig credentials: you need the verb
(send or request) on actors.theater.troupe.dev in that namespace. The
output and exit statuses are local mode's, plus: 3 when the API server
cannot be reached or serves no troupe gateway, 4 when it does not accept
your credentials (401), 5 when RBAC denies the verb (403).`

func newRequestCommand() *cobra.Command {
	o := &messageOptions{}
	cmd := &cobra.Command{
		Use:   "request [flags] NAME DATA",
		Short: "Ask an actor of a running `troupe run` and print its response",
		Long: `Send DATA to the handle-request of the actor NAME (its name, or its id) in
the ` + "`troupe run`" + ` listening on the socket, and write the response to stdout
verbatim (with a newline only when stdout is a terminal). DATA is the
message itself, @FILE for a file's bytes, or - for stdin.

With --json the response is printed as JSON when it parses as JSON, else
as a JSON string, or as {"base64": "..."} when it is not UTF-8.

Exit status: 0 with the response, 1 when the actor answered with an error,
does not exist, is not running or its mailbox is full (the message on
stderr), 2 for a usage error, 3 when no troupe run listens on the socket.` + clusterHelp,
		Example: `  troupe request counter get
  troupe request --json flags @request.json
  echo -n ping | troupe request echo -
  troupe request -n default counter get
  kubectl troupe request counter get`,
		Args: twoArgs("NAME", "DATA"),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := o.deliver(cmd, "request", args[0], args[1])
			if err != nil {
				return err
			}
			return printResponse(cmd.OutOrStdout(), resp, o.json)
		},
	}
	cmd.Flags().StringVar(&o.socket, "socket", "", "the socket of the troupe run (default ${XDG_STATE_HOME:-~/.local/state}/troupe/run.sock)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the response as JSON (a JSON string, or {\"base64\": ...}, when it is not JSON)")
	o.cluster.add(cmd)
	o.cluster.plugin = pluginMode
	cmd.ValidArgsFunction = completeActorName(&o.socket, &o.cluster)
	return cmd
}

func newSendCommand() *cobra.Command {
	o := &messageOptions{}
	cmd := &cobra.Command{
		Use:   "send [flags] NAME DATA",
		Short: "Send a message to an actor of a running `troupe run`",
		Long: `Queue DATA in the mailbox of the actor NAME (its name, or its id) in the
` + "`troupe run`" + ` listening on the socket, for its handle-send. Prints nothing and
exits 0 once the message is queued (not handled). DATA is the message
itself, @FILE for a file's bytes, or - for stdin.

Exit status: 0 once queued, 1 when the actor does not exist, is not
running, handles no messages or its mailbox is full (the message on
stderr), 2 for a usage error, 3 when no troupe run listens on the socket.` + clusterHelp,
		Example: `  troupe send counter increment
  troupe send logger @event.json
  troupe send --context prod -n shop orders @order.json`,
		Args: twoArgs("NAME", "DATA"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := o.deliver(cmd, "send", args[0], args[1])
			return err
		},
	}
	cmd.Flags().StringVar(&o.socket, "socket", "", "the socket of the troupe run (default ${XDG_STATE_HOME:-~/.local/state}/troupe/run.sock)")
	o.cluster.add(cmd)
	o.cluster.plugin = pluginMode
	cmd.ValidArgsFunction = completeActorName(&o.socket, &o.cluster)
	return cmd
}

// twoArgs accepts exactly the two positional arguments named.
func twoArgs(first, second string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch len(args) {
		case 2:
			return nil
		case 0:
			return fmt.Errorf("missing %s and %s (usage: %s)", first, second, cmd.UseLine())
		case 1:
			return fmt.Errorf("missing %s (usage: %s)", second, cmd.UseLine())
		default:
			return fmt.Errorf("want %s and %s, got %d arguments (quote DATA if it has spaces)", first, second, len(args))
		}
	}
}

// readData is DATA: the argument itself, @FILE's bytes, or stdin's for
// "-", at most one byte over the largest message any actor takes, so the
// server's refusal says how large is too large.
func readData(data string, stdin io.Reader) ([]byte, error) {
	var r io.Reader
	switch {
	case data == "-":
		r = stdin
	case strings.HasPrefix(data, "@"):
		f, err := os.Open(data[1:])
		if err != nil {
			return nil, usageError("DATA: %w", err)
		}
		defer f.Close()
		r = f
	default:
		return []byte(data), nil
	}
	b, err := io.ReadAll(io.LimitReader(r, limits.MaxMessageBytesLimit+1))
	if err != nil {
		return nil, usageError("reading DATA from %s: %w", data, err)
	}
	return b, nil
}

// errNoServer marks a failure to reach the socket at all.
var errNoServer = errors.New("no troupe run is listening")

// deliver posts DATA to NAME's op ("request" or "send") on the socket and
// returns the response's body; an error carries the exit status.
func deliver(ctx context.Context, socketFlag, op, name, data string, stdin io.Reader) ([]byte, error) {
	if name == "" {
		return nil, usageError("NAME is empty")
	}
	path, err := socketPath(socketFlag)
	if err != nil {
		return nil, err
	}
	msg, err := readData(data, stdin)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "unix", path)
			if err != nil {
				return nil, fmt.Errorf("%w on %s (start one with `troupe run ACTOR...`, or pass --socket): %w", errNoServer, path, err)
			}
			return c, nil
		},
		DisableKeepAlives: true,
	}}
	u := "http://troupe/v1/actors/" + url.PathEscape(name) + "/" + op
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(msg))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, name, err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, errNoServer) {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, &exitError{code: exitNoServer, err: err}
		}
		return nil, fmt.Errorf("%s %s: %w", op, name, err)
	}
	defer resp.Body.Close()
	// A response is bounded by its actor's message bound; this bounds
	// what a server that is not troupe run's could make us hold.
	body, err := io.ReadAll(io.LimitReader(resp.Body, limits.MaxMessageBytesLimit+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the response: %w", op, name, err)
	}
	if resp.StatusCode/100 == 2 {
		return body, nil
	}
	var e errorBody
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return nil, fmt.Errorf("%s %s: the server answered %s: %s", op, name, resp.Status, textutil.Truncate(strings.TrimSpace(string(body)), 256))
	}
	// The server's message is the engine's: it names the actor and why.
	return nil, errors.New(e.Error)
}

// printResponse writes a request's response: verbatim (plus a newline on a
// terminal, so the prompt starts on its own line), or as JSON.
func printResponse(w io.Writer, resp []byte, asJSON bool) error {
	if asJSON {
		out, err := responseJSON(resp)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", out)
		return err
	}
	if _, err := w.Write(resp); err != nil {
		return err
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		_, err := io.WriteString(w, "\n")
		return err
	}
	return nil
}

// responseJSON is resp as JSON: itself (compacted) when it is JSON, else a
// JSON string when it is UTF-8, else {"base64": ...}. JSON with invalid
// UTF-8 in a string (which encoding/json tolerates) is not passed through:
// the output is always valid UTF-8.
func responseJSON(resp []byte) ([]byte, error) {
	if utf8.Valid(resp) && json.Valid(resp) {
		var b bytes.Buffer
		if err := json.Compact(&b, resp); err == nil {
			return b.Bytes(), nil
		}
	}
	if utf8.Valid(resp) {
		return json.Marshal(string(resp))
	}
	return json.Marshal(map[string]string{"base64": base64.StdEncoding.EncodeToString(resp)})
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	"github.com/troupe-dev/troupe/internal/msgwire"
	"github.com/troupe-dev/troupe/internal/textutil"
)

func init() { subcommands = append(subcommands, newLogsCommand) }

// logsOptions are the flags of `troupe logs`.
type logsOptions struct {
	cluster clusterFlags
	follow  bool
	since   time.Duration
	tail    int
	level   string
	output  string
}

// logsBackoff is the first and the longest wait between two connections
// of -f (tests shorten it).
var logsBackoff = [2]time.Duration{250 * time.Millisecond, 5 * time.Second}

func newLogsCommand() *cobra.Command {
	o := &logsOptions{}
	cmd := &cobra.Command{
		Use:   "logs [flags] [NAMESPACE/]NAME",
		Short: "Print the log records of an Actor of the cluster",
		Long: `Print what the Actor NAME logged (its log calls and its stdout and stderr),
read from its state chain on the host that runs it (the records that
host no longer holds, from before a move or pruned from the node, from the
archive when the installation has one), through the API
server's aggregated API gateway.troupe.dev with your own kubeconfig
credentials: you need the verb logs on actors.theater.troupe.dev in the
Actor's namespace (the chart's viewer and editor roles have it). The
values of the Actor's Secrets are redacted in the chain, so they never
show here.

Each line is TIME LEVEL MESSAGE; -o json prints the records as JSON lines
(seq, time, level, message, actorID, epoch). With -f, the command follows
the Actor until interrupted, across host restarts and moves: when the
stream ends it reconnects after the last record it printed, so no line is
printed twice.

Exit statuses: 1 when the Actor's logs cannot be read (no such Actor, not
running), 2 for a usage error, 3 when the API server cannot be reached or
serves no troupe gateway, 4 when it does not accept your credentials
(401), 5 when RBAC denies the verb logs (403).`,
		Example: `  troupe logs shop/orders
  troupe logs orders -n shop -f --tail 20 --level warn
  kubectl troupe logs orders --since 10m -o json`,
		Args: exactlyOne("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd, args[0]) },
	}
	o.cluster.add(cmd)
	o.cluster.plugin = pluginMode
	f := cmd.Flags()
	f.BoolVarP(&o.follow, "follow", "f", false, "keep printing new records as the Actor logs them, reconnecting as needed, until interrupted")
	f.DurationVar(&o.since, "since", 0, "only records logged within this duration before now, e.g. 10m or 2h")
	f.IntVar(&o.tail, "tail", -1, fmt.Sprintf("only the last N records (0 to %d; -1: all); with -f, 0 prints only new ones", msgwire.MaxLogTail))
	f.StringVar(&o.level, "level", "", "only records at this level or above: debug, info, warn or error")
	f.StringVarP(&o.output, "output", "o", "", "output format: text (the default) or json")
	// NAME: the Actors of -n's namespace (logs is cluster mode only).
	cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
		defer cancel()
		return filterPrefix(clusterNames(ctx, &o.cluster, "actors"), prefix), cobra.ShellCompDirectiveNoFileComp
	}
	_ = cmd.RegisterFlagCompletionFunc("level", cobra.FixedCompletions([]cobra.Completion{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]cobra.Completion{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// target splits [NAMESPACE/]NAME and checks it against -n.
func (o *logsOptions) target(arg string) (ns, name string, err error) {
	name = arg
	if before, after, ok := strings.Cut(arg, "/"); ok {
		ns, name = before, after
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			return "", "", usageError("namespace %q: %s", textutil.Truncate(ns, 256), msgs[0])
		}
		if o.cluster.namespace != "" && o.cluster.namespace != ns {
			return "", "", usageError("%s names namespace %s, and -n another (%s): give one", textutil.Truncate(arg, 256), ns, o.cluster.namespace)
		}
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return "", "", usageError("NAME %q is not an Actor's name: %s", textutil.Truncate(name, 256), msgs[0])
	}
	return ns, name, nil
}

func (o *logsOptions) query() (msgwire.LogQuery, error) {
	q := msgwire.LogQuery{Follow: o.follow, Level: o.level}
	if o.level != "" {
		if _, ok := msgwire.LogLevelRank(o.level); !ok {
			return q, usageError("--level %q: use debug, info, warn or error", textutil.Truncate(o.level, 64))
		}
	}
	switch {
	case o.tail > msgwire.MaxLogTail || o.tail < -1:
		return q, usageError("--tail %d: use 0 to %d, or -1 for all", o.tail, msgwire.MaxLogTail)
	case o.tail >= 0:
		q.Tail, q.HasTail = o.tail, true
	}
	if o.since < 0 {
		return q, usageError("--since %s: use a positive duration", o.since)
	}
	if o.since > 0 {
		q.Since = time.Now().Add(-o.since)
	}
	if o.output != "" && o.output != "text" && o.output != "json" {
		return q, usageError("-o %q: use text or json", textutil.Truncate(o.output, 64))
	}
	return q, nil
}

func (o *logsOptions) run(cmd *cobra.Command, arg string) error {
	ns, name, err := o.target(arg)
	if err != nil {
		return err
	}
	q, err := o.query()
	if err != nil {
		return err
	}
	if ns != "" {
		o.cluster.namespace = ns
	}
	cfg, ns, err := o.cluster.restConfig()
	if err != nil {
		return err
	}
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return usageError("namespace %q: %s", textutil.Truncate(ns, 256), msgs[0])
	}
	u, err := clusterURL(cfg, ns, name, msgwire.OpLog)
	if err != nil {
		return err
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return usageError("the kubeconfig's credentials: %w", err)
	}
	f := &logFollower{
		client: client, url: u, target: ns + "/" + name, apiServer: cfg.Host,
		out: bufio.NewWriter(cmd.OutOrStdout()), stderr: cmd.ErrOrStderr(), asJSON: o.output == "json",
	}
	ctx := cmd.Context()
	first, longest := logsBackoff[0], logsBackoff[1]
	backoff := first
	for {
		printed, err := f.stream(ctx, q)
		if ctx.Err() != nil {
			return nil // interrupted
		}
		if !o.follow {
			return err
		}
		var re *retriable
		if err != nil && !errors.As(err, &re) {
			return err
		}
		if printed {
			backoff = first
		}
		why := "the stream ended"
		if err != nil {
			why = err.Error()
		}
		fmt.Fprintf(f.stderr, "troupe: %s; reconnecting in %s\n", escapeTerminal(why), backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, longest)
	}
}

// retriable is a failure -f waits out: the gateway or the API server
// unreachable, the Actor between hosts, a stream cut.
type retriable struct{ err error }

func (r *retriable) Error() string { return r.err.Error() }
func (r *retriable) Unwrap() error { return r.err }

// logFollower reads an Actor's log streams one after another, printing
// each record once.
type logFollower struct {
	client            *http.Client
	url               string
	target, apiServer string
	out               *bufio.Writer
	stderr            io.Writer
	asJSON            bool
	// last is the seq of the last record printed, or of the last chain
	// event a host said it read (has set): a new stream starts after it.
	last uint64
	has  bool
}

// stream reads one log stream with q (after the last record printed, once
// there is one) and prints its records; printed says whether it printed
// any. A stream that ended or broke is a *retriable error or nil.
func (f *logFollower) stream(ctx context.Context, q msgwire.LogQuery) (printed bool, err error) {
	if f.has {
		// Resumed: the tail was shown, and since still holds.
		q.After, q.HasAfter, q.Tail, q.HasTail = f.last, true, 0, false
	}
	u := f.url
	if qs := q.Values().Encode(); qs != "" {
		u += "?" + qs
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, fmt.Errorf("logs %s: %w", f.target, err)
	}
	req.Header.Set("Accept", "application/x-ndjson, application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return false, &retriable{&exitError{code: exitNoServer, err: fmt.Errorf("logs %s: reaching the API server %s: %w", f.target, f.apiServer, err)}}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		err := clusterError("logs", f.target, resp.StatusCode, body)
		switch resp.StatusCode {
		case http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusGatewayTimeout:
			// Moving, NotHere, the gateway or the API server busy.
			return false, &retriable{err}
		}
		return false, err
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	defer func() { _ = f.out.Flush() }()
	for {
		line, err := msgwire.ReadLogLine(br, nil)
		if errors.Is(err, io.EOF) {
			return printed, nil
		}
		if err != nil {
			if errors.Is(err, msgwire.ErrLogLineTooLong) {
				return printed, fmt.Errorf("logs %s: %w", f.target, err)
			}
			return printed, &retriable{&exitError{code: exitNoServer, err: fmt.Errorf("logs %s: the stream broke: %w", f.target, err)}}
		}
		var rec msgwire.LogRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			return printed, fmt.Errorf("logs %s: a line of the stream does not parse: %w", f.target, err)
		}
		switch {
		case rec.StreamError != "":
			return printed, fmt.Errorf("logs %s: the host could not read the chain: %s", f.target, rec.StreamError)
		case rec.EndOfStream != "":
			// Nothing printed is lost after the last event the host
			// read: the next stream starts there.
			if rec.Seq > f.last || !f.has {
				f.last, f.has = rec.Seq, true
			}
			if err := f.out.Flush(); err != nil {
				return printed, err
			}
			return printed, &retriable{errors.New(escapeTerminal(rec.EndOfStream))}
		case f.has && rec.Seq <= f.last:
			continue // already printed (never, from an honest host)
		}
		if err := f.print(&rec); err != nil {
			return printed, err
		}
		printed, f.last, f.has = true, rec.Seq, true
		if br.Buffered() == 0 {
			if err := f.out.Flush(); err != nil {
				return printed, err
			}
		}
	}
}

// print writes rec: TIME LEVEL MESSAGE, or its JSON; either is safe on a
// terminal whatever the actor logged.
func (f *logFollower) print(rec *msgwire.LogRecord) error {
	if f.asJSON {
		_, err := f.out.Write(append(terminalJSON(rec), '\n'))
		return err
	}
	msg := rec.Message
	if rec.Error != "" {
		msg = "(refused log call: " + rec.Error + ")"
	}
	if rec.Truncated {
		msg += " [truncated]"
	}
	_, err := fmt.Fprintf(f.out, "%s %-5s %s\n", rec.Time.UTC().Format("2006-01-02T15:04:05.000Z"),
		escapeTerminal(strings.ToUpper(textutil.Truncate(rec.Level, 16))), escapeTerminal(msg))
	return err
}

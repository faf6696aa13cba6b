package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/chain/theater"
)

func init() { subcommands = append(subcommands, newChainCommand) }

// Chain formats `troupe chain` reads.
const (
	formatAuto    = "auto"
	formatTroupe  = "troupe"
	formatTheater = "theater-json"
)

// Exit statuses of `troupe chain`: 1 means the chain is damaged, 2 that it
// could not be read at all (or is not a chain, or the usage was wrong).
const (
	exitBroken     = exitFailed
	exitUnreadable = exitUsage
)

func newChainCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chain",
		Short: "Verify and show actor state chains",
		Long: `Verify and show actor state chains.

PATH is a chain file or an actor directory holding ` + chain.FileName + `. Besides
Troupe's own format (docs/chain-format.md), chains exported by Theater as a
JSON array are read too; --format auto (the default) tells them apart.

Exit status: 0 intact, 1 damaged (the first bad event's index and the reason
are printed), 2 unreadable, not a chain, or a usage error.`,
		// A runnable group, so that `troupe chain typo` is an unknown
		// command (exit 2) rather than this help and exit 0.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newChainVerifyCommand(), newChainShowCommand())
	return cmd
}

func addFormatFlag(cmd *cobra.Command, format *string) {
	cmd.Flags().StringVar(format, "format", formatAuto, "chain format: auto, troupe or theater-json")
}

func newChainVerifyCommand() *cobra.Command {
	var format string
	var ao archiveOptions
	cmd := &cobra.Command{
		Use:   "verify [--format auto|troupe|theater-json] PATH | verify [--expect-head HEAD] s3://BUCKET/PREFIX/{NAMESPACE/NAME,id/ACTORID}",
		Short: "Recompute every hash and parent link of a chain",
		Long: `Recompute every hash and parent link of a chain.

PATH is a chain file or an actor directory (whose rotated chain files,
chain.log.<length>, are checked too: each intact, each linked to the next,
chain.log to the last). An s3:// argument reads the
actor's whole history from the installation's archive (docs/archive.md):
every segment against its manifest, every record's hash and link across
epochs, hosts and nodes, and every archived state against the digest the
chain records. s3://BUCKET/PREFIX/NAMESPACE/NAME goes through the archive's
name index (a name that had several ids reads the newest; --actor-id picks
another), s3://BUCKET/PREFIX/id/ACTORID names the id. The store's endpoint
and region come from --endpoint and --region or AWS_ENDPOINT_URL(_S3) and
AWS_REGION; credentials from the AWS environment variables, the shared
credentials file or the instance's role. With --expect-head, or with
--kubeconfig or --context (the Actor's status.chain.head, when the Actor
still has the archived id), it checks where the history ends and says
plainly when the archive is behind.

Exit status: 0 intact, 1 damaged (or not ending at the expected head), 2
unreadable, not a chain, or a usage error.`,
		Args: exactlyOne("PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.HasPrefix(args[0], archiveScheme) {
				return verifyArchive(cmd.Context(), cmd.OutOrStdout(), args[0], &ao)
			}
			if err := archiveOnly(cmd); err != nil {
				return err
			}
			src, err := openChain(args[0], format)
			if err != nil {
				return err
			}
			defer src.Close()
			out := cmd.OutOrStdout()
			if src.format == formatTheater {
				rep, err := theater.Verify(bufio.NewReader(src.f))
				if err != nil {
					return &exitError{code: exitUnreadable, err: fmt.Errorf("verifying %s: %w", src.path, err)}
				}
				if !rep.OK() {
					fmt.Fprintf(out, "%s: damaged: %d valid events before event %d\n", src.path, rep.Events, rep.FirstBad)
					return &exitError{code: exitBroken, err: fmt.Errorf("%s: event %d: %s", src.path, rep.FirstBad, rep.Reason)}
				}
				fmt.Fprintf(out, "%s: intact (theater-json): %d events, head %s\n", src.path, rep.Events, hex.EncodeToString(rep.Head))
				return nil
			}
			rep, err := chain.VerifyFile(src.path)
			if err != nil {
				return &exitError{code: exitUnreadable, err: err}
			}
			if !rep.OK() {
				fmt.Fprintf(out, "%s: damaged: %d valid events before event %d (offset %d), head %s, length %d\n",
					src.path, rep.Events, rep.FirstBad, rep.Offset, rep.Head, rep.Length)
				return &exitError{code: exitBroken, err: fmt.Errorf("%s: event %d (offset %d): %s", src.path, rep.FirstBad, rep.Offset, rep.Reason)}
			}
			note := ""
			if rep.Writing {
				note = " (a writer is appending; its last record is still in flight)"
			}
			fmt.Fprintf(out, "%s: intact: %d events, head %s, length %d%s\n", src.path, rep.Events, rep.Head, rep.Length, note)
			if src.path != args[0] {
				// An actor directory: the chain's older events may be in
				// rotated files beside chain.log.
				return verifyRotated(out, filepath.Dir(src.path))
			}
			return nil
		},
	}
	addFormatFlag(cmd, &format)
	ao.bind(cmd, true)
	return cmd
}

func newChainShowCommand() *cobra.Command {
	var format, fromHost string
	var asJSON bool
	var ao archiveOptions
	cmd := &cobra.Command{
		Use:   "show [--json] [--format auto|troupe|theater-json] PATH | show [--json] --from-host URL NAMESPACE/NAME | show [--json] s3://BUCKET/PREFIX/{NAMESPACE/NAME,id/ACTORID}",
		Short: "Print a chain's events as a table, or as JSON lines with --json",
		Long: `Print a chain's events as a table, or as JSON lines with --json.

PATH is a chain file or an actor directory. With --from-host, the chain is
read from a host pod's chain endpoint instead, e.g. through
  kubectl -n troupe-system port-forward pod/troupe-host-xyz 8082
  troupe chain show --from-host http://localhost:8082 default/hello
and every event is re-hashed and its link checked as it arrives. An s3://
argument reads the actor's whole history from the archive, as
'troupe chain verify' does (see its help), each segment checked against
its manifest before its events are printed.`,
		Args: exactlyOne("PATH (or NAMESPACE/NAME with --from-host)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.HasPrefix(args[0], archiveScheme) {
				if fromHost != "" {
					return usageError("--from-host and an s3:// argument name two sources")
				}
				w := bufio.NewWriter(cmd.OutOrStdout())
				defer w.Flush()
				return showArchive(cmd.Context(), w, cmd.ErrOrStderr(), asJSON, args[0], &ao)
			}
			if err := archiveOnly(cmd); err != nil {
				return err
			}
			if fromHost != "" {
				w := bufio.NewWriter(cmd.OutOrStdout())
				defer w.Flush()
				return showFromHost(cmd.Context(), fromHost, args[0], newPrinter(w, asJSON))
			}
			src, err := openChain(args[0], format)
			if err != nil {
				return err
			}
			defer src.Close()
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			p := newPrinter(w, asJSON)
			if src.format == formatTheater {
				return showTheater(src, p)
			}
			err = chain.ReadFile(src.path, func(e chain.Event) error { return p.troupe(&e) })
			if ferr := p.flush(); err == nil {
				err = ferr
			}
			if errors.Is(err, chain.ErrCorrupt) {
				return &exitError{code: exitBroken, err: err}
			}
			if err != nil {
				return &exitError{code: exitUnreadable, err: err}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines: seq, hash, parent, kind, op, time, data")
	cmd.Flags().StringVar(&fromHost, "from-host", "", "read the chain of actor NAMESPACE/NAME from a host's chain endpoint at URL (e.g. a kubectl port-forward)")
	addFormatFlag(cmd, &format)
	ao.bind(cmd, false)
	return cmd
}

func showTheater(src *chainSource, p *printer) error {
	rep, err := theater.VerifyEach(bufio.NewReader(src.f), func(i int, e theater.Event) error { return p.theater(i, &e) })
	if ferr := p.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return &exitError{code: exitUnreadable, err: fmt.Errorf("reading %s: %w", src.path, err)}
	}
	if !rep.OK() {
		return &exitError{code: exitBroken, err: fmt.Errorf("%s: event %d: %s", src.path, rep.FirstBad, rep.Reason)}
	}
	return nil
}

type chainSource struct {
	path, format string
	f            *os.File
}

func (s *chainSource) Close() error { return s.f.Close() }

// openChain resolves PATH (a file, or a directory holding chain.log) and
// decides its format from its first bytes: a Theater export is a JSON
// array, so it starts with '[' after optional whitespace; a Troupe chain
// starts with its header. A file that is neither (or not the one --format
// names) is not a chain: a usage error, not damage.
func openChain(path, format string) (*chainSource, error) {
	switch format {
	case formatAuto, formatTroupe, formatTheater:
	default:
		return nil, &exitError{code: exitUnreadable, err: fmt.Errorf("unknown --format %q: want auto, troupe or theater-json", format)}
	}
	p, err := chain.ResolvePath(path)
	if err != nil {
		return nil, &exitError{code: exitUnreadable, err: fmt.Errorf("reading chain: %w", err)}
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) && p != path {
		return nil, &exitError{code: exitUnreadable, err: fmt.Errorf("%s is not an actor directory: it holds no %s", path, chain.FileName)}
	}
	if err != nil {
		return nil, &exitError{code: exitUnreadable, err: fmt.Errorf("reading chain: %w", err)}
	}
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, &exitError{code: exitUnreadable, err: fmt.Errorf("reading chain %s: %w", p, err)}
	}
	head = head[:n]
	theaterJSON := strings.HasPrefix(strings.TrimLeft(string(head), " \t\r\n"), "[")
	troupe := troupeHeader(head)
	var notChain string
	switch {
	case n == 0:
		notChain = "it is empty"
	case format == formatAuto && theaterJSON:
		format = formatTheater
	case format == formatAuto && troupe:
		format = formatTroupe
	case format == formatAuto:
		notChain = fmt.Sprintf("it starts with %q, neither a Troupe chain's header %q nor a Theater export's JSON array", head[:min(n, len(chain.Magic))], chain.Magic)
	case format == formatTroupe && !troupe:
		notChain = fmt.Sprintf("--format troupe: it starts with %q, not the header %q", head[:min(n, len(chain.Magic))], chain.Magic)
	case format == formatTheater && !theaterJSON:
		notChain = "--format theater-json: it is not a JSON array"
	}
	if notChain != "" {
		f.Close()
		return nil, &exitError{code: exitUnreadable, err: fmt.Errorf("%s is not a state chain: %s", p, notChain)}
	}
	return &chainSource{path: p, format: format, f: f}, nil
}

// troupeHeader reports whether head starts like a Troupe chain: with the
// header, a part of it (a file torn while it was created), another
// version's header, or the header with at most two bytes damaged. The
// chain's reader then says what is wrong; anything else is not a chain.
func troupeHeader(head []byte) bool {
	const family = "troupe-chain-"
	magic := []byte(chain.Magic)
	if len(head) < len(magic) {
		return bytes.HasPrefix(magic, head)
	}
	if bytes.HasPrefix(head, []byte(family)) {
		return true
	}
	differ := 0
	for i := range magic {
		if head[i] != magic[i] {
			differ++
		}
	}
	return differ <= 2
}

// printer writes events as a table or as JSON lines.
type printer struct {
	w      *bufio.Writer
	tw     *tabwriter.Writer
	json   bool
	buf    []byte
	header bool
}

func newPrinter(w *bufio.Writer, asJSON bool) *printer {
	return &printer{w: w, json: asJSON, tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
}

func (p *printer) flush() error {
	if !p.json {
		if err := p.tw.Flush(); err != nil {
			return err
		}
	}
	return p.w.Flush()
}

func (p *printer) troupe(e *chain.Event) error {
	if p.json {
		p.buf = append(chain.AppendJSON(p.buf[:0], e), '\n')
		_, err := p.w.Write(p.buf)
		return err
	}
	if !p.header {
		p.header = true
		fmt.Fprintln(p.tw, "SEQ\tTIME\tKIND\tOP\tHASH\tDATA")
	}
	t := time.Unix(0, e.Time).UTC().Format("2006-01-02T15:04:05.000Z")
	data, ok := messageSummary(e.Kind, e.Data)
	if !ok {
		data = summary(e.Data)
	}
	_, err := fmt.Fprintf(p.tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, t, clean(string(e.Kind), 24), clean(e.Op, 24), e.Hash.Short(), data)
	return err
}

// messageEvent is the data of the message kinds, both sides
// (docs/chain-format.md).
type messageEvent struct {
	ID, To, ToID, Error, TraceParent string
	Sha256, StateSha256              string
	From                             struct{ ActorID, Name, Namespace, External string }
	Bytes, ToBytes, StateBytes       *int
	ResponseBytes                    *int
	OK, HasResponse, StateChanged    *bool
}

// messageSummary renders a message event as one line that reads as a
// conversation: the direction and the peer, the message's short id (the
// same on both chains), its size and the outcome. ok is false for other
// kinds, or data that is not what the kind says.
func messageSummary(kind chain.Kind, data []byte) (line string, ok bool) {
	switch kind {
	case chain.KindMessageSent, chain.KindRequestSent, chain.KindResponseReceived,
		chain.KindMessageReceived, chain.KindRequestReceived, chain.KindHandlerResult:
	default:
		return "", false
	}
	var m messageEvent
	if json.Unmarshal(data, &m) != nil {
		return "", false
	}
	var b strings.Builder
	id := m.ID
	if len(id) > 8 {
		id = id[:8]
	}
	peer := clean(m.To, 40)
	if m.ToBytes != nil {
		peer = fmt.Sprintf("<a %d-byte target>", *m.ToBytes)
	}
	from := clean(m.From.Name, 40)
	switch {
	case m.From.External != "":
		from = "external " + clean(m.From.External, 40)
	case m.From.Namespace != "":
		from = clean(m.From.Namespace, 40) + "/" + from
	case from == "":
		from = clean(m.From.ActorID, 40)
	}
	size := func(n *int) string {
		if n == nil {
			return "?"
		}
		return fmt.Sprintf("%dB", *n)
	}
	outcome := func() {
		switch {
		case m.OK == nil:
		case *m.OK:
			b.WriteString(" ok")
		default:
			b.WriteString(" error: " + clean(m.Error, 80))
		}
	}
	switch kind {
	case chain.KindMessageSent:
		fmt.Fprintf(&b, "send → %s %s [%s]", peer, size(m.Bytes), id)
		outcome()
	case chain.KindRequestSent:
		fmt.Fprintf(&b, "request → %s %s [%s]", peer, size(m.Bytes), id)
	case chain.KindResponseReceived:
		fmt.Fprintf(&b, "response ← %s", peer)
		if m.OK != nil && *m.OK {
			b.WriteString(" " + size(m.Bytes))
		}
		fmt.Fprintf(&b, " [%s]", id)
		outcome()
	case chain.KindMessageReceived:
		fmt.Fprintf(&b, "send ← %s %s [%s]", from, size(m.Bytes), id)
	case chain.KindRequestReceived:
		fmt.Fprintf(&b, "request ← %s %s [%s]", from, size(m.Bytes), id)
	case chain.KindHandlerResult:
		fmt.Fprintf(&b, "[%s]", id)
		outcome()
		if m.OK != nil && *m.OK {
			if m.StateChanged != nil && *m.StateChanged {
				fmt.Fprintf(&b, ", new state %s", size(m.StateBytes))
			}
			switch {
			case m.HasResponse == nil:
			case *m.HasResponse:
				b.WriteString(", response " + size(m.ResponseBytes))
			default:
				b.WriteString(", no response")
			}
		}
	}
	return b.String(), true
}

func (p *printer) theater(i int, e *theater.Event) error {
	if p.json {
		b := append(p.buf[:0], `{"seq":`...)
		b = fmt.Appendf(b, "%d", i)
		b = append(b, `,"hash":"`...)
		b = hex.AppendEncode(b, e.Hash)
		b = append(b, `","parent":`...)
		if e.ParentHash == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '"')
			b = hex.AppendEncode(b, e.ParentHash)
			b = append(b, '"')
		}
		b = append(b, `,"kind":`...)
		b = chain.AppendJSONString(b, e.EventType)
		b = append(b, `,"data":`...)
		if chain.JSONShaped(e.Data) {
			b = append(b, e.Data...)
		} else {
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, e.Data)
			b = append(b, `","data_encoding":"base64"`...)
		}
		p.buf = append(b, '}', '\n')
		_, err := p.w.Write(p.buf)
		return err
	}
	if !p.header {
		p.header = true
		fmt.Fprintln(p.tw, "INDEX\tEVENT TYPE\tHASH\tDATA")
	}
	h := hex.EncodeToString(e.Hash)
	if len(h) > 12 {
		h = h[:12]
	}
	_, err := fmt.Fprintf(p.tw, "%d\t%s\t%s\t%s\n", i, clean(e.EventType, 32), h, summary(e.Data))
	return err
}

// summary is a one-line, terminal-safe preview of event data: the JSON or
// text itself when printable, else its size and first bytes in hex.
func summary(data []byte) string {
	const width = 60
	switch {
	case len(data) == 0:
		return "-"
	case utf8.Valid(data) && printable(string(data)):
		return clean(string(data), width)
	default:
		n := min(len(data), 8)
		s := fmt.Sprintf("<%d bytes: %x", len(data), data[:n])
		if n < len(data) {
			s += "…"
		}
		return s + ">"
	}
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) && r != '\n' && r != '\t' {
			return false
		}
	}
	return true
}

// clean makes guest-controlled text safe for a terminal and a table cell:
// control and other non-printing characters are escaped, tabs and newlines
// too, and the result is cut to width runes.
func clean(s string, width int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == width {
			b.WriteString("…")
			break
		}
		switch {
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			q := fmt.Sprintf("%+q", r) // '\n', '\x01', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
		n++
	}
	return b.String()
}

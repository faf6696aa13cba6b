package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/troupe-dev/troupe/api/v1alpha1"
	"github.com/troupe-dev/troupe/internal/archive"
	"github.com/troupe-dev/troupe/internal/chain"
	"github.com/troupe-dev/troupe/internal/kubescheme"
	"github.com/troupe-dev/troupe/internal/objstore"
)

// archiveScheme starts the arguments `troupe chain` reads from the archive.
const archiveScheme = "s3://"

// archiveTimeout bounds a whole read of an archived history.
const archiveTimeout = 30 * time.Minute

// archiveRef is what an s3:// argument names: an actor's history by its
// name, through the archive's name index (s3://BUCKET/PREFIX/NAMESPACE/NAME),
// or by its id (s3://BUCKET/PREFIX/id/ACTORID).
type archiveRef struct {
	arg             string
	bucket, prefix  string
	namespace, name string
	actorID         string
}

// parseArchiveRef reads an s3:// argument. The prefix may have any number
// of segments: the last two name the actor. ".../id/X" is always the id
// form (an Actor in a namespace called "id" is named by its id instead).
func parseArchiveRef(arg string) (archiveRef, error) {
	ref := archiveRef{arg: arg}
	rest, ok := strings.CutPrefix(arg, archiveScheme)
	if !ok {
		return ref, fmt.Errorf("%q: want s3://BUCKET/PREFIX/NAMESPACE/NAME or s3://BUCKET/PREFIX/id/ACTORID", arg)
	}
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	if len(segs) < 3 || segs[0] == "" {
		return ref, fmt.Errorf("%q: want s3://BUCKET/PREFIX/NAMESPACE/NAME or s3://BUCKET/PREFIX/id/ACTORID (the prefix may be empty)", arg)
	}
	n := len(segs)
	ref.bucket, ref.prefix = segs[0], strings.Join(segs[1:n-2], "/")
	if segs[n-2] == "id" {
		ref.actorID = segs[n-1]
		if err := archive.ValidActorID(ref.actorID); err != nil {
			return ref, fmt.Errorf("%q: %w", arg, err)
		}
		return ref, nil
	}
	ref.namespace, ref.name = segs[n-2], segs[n-1]
	return ref, nil
}

// archiveOptions are the flags of `troupe chain verify|show` that apply
// to an s3:// argument.
type archiveOptions struct {
	store      objstore.Flags
	actorID    string
	expectHead string
	kubeconfig string
	context    string
}

// archiveOnly reports the archive's flags set on a command whose argument
// is not an s3:// one: a usage error rather than flags silently ignored.
func archiveOnly(cmd *cobra.Command) error {
	for _, name := range []string{"endpoint", "region", "path-style", "insecure", "actor-id", "expect-head", "kubeconfig", "context"} {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			return &exitError{code: exitUnreadable, err: fmt.Errorf("--%s applies to an archive (s3://…) only", name)}
		}
	}
	return nil
}

// bind declares the flags; verify adds those that check the end.
func (o *archiveOptions) bind(cmd *cobra.Command, verify bool) {
	fs := flag.NewFlagSet(cmd.Name(), flag.ContinueOnError)
	o.store.Bind(fs, "", false)
	cmd.Flags().AddGoFlagSet(fs)
	cmd.Flags().StringVar(&o.actorID, "actor-id", "", "with s3://…/NAMESPACE/NAME: read this id's history, not the newest Actor's of that name")
	if verify {
		cmd.Flags().StringVar(&o.expectHead, "expect-head", "", "with s3://: check that the archived history ends at this head (64 hex digits)")
		cmd.Flags().StringVar(&o.kubeconfig, "kubeconfig", "", "with s3://…/NAMESPACE/NAME: check that the history ends at the head in the Actor's status, read with this kubeconfig")
		cmd.Flags().StringVar(&o.context, "context", "", "with s3://: the kubeconfig context to read the Actor's status with (implies reading it)")
	}
}

// archiveHistory is the history an s3:// argument resolved to.
type archiveHistory struct {
	ref archiveRef
	st  objstore.Store
	id  string
	// notes are said before the result (other ids of the name).
	notes []string
}

// openArchive connects to the store the argument names and resolves the
// actor's id. Every failure here is exit 2: nothing was verified.
func openArchive(ctx context.Context, arg string, o *archiveOptions, getenv func(string) string) (*archiveHistory, error) {
	ref, err := parseArchiveRef(arg)
	if err != nil {
		return nil, &exitError{code: exitUnreadable, err: err}
	}
	f := o.store
	f.Bucket, f.Prefix = ref.bucket, ref.prefix
	st, _, err := f.Open(getenv)
	if err != nil {
		return nil, &exitError{code: exitUnreadable, err: err}
	}
	h := &archiveHistory{ref: ref, st: st, id: ref.actorID}
	if ref.actorID != "" {
		if o.actorID != "" && o.actorID != ref.actorID {
			return nil, &exitError{code: exitUnreadable, err: fmt.Errorf("--actor-id %s and %s name two actors", o.actorID, arg)}
		}
		return h, nil
	}
	entries, err := archive.LookupName(ctx, st, ref.namespace, ref.name)
	if err != nil {
		return nil, &exitError{code: exitUnreadable, err: err}
	}
	if len(entries) == 0 {
		return nil, &exitError{code: exitUnreadable, err: fmt.Errorf("%s: the archive's index has no actor %s/%s", arg, ref.namespace, ref.name)}
	}
	pick := 0
	if o.actorID != "" {
		pick = -1
		for i, e := range entries {
			if e.ActorID == o.actorID {
				pick = i
			}
		}
		if pick < 0 {
			return nil, &exitError{code: exitUnreadable, err: fmt.Errorf("%s: %s/%s never had the id %s (it had %s)", arg, ref.namespace, ref.name, o.actorID, describeIDs(entries))}
		}
	}
	h.id = entries[pick].ActorID
	if len(entries) > 1 {
		h.notes = append(h.notes, fmt.Sprintf("%s/%s had %d ids, newest first: %s; reading %s (choose another with --actor-id)",
			ref.namespace, ref.name, len(entries), describeIDs(entries), h.id))
	}
	return h, nil
}

func describeIDs(entries []archive.IndexEntry) string {
	parts := make([]string, len(entries))
	for i, e := range entries {
		parts[i] = fmt.Sprintf("%s (created %s)", e.ActorID, e.Created.UTC().Format(time.RFC3339))
	}
	return strings.Join(parts, ", ")
}

// archiveError turns an error of the archive's reader into the local
// mode's exit statuses: damage is 1, anything else (no history, the store
// unreachable or refusing) 2.
func archiveError(h *archiveHistory, err error) error {
	var e *exitError
	switch {
	case errors.As(err, &e):
		return err
	case errors.Is(err, archive.ErrBroken):
		return &exitError{code: exitBroken, err: fmt.Errorf("%s (actor id %s): %w", h.ref.arg, h.id, err)}
	default:
		return &exitError{code: exitUnreadable, err: fmt.Errorf("reading %s (actor id %s): %w", h.ref.arg, h.id, err)}
	}
}

// expectation is the head the history should end at, and where it comes
// from.
type expectation struct {
	head   chain.Hash
	length uint64 // 0: unknown
	from   string
	// fromStatus: the Actor's status, which lags the archive by up to a
	// status interval, so a history past it is no failure.
	fromStatus bool
}

// expected reads what the history should end at: --expect-head, or the
// Actor's status when a kubeconfig or context is given and the Actor is
// still the one archived. nil: nothing to check (notes say why).
func (o *archiveOptions) expected(ctx context.Context, h *archiveHistory) (*expectation, error) {
	if o.expectHead != "" {
		head, err := chain.ParseHash(o.expectHead)
		if err != nil {
			return nil, &exitError{code: exitUnreadable, err: fmt.Errorf("--expect-head: %w", err)}
		}
		return &expectation{head: head, from: "--expect-head"}, nil
	}
	if o.kubeconfig == "" && o.context == "" {
		return nil, nil
	}
	if h.ref.name == "" {
		return nil, &exitError{code: exitUnreadable, err: errors.New("reading the Actor's status needs s3://BUCKET/PREFIX/NAMESPACE/NAME, not an id")}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.context}).ClientConfig()
	if err != nil {
		return nil, &exitError{code: exitUnreadable, err: fmt.Errorf("reading the kubeconfig: %w", err)}
	}
	scheme, err := kubescheme.New()
	if err != nil {
		return nil, &exitError{code: exitUnreadable, err: err}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, &exitError{code: exitUnreadable, err: fmt.Errorf("connecting to the cluster: %w", err)}
	}
	var a v1alpha1.Actor
	err = c.Get(ctx, types.NamespacedName{Namespace: h.ref.namespace, Name: h.ref.name}, &a)
	switch {
	case apierrors.IsNotFound(err):
		h.notes = append(h.notes, fmt.Sprintf("Actor %s/%s does not exist (any more): no status head to compare the end with", h.ref.namespace, h.ref.name))
		return nil, nil
	case err != nil:
		return nil, &exitError{code: exitUnreadable, err: fmt.Errorf("reading Actor %s/%s: %w", h.ref.namespace, h.ref.name, err)}
	case a.Status.ActorID != h.id:
		h.notes = append(h.notes, fmt.Sprintf("Actor %s/%s is now actor id %q, not the archived %s: its status head is not compared", h.ref.namespace, h.ref.name, a.Status.ActorID, h.id))
		return nil, nil
	case a.Status.Chain == nil || a.Status.Chain.Head == "":
		h.notes = append(h.notes, fmt.Sprintf("Actor %s/%s reports no chain head yet: nothing to compare the end with", h.ref.namespace, h.ref.name))
		return nil, nil
	}
	head, err := chain.ParseHash(a.Status.Chain.Head)
	if err != nil {
		return nil, &exitError{code: exitUnreadable, err: fmt.Errorf("Actor %s/%s status.chain.head: %w", h.ref.namespace, h.ref.name, err)}
	}
	return &expectation{head: head, length: uint64(a.Status.Chain.Length), from: fmt.Sprintf("Actor %s/%s's status", h.ref.namespace, h.ref.name), fromStatus: true}, nil
}

// verifyArchive is `troupe chain verify s3://…`: every segment and link
// of the history, across epochs, hosts and nodes, then its end against
// the expected head. Exit 1 when it is damaged or does not reach the
// expected head; 2 when it could not be read.
func verifyArchive(ctx context.Context, out io.Writer, arg string, o *archiveOptions) error {
	return withArchive(ctx, arg, o, func(ctx context.Context, h *archiveHistory) error { return verifyHistory(ctx, out, h, o) })
}

func verifyHistory(ctx context.Context, out io.Writer, h *archiveHistory, o *archiveOptions) error {
	arg := h.ref.arg
	want, err := o.expected(ctx, h)
	if err != nil {
		return err
	}
	for _, n := range h.notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	var at *uint64 // the seq of the expected head among the events
	rep, err := archive.VerifyEach(ctx, h.st, h.id, func(e chain.Event) error {
		if want != nil && e.Hash == want.head {
			seq := e.Seq
			at = &seq
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, archive.ErrBroken) {
			fmt.Fprintf(out, "%s (actor id %s): damaged\n", arg, h.id)
		}
		return archiveError(h, err)
	}
	hist := rep.History
	fmt.Fprintf(out, "%s (actor id %s): intact: %d events in %d segments over epochs %s, %d states checked, head %s, length %d\n",
		arg, h.id, rep.Events, len(hist.Segments), joinEpochs(hist.Epochs), rep.States, rep.Head, rep.Length)
	if rep.OriginKind == chain.KindSegmentStart {
		fmt.Fprintf(out, "  begins with a SegmentStart at seq %d continuing head %s, which the archive does not hold (the actor moved before it was archived)\n",
			rep.Origin.Length, rep.Origin.Head.Short())
	}
	if len(hist.Ignored) > 0 {
		fmt.Fprintf(out, "  epochs %s wrote after a later epoch took over: not part of the history\n", joinEpochs(hist.Ignored))
	}
	if want == nil {
		return nil
	}
	switch {
	case rep.Head == want.head:
		fmt.Fprintf(out, "  ends at the expected head %s (from %s)\n", want.head.Short(), want.from)
		return nil
	case at != nil:
		past := rep.Length - *at - 1
		msg := fmt.Sprintf("goes %d events past the expected head %s (from %s), which is its event %d", past, want.head.Short(), want.from, *at)
		if want.fromStatus {
			fmt.Fprintf(out, "  %s: the status is older than the archive\n", msg)
			return nil
		}
		fmt.Fprintf(out, "  NOT AT THE EXPECTED HEAD: %s\n", msg)
		return &exitError{code: exitBroken, err: fmt.Errorf("%s: %s", arg, msg)}
	case want.length > rep.Length:
		msg := fmt.Sprintf("the archive is BEHIND %s by %d events: it ends at length %d, the expected head %s is at length %d (events not archived yet, or lost with a node)",
			want.from, want.length-rep.Length, rep.Length, want.head.Short(), want.length)
		fmt.Fprintf(out, "  %s\n", msg)
		return &exitError{code: exitBroken, err: fmt.Errorf("%s: %s", arg, msg)}
	default:
		msg := fmt.Sprintf("the expected head %s (from %s) is not among the archive's events: the archive is behind it, or it is another chain's", want.head.Short(), want.from)
		fmt.Fprintf(out, "  %s\n", msg)
		return &exitError{code: exitBroken, err: fmt.Errorf("%s: %s", arg, msg)}
	}
}

// showArchive is `troupe chain show s3://…`: the history's events, each
// printed once its segment matched its manifest and its hash and link
// checked, as for a local file.
func showArchive(ctx context.Context, w *bufio.Writer, errw io.Writer, asJSON bool, arg string, o *archiveOptions) error {
	return withArchive(ctx, arg, o, func(ctx context.Context, h *archiveHistory) error {
		for _, n := range h.notes {
			fmt.Fprintf(errw, "troupe: note: %s\n", n)
		}
		p := newPrinter(w, asJSON)
		_, err := archive.VerifyEach(ctx, h.st, h.id, func(e chain.Event) error { return p.troupe(&e) })
		if ferr := p.flush(); err == nil && ferr != nil {
			return &exitError{code: exitUnreadable, err: ferr}
		}
		if err != nil {
			return archiveError(h, err)
		}
		return nil
	})
}

// withArchive opens the history arg names and runs fn on it, all within
// archiveTimeout.
func withArchive(ctx context.Context, arg string, o *archiveOptions, fn func(context.Context, *archiveHistory) error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, archiveTimeout)
	defer cancel()
	h, err := openArchive(ctx, arg, o, os.Getenv)
	if err != nil {
		return err
	}
	return fn(ctx, h)
}

func joinEpochs(epochs []int64) string {
	parts := make([]string, len(epochs))
	for i, e := range epochs {
		parts[i] = fmt.Sprint(e)
	}
	return strings.Join(parts, ", ")
}

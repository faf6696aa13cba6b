package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/troupe-dev/troupe/internal/actorhost"
)

// TestChainShowConversation: two actors' chains, rendered by `chain show`,
// read as the two sides of one conversation, tied by the request's id.
func TestChainShowConversation(t *testing.T) {
	ctx := context.Background()
	e, err := actorhost.NewEngine(ctx, actorhost.EngineOptions{NoDiskCache: true, Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	wasm, err := os.ReadFile(filepath.Join("..", "..", "internal", "actorhost", "testdata", "messenger.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{}
	for _, name := range []string{"ping", "pong"} {
		dirs[name] = t.TempDir()
		a, err := e.Start(ctx, actorhost.ActorConfig{Name: name, Component: c, Dir: dirs[name]})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Stop(ctx, "test over")
	}
	// ping asks pong for its counter (4 bytes back); pong was sent one
	// message from outside first.
	if err := e.Send(ctx, actorhost.Delivery{From: actorhost.Sender{External: "troupe-cli"}, Target: "pong", Msg: []byte("i")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Request(ctx, actorhost.Delivery{From: actorhost.Sender{External: "troupe-cli"}, Target: "ping", Msg: []byte("a\x04pongg")}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	show := func(name string) string {
		out, errOut, code := runCLI(t, "chain", "show", dirs[name])
		if code != 0 {
			t.Fatalf("chain show %s: exit %d: %s", name, code, errOut)
		}
		return out
	}
	ping, pong := show("ping"), show("pong")
	sent := regexp.MustCompile(`request → pong 1B \[([0-9a-f]{8})\]`).FindStringSubmatch(ping)
	if sent == nil {
		t.Fatalf("ping's chain shows no request to pong:\n%s", ping)
	}
	id := sent[1]
	for _, want := range []string{"request ← external troupe-cli 7B", "response ← pong 4B [" + id + "] ok", ", response 4B"} {
		if !strings.Contains(ping, want) {
			t.Errorf("ping's chain lacks %q:\n%s", want, ping)
		}
	}
	for _, want := range []string{"send ← external troupe-cli 1B", "request ← ping 1B [" + id + "]", "[" + id + "] ok, response 4B", "ok, new state 4B"} {
		if !strings.Contains(pong, want) {
			t.Errorf("pong's chain lacks %q:\n%s", want, pong)
		}
	}
}

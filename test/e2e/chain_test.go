//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/troupe-dev/troupe/internal/chain"
)

// servedChain is an actor's chain as its host serves it, verified.
type servedChain struct {
	actorID string
	events  []chain.Event
}

func (c *servedChain) head() string {
	if len(c.events) == 0 {
		return ""
	}
	return c.events[len(c.events)-1].Hash.String()
}

// length is the chain's length as the status counts it: the seq the next
// event gets.
func (c *servedChain) length() int64 {
	if len(c.events) == 0 {
		return 0
	}
	return int64(c.events[len(c.events)-1].Seq + 1)
}

// indexOf returns the index of the event with hash h, or -1.
func (c *servedChain) indexOf(h string) int {
	for i := range c.events {
		if c.events[i].Hash.String() == h {
			return i
		}
	}
	return -1
}

// custom returns the data of each CustomEvent of type typ, in order, with
// its index.
func (c *servedChain) custom(typ string) (idx []int, data [][]byte, err error) {
	for i := range c.events {
		e := &c.events[i]
		if e.Kind != chain.KindCustom {
			continue
		}
		var v struct {
			Type string `json:"type"`
			Data string `json:"data"`
		}
		if err := json.Unmarshal(e.Data, &v); err != nil {
			return nil, nil, fmt.Errorf("event %d: CustomEvent data %q: %w", e.Seq, e.Data, err)
		}
		if v.Type != typ {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(v.Data)
		if err != nil {
			return nil, nil, fmt.Errorf("event %d: CustomEvent %s data is not base64: %w", e.Seq, typ, err)
		}
		idx, data = append(idx, i), append(data, b)
	}
	return idx, data, nil
}

// count returns how many events of kind k the chain holds from index from on.
func (c *servedChain) count(k chain.Kind, from int) int {
	n := 0
	for i := max(from, 0); i < len(c.events); i++ {
		if c.events[i].Kind == k {
			n++
		}
	}
	return n
}

// fetchChain reads GET /actors/NS/NAME/chain from a host's chain endpoint
// (through a port-forward) and verifies it as `troupe chain show
// --from-host` does: every event re-hashed, every parent link and sequence
// number checked, and the first event a chain start (seq 0, zero parent) or
// a SegmentStart.
func fetchChain(ctx context.Context, addr, ns, name string) (*servedChain, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s/actors/%s/%s/chain", addr, ns, name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the chain of %s/%s: %w", ns, name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(msg)))
	}
	c := &servedChain{actorID: resp.Header.Get("X-Troupe-Actor-ID")}
	if err := chain.ReadJSON(resp.Body, func(e *chain.Event) error {
		c.events = append(c.events, *e)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("reading the chain of %s/%s: %w", ns, name, err)
	}
	return c, nil
}

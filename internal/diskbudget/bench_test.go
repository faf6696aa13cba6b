package diskbudget

import (
	"context"
	"testing"
	"time"
)

// BenchmarkAdmit times the budget check every append makes, uncontended
// and with budget to spare (the rates are far above what the loop
// reaches), against baselines in the same run:
//
//	baseline-now   time.Now alone, which the check needs once
//	actor          an actor's rates and size budget (`troupe run`)
//	actor+node     and the node's rates and watermark (a host)
//	charge         a lifecycle record's charge, actor and node
func BenchmarkAdmit(b *testing.B) {
	huge := Limits{BytesPerSecond: 1 << 50, BurstBytes: 1 << 50, EventsPerSecond: 1 << 50, BurstEvents: 1 << 50, MaxChainBytes: 1 << 62}
	node := func() *Node {
		n := NewNode(NodeLimits{BytesPerSecond: 1 << 50, BurstBytes: 1 << 50, EventsPerSecond: 1 << 50, BurstEvents: 1 << 50, MinFreeBytes: 1},
			NodeOptions{FreeSpace: func(string) (Space, error) { return Space{Free: 1 << 62, Total: 1 << 62}, nil }})
		if err := n.Poll(); err != nil {
			b.Fatal(err)
		}
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.Run("baseline-now", func(b *testing.B) {
		var t time.Time
		for b.Loop() {
			t = time.Now()
		}
		_ = t
	})
	b.Run("actor", func(b *testing.B) {
		a := NewActor(huge, nil, 0)
		b.ReportAllocs()
		for b.Loop() {
			if err := a.Admit(ctx, 200); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("actor+node", func(b *testing.B) {
		a := NewActor(huge, node(), 0)
		b.ReportAllocs()
		for b.Loop() {
			if err := a.Admit(ctx, 200); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("charge", func(b *testing.B) {
		a := NewActor(huge, node(), 0)
		b.ReportAllocs()
		for b.Loop() {
			a.Charge(200)
		}
	})
}

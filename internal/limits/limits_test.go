package limits

import (
	"testing"
	"time"
)

func TestChecks(t *testing.T) {
	tests := map[string]struct {
		err  error
		want string // "" for none
	}{
		"memory at the minimum":  {CheckMemoryPages(1), ""},
		"memory at the maximum":  {CheckMemoryPages(MaxMemoryPages), ""},
		"no memory":              {CheckMemoryPages(0), "memory limit of 0 pages is outside the allowed 1 to 65536 pages"},
		"memory past wasm32":     {CheckMemoryPages(MaxMemoryPages + 1), "memory limit of 65537 pages is outside the allowed 1 to 65536 pages"},
		"timeout at the minimum": {CheckCallTimeout(MinCallTimeout), ""},
		"timeout at the maximum": {CheckCallTimeout(MaxCallTimeout), ""},
		"timeout below":          {CheckCallTimeout(time.Microsecond), "call timeout of 1µs is outside the allowed 1ms to 10m0s"},
		"timeout above":          {CheckCallTimeout(time.Hour), "call timeout of 1h0m0s is outside the allowed 1ms to 10m0s"},
		"the defaults are inside": {firstErr(CheckMemoryPages(DefaultMemoryPages), CheckCallTimeout(DefaultCallTimeout),
			CheckRequestTimeout(DefaultRequestTimeout), CheckMailbox(DefaultMailboxMessages, DefaultMailboxBytes),
			CheckMaxMessageBytes(DefaultMaxMessageBytes)), ""},
		"request timeout above": {CheckRequestTimeout(time.Hour), "request timeout of 1h0m0s is outside the allowed 1ms to 10m0s"},
		"empty mailbox":         {CheckMailbox(0, 1), "mailbox message limit of 0 is outside the allowed 1 to 1048576"},
		"mailbox bytes above":   {CheckMailbox(1, MaxMailboxBytes+1), "mailbox byte limit of 1073741825 bytes is outside the allowed 1 to 1073741824 bytes"},
		"message above":         {CheckMaxMessageBytes(MaxMessageBytesLimit + 1), "message size limit of 8388609 bytes is outside the allowed 1 to 8388608 bytes"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := ""
			if tc.err != nil {
				got = tc.err.Error()
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// TestDefaultsLieWithinTheirBounds keeps a default from drifting past the
// bound a manifest is held to.
func TestDefaultsLieWithinTheirBounds(t *testing.T) {
	for name, c := range map[string]struct{ def, lo, hi int64 }{
		"maxLogBytes":       {DefaultMaxLogBytes, 1, MaxLogBytesLimit},
		"maxEventBytes":     {DefaultMaxEventBytes, 1, MaxEventBytesLimit},
		"maxEventTypeBytes": {DefaultMaxEventTypeBytes, 1, MaxEventTypeBytesLimit},
		"maxMetricNames":    {DefaultMaxMetricNames, 1, MaxMetricNamesLimit},
		"maxMemoryPages":    {DefaultMemoryPages, 1, MaxMemoryPages},
		"maxMessageBytes":   {DefaultMaxMessageBytes, 1, MaxMessageBytesLimit},
		"mailboxMessages":   {DefaultMailboxMessages, 1, MaxMailboxMessages},
		"mailboxBytes":      {DefaultMailboxBytes, DefaultMaxMessageBytes, MaxMailboxBytes},
		"requestTimeout":    {int64(DefaultRequestTimeout), int64(MinRequestTimeout), int64(DefaultCallTimeout)},

		"maxChainBytes":        {DefaultMaxChainBytes, MinMaxChainBytes, MaxMaxChainBytes},
		"chainBytesPerSecond":  {DefaultChainBytesPerSecond, 1, MaxChainBytesPerSecond},
		"chainBurstBytes":      {DefaultChainBurstBytes, 1, MaxChainBurstBytes},
		"chainEventsPerSecond": {DefaultChainEventsPerSecond, 1, MaxChainEventsPerSecond},
		"chainBurstEvents":     {DefaultChainBurstEvents, 1, MaxChainBurstEvents},
	} {
		if c.def < c.lo || c.def > c.hi {
			t.Errorf("%s: default %d outside %d..%d", name, c.def, c.lo, c.hi)
		}
	}
}

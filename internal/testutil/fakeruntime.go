package testutil

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/abi"
)

// SystemInfo is the system-info record the fake serves.
type SystemInfo struct {
	Hostname, OSType, OSRelease          string
	CPUCount                             uint32
	MemoryTotal, MemoryAvailable, Uptime uint64
}

// LogLine is one call to log that the fake accepted.
type LogLine struct{ Level, Message string }

// Metric is one call to record-metric that the fake accepted.
type Metric struct {
	Name  string
	Value float64
}

// Sent is one send or request the guest made.
type Sent struct {
	Op, Target string
	Msg        []byte
}

// Event is one call to record-event that the fake accepted.
type Event struct {
	Type string
	Data []byte
}

// FakeRuntime is a test double of the runtime handler: a strict host-side
// implementation of the canonical ABI of theater:simple/runtime, written
// from the ABI table (internal/abi) rather than from the handler, that
// records what the guest does, for guest-side tests that must not depend
// on the real handler and its chain. Its checks follow the handler's
// contract, with the handler's messages (log levels, finite metrics,
// non-empty event types, valid UTF-8, one shutdown), so guests see the
// error results a real host gives; it does not enforce size limits, metric
// name rules or redaction. TestFakeAndHandlerAgree runs the same guests
// under both and compares what each saw. Fields are read when the guest
// calls; use SetEnv to change variables while a guest runs.
type FakeRuntime struct {
	ID, Name, Version string
	SystemInfo        SystemInfo
	Now               func() time.Time // nil: time.Now
	// Messages answers the guest's send and request
	// (theater:simple/message-server-host): op is "send" or "request";
	// an error becomes the err result's text. nil answers every message
	// with err("no such actor: <target>").
	Messages func(op, target string, msg []byte) (response []byte, err error)
	// ReallocChurn, when positive, makes every lowering of a string first
	// ask cabi_realloc for that many bytes more and never use them: legal for
	// a host, and it makes the guest's allocator (and garbage collector) run
	// between the allocations of one call, where a guest that does not keep
	// its buffers alive loses them.
	ReallocChurn uint32

	mu       sync.Mutex
	env      map[string]string
	calls    []string
	logs     []LogLine
	metrics  []Metric
	events   []Event
	sent     []Sent
	shutdown *[]byte // nil: not requested; points at nil for shutdown(none)
	reallocs map[api.Module]api.Function
}

// SetEnv declares name with value for get-env.
func (f *FakeRuntime) SetEnv(name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.env == nil {
		f.env = map[string]string{}
	}
	f.env[name] = value
}

// UnsetEnv makes get-env return none for name.
func (f *FakeRuntime) UnsetEnv(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.env, name)
}

// Calls returns the names of the runtime functions called so far, in order.
func (f *FakeRuntime) Calls() []string { return snapshot(&f.mu, f.calls) }

// Logs returns the accepted log lines.
func (f *FakeRuntime) Logs() []LogLine { return snapshot(&f.mu, f.logs) }

// Metrics returns the accepted metric values.
func (f *FakeRuntime) Metrics() []Metric { return snapshot(&f.mu, f.metrics) }

// Events returns the accepted custom events.
func (f *FakeRuntime) Events() []Event { return snapshot(&f.mu, f.events) }

// SentMessages returns the guest's sends and requests, in order.
func (f *FakeRuntime) SentMessages() []Sent { return snapshot(&f.mu, f.sent) }

// snapshot copies s under mu.
func snapshot[T any](mu *sync.Mutex, s []T) []T {
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(s)
}

// ShutdownRequest reports whether the guest called shutdown, and with what.
func (f *FakeRuntime) ShutdownRequest() (data []byte, hasData, requested bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shutdown == nil {
		return nil, false, false
	}
	return *f.shutdown, *f.shutdown != nil, true
}

// Bind implements Host: the fake finds its state in itself, not in the
// context.
func (f *FakeRuntime) Bind(ctx context.Context) context.Context { return ctx }

// Instantiate implements Host: it defines theater:simple/runtime in r, one
// function per row of the ABI table, each recording its name in Calls.
func (f *FakeRuntime) Instantiate(ctx context.Context, r wazero.Runtime) error {
	impls := map[string]api.GoModuleFunc{
		abi.GetActorID.Name:        f.stringGetter(func() string { return f.ID }),
		abi.GetActorName.Name:      f.stringGetter(func() string { return f.Name }),
		abi.GetTheaterVersion.Name: f.stringGetter(func() string { return f.Version }),
		abi.GetCurrentTime.Name:    f.getCurrentTime,
		abi.GetEnv.Name:            f.getEnv,
		abi.Log.Name:               f.log,
		abi.RecordMetric.Name:      f.recordMetric,
		abi.RecordEvent.Name:       f.recordEvent,
		abi.GetSystemInfo.Name:     f.getSystemInfo,
		abi.Shutdown.Name:          f.shutdownFunc,
		abi.Send.Name:              f.message(abi.Send.Name),
		abi.Request.Name:           f.message(abi.Request.Name),
	}
	for _, module := range abi.ImportModules() {
		b := r.NewHostModuleBuilder(module)
		for _, imp := range abi.ImportsOf(module) {
			fn, ok := impls[imp.Name]
			if !ok {
				return fmt.Errorf("the fake runtime does not implement %s", imp.Name)
			}
			name := imp.Name
			b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, s []uint64) {
				f.mu.Lock()
				f.calls = append(f.calls, name)
				f.mu.Unlock()
				fn(ctx, m, s)
			}), imp.Params, imp.Results).Export(name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			return err
		}
	}
	return nil
}

// message serves send and request: (target ptr, len, msg ptr, len,
// retptr); request's ok writes the response's (ptr, len) at the payload.
func (f *FakeRuntime) message(op string) api.GoModuleFunc {
	return func(ctx context.Context, m api.Module, s []uint64) {
		target, ok := loadString(m, u32(s[0]), u32(s[1]))
		if !ok {
			panic(op + ": the target is not valid UTF-8")
		}
		msg := loadBytes(m, u32(s[2]), u32(s[3]))
		ret := u32(s[4])
		f.mu.Lock()
		f.sent = append(f.sent, Sent{Op: op, Target: target, Msg: msg})
		answer := f.Messages
		f.mu.Unlock()
		var resp []byte
		err := fmt.Errorf("no such actor: %q", target)
		if answer != nil {
			resp, err = answer(op, target, msg)
		}
		if err != nil {
			f.storeResult(ctx, m, ret, err.Error())
			return
		}
		if op == abi.Send.Name {
			f.storeResult(ctx, m, ret, "")
			return
		}
		ptr, n := f.lowerString(ctx, m, string(resp))
		writeU8(m, ret, 0)
		f.storePair(m, ret+abi.ResultPayload, ptr, n)
	}
}

// stringGetter serves a func() -> string: the string to the return area.
func (f *FakeRuntime) stringGetter(value func() string) api.GoModuleFunc {
	return func(ctx context.Context, m api.Module, s []uint64) {
		ptr, n := f.lowerString(ctx, m, value())
		f.storePair(m, u32(s[0]), ptr, n)
	}
}

func (f *FakeRuntime) getCurrentTime(_ context.Context, _ api.Module, s []uint64) {
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	s[0] = uint64(max(now().UnixMilli(), 0))
}

func (f *FakeRuntime) getEnv(ctx context.Context, m api.Module, s []uint64) {
	name, nameOK := loadString(m, u32(s[0]), u32(s[1]))
	ret := u32(s[2])
	f.mu.Lock()
	value, ok := f.env[name]
	f.mu.Unlock()
	if !nameOK || !ok {
		writeU8(m, ret, 0)
		return
	}
	ptr, n := f.lowerString(ctx, m, value)
	writeU8(m, ret, 1)
	f.storePair(m, ret+abi.OptionPayload, ptr, n)
}

func (f *FakeRuntime) log(ctx context.Context, m api.Module, s []uint64) {
	level, _ := loadString(m, u32(s[0]), u32(s[1]))
	msg, msgOK := loadString(m, u32(s[2]), u32(s[3]))
	l := strings.ToLower(level)
	var errMsg string
	switch {
	case l != "debug" && l != "info" && l != "warn" && l != "error":
		errMsg = fmt.Sprintf("unknown log level %q: use one of debug, info, warn, error", level)
	case !msgOK:
		errMsg = "log message is not valid UTF-8"
	}
	f.answer(ctx, m, u32(s[4]), errMsg, func() { f.logs = append(f.logs, LogLine{Level: l, Message: msg}) })
}

func (f *FakeRuntime) recordMetric(ctx context.Context, m api.Module, s []uint64) {
	name, nameOK := loadString(m, u32(s[0]), u32(s[1]))
	value := math.Float64frombits(s[2])
	var errMsg string
	switch {
	case name == "":
		errMsg = "metric name is empty: use [a-zA-Z_:][a-zA-Z0-9_:]*"
	case !nameOK:
		errMsg = "metric name is not valid UTF-8: use [a-zA-Z_:][a-zA-Z0-9_:]*"
	case math.IsNaN(value):
		errMsg = "metric value is NaN: use a finite number"
	case math.IsInf(value, 0):
		errMsg = "metric value is infinite: use a finite number"
	}
	f.answer(ctx, m, u32(s[3]), errMsg, func() { f.metrics = append(f.metrics, Metric{Name: name, Value: value}) })
}

func (f *FakeRuntime) recordEvent(ctx context.Context, m api.Module, s []uint64) {
	typ, typOK := loadString(m, u32(s[0]), u32(s[1]))
	data := loadBytes(m, u32(s[2]), u32(s[3]))
	var errMsg string
	switch {
	case typ == "":
		errMsg = `event type is empty: give a non-empty name, e.g. "user_login"`
	case !typOK:
		errMsg = "event type is not valid UTF-8"
	}
	f.answer(ctx, m, u32(s[4]), errMsg, func() { f.events = append(f.events, Event{Type: typ, Data: data}) })
}

// answer ends a call that returns result<_, string>: err(errMsg), or, when
// errMsg is empty, ok once accept has kept the call under the lock.
func (f *FakeRuntime) answer(ctx context.Context, m api.Module, ret uint32, errMsg string, accept func()) {
	if errMsg == "" {
		f.mu.Lock()
		accept()
		f.mu.Unlock()
	}
	f.storeResult(ctx, m, ret, errMsg)
}

func (f *FakeRuntime) getSystemInfo(ctx context.Context, m api.Module, s []uint64) {
	ret := u32(s[0])
	if ret%abi.SystemInfo.Align != 0 {
		panic(fmt.Sprintf("get-system-info: return area %#x is not %d-byte aligned", ret, abi.SystemInfo.Align))
	}
	si := f.SystemInfo
	// Lower all strings first: each may run the guest's allocator.
	hp, hn := f.lowerString(ctx, m, si.Hostname)
	tp, tn := f.lowerString(ctx, m, si.OSType)
	rp, rn := f.lowerString(ctx, m, si.OSRelease)
	area := make([]byte, abi.SystemInfo.Size)
	le := binary.LittleEndian
	le.PutUint32(area[abi.SysInfoHostname:], hp)
	le.PutUint32(area[abi.SysInfoHostname+4:], hn)
	le.PutUint32(area[abi.SysInfoOSType:], tp)
	le.PutUint32(area[abi.SysInfoOSType+4:], tn)
	le.PutUint32(area[abi.SysInfoOSRelease:], rp)
	le.PutUint32(area[abi.SysInfoOSRelease+4:], rn)
	le.PutUint32(area[abi.SysInfoCPUCount:], si.CPUCount)
	le.PutUint64(area[abi.SysInfoMemoryTotal:], si.MemoryTotal)
	le.PutUint64(area[abi.SysInfoMemoryAvailable:], si.MemoryAvailable)
	le.PutUint64(area[abi.SysInfoUptime:], si.Uptime)
	write(m, ret, area)
}

func (f *FakeRuntime) shutdownFunc(ctx context.Context, m api.Module, s []uint64) {
	var data []byte
	switch u32(s[0]) {
	case 0:
	case 1:
		data = loadBytes(m, u32(s[1]), u32(s[2]))
		if data == nil {
			data = []byte{}
		}
	default:
		panic(fmt.Sprintf("shutdown: invalid option discriminant %d", u32(s[0])))
	}
	f.mu.Lock()
	again := f.shutdown != nil
	if !again {
		f.shutdown = &data
	}
	f.mu.Unlock()
	if again {
		f.storeResult(ctx, m, u32(s[3]), "shutdown already requested")
		return
	}
	f.storeResult(ctx, m, u32(s[3]), "")
}

// Memory helpers. A bad pointer or length from the guest panics, which
// wazero turns into a trap of the guest's call: this fake's guests are the
// project's own, so a bad pointer is a bug to surface, not input to survive.

func u32(v uint64) uint32 { return uint32(v) }

func loadBytes(m api.Module, ptr, n uint32) []byte {
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		panic(fmt.Sprintf("guest passed %d bytes at %#x, past the end of its memory (%d bytes)", n, ptr, m.Memory().Size()))
	}
	return bytes.Clone(b)
}

func loadString(m api.Module, ptr, n uint32) (string, bool) {
	b := loadBytes(m, ptr, n)
	return string(b), utf8.Valid(b)
}

func write(m api.Module, ptr uint32, b []byte) {
	if !m.Memory().Write(ptr, b) {
		panic(fmt.Sprintf("writing %d bytes at %#x: past the end of guest memory", len(b), ptr))
	}
}

func writeU8(m api.Module, ptr uint32, v byte) {
	if !m.Memory().WriteByte(ptr, v) {
		panic(fmt.Sprintf("writing at %#x: past the end of guest memory", ptr))
	}
}

// storePair writes a string's (ptr, len) at at.
func (f *FakeRuntime) storePair(m api.Module, at, ptr, n uint32) {
	var b [8]byte
	binary.LittleEndian.PutUint32(b[0:], ptr)
	binary.LittleEndian.PutUint32(b[4:], n)
	write(m, at, b[:])
}

// lowerString copies s into memory obtained from the guest's cabi_realloc,
// after the churn allocation when ReallocChurn asks for one.
func (f *FakeRuntime) lowerString(ctx context.Context, m api.Module, s string) (ptr, n uint32) {
	return lowerBytes(ctx, m, f.realloc(m), []byte(s), f.ReallocChurn)
}

// realloc returns m's cabi_realloc, looked up once: wazero's
// ExportedFunction builds a new callable each time.
func (f *FakeRuntime) realloc(m api.Module) api.Function {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fn, ok := f.reallocs[m]; ok {
		return fn
	}
	fn := m.ExportedFunction(abi.Realloc.Name)
	if fn == nil {
		panic("guest does not export " + abi.Realloc.Name)
	}
	if f.reallocs == nil {
		f.reallocs = map[api.Module]api.Function{}
	}
	f.reallocs[m] = fn
	return fn
}

// lowerBytes copies b into memory the guest's cabi_realloc hands out
// (align 1, as for strings and list<u8>), first asking for churn bytes it
// never uses when churn is positive.
func lowerBytes(ctx context.Context, m api.Module, realloc api.Function, b []byte, churn uint32) (ptr, n uint32) {
	if churn > 0 {
		allocate(ctx, m, realloc, churn, 8)
	}
	ptr = allocate(ctx, m, realloc, uint32(len(b)), 1)
	write(m, ptr, b)
	return ptr, uint32(len(b))
}

func allocate(ctx context.Context, m api.Module, realloc api.Function, size, align uint32) uint32 {
	res, err := realloc.Call(ctx, 0, 0, uint64(align), uint64(size))
	if err != nil {
		panic(fmt.Sprintf("%s(0, 0, %d, %d): %v", abi.Realloc.Name, align, size, err))
	}
	ptr := uint32(res[0])
	if ptr%align != 0 {
		panic(fmt.Sprintf("%s returned %#x, not aligned to %d", abi.Realloc.Name, ptr, align))
	}
	return ptr
}

// storeResult writes result<_, string> to the return area at ret: ok when
// errMsg is empty, else err(errMsg) with the string at the payload.
func (f *FakeRuntime) storeResult(ctx context.Context, m api.Module, ret uint32, errMsg string) {
	if errMsg == "" {
		writeU8(m, ret, 0)
		return
	}
	ptr, n := f.lowerString(ctx, m, errMsg)
	writeU8(m, ret, 1)
	f.storePair(m, ret+abi.ResultPayload, ptr, n)
}

package runtimehandler

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/troupe-dev/troupe/internal/abi"
	"github.com/troupe-dev/troupe/internal/chain"
)

// ModuleName is the import module of the runtime interface.
const ModuleName = abi.RuntimeModule

// hostFuncs implements each function of theater:simple/runtime in the ABI
// table (internal/abi), by name; the name is also the chain's Event.Op of
// the call.
var hostFuncs = map[string]api.GoModuleFunc{
	abi.GetActorID.Name:        stringGetter(abi.GetActorID.Name, func(a *Actor) string { return a.id }),
	abi.GetActorName.Name:      stringGetter(abi.GetActorName.Name, func(a *Actor) string { return a.name }),
	abi.GetTheaterVersion.Name: stringGetter(abi.GetTheaterVersion.Name, func(a *Actor) string { return a.version }),
	abi.GetCurrentTime.Name:    hostGetCurrentTime,
	abi.GetEnv.Name:            hostGetEnv,
	abi.Log.Name:               hostLog,
	abi.RecordMetric.Name:      hostRecordMetric,
	abi.RecordEvent.Name:       hostRecordEvent,
	abi.GetSystemInfo.Name:     hostGetSystemInfo,
	abi.Shutdown.Name:          hostShutdown,
}

// hostModules are the import modules the handler serves, each with its
// functions: the runtime, and message-server-host (messages.go).
var hostModules = map[string]map[string]api.GoModuleFunc{
	ModuleName:            hostFuncs,
	abi.MessageHostModule: messageFuncs,
}

// Instantiate defines the host modules of the ABI table in r
// (theater:simple/runtime and theater:simple/message-server-host), one
// function per row, with the table's core types, and returns the runtime's.
// Call it once per runtime: the modules are shared by every actor of the
// runtime, and each call finds its actor in the context (WithActor).
func Instantiate(ctx context.Context, r wazero.Runtime) (api.Module, error) {
	var runtime api.Module
	for _, module := range abi.ImportModules() {
		funcs, ok := hostModules[module]
		if !ok {
			return nil, fmt.Errorf("instantiating host module %s: the ABI table's module has no implementation", module)
		}
		b := r.NewHostModuleBuilder(module)
		table := abi.ImportsOf(module)
		for _, f := range table {
			fn, ok := funcs[f.Name]
			if !ok {
				return nil, fmt.Errorf("instantiating host module %s: the ABI table's %s has no implementation", module, f.Name)
			}
			b.NewFunctionBuilder().
				WithGoModuleFunction(fn, f.Params, f.Results).
				WithParameterNames(f.ParamNames...).
				Export(f.Name)
		}
		if len(funcs) != len(table) {
			return nil, fmt.Errorf("instantiating host module %s: %d functions implemented, %d in the ABI table", module, len(funcs), len(table))
		}
		m, err := b.Instantiate(ctx)
		if err != nil {
			return nil, fmt.Errorf("instantiating host module %s: %w", module, err)
		}
		if module == ModuleName {
			runtime = m
		}
	}
	return runtime, nil
}

// Result layouts are the ABI table's (abi.String, abi.OptionString,
// abi.ResultString, abi.SystemInfo): see internal/abi for each field's
// offset.

// u32 reads an i32 parameter as the u32 the canonical ABI means.
func u32(v uint64) uint32 { return uint32(v) }

// transient returns b as a string without copying, for values that are
// consumed (hashed, compared, appended to event data) before the guest runs
// again. Never keep it.
func transient(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// record appends the event built in the actor's fields to its chain, once
// the actor's disk budget admits it (waiting within the call's deadline).
// A call that can't be recorded traps: an actor must not act unaudited.
func (c *call) record(kind chain.Kind, f *eventFields) {
	data := f.Data()
	if b := c.a.budget; b != nil {
		if err := b.Admit(c.ctx, chain.RecordSize(kind, c.fn, len(data))); err != nil {
			trap(c.fn, "the actor's disk budget refused the call's event", err)
		}
	}
	if _, err := c.a.rec.Append(kind, c.fn, data); err != nil {
		trap(c.fn, "recording the call in the actor's chain", err)
	}
	releaseLarge(f, data)
}

// maxKeptEventBuffer is the largest event buffer an actor keeps between
// calls: one megabyte event must not cost an idle actor a megabyte forever.
const maxKeptEventBuffer = 64 << 10

// releaseLarge drops f's buffer when the event just built was large.
func releaseLarge(f *eventFields, data []byte) {
	if len(data) > maxKeptEventBuffer {
		*f = eventFields{}
	}
}

// returnString lowers s as the function's string result.
func (c *call) returnString(retptr uint32, s string) {
	ptr, n := c.lowerString(s)
	c.storePair(retptr, 0, ptr, n)
}

// stringGetter serves get-actor-id, get-actor-name and
// get-theater-version: func() -> string.
//
//	core: (i32 retptr) -> ()
//	retptr: string, size 8 align 4: ptr @0, len @4 (cabi_realloc'd, align 1)
//	chain: RuntimeOperation {"result": value}
func stringGetter(fn string, value func(*Actor) string) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		c := begin(ctx, fn, mod)
		retptr := u32(stack[0])
		c.checkRetptr(retptr, abi.String)
		v := value(c.a)
		c.record(chain.KindRuntimeOperation, c.a.eventData().Str("result", v))
		c.returnString(retptr, v)
	}
}

// get-current-time: func() -> u64
//
//	core: () -> i64 (milliseconds since the Unix epoch; a clock before 1970 reads 0)
//	chain: RuntimeOperation {"result": ms}
func hostGetCurrentTime(ctx context.Context, mod api.Module, stack []uint64) {
	c := begin(ctx, abi.GetCurrentTime.Name, mod)
	ms := max(c.a.now().UnixMilli(), 0)
	c.record(chain.KindRuntimeOperation, c.a.eventData().Uint("result", uint64(ms)))
	stack[0] = uint64(ms)
}

// maxEnvNameBytes bounds a get-env name; no declared name is longer (a
// Kubernetes env name is a C identifier-ish string of a few dozen bytes).
const maxEnvNameBytes = 4096

// get-env: func(name: string) -> option<string>
//
//	core: (i32 name_ptr, i32 name_len, i32 retptr) -> ()
//	retptr: option<string>, size 12 align 4: discriminant u8 @0 (0 none, 1 some), ptr @4, len @8
//	chain: RuntimeOperation {"name": name, "found": bool, "value": v | {"redacted":true}}
//	  (no value when not found; {"nameBytes": n, "found": false, "reason": ...} for a
//	  name that is too long or not UTF-8, which can't be declared)
func hostGetEnv(ctx context.Context, mod api.Module, stack []uint64) {
	c := begin(ctx, abi.GetEnv.Name, mod)
	namePtr, nameLen, retptr := u32(stack[0]), u32(stack[1]), u32(stack[2])
	c.checkRetptr(retptr, abi.OptionString)
	name := c.view("name", namePtr, nameLen)
	f := c.a.eventData()
	var reason string
	switch {
	case len(name) > maxEnvNameBytes:
		reason = "name longer than " + strconv.Itoa(maxEnvNameBytes) + " bytes"
	case !utf8.Valid(name):
		reason = "name is not valid UTF-8"
	}
	if reason != "" {
		c.record(chain.KindRuntimeOperation, f.Uint("nameBytes", uint64(len(name))).Bool("found", false).Str("reason", reason))
		c.storeNone(retptr)
		return
	}
	// Not copied: the name is looked up, scanned and appended to the
	// event before the guest runs or its memory can grow (EnvSource
	// keeps no name it is given).
	key := transient(name)
	v, found := c.a.env.LookupEnv(key)
	if found && v.Secret {
		// Remembered before anything is recorded: from now on the value
		// is scrubbed from whatever the guest hands the host, this
		// event's name included (a guest may look a secret up by itself).
		c.a.rememberSecret(v.Value)
	}
	f.Str("name", c.a.Redact(key)).Bool("found", found)
	if found {
		if v.Secret {
			f.Secret("value")
		} else {
			f.Str("value", v.Value)
		}
	}
	c.record(chain.KindRuntimeOperation, f)
	if !found {
		c.storeNone(retptr)
		return
	}
	ptr, n := c.lowerString(v.Value)
	if !c.memory().WriteByte(retptr, 1) {
		trap(c.fn, "writing the result to the return area", nil)
	}
	c.storePair(retptr, abi.OptionPayload, ptr, n)
}

func (c *call) storeNone(retptr uint32) {
	if !c.memory().WriteByte(retptr, 0) {
		trap(c.fn, "writing the result to the return area", nil)
	}
}

// Log levels, in the form the chain records.
const (
	levelDebug = "debug"
	levelInfo  = "info"
	levelWarn  = "warn"
	levelError = "error"
)

// parseLevel matches a level case-insensitively without allocating.
func parseLevel(b []byte) (string, bool) {
	for _, l := range [...]string{levelDebug, levelInfo, levelWarn, levelError} {
		if len(b) == len(l) && bytes.EqualFold(b, []byte(l)) {
			return l, true
		}
	}
	return "", false
}

// log: func(level: string, message: string) -> result<_, string>
//
//	core: (i32 level_ptr, i32 level_len, i32 message_ptr, i32 message_len, i32 retptr) -> ()
//	retptr: result<_, string>, size 12 align 4: discriminant u8 @0, err ptr @4, len @8
//	chain: LogEvent {"level": "info", "message": m}
//	  or {"level": l, "messageBytes": n, "error": e} when refused
func hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	c := begin(ctx, abi.Log.Name, mod)
	lp, ll, mp, ml, retptr := u32(stack[0]), u32(stack[1]), u32(stack[2]), u32(stack[3]), u32(stack[4])
	c.checkRetptr(retptr, abi.ResultString)
	lvl := c.view("level", lp, ll)
	msg := c.view("message", mp, ml)
	a := c.a
	level, ok := parseLevel(lvl)
	if !ok {
		lvl = a.echoable(lvl) // quoted in the error and the chain
	}
	var errMsg string
	switch {
	case !ok:
		errMsg = "unknown log level " + quoteGuest(lvl) + ": use one of debug, info, warn, error"
	case len(msg) > a.cfg.MaxLogBytes:
		errMsg = "log message is " + strconv.Itoa(len(msg)) + " bytes: the limit is " +
			strconv.Itoa(a.cfg.MaxLogBytes) + " (maxLogBytes)"
	case !utf8.Valid(msg):
		errMsg = "log message is not valid UTF-8"
	}
	f := a.eventData()
	if errMsg != "" {
		if ok {
			f.Str("level", level)
		} else {
			f.Str("level", boundedGuest(lvl))
		}
		c.record(chain.KindLog, f.Uint("messageBytes", uint64(len(msg))).Str("error", errMsg))
		c.storeResultErr(retptr, errMsg)
		return
	}
	msg = a.RedactBytes(msg)
	// Recorded first: a line the budget refuses reaches no log either.
	c.record(chain.KindLog, f.Str("level", level).Str("message", transient(msg)))
	a.emitLog(level, msg, false)
	c.storeResultOK(retptr)
}

// emitLog writes a guest's log line to the actor's logger. The message is a
// value, never a format string. It is copied only when a sink will see it.
func (a *Actor) emitLog(level string, msg []byte, wasi bool) {
	l := a.log
	if l.GetSink() == nil {
		return
	}
	switch level {
	case levelDebug:
		if v := l.V(1); v.Enabled() {
			if wasi {
				v.Info(string(msg), "source", "wasi")
			} else {
				v.Info(string(msg))
			}
		}
	case levelInfo:
		if l.Enabled() {
			if wasi {
				l.Info(string(msg), "source", "wasi")
			} else {
				l.Info(string(msg))
			}
		}
	case levelWarn:
		if l.Enabled() {
			if wasi {
				l.Info(string(msg), "level", "warn", "source", "wasi")
			} else {
				l.Info(string(msg), "level", "warn")
			}
		}
	default:
		if wasi {
			l.Error(nil, string(msg), "source", "wasi")
		} else {
			l.Error(nil, string(msg))
		}
	}
}

// maxQuotedGuest is how much of a guest string an error message quotes,
// so a hostile guest can't make the host build a huge one.
const maxQuotedGuest = 64

// quoteGuest quotes at most maxQuotedGuest bytes of a guest string for an
// error message.
func quoteGuest(b []byte) string {
	if len(b) > maxQuotedGuest {
		return strconv.Quote(string(b[:maxQuotedGuest])) + "..."
	}
	return strconv.Quote(string(b))
}

// boundedGuest is quoteGuest's counterpart for event data: at most
// maxQuotedGuest bytes, as text.
func boundedGuest(b []byte) string {
	if len(b) > maxQuotedGuest {
		return string(b[:maxQuotedGuest]) + "..."
	}
	return string(b)
}

// Metric name rules: Prometheus' [a-zA-Z_][a-zA-Z0-9_]*, without the
// reserved "__" prefix, the colon (Prometheus keeps it for recording rules,
// and the host exports these names) and the endings of the summary family
// a gauge gets (see MetricsRegistry).
const maxMetricNameBytes = 200

const metricNameRule = "use [a-zA-Z_][a-zA-Z0-9_]*"

func metricNameError(name []byte) string {
	switch {
	case len(name) == 0:
		return "metric name is empty: " + metricNameRule
	case len(name) > maxMetricNameBytes:
		return "metric name is " + strconv.Itoa(len(name)) + " bytes: the limit is " + strconv.Itoa(maxMetricNameBytes)
	case !utf8.Valid(name):
		return "metric name is not valid UTF-8: " + metricNameRule
	case len(name) >= 2 && name[0] == '_' && name[1] == '_':
		return "metric name " + quoteGuest(name) + " starts with \"__\", which Prometheus reserves"
	}
	for i, ch := range name {
		if ch == '_' || 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || i > 0 && '0' <= ch && ch <= '9' {
			continue
		}
		if ch == ':' {
			return "metric name " + quoteGuest(name) + " contains ':', which Prometheus keeps for recording rules: " + metricNameRule
		}
		return "metric name " + quoteGuest(name) + " is not a Prometheus metric name: " + metricNameRule
	}
	for _, suffix := range reservedMetricSuffixes {
		if bytes.HasSuffix(name, []byte(suffix)) {
			return "metric name " + quoteGuest(name) + " ends in " + strconv.Quote(suffix) +
				", which the host uses for the sum and count of a gauge's recorded values: use another name"
		}
	}
	return ""
}

// record-metric: func(name: string, value: f64) -> result<_, string>
//
//	core: (i32 name_ptr, i32 name_len, f64 value, i32 retptr) -> ()
//	retptr: result<_, string>, size 12 align 4: discriminant u8 @0, err ptr @4, len @8
//	chain: MetricEvent {"name": n, "value": v}
//	  or {"name"|"nameBytes": ..., "value": v | "NaN" | "+Inf" | "-Inf", "error": e} when refused
func hostRecordMetric(ctx context.Context, mod api.Module, stack []uint64) {
	c := begin(ctx, abi.RecordMetric.Name, mod)
	np, nl, value, retptr := u32(stack[0]), u32(stack[1]), api.DecodeF64(stack[2]), u32(stack[3])
	c.checkRetptr(retptr, abi.ResultString)
	name := c.view("name", np, nl)
	a := c.a
	// Checked first, so that no other error echoes the name: a metric
	// name is published on the host's /metrics as well as recorded.
	// A longer name is refused without being quoted.
	secret := len(name) <= maxMetricNameBytes && a.holdsSecret(name)
	var errMsg string
	if secret {
		errMsg = "metric name contains the value of a secret the actor read: metric names are published, use another name"
	} else {
		errMsg = metricNameError(name)
	}
	if errMsg == "" {
		switch {
		case math.IsNaN(value):
			errMsg = "metric value is NaN: use a finite number"
		case math.IsInf(value, 0):
			errMsg = "metric value is infinite: use a finite number"
		case value < 0 && isCounterName(string(name)):
			errMsg = "metric " + quoteGuest(name) + " is a counter (its name ends in _total): record increments of 0 or more, not " +
				strconv.FormatFloat(value, 'g', -1, 64)
		default:
			if _, seen := a.metricNames[string(name)]; !seen && len(a.metricNames) >= a.cfg.MaxMetricNames {
				errMsg = "metric " + quoteGuest(name) + " would be distinct name number " +
					strconv.Itoa(len(a.metricNames)+1) + ": the limit is " +
					strconv.Itoa(a.cfg.MaxMetricNames) + " (maxMetricNames)"
			}
		}
	}
	f := a.eventData()
	if errMsg != "" {
		if !secret && len(name) <= maxMetricNameBytes && utf8.Valid(name) {
			f.Str("name", transient(name))
		} else {
			f.Uint("nameBytes", uint64(len(name)))
		}
		f.Float("value", value) // non-finite values become the strings "NaN", "+Inf", "-Inf"
		c.record(chain.KindMetric, f.Str("error", errMsg))
		c.storeResultErr(retptr, errMsg)
		return
	}
	key, seen := a.metricNames[string(name)] // the stored copy: no allocation once seen
	if !seen {
		key = string(name)
		a.metricNames[key] = key
	}
	if a.metrics != nil {
		a.metrics.observe(a, key, value)
	}
	c.record(chain.KindMetric, f.Str("name", key).Float("value", value))
	c.storeResultOK(retptr)
}

// record-event: func(event-type: string, data: list<u8>) -> result<_, string>
//
//	core: (i32 type_ptr, i32 type_len, i32 data_ptr, i32 data_len, i32 retptr) -> ()
//	retptr: result<_, string>, size 12 align 4: discriminant u8 @0, err ptr @4, len @8
//	chain: CustomEvent {"type": t, "data": base64(data)}
//	  or {"type"|"typeBytes": ..., "dataBytes": n, "error": e} when refused
func hostRecordEvent(ctx context.Context, mod api.Module, stack []uint64) {
	c := begin(ctx, abi.RecordEvent.Name, mod)
	tp, tl, dp, dl, retptr := u32(stack[0]), u32(stack[1]), u32(stack[2]), u32(stack[3]), u32(stack[4])
	c.checkRetptr(retptr, abi.ResultString)
	typ := c.view("event type", tp, tl)
	data := c.view("event data", dp, dl)
	a := c.a
	var errMsg string
	switch {
	case len(typ) == 0:
		errMsg = "event type is empty: give a non-empty name, e.g. \"user_login\""
	case len(typ) > a.cfg.MaxEventTypeBytes:
		errMsg = "event type is " + strconv.Itoa(len(typ)) + " bytes: the limit is " +
			strconv.Itoa(a.cfg.MaxEventTypeBytes) + " (maxEventTypeBytes)"
	case !utf8.Valid(typ):
		errMsg = "event type is not valid UTF-8"
	case len(data) > a.cfg.MaxEventBytes:
		errMsg = "event data is " + strconv.Itoa(len(data)) + " bytes: the limit is " +
			strconv.Itoa(a.cfg.MaxEventBytes) + " (maxEventBytes)"
	default:
		errMsg = a.redactData("event data", &data)
	}
	f := a.eventData()
	if errMsg != "" {
		if len(typ) > 0 && len(typ) <= a.cfg.MaxEventTypeBytes && utf8.Valid(typ) {
			f.Str("type", transient(a.RedactBytes(typ)))
		} else {
			f.Uint("typeBytes", uint64(len(typ)))
		}
		c.record(chain.KindCustom, f.Uint("dataBytes", uint64(len(data))).Str("error", errMsg))
		c.storeResultErr(retptr, errMsg)
		return
	}
	c.record(chain.KindCustom, f.Str("type", transient(a.RedactBytes(typ))).Blob("data", data))
	c.storeResultOK(retptr)
}

// redactData scrubs secret values from *data. Each replaced value may
// grow to len(Redacted), so data that was within maxEventBytes may no
// longer be: then it is refused (the err message) rather than recorded,
// because the limit is what keeps an event under the chain's size bound.
func (a *Actor) redactData(what string, data *[]byte) string {
	red := a.RedactBytes(*data)
	if len(red) > a.cfg.MaxEventBytes {
		return what + " is " + strconv.Itoa(len(red)) + " bytes once secret values are replaced with " +
			strconv.Quote(Redacted) + ": the limit is " + strconv.Itoa(a.cfg.MaxEventBytes) + " (maxEventBytes)"
	}
	*data = red
	return ""
}

// get-system-info: func() -> system-info
//
//	core: (i32 retptr) -> ()
//	retptr: system-info, size 56 align 8: hostname @0, os-type @8, os-release @16
//	  (string: ptr @+0, len @+4, each cabi_realloc'd), cpu-count u32 @24,
//	  memory-total u64 @32, memory-available u64 @40, uptime u64 @48
//	chain: RuntimeOperation {"hostname", "osType", "osRelease", "cpuCount",
//	  "memoryTotal", "memoryAvailable", "uptime"[, "error"]}
//
// The WIT has no error case: when the source fails, the guest gets the
// fields it could read (zero for the rest) and the chain records the error.
func hostGetSystemInfo(ctx context.Context, mod api.Module, stack []uint64) {
	c := begin(ctx, abi.GetSystemInfo.Name, mod)
	retptr := u32(stack[0])
	c.checkRetptr(retptr, abi.SystemInfo)
	info, err := c.a.sys.SystemInfo(ctx)
	f := c.a.eventData().
		Str("hostname", info.Hostname).
		Str("osType", info.OSType).
		Str("osRelease", info.OSRelease).
		Uint("cpuCount", uint64(info.CPUCount)).
		Uint("memoryTotal", info.MemoryTotal).
		Uint("memoryAvailable", info.MemoryAvailable).
		Uint("uptime", info.Uptime)
	if err != nil {
		f.Str("error", err.Error())
	}
	c.record(chain.KindRuntimeOperation, f)
	// Each string is allocated in field order, as the canonical ABI does.
	for _, f := range [3]struct {
		off uint32
		s   string
	}{{abi.SysInfoHostname, info.Hostname}, {abi.SysInfoOSType, info.OSType}, {abi.SysInfoOSRelease, info.OSRelease}} {
		ptr, n := c.lowerString(f.s)
		c.storePair(retptr, f.off, ptr, n)
	}
	var buf [8]byte
	putU32(buf[:], info.CPUCount) // the padding after it is left as it was
	c.store(retptr, abi.SysInfoCPUCount, buf[:4])
	for _, f := range [3]struct {
		off uint32
		v   uint64
	}{{abi.SysInfoMemoryTotal, info.MemoryTotal}, {abi.SysInfoMemoryAvailable, info.MemoryAvailable}, {abi.SysInfoUptime, info.Uptime}} {
		putU64(buf[:], f.v)
		c.store(retptr, f.off, buf[:])
	}
}

func putU32(b []byte, v uint32) {
	_ = b[3]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func putU64(b []byte, v uint64) {
	putU32(b, uint32(v))
	putU32(b[4:], uint32(v>>32))
}

// shutdown: func(data: option<list<u8>>) -> result<_, string>
//
//	core: (i32 data_is_some, i32 data_ptr, i32 data_len, i32 retptr) -> ()
//	  (option<list<u8>> flattens to discriminant, ptr, len; ptr and len are
//	  ignored for none; a discriminant other than 0 or 1 traps)
//	retptr: result<_, string>, size 12 align 4: discriminant u8 @0, err ptr @4, len @8
//	chain: RuntimeOperation {"data": base64 | null}
//	  or {"dataBytes": n, "error": e} when refused
func hostShutdown(ctx context.Context, mod api.Module, stack []uint64) {
	c := begin(ctx, abi.Shutdown.Name, mod)
	disc, dp, dl, retptr := u32(stack[0]), u32(stack[1]), u32(stack[2]), u32(stack[3])
	c.checkRetptr(retptr, abi.ResultString)
	if disc > 1 {
		trap(c.fn, "option discriminant "+strconv.FormatUint(uint64(disc), 10)+" is invalid: must be 0 (none) or 1 (some)", nil)
	}
	var data []byte
	if disc == 1 {
		data = c.view("shutdown data", dp, dl)
	}
	a := c.a
	f := a.eventData()
	var errMsg string
	if len(data) > a.cfg.MaxEventBytes {
		errMsg = "shutdown data is " + strconv.Itoa(len(data)) + " bytes: the limit is " +
			strconv.Itoa(a.cfg.MaxEventBytes) + " (maxEventBytes)"
	} else if errMsg = a.redactData("shutdown data", &data); errMsg == "" && !a.requestShutdown(data, disc == 1) {
		errMsg = "shutdown already requested"
	}
	if errMsg != "" {
		c.record(chain.KindRuntimeOperation, f.Uint("dataBytes", uint64(len(data))).Str("error", errMsg))
		c.storeResultErr(retptr, errMsg)
		return
	}
	if disc == 1 {
		f.Blob("data", data)
	} else {
		f.Null("data")
	}
	c.record(chain.KindRuntimeOperation, f)
	c.storeResultOK(retptr)
}

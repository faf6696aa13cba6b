package abi

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// Core value types, named as the table spells them.
const (
	I32 = api.ValueTypeI32
	I64 = api.ValueTypeI64
	F64 = api.ValueTypeF64
)

// Signature is a core wasm function type.
type Signature struct {
	Params, Results []api.ValueType
}

// SignatureOf returns d's core type.
func SignatureOf(d api.FunctionDefinition) Signature {
	return Signature{Params: d.ParamTypes(), Results: d.ResultTypes()}
}

// Matches reports whether d has exactly this type.
func (s Signature) Matches(d api.FunctionDefinition) bool { return s.Equal(SignatureOf(d)) }

// Equal reports whether s and o are the same type.
func (s Signature) Equal(o Signature) bool {
	return slices.Equal(s.Params, o.Params) && slices.Equal(s.Results, o.Results)
}

// String spells s as "(i32 i32) -> (i64)", the form error messages use.
func (s Signature) String() string {
	return "(" + typeNames(s.Params) + ") -> (" + typeNames(s.Results) + ")"
}

func typeNames(ts []api.ValueType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = api.ValueTypeName(t)
	}
	return strings.Join(names, " ")
}

// Layout is where a value lies in linear memory: its size and alignment
// in bytes. The zero Layout means "not in memory" (a core value, or none).
type Layout struct {
	Size, Align uint32
}

// Import is a function the host provides to guests.
type Import struct {
	// Module and Name are what the guest imports, e.g.
	// "theater:simple/runtime" and "get-env"; Name is also the chain's
	// Event.Op of the call.
	Module, Name string
	Signature
	// ParamNames name the core parameters, for debugging and messages.
	ParamNames []string
	// Result is the layout of the return area the last parameter
	// (retptr) points at; zero when the result is a core value or none.
	Result Layout
}

// Export is a function a guest may export for the host to call.
type Export struct {
	// Name is the export's name, e.g. "theater:simple/actor#init".
	Name string
	Signature
	// ParamNames name the core parameters, for debugging and messages.
	ParamNames []string
	// Required: a module without it is refused.
	Required bool
	// Result is the layout of the area the returned pointer points at;
	// zero when the result is a core value or none.
	Result Layout
	// WIT is the file of wit/ that declares the function, "" for the
	// canonical ABI's own exports.
	WIT string
}

// PostReturn is the optional export the host calls once it has copied
// e's result out, so the guest may free it: "cabi_post_" + e.Name, taking
// e's core results.
func PostReturn(e Export) Export {
	return Export{Name: "cabi_post_" + e.Name, Signature: Signature{Params: e.Results}, ParamNames: []string{"result-ptr"}, WIT: e.WIT}
}

// Modules a guest imports from.
const (
	// RuntimeModule is theater:simple/runtime, which the runtime handler
	// serves.
	RuntimeModule = "theater:simple/runtime"
	// MessageHostModule is theater:simple/message-server-host, which an
	// actor that sends messages imports (wit/theater-message.wit).
	MessageHostModule = "theater:simple/message-server-host"
	// WASIModule is WASI preview 1, which the engine instantiates for
	// every actor (its stdout and stderr become log lines).
	WASIModule = "wasi_snapshot_preview1"
)

// Return-area layouts of the contract's results (canonical ABI).
var (
	// String: ptr u32 @0, len u32 @4.
	String = Layout{Size: 8, Align: 4}
	// OptionString: discriminant u8 @0 (0 none, 1 some), then the string
	// at OptionPayload: ptr @4, len @8.
	OptionString = Layout{Size: 12, Align: 4}
	// ResultString is result<_, string>: discriminant u8 @0 (0 ok, 1
	// err); err's string at ResultPayload: ptr @4, len @8.
	ResultString = Layout{Size: 12, Align: 4}
	// SystemInfo is the system-info record; its fields lie at the
	// SysInfo* offsets.
	SystemInfo = Layout{Size: 56, Align: 8}
	// StateResult is result<tuple<option<list<u8>>>, string>, what init
	// and tick return a pointer to: discriminant u8 @0 (0 ok, 1 err); ok:
	// option discriminant u8 @4, state ptr @8, len @12; err: string ptr
	// @4, len @8.
	StateResult = Layout{Size: 16, Align: 4}
	// ResultBytes is result<list<u8>, string>, what request writes:
	// discriminant u8 @0 (0 ok, 1 err); the response's or the error's
	// (ptr, len) at ResultPayload.
	ResultBytes = Layout{Size: 12, Align: 4}
	// RequestResult is result<tuple<option<list<u8>>,
	// tuple<option<list<u8>>>>, string>, what handle-request returns a
	// pointer to: discriminant u8 @0; ok: the new state's option at
	// StateOption/StatePtr/StateLen as in StateResult, the response's at
	// ResponseOption/ResponsePtr/ResponseLen; err: string ptr @4, len @8.
	RequestResult = Layout{Size: 28, Align: 4}
)

// Offsets inside the layouts above.
const (
	// OptionPayload is where option<string>'s string starts.
	OptionPayload = 4
	// ResultPayload is where a result's ok or err payload starts.
	ResultPayload = 4
	// StateResult: ok's option discriminant, the state's (ptr, len); err's
	// string (ptr, len) is at ResultPayload.
	StateOption = 4
	StatePtr    = 8
	StateLen    = 12
	// RequestResult: ok's response option discriminant and (ptr, len).
	ResponseOption = 16
	ResponsePtr    = 20
	ResponseLen    = 24
	// System-info fields: three strings (ptr, len), a u32 and three u64.
	SysInfoHostname        = 0
	SysInfoOSType          = 8
	SysInfoOSRelease       = 16
	SysInfoCPUCount        = 24
	SysInfoMemoryTotal     = 32
	SysInfoMemoryAvailable = 40
	SysInfoUptime          = 48
)

// theater:simple/runtime, as the canonical ABI lowers it: a string or list
// parameter is (ptr, len), an option parameter its discriminant then its
// payload; a result wider than one core value is written to a return area
// whose address is the last parameter.
var (
	GetActorID = Import{Module: RuntimeModule, Name: "get-actor-id",
		Signature: Signature{Params: []api.ValueType{I32}}, ParamNames: []string{"retptr"}, Result: String}
	GetActorName = Import{Module: RuntimeModule, Name: "get-actor-name",
		Signature: Signature{Params: []api.ValueType{I32}}, ParamNames: []string{"retptr"}, Result: String}
	// GetCurrentTime returns ms since the Unix epoch as a core i64.
	GetCurrentTime = Import{Module: RuntimeModule, Name: "get-current-time",
		Signature: Signature{Results: []api.ValueType{I64}}}
	GetEnv = Import{Module: RuntimeModule, Name: "get-env",
		Signature:  Signature{Params: []api.ValueType{I32, I32, I32}},
		ParamNames: []string{"name_ptr", "name_len", "retptr"}, Result: OptionString}
	Log = Import{Module: RuntimeModule, Name: "log",
		Signature:  Signature{Params: []api.ValueType{I32, I32, I32, I32, I32}},
		ParamNames: []string{"level_ptr", "level_len", "message_ptr", "message_len", "retptr"}, Result: ResultString}
	RecordMetric = Import{Module: RuntimeModule, Name: "record-metric",
		Signature:  Signature{Params: []api.ValueType{I32, I32, F64, I32}},
		ParamNames: []string{"name_ptr", "name_len", "value", "retptr"}, Result: ResultString}
	RecordEvent = Import{Module: RuntimeModule, Name: "record-event",
		Signature:  Signature{Params: []api.ValueType{I32, I32, I32, I32, I32}},
		ParamNames: []string{"type_ptr", "type_len", "data_ptr", "data_len", "retptr"}, Result: ResultString}
	GetTheaterVersion = Import{Module: RuntimeModule, Name: "get-theater-version",
		Signature: Signature{Params: []api.ValueType{I32}}, ParamNames: []string{"retptr"}, Result: String}
	GetSystemInfo = Import{Module: RuntimeModule, Name: "get-system-info",
		Signature: Signature{Params: []api.ValueType{I32}}, ParamNames: []string{"retptr"}, Result: SystemInfo}
	// Shutdown's option<list<u8>> flattens to (is-some, ptr, len).
	Shutdown = Import{Module: RuntimeModule, Name: "shutdown",
		Signature:  Signature{Params: []api.ValueType{I32, I32, I32, I32}},
		ParamNames: []string{"data_is_some", "data_ptr", "data_len", "retptr"}, Result: ResultString}
)

// theater:simple/message-server-host (wit/theater-message.wit): both take
// the target (string) and the message (list<u8>) and write a 12-byte result
// area; request's ok carries the response, allocated with the caller's
// cabi_realloc.
var (
	Send = Import{Module: MessageHostModule, Name: "send",
		Signature:  Signature{Params: []api.ValueType{I32, I32, I32, I32, I32}},
		ParamNames: []string{"id_ptr", "id_len", "msg_ptr", "msg_len", "retptr"}, Result: ResultString}
	Request = Import{Module: MessageHostModule, Name: "request",
		Signature:  Signature{Params: []api.ValueType{I32, I32, I32, I32, I32}},
		ParamNames: []string{"id_ptr", "id_len", "msg_ptr", "msg_len", "retptr"}, Result: ResultBytes}
)

// Imports is every function the host provides, in the WIT's order.
var Imports = []Import{
	GetActorID, GetActorName, GetCurrentTime, GetEnv, Log,
	RecordMetric, RecordEvent, GetTheaterVersion, GetSystemInfo, Shutdown,
	Send, Request,
}

// The actor's exports.
var (
	// Init is theater:simple/actor#init: (state option<list<u8>>: is-some,
	// ptr, len; params tuple<string>: the actor id's ptr, len) -> a
	// pointer to a StateResult.
	Init = Export{Name: "theater:simple/actor#init",
		Signature:  Signature{Params: []api.ValueType{I32, I32, I32, I32, I32}, Results: []api.ValueType{I32}},
		ParamNames: []string{"state-is-some", "state-ptr", "state-len", "actor-id-ptr", "actor-id-len"},
		Required:   true, Result: StateResult, WIT: "wit/theater-simple.wit"}
	InitPost = PostReturn(Init)
	// Tick is the optional troupe:actor/ticker#tick: (state, now-ms u64)
	// -> a pointer to a StateResult, laid out like init's.
	Tick = Export{Name: "troupe:actor/ticker#tick",
		Signature:  Signature{Params: []api.ValueType{I32, I32, I32, I64}, Results: []api.ValueType{I32}},
		ParamNames: []string{"state-is-some", "state-ptr", "state-len", "now-ms"},
		Result:     StateResult, WIT: "wit/troupe-ticker.wit"}
	TickPost = PostReturn(Tick)
	// HandleSend is the optional
	// theater:simple/message-server-client#handle-send: (state, msg
	// list<u8>: ptr, len) -> a pointer to a StateResult.
	HandleSend = Export{Name: "theater:simple/message-server-client#handle-send",
		Signature:  Signature{Params: []api.ValueType{I32, I32, I32, I32, I32}, Results: []api.ValueType{I32}},
		ParamNames: []string{"state-is-some", "state-ptr", "state-len", "msg-ptr", "msg-len"},
		Result:     StateResult, WIT: "wit/theater-message.wit"}
	HandleSendPost = PostReturn(HandleSend)
	// HandleRequest is the optional
	// theater:simple/message-server-client#handle-request: (state,
	// request id string, data list<u8>) -> a pointer to a RequestResult.
	HandleRequest = Export{Name: "theater:simple/message-server-client#handle-request",
		Signature:  Signature{Params: []api.ValueType{I32, I32, I32, I32, I32, I32, I32}, Results: []api.ValueType{I32}},
		ParamNames: []string{"state-is-some", "state-ptr", "state-len", "rid-ptr", "rid-len", "data-ptr", "data-len"},
		Result:     RequestResult, WIT: "wit/theater-message.wit"}
	HandleRequestPost = PostReturn(HandleRequest)
	// Realloc is the canonical ABI's allocator, (old ptr, old size, align,
	// new size) -> ptr: required, since init always receives the actor id,
	// a string the host lowers into the guest's memory.
	Realloc = Export{Name: "cabi_realloc",
		Signature:  Signature{Params: []api.ValueType{I32, I32, I32, I32}, Results: []api.ValueType{I32}},
		ParamNames: []string{"old-ptr", "old-size", "align", "new-size"}, Required: true}
	// Initialize is a reactor's initializer, called once before anything
	// else when exported.
	Initialize = Export{Name: "_initialize"}
	// ResultArea is the optional troupe:actor/result-area#result-area, a
	// Troupe extension of the canonical ABI (wit/troupe-result-area.wit):
	// () -> a pointer to a ResultAreaInfo, where the guest says which
	// buffer of its own the host may write small runtime-call results
	// into, borrowed, instead of calling cabi_realloc for each.
	ResultArea = Export{Name: "troupe:actor/result-area#result-area",
		Signature: Signature{Results: []api.ValueType{I32}},
		Result:    ResultAreaInfo, WIT: "wit/troupe-result-area.wit"}
	ResultAreaPost = PostReturn(ResultArea)
)

// ResultAreaInfo is what ResultArea returns a pointer to, tuple<u32, u32>:
// the area's address @0 and its capacity in bytes @4.
var ResultAreaInfo = Layout{Size: 8, Align: 4}

// Exports is every function an actor may export.
var Exports = []Export{Init, InitPost, Tick, TickPost, HandleSend, HandleSendPost, HandleRequest, HandleRequestPost, Realloc, Initialize, ResultArea, ResultAreaPost}

// Memory is the name of the linear memory every actor must export.
const Memory = "memory"

// ImportModules returns the modules of Imports, in order of appearance.
func ImportModules() []string {
	var mods []string
	for _, f := range Imports {
		if !slices.Contains(mods, f.Module) {
			mods = append(mods, f.Module)
		}
	}
	return mods
}

// LookupImport finds the import module.name in the table.
func LookupImport(module, name string) (Import, bool) {
	for _, f := range Imports {
		if f.Module == module && f.Name == name {
			return f, true
		}
	}
	return Import{}, false
}

// ImportsOf returns the table's functions of module.
func ImportsOf(module string) []Import {
	var out []Import
	for _, f := range Imports {
		if f.Module == module {
			out = append(out, f)
		}
	}
	return out
}

// Hint says what an export's parameters are and where it is declared, for
// a message about a module that exports it with another type.
func (e Export) Hint() string {
	if len(e.ParamNames) == 0 || e.WIT == "" {
		return ""
	}
	return fmt.Sprintf(" (%s; see %s)", strings.Join(e.ParamNames, ", "), e.WIT)
}

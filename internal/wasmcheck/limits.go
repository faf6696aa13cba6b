package wasmcheck

// Limits bound a module's structure. Every field is a hard bound.
type Limits struct {
	// ModuleBytes bounds the module's size.
	ModuleBytes uint64
	// Types, Imports, Functions (defined ones), Tables and Memories
	// (imported and defined), Globals, Exports, ElementSegments,
	// ElementItems (over all segments) and DataSegments bound the module's
	// counts: wazero's decoder makes a slice or map of each.
	Types           uint32
	TypeArity       uint32 // params plus results of one function type
	Imports         uint32
	Functions       uint32
	Tables          uint32
	Memories        uint32
	Globals         uint32
	Exports         uint32
	ElementSegments uint32
	ElementItems    uint64
	DataSegments    uint32
	// TableElements bounds a table's declared minimum (BoundTables bounds
	// its maximum).
	TableElements uint32

	// Per function: the body's size, its declared locals, how deep blocks
	// nest, its blocks (block, loop, if and else: each makes basic blocks,
	// and wazero's passes are quadratic in them), its loops, its branch targets (br,
	// br_if, every target of a br_table: each an edge into a block whose
	// predecessor list wazero searches linearly), and the targets of one
	// br_table.
	FunctionBytes uint32
	Locals        uint32
	Nesting       uint32
	Blocks        uint32
	Loops         uint32
	BranchTargets uint32
	BranchTable   uint32
	// BlocksInLoops bounds the sum, over a function's blocks, of the loops
	// around each (wazero's loop analysis walks them), LocalsTimesBlocks
	// its locals times its blocks (its SSA construction looks up locals
	// block by block).
	BlocksInLoops     uint64
	LocalsTimesBlocks uint64
}

// The figures Default is calibrated on, measured with Check (Stats): the
// Go examples (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, Go 1.26: the
// largest, hello, is 3.4 MB) and the main module of a trivial JavaScript
// actor built by componentize-js 0.23.0 (12.0 MB of a 12.1 MB component;
// its functions are StarlingMonkey's and SpiderMonkey's, whatever the
// actor's JavaScript). Each bound is at least ten times the larger of the
// two; docs/performance.md has the table and the command.

// Default is the host's: every bound at least ten times what the Go
// toolchain and componentize-js emit.
var Default = Limits{
	// JS 12,026,226 bytes, Go 3,383,020.
	ModuleBytes: 128 << 20,
	// JS 140, Go 17.
	Types: 10_000,
	// JS 18, Go 6; the web's JavaScript API allows 1,000 parameters.
	TypeArity: 1_000,
	// JS 66, Go 22.
	Imports: 10_000,
	// JS 12,621, Go 2,172.
	Functions: 200_000,
	// JS 1, Go 1.
	Tables: 100,
	// WebAssembly 2.0 has one memory; wazero refuses a second.
	Memories: 1,
	// JS 1, Go 8.
	Globals: 10_000,
	// JS 10, Go 7 (the component glue's shim module: 60).
	Exports: 10_000,
	// JS 1, Go 1.
	ElementSegments: 10_000,
	// JS 7,697, Go 2,172.
	ElementItems: 1 << 20,
	// Go 37,398 (Go emits a segment per run of non-zero data, growing with
	// the binary), JS 10,000.
	DataSegments: 1_000_000,
	// Go's function table: 2,172 entries; see MaxTableElements.
	TableElements: MaxTableElements,

	// JS 171,628 bytes, Go 29,238.
	FunctionBytes: 2 << 20,
	// JS 118, Go 20; the web's JavaScript API allows 50,000.
	Locals: 50_000,
	// Go 549 (its resumption points nest a block each), JS 456.
	Nesting: 8_192,
	// JS 5,352, Go 799.
	Blocks: 60_000,
	// JS 392, Go 3. Loops cost wazero's loop analysis about three times
	// what blocks cost.
	Loops: 4_096,
	// JS 5,188, Go 1,382.
	BranchTargets: 65_536,
	// Go 965, JS 454.
	BranchTable: 16_384,
	// JS 10,640, Go 797. 4,096 loops nested around 56,000 blocks (2.3e8)
	// took wazero 173 s; 2^20 is about 0.8 s of it.
	BlocksInLoops: 1 << 20,
	// JS 200,600 (118 locals, 1,700 blocks), Go 5,940. 50,000 locals
	// across 60,000 blocks (3e9) took 106 s; 2^24 is about 0.6 s of it.
	LocalsTimesBlocks: 1 << 24,
}

// Unlimited is bounded only by the format: for measuring a module.
var Unlimited = Limits{
	ModuleBytes: 1<<64 - 1, Types: 1<<32 - 1, TypeArity: 1<<32 - 1, Imports: 1<<32 - 1, Functions: 1<<32 - 1,
	Tables: 1<<32 - 1, Memories: 1<<32 - 1, Globals: 1<<32 - 1, Exports: 1<<32 - 1,
	ElementSegments: 1<<32 - 1, ElementItems: 1<<64 - 1, DataSegments: 1<<32 - 1, TableElements: 1<<32 - 1,
	FunctionBytes: 1<<32 - 1, Locals: 1<<32 - 1, Nesting: 1<<32 - 1, Blocks: 1<<32 - 1, Loops: 1<<32 - 1,
	BranchTargets: 1<<32 - 1, BranchTable: 1<<32 - 1, BlocksInLoops: 1<<64 - 1, LocalsTimesBlocks: 1<<64 - 1,
}

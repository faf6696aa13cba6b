package wasmcomponent

import (
	"fmt"
)

// wit-component lowers an import that needs the main module's memory or
// realloc before the main module exists, so it binds the import to a
// "shim" module's function that only forwards its arguments through a
// table (call_indirect), instantiates the main module, lowers the function
// with the main module's memory, and has a "fixup" module's active element
// segment put the lowered function into the shim's table. Following an
// import through that indirection is interpreting those two small modules,
// which is done here strictly: a shim function must be exactly "local.get
// each parameter; i32.const slot; call_indirect; end" and a fixup module
// nothing but imports, element segments and a start function.

// shimSlot is where a shim function forwards: a slot of the table the shim
// exports as table.
type shimSlot struct {
	table string
	slot  uint32
}

// isShim reports whether core instance inst is an instance of a shim
// module: no imports, no start, one table, which it exports, and only
// exported functions that forward through it.
func (rd *reducer) isShim(inst uint32) (bool, error) {
	switch rd.roles[inst] {
	case roleShim:
		return true, nil
	case roleMain, roleFixup, roleAdapter:
		return false, nil
	}
	if rd.notShim[inst] {
		return false, nil
	}
	ci := rd.coreInstance(inst)
	if ci == nil || !ci.instantiate {
		return false, nil
	}
	// Decided once per instance: a negative answer is kept too.
	rd.notShim[inst] = true
	m, err := rd.module(ci.module, true)
	if err != nil {
		return false, err
	}
	if len(m.imports) != 0 || m.start.set || m.tables != 1 || len(m.funcTypes) == 0 {
		return false, nil
	}
	if _, ok := m.exportOf(externTable, 0); !ok {
		return false, nil
	}
	for _, x := range m.exports {
		switch x.kind {
		case externFunc:
			if _, err := shimTarget(m, x.idx); err != nil {
				return false, nil // not a shim: the caller treats it as another module
			}
		case externTable:
		default:
			return false, nil
		}
	}
	if len(m.bodies) != len(m.funcTypes) {
		return false, nil
	}
	delete(rd.notShim, inst)
	rd.roles[inst] = roleShim
	return true, nil
}

// shimTarget decodes the body of shim function fn.
func shimTarget(m *coreModule, fn uint32) (shimSlot, error) {
	if uint64(fn) >= uint64(len(m.bodies)) {
		return shimSlot{}, fmt.Errorf("function %d has no body", fn)
	}
	sig, ok := m.funcType(fn)
	if !ok {
		return shimSlot{}, fmt.Errorf("function %d has no type", fn)
	}
	r := newReader(m.bodies[fn], 0)
	if locals := r.u32(); locals != 0 {
		return shimSlot{}, fmt.Errorf("function %d declares locals", fn)
	}
	for i := range sig.Params {
		if op, idx := r.byte(), r.u32(); op != 0x20 || idx != uint32(i) {
			return shimSlot{}, fmt.Errorf("function %d does not forward parameter %d", fn, i)
		}
	}
	if op := r.byte(); op != 0x41 {
		return shimSlot{}, fmt.Errorf("function %d does not push a slot", fn)
	}
	slot := r.s32()
	if op := r.byte(); op != 0x11 {
		return shimSlot{}, fmt.Errorf("function %d does not call_indirect", fn)
	}
	typeIdx, table := r.u32(), r.u32()
	if end := r.byte(); end != 0x0b || !r.done() || r.err != nil {
		return shimSlot{}, fmt.Errorf("function %d does more than forward", fn)
	}
	if uint64(typeIdx) >= uint64(len(m.types)) || !m.types[typeIdx].Equal(sig) {
		return shimSlot{}, fmt.Errorf("function %d forwards with another type", fn)
	}
	if table != 0 || slot < 0 {
		return shimSlot{}, fmt.Errorf("function %d forwards through table %d slot %d", fn, table, slot)
	}
	x, ok := m.exportOf(externTable, 0)
	if !ok {
		return shimSlot{}, fmt.Errorf("the shim's table is not exported")
	}
	return shimSlot{table: x.name, slot: uint32(slot)}, nil
}

// funcRef is a core instance's function export.
type funcRef struct {
	inst uint32
	name string
}

// throughShim returns the core instance's export that fills the slot shim
// instance inst's export name forwards to.
func (rd *reducer) throughShim(inst uint32, name string) (uint32, string, error) {
	m, err := rd.module(rd.coreInstance(inst).module, true)
	if err != nil {
		return 0, "", err
	}
	x, ok := m.exportNamed(name, externFunc)
	if !ok {
		return 0, "", &MalformedError{Msg: fmt.Sprintf("shim instance %d exports no function %q", inst, name)}
	}
	slot, err := shimTarget(m, x.idx)
	if err != nil {
		return 0, "", unsupported("shim function %q: %v", name, err)
	}
	var filled []funcRef
	if err := rd.spend(len(rd.c.spaces[sortCoreInstance])); err != nil {
		return 0, "", err
	}
	for f := range rd.c.spaces[sortCoreInstance] {
		fn, ok, err := rd.fixupFill(uint32(f), inst, slot)
		if err != nil {
			return 0, "", err
		}
		if ok {
			filled = append(filled, fn)
			rd.roles[uint32(f)] = roleFixup
		}
	}
	switch len(filled) {
	case 0:
		return 0, "", unsupported("shim slot %d (%q) is never filled", slot.slot, name)
	case 1:
		return filled[0].inst, filled[0].name, nil
	}
	return 0, "", unsupported("shim slot %d (%q) is filled %d times", slot.slot, name, len(filled))
}

// fixupFill reports the function that core instance f puts into the slot
// of shim instance shim's table, if f is a fixup instance that fills that
// slot: an export of one of f's argument instances.
func (rd *reducer) fixupFill(f, shim uint32, slot shimSlot) (funcRef, bool, error) {
	ci := rd.coreInstance(f)
	if ci == nil || !ci.instantiate || f == rd.main {
		return funcRef{}, false, nil
	}
	table, ok, err := rd.fixupTable(f, shim, slot.table)
	if err != nil || !ok {
		return funcRef{}, false, err
	}
	m, err := rd.module(ci.module, false)
	if err != nil {
		return funcRef{}, false, err
	}
	if err := rd.spend(len(m.elems)); err != nil {
		return funcRef{}, false, err
	}
	found, fn := false, int64(-1)
	for _, seg := range m.elems {
		if seg.table != table || slot.slot < seg.offset || uint64(slot.slot-seg.offset) >= uint64(len(seg.funcs)) {
			continue
		}
		// A later segment overwrites an earlier one, as instantiation does.
		found, fn = true, seg.funcs[slot.slot-seg.offset]
	}
	if !found {
		return funcRef{}, false, nil
	}
	if fn < 0 || fn >= int64(len(m.funcImports)) {
		return funcRef{}, false, unsupported("a fixup puts its own function or null into shim slot %d", slot.slot)
	}
	imp := m.funcImports[fn]
	arg, ok := argNamed(ci.args, imp.module)
	if !ok {
		return funcRef{}, false, unsupported("a fixup module's import %s %s has no instantiation argument", imp.module, imp.name)
	}
	return funcRef{arg, imp.name}, true, nil
}

// fixupTable returns the table index, in core instance f's module, of the
// table that shim instance shim exports as name, when f imports it.
func (rd *reducer) fixupTable(f, shim uint32, name string) (uint32, bool, error) {
	ci := rd.coreInstance(f)
	m, err := rd.module(ci.module, false)
	if err != nil {
		return 0, false, err
	}
	if err := rd.spend(len(m.imports)); err != nil {
		return 0, false, err
	}
	tableIdx := uint32(0)
	for _, imp := range m.imports {
		if imp.kind != externTable {
			continue
		}
		if arg, ok := argNamed(ci.args, imp.module); ok && arg == shim && imp.name == name {
			return tableIdx, true, nil
		}
		tableIdx++
	}
	return 0, false, nil
}

// isFixup reports whether core instance f is a fixup: a module of imports
// and element segments only (and a start function) that imports a shim's
// table.
func (rd *reducer) isFixup(f uint32) (bool, error) {
	ci := rd.coreInstance(f)
	m, err := rd.module(ci.module, false)
	if err != nil {
		return false, err
	}
	if len(m.funcTypes) != 0 || m.tables != 0 || len(m.exports) != 0 {
		return false, nil
	}
	if err := rd.spend(len(m.imports)); err != nil {
		return false, err
	}
	importsShimTable := false
	for _, imp := range m.imports {
		switch imp.kind {
		case externFunc:
		case externTable:
			arg, ok := argNamed(ci.args, imp.module)
			if !ok {
				return false, nil
			}
			isShim, err := rd.isShim(arg)
			if err != nil || !isShim {
				return false, err
			}
			importsShimTable = true
		default:
			return false, nil
		}
	}
	return importsShimTable, nil
}

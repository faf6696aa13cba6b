package wasmcheck

// names reads the "name" custom section. wazero's decoder does not keep
// within a subsection's declared size and sizes its maps from the counts it
// reads, so the section must be well formed to the byte: module name (0),
// function names (1), local names (2), each at most once and in order,
// every count within the bytes of its subsection. Other subsections are
// skipped by their size, as wazero does.
func (c *checker) names(r *reader) error {
	last := -1
	for !r.done() {
		at := r.off()
		id, _ := r.byte()
		size, err := r.u32()
		if err != nil {
			return err
		}
		sub, err := r.sub(size, "name subsection")
		if err != nil {
			return err
		}
		if id > 2 {
			continue
		}
		if int(id) <= last {
			return malformed(at, "name subsection %d out of order or repeated", id)
		}
		last = int(id)
		switch id {
		case 0:
			err = sub.name("module name")
		case 1:
			err = c.nameMap(sub)
		case 2:
			var n uint32
			if n, err = sub.count("", "%d local name maps", 0, 2); err != nil {
				return err
			}
			for i := uint32(0); i < n && err == nil; i++ {
				if _, err = sub.u32(); err == nil {
					err = c.nameMap(sub)
				}
			}
		}
		if err != nil {
			return err
		}
		if !sub.done() {
			return malformed(sub.off(), "name subsection %d has %d bytes past its content", id, sub.remaining())
		}
	}
	return nil
}

// nameMap reads a vector of (index, name).
func (c *checker) nameMap(r *reader) error {
	n, err := r.count("", "%d names", 0, 2)
	if err != nil {
		return err
	}
	c.s.NameEntries += uint64(n)
	for i := uint32(0); i < n; i++ {
		if _, err := r.u32(); err != nil {
			return err
		}
		if err := r.name("name"); err != nil {
			return err
		}
	}
	return nil
}

package textutil

import "unicode/utf8"

// Ellipsis marks text that Truncate cut.
const Ellipsis = "…"

// Truncate returns s when it fits in max bytes, and otherwise its longest
// prefix that ends on a UTF-8 character boundary followed by Ellipsis, all
// within max bytes: API fields count bytes (an Event's note is at most
// 1024), and a cut inside a character would leave invalid UTF-8 that the
// API server or a terminal shows as garbage. With max below the size of
// Ellipsis, the cut text goes without it; max <= 0 gives "".
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	if max <= 0 {
		return ""
	}
	keep := max - len(Ellipsis)
	mark := Ellipsis
	if keep < 0 {
		keep, mark = max, ""
	}
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + mark
}

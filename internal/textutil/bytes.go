package textutil

import "fmt"

// FormatBytes writes n in binary units with one decimal, "3.2 MiB", for
// messages about memory; below 1 KiB, in bytes ("512 B").
func FormatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

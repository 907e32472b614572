// Package units writes sizes for people: the space quota's sentences, and
// raftkvctl's columns.
package units

import "fmt"

// Bytes writes n bytes in the largest binary unit that keeps it at 1 or
// more, with one decimal: 512 B, 1.5 KiB, 2.0 GiB.
func Bytes(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n)/1024, 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, units[i])
}

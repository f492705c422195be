//go:build unix

package loadclient

import (
	"runtime"
	"syscall"
	"time"
)

// SelfUsage reads getrusage(RUSAGE_SELF). ok is false where it is not available.
func SelfUsage() (u Usage, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return Usage{}, false
	}
	u.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	u.PeakRSS = int64(ru.Maxrss)
	if runtime.GOOS == "linux" {
		u.PeakRSS <<= 10 // Linux reports kilobytes, the BSDs and macOS bytes
	}
	return u, true
}

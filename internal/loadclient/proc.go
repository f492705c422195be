package loadclient

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"time"
)

// RSS is the process's resident set size in bytes (VmRSS of
// /proc/self/status), or 0 where /proc is not available.
func RSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

// Usage is what the process has used so far: CPU time in user and kernel
// mode (all threads) and its peak RSS.
type Usage struct {
	CPU     time.Duration
	PeakRSS int64 // bytes; 0 where unknown
}

package main

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// rss is the process's resident set size in bytes (VmRSS of
// /proc/self/status), or 0 where /proc is not available.
func rss() int64 {
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

func goroutines() int { return runtime.NumGoroutine() }

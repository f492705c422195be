//go:build !unix

package loadclient

// SelfUsage is not available here.
func SelfUsage() (Usage, bool) { return Usage{}, false }

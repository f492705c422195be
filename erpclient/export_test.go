package erpclient

// EncodeQuery exposes the query-string encoder the client sends with, so the
// injection fuzz target can check the exact bytes that go on the wire.
var EncodeQuery = encodeQuery

// MaxRefreshes is how many background refreshes of stale entries run at once.
const MaxRefreshes = maxRefreshes

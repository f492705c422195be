package graph_test

import (
	"testing"
)

func TestSmoke(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, login := range []string{"anna.petrova", "boris.georgiev"} {
		e.do(t, login, `{ __typename }`, nil, nil)
		e.do(t, login, `{ me { login } }`, nil, nil)
		e.count.reset()
		st := e.sim.Stats()
		var data any
		r := e.do(t, login, dashboardQuery, nil, &data)
		h, sets := e.count.snapshot()
		st2 := e.sim.Stats()
		t.Logf("%s errors %v http %d sets %v sim %d parts %d", login, r.Errors, h, sets, st2.DomainRequests-st.DomainRequests, st2.BatchParts-st.BatchParts)
	}
}

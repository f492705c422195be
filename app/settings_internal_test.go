package app

import "testing"

// Every row of the registry is complete: a variable, documentation and a
// parser, and no variable or flag twice.
func TestRegistry_RowsComplete(t *testing.T) {
	envs, flags := map[string]bool{}, map[string]bool{}
	for _, s := range registry {
		if s.env == "" || s.help == "" || s.parse == nil {
			t.Errorf("row %q is incomplete", s.env)
		}
		if envs[s.env] || (s.flag != "" && flags[s.flag]) {
			t.Errorf("row %q repeats a variable or flag", s.env)
		}
		envs[s.env], flags[s.flag] = true, true
	}
}

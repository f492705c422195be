package mutation

import "testing"

func TestKeyFingerprints(t *testing.T) {
	ref := referenceFor("user-1", "key-1")
	if len(ref) != 20 || ref[:2] != "eg" || ref == referenceFor("user-2", "key-1") || ref != referenceFor("user-1", "key-1") {
		t.Errorf("reference %q: want 20 characters, per user and key, stable", ref)
	}
	if fp := keyFingerprint("user-1", "key-1"); len(fp) != 16 || keyFingerprint("u", "") != "" {
		t.Errorf("fingerprint %q", fp)
	}
}

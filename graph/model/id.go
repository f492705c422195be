package model

import (
	"encoding/base64"
	"errors"
	"strings"
	"unsafe"

	"github.com/google/uuid"
)

// ErrInvalidID is returned for a global ID that is not one erpgraph issued.
var ErrInvalidID = errors.New("model: invalid ID")

// EncodeID returns the opaque global ID of the ERP.net entity guid of GraphQL type typ: base64 of "Type:guid".
// Every object of an answer has one, so it is built with a single allocation: "Type:guid" on the stack, encoded
// into the bytes the string then shares (never written again).
func EncodeID(typ, guid string) string {
	var raw [128]byte
	src := append(append(append(raw[:0], typ...), ':'), guid...)
	out := make([]byte, base64.RawURLEncoding.EncodedLen(len(src)))
	base64.RawURLEncoding.Encode(out, src)
	return unsafe.String(unsafe.SliceData(out), len(out))
}

// DecodeID parses a global ID into its GraphQL type name and ERP.net GUID (canonical lower-case form). IDs that
// are not base64 of "Type:guid" with a well-formed GUID answer ErrInvalidID.
func DecodeID(id string) (typ, guid string, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(id, "="))
	if err != nil {
		return "", "", ErrInvalidID
	}
	typ, g, ok := strings.Cut(string(raw), ":")
	if !ok || typ == "" {
		return "", "", ErrInvalidID
	}
	u, err := uuid.Parse(g)
	if err != nil || len(g) != 36 {
		return "", "", ErrInvalidID
	}
	return typ, u.String(), nil
}

// DecodeIDOf parses a global ID that must be of GraphQL type typ.
func DecodeIDOf(typ, id string) (string, error) {
	t, guid, err := DecodeID(id)
	if err != nil || t != typ {
		return "", ErrInvalidID
	}
	return guid, nil
}

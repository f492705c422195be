package odata

import (
	"errors"
	"fmt"
	"net/http"
)

// Envelope codes and types erpsim answers with. ERP.net does not document
// them per case; these are stable so clients and tests can tell the cases
// apart (docs/erpnet.md § Open questions lists what ERP.net leaves undocumented).
const (
	codeQuery           = 1001 // malformed query option or $filter
	codeNotSupported    = 1002 // operator or feature ERP.net does not support (or, ne, gt, lt, not)
	codeNotFound        = 1004 // unknown entity set, key or path
	codeMethod          = 1005 // method not allowed on the resource
	codeForbidden       = 1003 // the token lacks the "update" scope
	codeValidation      = 2000 // invalid write: unknown property, bad value, missing reference
	codeReadOnly        = 2029 // the document is released (or later) and cannot be changed
	codeConcurrency     = 2106 // ObjectVersion in the body does not match the stored one
	codeBatch           = 1006 // malformed $batch body
	codeStateTransition = 2031 // ChangeState or MakeVoid not allowed from the document's state

	typeQuery           = "Microsoft.OData.ODataException"
	typeNotSupported    = "System.NotSupportedException"
	typeNotFound        = "Aloe.SystemFrameworks.Domain.ObjectNotFoundException"
	typeMethod          = "System.NotSupportedException"
	typeForbidden       = "System.UnauthorizedAccessException"
	typeValidation      = "Aloe.SystemFrameworks.Domain.ValidationException"
	typeReadOnly        = "Aloe.SystemFrameworks.Domain.BusinessLogic.ReadOnlyDocumentException"
	typeConcurrency     = "Aloe.SystemFrameworks.Domain.ObjectVersionMismatchException"
	typeBatch           = "Microsoft.OData.ODataException"
	typeStateTransition = "Aloe.SystemFrameworks.Domain.BusinessLogic.InvalidStateTransitionException"
)

// apiError is an error answered with ERP.net's envelope.
type apiError struct {
	status, code int
	typ, msg     string
}

func (e *apiError) Error() string { return fmt.Sprintf("odata: %d %s: %s", e.status, e.typ, e.msg) }

func errorf(status, code int, typ, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, typ: typ, msg: fmt.Sprintf(format, args...)}
}

func badQuery(format string, args ...any) *apiError {
	return errorf(http.StatusInternalServerError, codeQuery, typeQuery, format, args...)
}

func notSupported(format string, args ...any) *apiError {
	return errorf(http.StatusInternalServerError, codeNotSupported, typeNotSupported, format, args...)
}

func notFound(format string, args ...any) *apiError {
	return errorf(http.StatusNotFound, codeNotFound, typeNotFound, format, args...)
}

func invalid(format string, args ...any) *apiError {
	return errorf(http.StatusInternalServerError, codeValidation, typeValidation, format, args...)
}

// writeErr answers err with the envelope; errors that are not apiErrors are
// internal and answered without detail.
func writeErr(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = errorf(http.StatusInternalServerError, 1, "System.Exception", "Internal error.")
	}
	WriteError(w, ae.status, ae.code, ae.typ, ae.msg)
}

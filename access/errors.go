package access

import "errors"

var (
	// ErrForbidden is matched (errors.Is) by every refusal of a user as a whole: internal users when they are not
	// allowed, service (SystemUserNoLogin) tokens, tokens without a user id. The error's PublicMessage is safe to
	// show to the user.
	ErrForbidden = errors.New("access: forbidden")
	// ErrNoAccess means the scope cannot see an entity set at all (for example invoices for a role without billing).
	// No query is sent; callers answer an empty list or NOT_FOUND.
	ErrNoAccess = errors.New("access: no access to this data")
	// ErrNotVisible is returned by Scope.Check for an entity outside the scope. Callers answer it exactly like an
	// entity that does not exist.
	ErrNotVisible = errors.New("access: entity not visible")
)

// ForbiddenError is a refusal of the user, with a plain message for them.
type ForbiddenError struct {
	Message string // plain words for the user; no internal detail
}

func (e *ForbiddenError) Error() string { return "access: forbidden: " + e.Message }

// Is makes errors.Is(err, ErrForbidden) true.
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden }

// PublicMessage is the message for the user.
func (e *ForbiddenError) PublicMessage() string { return e.Message }

func forbidden(msg string) error { return &ForbiddenError{Message: msg} }

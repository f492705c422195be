// Package mutation is erpgraph's write side: sales orders created, changed, submitted and cancelled for portal
// users. Every mutation is checked against the user's access scope and role before the first upstream byte,
// sent as one atomic ERP.net changeset under the service identity, version-checked through ObjectVersion, made
// idempotent by client keys (including the case where ERP.net committed but the answer was lost), rate limited
// per user, and audited. It knows nothing of GraphQL: graph/ maps its inputs and outcomes.
package mutation

import (
	"time"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/errcode"
)

// Codes of userErrors and of the errors a mutation answers with (extensions.code), from the one registry.
var (
	CodeNotFound               = errcode.NotFound            // no such customer, order, line or product, or one outside the user's access
	CodeForbidden              = errcode.Forbidden           // visible, but the user's role does not allow this write
	CodeBadUserInput           = errcode.BadUserInput        // malformed or out-of-bounds input
	CodeStaleObject            = errcode.StaleObject         // expectedVersion is not the order's current version
	CodeDocumentReadOnly       = errcode.DocumentReadOnly    // the order is submitted, released or void
	CodeRejected               = errcode.RejectedByERP       // ERP.net refused the write (validation, business rule, state rule)
	CodeUpstreamUnavailable    = errcode.UpstreamUnavailable // ERP.net failed or was busy; the message says whether anything was written
	CodeIdempotencyKeyReused   = errcode.IdempotencyKeyReused
	CodeIdempotencyInProgress  = errcode.IdempotencyInProgress
	CodeIdempotencyUnavailable = errcode.IdempotencyUnavailable
	CodeWritesDisabled         = errcode.WritesDisabled
	CodeRateLimited            = errcode.RateLimited
	CodeInternal               = errcode.Internal
)

// Action names a mutation in audit records and idempotency fingerprints.
type Action string

// The actions.
const (
	ActionCreate Action = "createSalesOrder"
	ActionUpdate Action = "updateSalesOrder"
	ActionSubmit Action = "submitSalesOrder"
	ActionCancel Action = "cancelSalesOrder"
)

// Actor is who a mutation acts for.
type Actor struct {
	UserID    string        // the ERP.net user GUID (or token subject)
	Scope     *access.Scope // the user's access scope
	RequestID string
	// IdempotencyKey is the client's key ("" for none): the idempotencyKey argument or the Idempotency-Key header.
	IdempotencyKey string
}

// LineInput is one new order line.
type LineInput struct {
	ProductID string   `json:"product"`        // GUID
	Quantity  string   `json:"quantity"`       // decimal text
	UnitID    string   `json:"unit,omitempty"` // GUID of the measurement unit; "" = the product's
	Field     []string `json:"-"`              // the input path, for userErrors
}

// CreateInput is createSalesOrder's input.
type CreateInput struct {
	CustomerID           string      `json:"customer"`
	ShipToCustomerID     string      `json:"shipTo,omitempty"`
	Lines                []LineInput `json:"lines"`
	RequiredDeliveryDate *time.Time  `json:"requiredDeliveryDate,omitempty"`
	CustomerReference    *string     `json:"customerReference,omitempty"`
	Notes                *string     `json:"notes,omitempty"`
}

// LineChange changes the quantity of an existing line.
type LineChange struct {
	LineID   string   `json:"line"`
	Quantity string   `json:"quantity"`
	Field    []string `json:"-"`
}

// UpdateInput is updateSalesOrder's input. Nil header fields stay as they are; an empty string clears a text.
type UpdateInput struct {
	OrderID              string       `json:"order"`
	ExpectedVersion      int          `json:"expectedVersion"`
	RequiredDeliveryDate *time.Time   `json:"requiredDeliveryDate,omitempty"`
	CustomerReference    *string      `json:"customerReference,omitempty"`
	Notes                *string      `json:"notes,omitempty"`
	AddLines             []LineInput  `json:"addLines,omitempty"`
	ChangeLines          []LineChange `json:"changeLines,omitempty"`
	RemoveLineIDs        []string     `json:"removeLines,omitempty"`
}

// SubmitInput is submitSalesOrder's input.
type SubmitInput struct {
	OrderID         string `json:"order"`
	ExpectedVersion int    `json:"expectedVersion"`
}

// CancelInput is cancelSalesOrder's input.
type CancelInput struct {
	OrderID         string `json:"order"`
	ExpectedVersion int    `json:"expectedVersion"`
	Reason          string `json:"reason,omitempty"`
}

// UserError is one refusal, shown to the client in the payload's userErrors.
type UserError struct {
	Field   []string `json:"field,omitempty"` // the input path, e.g. ["input","lines","2","quantity"]
	Message string   `json:"message"`
	Code    string   `json:"code"`
}

// Outcome is the result of one mutation. It is what an idempotent replay returns again.
type Outcome struct {
	OrderID        string      `json:"orderId,omitempty"`   // the created or changed order; "" when refused or deleted
	DeletedOrderID string      `json:"deletedId,omitempty"` // cancelSalesOrder of a draft
	Version        int         `json:"version,omitempty"`   // the order's ObjectVersion after the write
	CurrentVersion *int        `json:"currentVersion,omitempty"`
	Errors         []UserError `json:"errors,omitempty"`
	// Replayed: this outcome was stored for the idempotency key (or recovered from ERP.net after a lost answer)
	// and nothing was written now.
	Replayed bool `json:"-"`
	// Recovered: a replay found the order the first attempt created in ERP.net (its answer was lost).
	Recovered bool `json:"-"`
}

// Code is the first error's code, or "OK".
func (o Outcome) Code() string {
	if len(o.Errors) > 0 {
		return o.Errors[0].Code
	}
	return "OK"
}

func refuse(code, msg string, field ...string) Outcome {
	return Outcome{Errors: []UserError{{Field: field, Message: msg, Code: code}}}
}

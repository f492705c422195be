// Package model holds the GraphQL models of erpgraph. The entity models keep ERP.net references as GUIDs
// (CustomerID, ProductID ...) so that relations resolve lazily through the per-request loaders, and they keep
// multi-language texts and price fields raw so that resolvers can apply the request's language and the user's role.
package model

import "time"

// Texts is a multi-language text keyed by upper-case ISO 639-1 language code, as ERP.net sends it.
type Texts map[string]string

// Viewer is the signed-in user.
type Viewer struct {
	Login    string
	Name     string
	Email    *string
	UserType UserType
	Locale   *string
}

// CustomerAccess is one customer grant of the signed-in user.
type CustomerAccess struct {
	CustomerID       string
	ShipToCustomerID string // empty: the grant is not limited to a ship-to customer
	Role             CustomerRole
	Permissions      []Permission
	DaysBack         *int
}

// Customer is a Crm_Sales_Customers row.
type Customer struct {
	GUID                   string
	Number                 string
	Active                 bool
	PartyID                string
	CreditLimitRaw         *Money // shown only to roles with prices
	DefaultCurrencyID      string
	DefaultPaymentTermDays *int
}

// ID is the global ID.
func (c *Customer) ID() string { return EncodeID("Customer", c.GUID) }

// IsNode marks Customer as a Node.
func (*Customer) IsNode() {}

// Party is a General_Contacts_Parties row (a company or a person).
type Party struct {
	GUID   string
	Code   *string
	Names  Texts
	Type   PartyType
	Active bool
}

// ID is the global ID.
func (p *Party) ID() string { return EncodeID("Party", p.GUID) }

// IsNode marks Party as a Node.
func (*Party) IsNode() {}

// Document holds the fields every ERP.net document shares.
type Document struct {
	GUID         string
	DocumentNo   string
	DocumentDate time.Time
	State        DocumentState
	Void         bool
	CreatedAt    *time.Time
}

// SalesOrder is a Crm_Sales_SalesOrders row.
type SalesOrder struct {
	Document
	CustomerID              string
	ShipToCustomerID        string
	CustomerPurchaseOrderNo *string
	RequiredDeliveryDate    *time.Time
	PaymentDueDate          *time.Time
	Notes                   *string
	CurrencyID              string
	Version                 int // ObjectVersion, when read
}

// ID is the global ID.
func (o *SalesOrder) ID() string { return EncodeID("SalesOrder", o.GUID) }

// IsNode marks SalesOrder as a Node.
func (*SalesOrder) IsNode() {}

// SalesOrderLine is a Crm_Sales_SalesOrderLines row.
type SalesOrderLine struct {
	GUID                 string
	SalesOrderID         string
	LineNo               int
	ProductID            string
	Descriptions         Texts
	Quantity             *Quantity
	QuantityBase         *Quantity
	UnitPrice            *Money // nil unless the user may see the order's prices (hidePrices)
	LineAmount           *Money
	DiscountPercent      *Decimal
	RequiredDeliveryDate *time.Time
}

// ID is the global ID.
func (l *SalesOrderLine) ID() string { return EncodeID("SalesOrderLine", l.GUID) }

// IsNode marks SalesOrderLine as a Node.
func (*SalesOrderLine) IsNode() {}

// Invoice is a Crm_Invoicing_Invoices row.
type Invoice struct {
	Document
	CustomerID     string
	CurrencyID     string
	PaymentDueDate *time.Time
}

// ID is the global ID.
func (i *Invoice) ID() string { return EncodeID("Invoice", i.GUID) }

// IsNode marks Invoice as a Node.
func (*Invoice) IsNode() {}

// InvoiceLine is a Crm_Invoicing_InvoiceLines row.
type InvoiceLine struct {
	GUID         string
	InvoiceID    string
	LineNo       int
	ProductID    string
	Quantity     *Quantity
	UnitPrice    *Money
	LineAmount   *Money
	SalesOrderID string
}

// ID is the global ID.
func (l *InvoiceLine) ID() string { return EncodeID("InvoiceLine", l.GUID) }

// IsNode marks InvoiceLine as a Node.
func (*InvoiceLine) IsNode() {}

// Shipment is a Logistics_Shipment_Shipments row.
type Shipment struct {
	Document
	RecipientID          string // the ToParty
	ShipFromStoreID      string
	RequiredDeliveryDate *time.Time
}

// ID is the global ID.
func (s *Shipment) ID() string { return EncodeID("Shipment", s.GUID) }

// IsNode marks Shipment as a Node.
func (*Shipment) IsNode() {}

// ShipmentLine is a Logistics_Shipment_ShipmentLines row.
type ShipmentLine struct {
	GUID         string
	ShipmentID   string
	LineNo       int
	ProductID    string
	Quantity     *Quantity
	SalesOrderID string
}

// ID is the global ID.
func (l *ShipmentLine) ID() string { return EncodeID("ShipmentLine", l.GUID) }

// IsNode marks ShipmentLine as a Node.
func (*ShipmentLine) IsNode() {}

// Product is a General_Products_Products row.
type Product struct {
	GUID             string
	PartNumber       string
	Names            Texts
	Descriptions     Texts
	Active           bool
	UnitID           string
	GroupID          string
	StandardPriceRaw *Money
}

// ID is the global ID.
func (p *Product) ID() string { return EncodeID("Product", p.GUID) }

// IsNode marks Product as a Node.
func (*Product) IsNode() {}

// ProductGroup is a General_Products_ProductGroups row.
type ProductGroup struct {
	GUID  string
	Code  string
	Names Texts
}

// ID is the global ID.
func (g *ProductGroup) ID() string { return EncodeID("ProductGroup", g.GUID) }

// IsNode marks ProductGroup as a Node.
func (*ProductGroup) IsNode() {}

// MeasurementUnit is a General_Products_MeasurementUnits row.
type MeasurementUnit struct {
	GUID  string
	Code  string
	Names Texts
}

// ID is the global ID.
func (u *MeasurementUnit) ID() string { return EncodeID("MeasurementUnit", u.GUID) }

// IsNode marks MeasurementUnit as a Node.
func (*MeasurementUnit) IsNode() {}

// Currency is a General_Currencies_Currencies row.
type Currency struct {
	GUID  string
	Code  string
	Names Texts
}

// ID is the global ID.
func (c *Currency) ID() string { return EncodeID("Currency", c.GUID) }

// IsNode marks Currency as a Node.
func (*Currency) IsNode() {}

// Store is a Logistics_Inventory_Stores row.
type Store struct {
	GUID  string
	Code  string
	Names Texts
}

// ID is the global ID.
func (s *Store) ID() string { return EncodeID("Store", s.GUID) }

// IsNode marks Store as a Node.
func (*Store) IsNode() {}

// StockBalance is a Logistics_Inventory_CurrentBalances row.
type StockBalance struct {
	StoreID  string
	Quantity *Quantity
}

// SalesOrderPayload is the payload of the sales-order mutations: the order is resolved lazily by OrderID, so it is
// read with the operation's selection after the write.
type SalesOrderPayload struct {
	OrderID             string // "" when there is no order to show
	DeletedSalesOrderID *string
	UserErrors          []*UserError
	CurrentVersion      *int
	ClientMutationID    *string
}

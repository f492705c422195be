package erpclient

// Entity set names (docs/erpnet.md § Domain API: repository Module.Area.Entities →
// Module_Area_Entities).
const (
	SetSalesOrders            = "Crm_Sales_SalesOrders"
	SetSalesOrderLines        = "Crm_Sales_SalesOrderLines"
	SetInvoices               = "Crm_Invoicing_Invoices"
	SetInvoiceLines           = "Crm_Invoicing_InvoiceLines"
	SetShipments              = "Logistics_Shipment_Shipments"
	SetShipmentLines          = "Logistics_Shipment_ShipmentLines"
	SetCustomers              = "Crm_Sales_Customers"
	SetCustomerExternalAccess = "Crm_Sales_CustomerExternalAccess"
	SetServiceAgreements      = "Applications_Service_ServiceAgreements"
	SetParties                = "General_Contacts_Parties"
	SetPersons                = "General_Contacts_Persons"
	SetCompanies              = "General_Contacts_Companies"
	SetUsers                  = "Systems_Security_Users"
	SetProducts               = "General_Products_Products"
	SetProductGroups          = "General_Products_ProductGroups"
	SetMeasurementUnits       = "General_Products_MeasurementUnits"
	SetCurrencies             = "General_Currencies_Currencies"
	SetEnterpriseCompanies    = "General_EnterpriseCompanies"
	SetDocumentTypes          = "Systems_Documents_DocumentTypes"
	SetCurrentBalances        = "Logistics_Inventory_CurrentBalances"
	SetStores                 = "Logistics_Inventory_Stores"
)

// Entity holds what every ERP.net entity has. Entity structs embed it.
// ID is filled from "Id" when selected, else from "@odata.id" (List and
// friends do this), so it is set whatever the selection.
type Entity struct {
	ID            string `json:"Id,omitempty"`
	ODataID       string `json:"@odata.id,omitempty"` // "Set(guid)"
	DisplayText   string `json:"DisplayText,omitempty"`
	ObjectVersion *int   `json:"ObjectVersion,omitempty"` // only when selected; optimistic locking
}

// entity gives decoding generic access to the embedded Entity.
func (e *Entity) entity() *Entity { return e }

type hasEntity interface{ entity() *Entity }

// fillID derives ID from @odata.id when Id was not selected.
func (e *Entity) fillID() {
	if e.ID != "" || e.ODataID == "" {
		return
	}
	if r, err := ParseRef(e.ODataID); err == nil {
		e.ID = r.ID
	}
}

// Document holds the fields every ERP.net document has (General_Documents_Documents).
type Document struct {
	DocumentNo        string        `json:"DocumentNo,omitempty"`
	DocumentDate      DateTime      `json:"DocumentDate"`
	State             DocumentState `json:"State,omitempty"`
	Void              bool          `json:"Void"`
	DocumentType      *Ref          `json:"DocumentType,omitempty"`
	EnterpriseCompany *Ref          `json:"EnterpriseCompany,omitempty"`
	ToParty           *Ref          `json:"ToParty,omitempty"`
	CreationTime      *DateTime     `json:"CreationTime,omitempty"`
}

// SalesOrder is Crm_Sales_SalesOrders.
type SalesOrder struct {
	Entity
	Document
	Customer                *Ref             `json:"Customer,omitempty"`
	ShipToCustomer          *Ref             `json:"ShipToCustomer,omitempty"`
	DocumentCurrency        *Ref             `json:"DocumentCurrency,omitempty"`
	CustomerPurchaseOrderNo string           `json:"CustomerPurchaseOrderNo,omitempty"`
	RequiredDeliveryDate    *DateTime        `json:"RequiredDeliveryDate,omitempty"`
	PaymentDueDate          *DateTime        `json:"PaymentDueDate,omitempty"`
	DocumentNotes           string           `json:"DocumentNotes,omitempty"`
	Lines                   []SalesOrderLine `json:"Lines,omitempty"` // only when expanded
}

// SalesOrderLine is Crm_Sales_SalesOrderLines.
type SalesOrderLine struct {
	Entity
	SalesOrder                *Ref      `json:"SalesOrder,omitempty"`
	LineNo                    int       `json:"LineNo"`
	Product                   *Ref      `json:"Product,omitempty"`
	ProductDescription        MultiLang `json:"ProductDescription,omitempty"`
	Quantity                  *Quantity `json:"Quantity,omitempty"`
	QuantityUnit              *Ref      `json:"QuantityUnit,omitempty"`
	QuantityBase              *Quantity `json:"QuantityBase,omitempty"`
	UnitPrice                 *Amount   `json:"UnitPrice,omitempty"`
	LineAmount                *Amount   `json:"LineAmount,omitempty"`
	LineCustomDiscountPercent Decimal   `json:"LineCustomDiscountPercent,omitempty"`
	RequiredDeliveryDate      *DateTime `json:"RequiredDeliveryDate,omitempty"`
}

// Invoice is Crm_Invoicing_Invoices.
type Invoice struct {
	Entity
	Document
	Customer         *Ref          `json:"Customer,omitempty"`
	DocumentCurrency *Ref          `json:"DocumentCurrency,omitempty"`
	PaymentDueDate   *DateTime     `json:"PaymentDueDate,omitempty"`
	Lines            []InvoiceLine `json:"Lines,omitempty"` // only when expanded
}

// InvoiceLine is Crm_Invoicing_InvoiceLines.
type InvoiceLine struct {
	Entity
	Invoice    *Ref      `json:"Invoice,omitempty"`
	LineNo     int       `json:"LineNo"`
	Product    *Ref      `json:"Product,omitempty"`
	Quantity   *Quantity `json:"Quantity,omitempty"`
	UnitPrice  *Amount   `json:"UnitPrice,omitempty"`
	LineAmount *Amount   `json:"LineAmount,omitempty"`
	SalesOrder *Ref      `json:"SalesOrder,omitempty"`
}

// Shipment is Logistics_Shipment_Shipments. Access to shipments goes by ToParty.
type Shipment struct {
	Entity
	Document
	ShipFromStore        *Ref           `json:"ShipFromStore,omitempty"`
	RequiredDeliveryDate *DateTime      `json:"RequiredDeliveryDate,omitempty"`
	Lines                []ShipmentLine `json:"Lines,omitempty"` // only when expanded
}

// ShipmentLine is Logistics_Shipment_ShipmentLines.
type ShipmentLine struct {
	Entity
	Shipment   *Ref      `json:"Shipment,omitempty"`
	LineNo     int       `json:"LineNo"`
	Product    *Ref      `json:"Product,omitempty"`
	Quantity   *Quantity `json:"Quantity,omitempty"`
	SalesOrder *Ref      `json:"SalesOrder,omitempty"`
}

// Customer is Crm_Sales_Customers.
type Customer struct {
	Entity
	Number                 string  `json:"Number,omitempty"`
	Party                  *Ref    `json:"Party,omitempty"`
	EnterpriseCompany      *Ref    `json:"EnterpriseCompany,omitempty"`
	Active                 bool    `json:"Active"`
	CreditLimit            *Amount `json:"CreditLimit,omitempty"`
	DefaultCurrency        *Ref    `json:"DefaultCurrency,omitempty"`
	DefaultPaymentTermDays int     `json:"DefaultPaymentTermDays"`
}

// CustomerExternalAccess is Crm_Sales_CustomerExternalAccess: which external
// user may act for which customer, with which role, how many days back.
type CustomerExternalAccess struct {
	Entity
	Customer       *Ref   `json:"Customer,omitempty"`
	ShipToCustomer *Ref   `json:"ShipToCustomer,omitempty"`
	User           *Ref   `json:"User,omitempty"`
	Role           string `json:"Role,omitempty"` // name (OrdersBilling) or L-code (L40), depending on the version
	DaysBackAccess *int   `json:"DaysBackAccess,omitempty"`
	Notes          string `json:"Notes,omitempty"`
}

// Party is General_Contacts_Parties (base of persons and companies).
type Party struct {
	Entity
	PartyCode         string    `json:"PartyCode,omitempty"`
	PartyName         MultiLang `json:"PartyName,omitempty"`
	PartyType         string    `json:"PartyType,omitempty"`
	IsActive          bool      `json:"IsActive"`
	PartyUniqueNumber string    `json:"PartyUniqueNumber,omitempty"`
}

// Person is General_Contacts_Persons (same Id as its party).
type Person struct {
	Party
	FirstName  MultiLang `json:"FirstName,omitempty"`
	LastName   MultiLang `json:"LastName,omitempty"`
	MiddleName MultiLang `json:"MiddleName,omitempty"`
	BirthDate  *DateTime `json:"BirthDate,omitempty"`
	Gender     string    `json:"Gender,omitempty"`
}

// Company is General_Contacts_Companies (same Id as its party).
type Company struct {
	Party
	Name                  MultiLang `json:"Name,omitempty"`
	RegistrationNumber    string    `json:"RegistrationNumber,omitempty"`
	RegistrationVATNumber string    `json:"RegistrationVATNumber,omitempty"`
	Country               *Ref      `json:"Country,omitempty"`
}

// User is Systems_Security_Users.
type User struct {
	Entity
	Login    string    `json:"Login,omitempty"`
	Name     MultiLang `json:"Name,omitempty"`
	Email    string    `json:"Email,omitempty"`
	UserType string    `json:"UserType,omitempty"` // InternalUser, ExternalCommunityUser, SystemUserNoLogin...
	Active   bool      `json:"Active"`
	IsAdmin  bool      `json:"IsAdmin"`
	Person   *Ref      `json:"Person,omitempty"`
}

// Product is General_Products_Products.
type Product struct {
	Entity
	PartNumber          string    `json:"PartNumber,omitempty"`
	Name                MultiLang `json:"Name,omitempty"`
	Description         MultiLang `json:"Description,omitempty"`
	Active              bool      `json:"Active"`
	ShowInCatalog       bool      `json:"ShowInCatalog"`
	MeasurementUnit     *Ref      `json:"MeasurementUnit,omitempty"`
	ProductGroup        *Ref      `json:"ProductGroup,omitempty"`
	StandardPricePerLot *Amount   `json:"StandardPricePerLot,omitempty"`
}

// ProductGroup is General_Products_ProductGroups.
type ProductGroup struct {
	Entity
	Code string    `json:"Code,omitempty"`
	Name MultiLang `json:"Name,omitempty"`
}

// MeasurementUnit is General_Products_MeasurementUnits.
type MeasurementUnit struct {
	Entity
	Code string    `json:"Code,omitempty"`
	Name MultiLang `json:"Name,omitempty"`
}

// Currency is General_Currencies_Currencies.
type Currency struct {
	Entity
	CurrencySign string    `json:"CurrencySign,omitempty"`
	Name         MultiLang `json:"Name,omitempty"`
}

// EnterpriseCompany is General_EnterpriseCompanies.
type EnterpriseCompany struct {
	Entity
	Code    string    `json:"Code,omitempty"`
	Name    MultiLang `json:"Name,omitempty"`
	Company *Ref      `json:"Company,omitempty"`
}

// DocumentType is Systems_Documents_DocumentTypes.
type DocumentType struct {
	Entity
	Code       string    `json:"Code,omitempty"`
	TypeName   MultiLang `json:"TypeName,omitempty"`
	EntityName string    `json:"EntityName,omitempty"`
}

// CurrentBalance is Logistics_Inventory_CurrentBalances (a view: stock per product and store).
type CurrentBalance struct {
	Entity
	Product      *Ref      `json:"Product,omitempty"`
	Store        *Ref      `json:"Store,omitempty"`
	Lot          *Ref      `json:"Lot,omitempty"`
	QuantityBase *Quantity `json:"QuantityBase,omitempty"`
}

// Store is Logistics_Inventory_Stores.
type Store struct {
	Entity
	Code string    `json:"Code,omitempty"`
	Name MultiLang `json:"Name,omitempty"`
}

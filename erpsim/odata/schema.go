package odata

import (
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Entity set names of the emulated instance.
const (
	setParties         = "General_Contacts_Parties"
	setPersons         = "General_Contacts_Persons"
	setCompanies       = "General_Contacts_Companies"
	setPartyMechanisms = "General_Contacts_PartyContactMechanisms"
	setMechanisms      = "General_Contacts_ContactMechanisms"
	setCustomers       = "Crm_Sales_Customers"
	setAccess          = "Crm_Sales_CustomerExternalAccess"
	setUsers           = "Systems_Security_Users"
	setProducts        = "General_Products_Products"
	setProductGroups   = "General_Products_ProductGroups"
	setUnits           = "General_Products_MeasurementUnits"
	setCurrencies      = "General_Currencies_Currencies"
	setEnterprise      = "General_EnterpriseCompanies"
	setDocumentTypes   = "Systems_Documents_DocumentTypes"
	setSalesOrders     = "Crm_Sales_SalesOrders"
	setSalesOrderLines = "Crm_Sales_SalesOrderLines"
	setInvoices        = "Crm_Invoicing_Invoices"
	setInvoiceLines    = "Crm_Invoicing_InvoiceLines"
	setShipments       = "Logistics_Shipment_Shipments"
	setShipmentLines   = "Logistics_Shipment_ShipmentLines"
	setBalances        = "Logistics_Inventory_CurrentBalances"
	setStores          = "Logistics_Inventory_Stores"
	setLots            = "Logistics_Inventory_Lots"
	setAgreements      = "Applications_Service_ServiceAgreements"
	setCountries       = "General_Geography_Countries"
)

// renamedSets are old entity set names and their current names, as ERP.net
// reports through GetRenamedEntityTypes and in the error for an old name.
var renamedSets = map[string]string{
	"Crm_Customers":            setCustomers,
	"General_DocumentTypes":    setDocumentTypes,
	"General_MeasurementUnits": setUnits,
}

func pp(name string, k kind) *prop  { return &prop{name: name, kind: k} }
func ref(name, target string) *prop { return &prop{name: name, kind: kRef, target: target} }
func idxRef(name, target string) *prop {
	return &prop{name: name, kind: kRef, target: target, indexed: true}
}
func enumP(name string, e *enumType) *prop { return &prop{name: name, kind: kEnum, enum: e} }
func ro(p *prop) *prop                     { p.readOnly = true; return p }
func linesP(child, via string) *prop {
	return &prop{name: "Lines", kind: kLines, target: child, via: via, idx: -1, readOnly: true}
}

// define adds an entity set with the standard system properties: Id,
// ObjectVersion (per aggregate root), DisplayText and, unless given,
// CreationTime.
func (s *Store) define(name string, display func(e *entity) string, props ...*prop) *entitySet {
	es := &entitySet{name: name, typeName: typeNameOf(name), byName: map[string]*prop{},
		display: display}
	all := []*prop{
		{name: "Id", kind: kGUID, extra: true, readOnly: true, get: func(e *entity) value { return value{s: e.id.String(), ref: e} }},
		{name: "ObjectVersion", kind: kInt, extra: true, readOnly: true, get: func(e *entity) value { return numVal(float64(e.root().version)) }},
		// ERP.net v26.2+: when the aggregate (the root or any of its lines) last changed; not in the default
		// $select, filterable with ge for incremental pulls. Rows never changed report the data's creation.
		{name: aggregateUpdated, kind: kDateTime, extra: true, readOnly: true, get: func(e *entity) value {
			r := e.root()
			if t, ok := r.set.updated[r]; ok {
				return value{n: t}
			}
			return timeVal(s.epoch)
		}},
		{name: "DisplayText", kind: kString, readOnly: true, get: func(e *entity) value { return strVal(e.set.display(e)) }},
	}
	all = append(all, props...)
	if es.byName["CreationTime"] == nil && !hasProp(props, "CreationTime") {
		created := timeVal(s.epoch)
		all = append(all, &prop{name: "CreationTime", kind: kDateTime, readOnly: true, get: func(*entity) value { return created }})
	}
	for _, p := range all {
		if p.hidden {
			p.idx = es.slots
			es.slots++
			continue
		}
		if p.get == nil && p.kind != kLines {
			p.idx = es.slots
			es.slots++
		} else if p.get != nil {
			p.idx = -1
		}
		if p.kind == kLines {
			es.lines = p
		}
		if p.indexed {
			p.index = map[uuid.UUID][]*entity{}
			es.indexed = append(es.indexed, p)
		}
		es.props = append(es.props, p)
		es.byName[p.name] = p
	}
	s.sets[name] = es
	s.order = append(s.order, es)
	return es
}

func hasProp(props []*prop, name string) bool {
	for _, p := range props {
		if p.name == name {
			return true
		}
	}
	return false
}

// typeNameOf derives the EDM type name (Crm_Sales_SalesOrders → Crm_Sales_SalesOrder).
func typeNameOf(set string) string {
	switch {
	case len(set) > 3 && set[len(set)-3:] == "ies":
		return set[:len(set)-3] + "y"
	case len(set) > 6 && set[len(set)-6:] == "Access":
		return set
	case len(set) > 1 && set[len(set)-1] == 's':
		return set[:len(set)-1]
	}
	return set
}

// documentProps are the General_Documents_Documents fields every document has.
func documentProps() []*prop {
	return []*prop{
		ro(pp("DocumentNo", kString)),
		pp("DocumentDate", kDate),
		ro(enumP("State", documentState)),
		ro(pp("Void", kBool)),
		ref("DocumentType", setDocumentTypes),
		ref("EnterpriseCompany", setEnterprise),
		idxRef("ToParty", setParties),
		ro(pp("CreationTime", kDateTime)),
		// The other party's document number: erpgraph carries an idempotency fingerprint in it (docs/erpnet.md).
		pp("ReferenceDocumentNo", kString),
		ro(pp("VoidReason", kString)),
		ro(pp("VoidTime", kDateTime)),
	}
}

func partyProps() []*prop {
	return []*prop{
		pp("PartyCode", kString), pp("PartyName", kML), ro(enumP("PartyType", partyType)), pp("IsActive", kBool),
		pp("PartyUniqueNumber", kString),
	}
}

// defineSchema declares every emulated entity set.
func (s *Store) defineSchema() {
	text := func(name string) func(e *entity) string {
		return func(e *entity) string { return displayOf(e, e.set.byName[name]) }
	}
	docText := func(e *entity) string { return e.vals[e.set.byName["DocumentNo"].idx].s }

	parties := s.define(setParties, text("PartyName"), partyProps()...)
	persons := s.define(setPersons, text("PartyName"), append(partyProps(),
		pp("FirstName", kML), pp("MiddleName", kML), pp("LastName", kML), pp("BirthDate", kDate), enumP("Gender", gender))...)
	companies := s.define(setCompanies, text("PartyName"), append(partyProps(),
		pp("Name", kML), pp("RegistrationNumber", kString), pp("RegistrationVATNumber", kString), ref("Country", setCountries))...)
	parties.derived = []*entitySet{persons, companies}
	persons.base, companies.base = parties, parties

	s.define(setMechanisms, text("Name"), pp("Name", kString), enumP("ContactMechanismType", mechanismType))
	s.define(setPartyMechanisms, func(e *entity) string { return displayOf(e, e.set.byName["ContactMechanism"]) },
		idxRef("Party", setParties), ref("ContactMechanism", setMechanisms), pp("ContactMechanismPurpose", kString),
		pp("IsDefault", kBool), pp("IsActive", kBool))

	s.define(setCurrencies, text("CurrencySign"), pp("CurrencySign", kString), pp("Name", kML))
	s.define(setUnits, text("Code"), pp("Code", kString), pp("Name", kML))
	s.define(setProductGroups, text("Name"), pp("Code", kString), pp("Name", kML))
	s.define(setEnterprise, text("Name"), pp("Code", kString), pp("Name", kML), ref("Company", setCompanies), ref("BaseCurrency", setCurrencies))
	s.define(setCountries, text("Name"), pp("Code", kString), pp("Name", kML))
	s.define(setDocumentTypes, text("TypeName"), pp("Code", kString), pp("TypeName", kML), pp("EntityName", kString))
	s.define(setStores, text("Name"), pp("Code", kString), pp("Name", kML))
	s.define(setLots, text("Number"), ref("Product", setProducts), pp("Number", kString))

	s.define(setUsers, text("Login"), pp("Login", kString), pp("Name", kML), pp("Email", kString),
		enumP("UserType", userType), pp("Active", kBool), pp("IsAdmin", kBool), ref("Person", setPersons))
	s.define(setCustomers, func(e *entity) string {
		return e.vals[e.set.byName["Number"].idx].s + " " + displayOf(e, e.set.byName["Party"])
	},
		pp("Number", kString), idxRef("Party", setParties), ref("EnterpriseCompany", setEnterprise), pp("Active", kBool),
		pp("CreditLimit", kAmount), ref("DefaultCurrency", setCurrencies), pp("DefaultPaymentTermDays", kInt))
	s.define(setAccess, func(e *entity) string {
		return displayOf(e, e.set.byName["User"]) + " @ " + displayOf(e, e.set.byName["Customer"])
	},
		idxRef("Customer", setCustomers), ref("ShipToCustomer", setCustomers), idxRef("User", setUsers),
		enumP("Role", accessRole), pp("DaysBackAccess", kInt), pp("Notes", kString))

	s.define(setProducts, func(e *entity) string {
		return e.vals[e.set.byName["PartNumber"].idx].s + " " + displayOf(e, e.set.byName["Name"])
	},
		pp("PartNumber", kString), pp("Name", kML), pp("Description", kML), pp("Active", kBool), pp("ShowInCatalog", kBool),
		ref("MeasurementUnit", setUnits), idxRef("ProductGroup", setProductGroups), pp("StandardPricePerLot", kAmount))
	s.define(setBalances, func(e *entity) string {
		return displayOf(e, e.set.byName["Product"]) + " @ " + displayOf(e, e.set.byName["Store"])
	},
		idxRef("Product", setProducts), idxRef("Store", setStores), ref("Lot", setLots), pp("QuantityBase", kQuantity)).view = true

	orders := s.define(setSalesOrders, docText, append(documentProps(),
		idxRef("Customer", setCustomers), ref("ShipToCustomer", setCustomers), ref("DocumentCurrency", setCurrencies),
		pp("CustomerPurchaseOrderNo", kString), pp("RequiredDeliveryDate", kDate), pp("PaymentDueDate", kDate),
		pp("DocumentNotes", kString), linesP(setSalesOrderLines, "SalesOrder"))...)
	qty := pp("Quantity", kQuantity)
	qtyBase := &prop{name: "QuantityBase", kind: kQuantity, readOnly: true, get: func(e *entity) value {
		return e.vals[qty.idx] // one unit per product here, so the base quantity is the quantity
	}}
	orderLines := s.define(setSalesOrderLines, lineText("SalesOrder"),
		idxRef("SalesOrder", setSalesOrders), ro(pp("LineNo", kInt)), idxRef("Product", setProducts),
		pp("ProductDescription", kML), qty, ref("QuantityUnit", setUnits), qtyBase,
		pp("UnitPrice", kAmount), ro(pp("LineAmount", kAmount)), pp("LineCustomDiscountPercent", kDecimal),
		pp("RequiredDeliveryDate", kDate))

	invoices := s.define(setInvoices, docText, append(documentProps(),
		idxRef("Customer", setCustomers), ref("DocumentCurrency", setCurrencies), pp("PaymentDueDate", kDate),
		linesP(setInvoiceLines, "Invoice"))...)
	invSrc := &prop{name: "orderLine", kind: kRef, target: setSalesOrderLines, hidden: true}
	invoiceLines := s.define(setInvoiceLines, lineText("Invoice"), append([]*prop{
		idxRef("Invoice", setInvoices), ro(pp("LineNo", kInt)), invSrc},
		mirrored(s, invSrc, "Product", "Quantity", "UnitPrice", "LineAmount", "SalesOrder")...)...)

	shipments := s.define(setShipments, docText, append(documentProps(),
		ref("ShipFromStore", setStores), pp("RequiredDeliveryDate", kDate), linesP(setShipmentLines, "Shipment"))...)
	shpSrc := &prop{name: "orderLine", kind: kRef, target: setSalesOrderLines, hidden: true}
	shipmentLines := s.define(setShipmentLines, lineText("Shipment"), append([]*prop{
		idxRef("Shipment", setShipments), ro(pp("LineNo", kInt)), shpSrc},
		mirrored(s, shpSrc, "Product", "Quantity", "SalesOrder")...)...)

	agreements := s.define(setAgreements, docText, append(documentProps(),
		idxRef("Customer", setCustomers), pp("StartDateTime", kDateTime), pp("EndDateTime", kDateTime))...)

	for _, d := range []*entitySet{orders, invoices, shipments, agreements} {
		d.document = true
	}
	orderLines.parent = orderLines.prop("SalesOrder")
	invoiceLines.source, shipmentLines.source = invSrc, shpSrc
	invoiceLines.parent = invoiceLines.prop("Invoice")
	shipmentLines.parent = shipmentLines.prop("Shipment")
	// only aggregate roots carry AggregateLastUpdateTimeUtc: not lines, not views
	for _, es := range []*entitySet{orderLines, invoiceLines, shipmentLines, s.sets[setBalances]} {
		es.dropProp(aggregateUpdated)
	}
}

// aggregateUpdated is ERP.net's incremental-sync property (v26.2+).
const aggregateUpdated = "AggregateLastUpdateTimeUtc"

// dropProp removes a computed property from the set's schema.
func (es *entitySet) dropProp(name string) {
	delete(es.byName, name)
	es.props = slices.DeleteFunc(es.props, func(p *prop) bool { return p.name == name })
}

// mirrored returns the properties of invoice and shipment lines that repeat
// their sales order line (the generated documents copy the order), computed
// from a hidden reference to it instead of stored: at scale 100 that saves
// millions of values. src must be defined among the set's properties.
func mirrored(s *Store, src *prop, names ...string) []*prop {
	out := make([]*prop, 0, len(names))
	for _, name := range names {
		op := s.sets[setSalesOrderLines].byName[name]
		p := &prop{name: name, kind: op.kind, target: op.target, readOnly: true, indexed: op.kind == kRef}
		p.get = func(e *entity) value {
			line := e.vals[src.idx].ref
			if line == nil {
				return null
			}
			return line.get(op)
		}
		out = append(out, p)
	}
	return out
}

func lineText(parent string) func(e *entity) string {
	return func(e *entity) string {
		return displayOf(e, e.set.byName[parent]) + "/" + strconv.Itoa(int(e.vals[e.set.byName["LineNo"].idx].n))
	}
}

// displayOf renders a property for DisplayText: the English text of ML
// values and the DisplayText of references.
func displayOf(e *entity, p *prop) string {
	v := e.get(p)
	switch {
	case v.isNull():
		return ""
	case p.kind == kRef:
		return v.ref.set.display(v.ref)
	case p.kind == kML:
		t := mlText(v.s)
		if t[0] == "" {
			return t[1]
		}
		return t[0]
	}
	return v.s
}

// dayStart truncates t to midnight UTC.
func dayStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

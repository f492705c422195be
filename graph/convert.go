package graph

import (
	"strings"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/graph/model"
)

// Conversions from decoded ERP.net entities to GraphQL models. Models keep references as GUIDs; resolvers follow
// them through the loaders.

func refID(r *erpclient.Ref) string {
	if r == nil {
		return ""
	}
	return r.ID
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optTime(d *erpclient.DateTime) *time.Time {
	if d == nil || d.IsZero() {
		return nil
	}
	t := d.Time()
	return &t
}

func money(a *erpclient.Amount) *model.Money {
	if a == nil {
		return nil
	}
	return &model.Money{Amount: model.Decimal(a.Value.String()), Currency: a.Currency}
}

func quantity(q *erpclient.Quantity) *model.Quantity {
	if q == nil {
		return nil
	}
	return &model.Quantity{Value: model.Decimal(q.Value.String()), Unit: q.Unit}
}

func texts(m erpclient.MultiLang) model.Texts { return model.Texts(m) }

var documentStates = map[erpclient.DocumentState]model.DocumentState{
	erpclient.StateNew: model.DocumentStateNew, erpclient.StateAdjustment: model.DocumentStateAdjustment,
	erpclient.StatePlanned: model.DocumentStatePlanned, erpclient.StateFirmPlanned: model.DocumentStateFirmPlanned,
	erpclient.StateReleased: model.DocumentStateReleased, erpclient.StateCompleted: model.DocumentStateCompleted,
	erpclient.StateClosed: model.DocumentStateClosed,
}

// erpState is the ERP.net name of a GraphQL document state.
func erpState(s model.DocumentState) erpclient.DocumentState {
	for k, v := range documentStates {
		if v == s {
			return k
		}
	}
	return ""
}

func document(e erpclient.Entity, d erpclient.Document) model.Document {
	return model.Document{
		GUID: e.ID, DocumentNo: d.DocumentNo, DocumentDate: d.DocumentDate.Time(),
		State: documentStates[d.State], Void: d.Void, CreatedAt: optTime(d.CreationTime),
	}
}

func toSalesOrder(o *erpclient.SalesOrder) *model.SalesOrder {
	return &model.SalesOrder{
		Document: document(o.Entity, o.Document), CustomerID: refID(o.Customer), ShipToCustomerID: refID(o.ShipToCustomer),
		CustomerPurchaseOrderNo: optString(o.CustomerPurchaseOrderNo), RequiredDeliveryDate: optTime(o.RequiredDeliveryDate),
		PaymentDueDate: optTime(o.PaymentDueDate), Notes: optString(o.DocumentNotes), CurrencyID: refID(o.DocumentCurrency),
		Version: derefInt(o.ObjectVersion),
	}
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func toSalesOrderLine(l *erpclient.SalesOrderLine) *model.SalesOrderLine {
	m := &model.SalesOrderLine{
		GUID: l.ID, SalesOrderID: refID(l.SalesOrder), LineNo: l.LineNo, ProductID: refID(l.Product),
		Descriptions: texts(l.ProductDescription), Quantity: quantity(l.Quantity), QuantityBase: quantity(l.QuantityBase),
		UnitPrice: money(l.UnitPrice), LineAmount: money(l.LineAmount), RequiredDeliveryDate: optTime(l.RequiredDeliveryDate),
	}
	d := model.Decimal(l.LineCustomDiscountPercent.String())
	m.DiscountPercent = &d
	return m
}

// hidePrices nulls the prices of lines whose order's prices the user may not see (the schema documents the null);
// they are plain fields, so gqlgen writes them without a resolver call.
func hidePrices(lines ...*model.SalesOrderLine) {
	for _, l := range lines {
		l.UnitPrice, l.LineAmount, l.DiscountPercent = nil, nil, nil
	}
}

func toInvoice(i *erpclient.Invoice) *model.Invoice {
	return &model.Invoice{
		Document: document(i.Entity, i.Document), CustomerID: refID(i.Customer), CurrencyID: refID(i.DocumentCurrency),
		PaymentDueDate: optTime(i.PaymentDueDate),
	}
}

func toInvoiceLine(l *erpclient.InvoiceLine) *model.InvoiceLine {
	return &model.InvoiceLine{
		GUID: l.ID, InvoiceID: refID(l.Invoice), LineNo: l.LineNo, ProductID: refID(l.Product), Quantity: quantity(l.Quantity),
		UnitPrice: money(l.UnitPrice), LineAmount: money(l.LineAmount), SalesOrderID: refID(l.SalesOrder),
	}
}

func toShipment(s *erpclient.Shipment) *model.Shipment {
	return &model.Shipment{
		Document: document(s.Entity, s.Document), RecipientID: refID(s.ToParty), ShipFromStoreID: refID(s.ShipFromStore),
		RequiredDeliveryDate: optTime(s.RequiredDeliveryDate),
	}
}

func toShipmentLine(l *erpclient.ShipmentLine) *model.ShipmentLine {
	return &model.ShipmentLine{
		GUID: l.ID, ShipmentID: refID(l.Shipment), LineNo: l.LineNo, ProductID: refID(l.Product), Quantity: quantity(l.Quantity),
		SalesOrderID: refID(l.SalesOrder),
	}
}

func toCustomer(c *erpclient.Customer) *model.Customer {
	days := c.DefaultPaymentTermDays
	return &model.Customer{
		GUID: c.ID, Number: c.Number, Active: c.Active, PartyID: refID(c.Party), CreditLimitRaw: money(c.CreditLimit),
		DefaultCurrencyID: refID(c.DefaultCurrency), DefaultPaymentTermDays: &days,
	}
}

var partyTypes = map[string]model.PartyType{
	"company": model.PartyTypeCompany, "companylocation": model.PartyTypeCompanyLocation,
	"companydivision": model.PartyTypeCompanyDivision, "person": model.PartyTypePerson, "store": model.PartyTypeStore,
}

func toParty(p *erpclient.Party) *model.Party {
	t, ok := partyTypes[strings.ToLower(p.PartyType)]
	if !ok {
		t = model.PartyTypeCompany
	}
	return &model.Party{GUID: p.ID, Code: optString(p.PartyCode), Names: texts(p.PartyName), Type: t, Active: p.IsActive}
}

func toProduct(p *erpclient.Product) *model.Product {
	return &model.Product{
		GUID: p.ID, PartNumber: p.PartNumber, Names: texts(p.Name), Descriptions: texts(p.Description), Active: p.Active,
		UnitID: refID(p.MeasurementUnit), GroupID: refID(p.ProductGroup), StandardPriceRaw: money(p.StandardPricePerLot),
	}
}

func toProductGroup(g *erpclient.ProductGroup) *model.ProductGroup {
	return &model.ProductGroup{GUID: g.ID, Code: g.Code, Names: texts(g.Name)}
}

func toMeasurementUnit(u *erpclient.MeasurementUnit) *model.MeasurementUnit {
	return &model.MeasurementUnit{GUID: u.ID, Code: u.Code, Names: texts(u.Name)}
}

func toCurrency(c *erpclient.Currency) *model.Currency {
	return &model.Currency{GUID: c.ID, Code: c.CurrencySign, Names: texts(c.Name)}
}

func toStore(s *erpclient.Store) *model.Store {
	return &model.Store{GUID: s.ID, Code: s.Code, Names: texts(s.Name)}
}

func toStockBalance(b *erpclient.CurrentBalance) *model.StockBalance {
	return &model.StockBalance{StoreID: refID(b.Store), Quantity: quantity(b.QuantityBase)}
}

// convertAll converts a list with f.
func convertAll[T, M any](in []*T, f func(*T) *M) []*M {
	out := make([]*M, len(in))
	for i, e := range in {
		out[i] = f(e)
	}
	return out
}

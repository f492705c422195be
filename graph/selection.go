package graph

import (
	"context"
	"slices"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/erpgraph/erpgraph/erpclient"
)

// typeSets maps the GraphQL object types that are read per operation to their ERP.net entity sets. Reference
// data (units, currencies, stores) is read with fixed selections and cached, so it is not listed; products are,
// for the reads that nest them (an order line's product): their loader and the products list still read them whole.
var typeSets = map[string]string{
	"Product":        erpclient.SetProducts,
	"Customer":       erpclient.SetCustomers,
	"Party":          erpclient.SetParties,
	"SalesOrder":     erpclient.SetSalesOrders,
	"SalesOrderLine": erpclient.SetSalesOrderLines,
	"Invoice":        erpclient.SetInvoices,
	"InvoiceLine":    erpclient.SetInvoiceLines,
	"Shipment":       erpclient.SetShipments,
	"ShipmentLine":   erpclient.SetShipmentLines,
}

// documentProps are the ERP.net properties behind the fields every document type shares.
var documentProps = map[string][]string{
	"documentNo": {"DocumentNo"}, "documentDate": {"DocumentDate"}, "state": {"State"}, "void": {"Void"},
	"createdAt": {"CreationTime"},
}

// fieldProps maps each GraphQL field to the ERP.net properties it reads: scalars to their property, relations to
// the reference they follow. Fields not listed need nothing but Id (child collections, computed fields).
var fieldProps = map[string]map[string][]string{
	"Customer": {
		"number": {"Number"}, "active": {"Active"}, "party": {"Party"}, "name": {"Party"},
		"creditLimit": {"CreditLimit"}, "defaultCurrency": {"DefaultCurrency"},
		"defaultPaymentTermDays": {"DefaultPaymentTermDays"},
	},
	"Party": {"code": {"PartyCode"}, "name": {"PartyName"}, "type": {"PartyType"}, "active": {"IsActive"}},
	"Product": {
		"partNumber": {"PartNumber"}, "name": {"Name"}, "description": {"Description"}, "active": {"Active"},
		"unit": {"MeasurementUnit"}, "group": {"ProductGroup"}, "standardPrice": {"StandardPricePerLot"},
	},
	"SalesOrder": with(documentProps, map[string][]string{
		"customer": {"Customer"}, "shipToCustomer": {"ShipToCustomer"},
		"customerPurchaseOrderNo": {"CustomerPurchaseOrderNo"}, "requiredDeliveryDate": {"RequiredDeliveryDate"},
		"paymentDueDate": {"PaymentDueDate"}, "notes": {"DocumentNotes"}, "currency": {"DocumentCurrency"},
		"version": {"ObjectVersion"},
	}),
	"SalesOrderLine": {
		"salesOrder": {"SalesOrder"}, "lineNo": {"LineNo"}, "product": {"Product"},
		"description": {"ProductDescription"}, "quantity": {"Quantity"}, "quantityBase": {"QuantityBase"},
		"unitPrice": {"UnitPrice"}, "lineAmount": {"LineAmount"}, "discountPercent": {"LineCustomDiscountPercent"},
		"requiredDeliveryDate": {"RequiredDeliveryDate"},
	},
	"Invoice": with(documentProps, map[string][]string{
		"customer": {"Customer"}, "currency": {"DocumentCurrency"}, "paymentDueDate": {"PaymentDueDate"},
	}),
	"InvoiceLine": {
		"invoice": {"Invoice"}, "lineNo": {"LineNo"}, "product": {"Product"}, "quantity": {"Quantity"},
		"unitPrice": {"UnitPrice"}, "lineAmount": {"LineAmount"}, "salesOrder": {"SalesOrder"},
	},
	"Shipment": with(documentProps, map[string][]string{
		"recipient": {"ToParty"}, "customer": {"ToParty"}, "shipFromStore": {"ShipFromStore"},
		"requiredDeliveryDate": {"RequiredDeliveryDate"},
	}),
	"ShipmentLine": {
		"shipment": {"Shipment"}, "lineNo": {"LineNo"}, "product": {"Product"}, "quantity": {"Quantity"},
		"salesOrder": {"SalesOrder"},
	},
}

func with(base, extra map[string][]string) map[string][]string {
	out := make(map[string][]string, len(base)+len(extra))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// plans memoizes the selection plan of each operation: every loader of an operation asks for it.
type plans struct {
	mu sync.Mutex
	m  map[*ast.OperationDefinition]map[string][]string
}

// selectFor returns the ERP.net properties of set that the current operation selects anywhere, so that $select
// carries only what the operation needs. It walks the whole operation once (fragments included) and maps every
// field of a type backed by set to its properties.
func (p *plans) selectFor(ctx context.Context, set string) []string {
	if !graphql.HasOperationContext(ctx) {
		return nil
	}
	op := graphql.GetOperationContext(ctx).Operation
	if op == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if plan, ok := p.m[op]; ok {
		return plan[set]
	}
	plan := map[string][]string{}
	walk(op.SelectionSet, plan, map[string]bool{})
	for s := range plan {
		slices.Sort(plan[s])
	}
	if p.m == nil {
		p.m = map[*ast.OperationDefinition]map[string][]string{}
	}
	p.m[op] = plan
	return plan[set]
}

func walk(sel ast.SelectionSet, plan map[string][]string, fragments map[string]bool) {
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			if s.ObjectDefinition != nil {
				if set, ok := typeSets[s.ObjectDefinition.Name]; ok {
					for _, prop := range fieldProps[s.ObjectDefinition.Name][s.Name] {
						if !slices.Contains(plan[set], prop) {
							plan[set] = append(plan[set], prop)
						}
					}
				}
			}
			walk(s.SelectionSet, plan, fragments)
		case *ast.InlineFragment:
			walk(s.SelectionSet, plan, fragments)
		case *ast.FragmentSpread:
			if s.Definition != nil && !fragments[s.Name] {
				fragments[s.Name] = true
				walk(s.Definition.SelectionSet, plan, fragments)
			}
		}
	}
}

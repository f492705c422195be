package erpclient_test

import (
	"fmt"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
)

// A customer's released orders of March 2025, newest first, 20 a page: the
// typed filter is ANDed with the caller's access scope when the query is built.
func ExampleQuery_Build() {
	q := erpclient.Query{
		Set: erpclient.SetSalesOrders,
		Filter: erpclient.And(
			erpclient.Eq("State", erpclient.StateReleased.Value()),
			erpclient.Ge("DocumentDate", erpclient.Date(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC))),
			erpclient.Le("DocumentDate", erpclient.Date(time.Date(2025, 3, 31, 0, 0, 0, 0, time.UTC))),
			erpclient.Contains("CustomerPurchaseOrderNo", "O'Neil"),
		),
		Select:  []string{"DocumentNo", "DocumentDate", "Customer"},
		OrderBy: []erpclient.OrderBy{{Prop: "DocumentDate", Desc: true}},
		Top:     20,
		Scope:   scope{customers: []string{"10f76803-4130-40f8-bf73-a4e2b004417b"}},
	}
	v, err := q.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, k := range []string{"$filter", "$select", "$orderby", "$top"} {
		fmt.Printf("%s=%s\n", k, v.Get(k))
	}
	// Output:
	// $filter=(State eq 'Released' and DocumentDate ge 2025-03-01 and DocumentDate le 2025-03-31 and contains(CustomerPurchaseOrderNo,'O''Neil')) and Customer in ('Crm_Sales_Customers(10f76803-4130-40f8-bf73-a4e2b004417b)')
	// $select=Id,DocumentNo,DocumentDate,Customer
	// $orderby=DocumentDate desc
	// $top=20
}

// Without a scope, a customer-owned set is refused before anything is sent.
func ExampleScopeRequired() {
	_, err := erpclient.Query{Set: erpclient.SetInvoices}.Build()
	fmt.Println(erpclient.ScopeRequired(erpclient.SetInvoices), err)
	// Output:
	// true erpclient: access scope required: Crm_Invoicing_Invoices is customer-owned; set Query.Scope or Query.Unscoped
}

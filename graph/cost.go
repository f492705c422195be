package graph

import (
	"strconv"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// The cost of an operation is what it will cost ERP.net: every upstream read it causes counts ReadCost, and every
// row those reads return counts 1. Scalars, and value objects such as Money or PageInfo, come with their row and
// cost nothing more. The estimate follows the read plan (see nestings and the loaders):
//   - a root list is one read of `first` rows (default 20, at most 100); `nodes(ids)` one read per 20 ids, a row
//     each; `node` one read of one row;
//   - a relation nested into its parent's read (an order's customer, party, lines and products, ...) adds rows
//     only: one per parent for a reference, ListEstimate per parent for child lines;
//   - a relation a loader reads adds its reads (one per 40 parents for references, one per 20 for lists: the
//     chunks of its `in` filter) and the same rows; lines read by a loader still nest their products;
//   - a list that is not paged is assumed to hold ListEstimate entries (an ERP.net document rarely has more lines;
//     the estimate is not a cap on what is returned).
//
// The dashboard (20 orders with customer, party, lines, products and invoices) costs 760 and at first: 100 it costs
// 3,600, within the default 5,000; ten aliased copies of it at first: 100, or orders → lines → order → lines, are
// refused.

// ReadCost is what one upstream read counts in the cost of an operation, in rows.
const ReadCost = 50

// Rows per read of a loader: references go by `Id in (...)` (about 40 GUIDs fit a safe URL), lists by
// `Parent in (...)` of 20 references.
const (
	refsPerRead  = 40
	listsPerRead = 20
)

// entityTypes are the GraphQL types of ERP.net entities: reaching one is a read (or a nested part of one).
var entityTypes = map[string]bool{
	"Customer": true, "Party": true, "SalesOrder": true, "SalesOrderLine": true, "Invoice": true, "InvoiceLine": true,
	"Shipment": true, "ShipmentLine": true, "Product": true, "ProductGroup": true, "MeasurementUnit": true,
	"Currency": true, "Store": true, "StockBalance": true,
}

// lineTypes are read by loaders that expand their products into the same read.
var lineTypes = map[string]bool{"SalesOrderLine": true, "InvoiceLine": true, "ShipmentLine": true}

// coster estimates the cost of one operation; fragments are measured once per (rows, nesting) they are spread
// with, so a fragment bomb costs linear time.
type coster struct {
	doc  *ast.QueryDocument
	vars map[string]any
	memo map[string]int
}

func operationCost(doc *ast.QueryDocument, op *ast.OperationDefinition, vars map[string]any) int {
	c := &coster{doc: doc, vars: vars, memo: map[string]int{}}
	return c.root(op.SelectionSet)
}

// root measures the operation's top-level fields.
func (c *coster) root(set ast.SelectionSet) int {
	return c.sum(set, "root", func(f *ast.Field) int {
		if strings.HasPrefix(f.Name, "__") { // __typename, and introspection (allowed only in dev mode)
			return 0
		}
		args := f.ArgumentMap(c.vars)
		var cost int
		switch f.Name {
		case "customers", "salesOrders", "invoices", "shipments", "products":
			n := pageOf(args["first"])
			cost = satAdd(ReadCost+n, c.connection(f.SelectionSet, n))
		case "nodes":
			n := 1
			if ids, ok := args["ids"].([]any); ok {
				n = max(len(ids), 1)
			}
			cost = satAdd(satMul(ReadCost, ceilDiv(n, listsPerRead))+n, c.set(f.SelectionSet, n, false))
		case "me":
			cost = c.set(f.SelectionSet, 1, false) // from the token and the cached access scope
		case "currencies":
			cost = satAdd(ReadCost+ListEstimate, c.set(f.SelectionSet, ListEstimate, false))
		default: // node, and any other root field: one read of one row
			cost = satAdd(ReadCost+1, c.set(f.SelectionSet, 1, false))
		}
		return cost
	})
}

// pageOf is a connection's page size from its `first` argument.
func pageOf(first any) int {
	n := 20
	switch v := first.(type) {
	case int64:
		n = int(v)
	case int:
		n = v
	case float64:
		n = int(v)
	case string: // a literal too large for an int is refused by validation or the resolver anyway
		if i, err := strconv.Atoi(v); err == nil {
			n = i
		}
	}
	return min(max(n, 1), maxPageSize)
}

// connection measures a connection's selection: its nodes (directly or through edges) are the n rows of the root
// read, whose relations may nest into it.
func (c *coster) connection(set ast.SelectionSet, n int) int {
	mode := strconv.Itoa(n)
	return c.sum(set, "connection:"+mode, func(f *ast.Field) int {
		switch f.Name {
		case "nodes":
			return c.set(f.SelectionSet, n, true)
		case "edges":
			return c.sum(f.SelectionSet, "edges:"+mode, func(e *ast.Field) int {
				if e.Name == "node" {
					return c.set(e.SelectionSet, n, true)
				}
				return 0
			})
		}
		return 0
	})
}

// set measures a selection on n objects; nested says they came from a read that their relations may nest into.
func (c *coster) set(set ast.SelectionSet, n int, nested bool) int {
	return c.sum(set, "set:"+strconv.Itoa(n)+":"+strconv.FormatBool(nested), func(f *ast.Field) int {
		if f.Definition == nil || f.ObjectDefinition == nil || len(f.SelectionSet) == 0 {
			return 0 // a scalar: part of its row
		}
		typ, list := f.Definition.Type.Name(), f.Definition.Type.Elem != nil
		rows := n
		if list {
			rows = satMul(n, ListEstimate)
		}
		if !entityTypes[typ] {
			// a value object (Money, Quantity, ...) is part of its row; a list of them (the user's grants) comes
			// from the access scope, not from a read
			cost := c.set(f.SelectionSet, rows, false)
			if list {
				cost = satAdd(cost, rows)
			}
			return cost
		}
		if nested && nests(f.ObjectDefinition.Name, f.Name) {
			return satAdd(rows, c.set(f.SelectionSet, rows, true))
		}
		per := refsPerRead
		if list {
			per = listsPerRead
		}
		reads := satMul(ReadCost, ceilDiv(n, per))
		return satAdd(satAdd(reads, rows), c.set(f.SelectionSet, rows, list && lineTypes[typ]))
	})
}

// nests reports whether field of parent is read inside its parent's read when the parent is a root list's node
// or nested itself.
func nests(parent, field string) bool {
	for _, n := range nestings[parent] {
		if n.field == field {
			return true
		}
	}
	return false
}

// sum adds up per over the fields of set, fragments inlined. mode names the measurement (what per computes, with
// its row count and nesting): a fragment is measured once per mode, so a chain of fragments that each spread the
// next twice costs linear time although its expansion is exponential.
func (c *coster) sum(set ast.SelectionSet, mode string, per func(*ast.Field) int) int {
	total := 0
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			total = satAdd(total, per(sel))
		case *ast.InlineFragment:
			total = satAdd(total, c.sum(sel.SelectionSet, mode, per))
		case *ast.FragmentSpread:
			def := c.doc.Fragments.ForName(sel.Name)
			if def == nil {
				continue
			}
			k := mode + "|" + sel.Name
			v, ok := c.memo[k]
			if !ok {
				c.memo[k] = 0 // a cycle (refused by validation anyway) adds nothing
				v = c.sum(def.SelectionSet, mode, per)
				c.memo[k] = v
			}
			total = satAdd(total, v)
		}
	}
	return total
}

func ceilDiv(a, b int) int { return max((a+b-1)/b, 1) }

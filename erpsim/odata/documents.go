package odata

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// fixtureOrders are the first orders: each fixture customer (1-4) gets orders
// 2 and 10 days old (inside a 30-day window) and 120 and 500 days old
// (outside it; the last also outside 365 days), all invoiced and shipped, so
// days-back rules always select real, non-empty subsets.
var fixtureAges = []int{2, 10, 120, 500}

// released is the rank of DocumentState Released: documents at or past it are read-only.
const released = 4

const (
	eurRate   = 1.95583
	demoYears = 2
)

// slots resolves property slots by name once, to keep generation of
// millions of values free of map lookups.
func slots(es *entitySet, names ...string) []int {
	out := make([]int, len(names))
	for i, n := range names {
		out[i] = es.byName[n].idx
	}
	return out
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

func (g *generator) documents() {
	s := g.s
	orders, orderLines := s.sets[setSalesOrders], s.sets[setSalesOrderLines]
	invoices, invoiceLines := s.sets[setInvoices], s.sets[setInvoiceLines]
	shipments, shipmentLines := s.sets[setShipments], s.sets[setShipmentLines]
	doc := []string{"DocumentNo", "DocumentDate", "State", "Void", "DocumentType", "EnterpriseCompany", "ToParty", "CreationTime"}
	od := slots(orders, append(doc, "Customer", "ShipToCustomer", "DocumentCurrency", "CustomerPurchaseOrderNo",
		"RequiredDeliveryDate", "PaymentDueDate", "DocumentNotes")...)
	ol := slots(orderLines, "SalesOrder", "LineNo", "Product", "ProductDescription", "Quantity", "QuantityUnit",
		"UnitPrice", "LineAmount", "LineCustomDiscountPercent")
	id := slots(invoices, append(doc, "Customer", "DocumentCurrency", "PaymentDueDate")...)
	il := append(slots(invoiceLines, "Invoice", "LineNo"), invoiceLines.source.idx)
	sd := slots(shipments, append(doc, "ShipFromStore", "RequiredDeliveryDate")...)
	sl := append(slots(shipmentLines, "Shipment", "LineNo"), shipmentLines.source.idx)
	cust := slots(s.sets[setCustomers], "Party", "DefaultCurrency", "DefaultPaymentTermDays")
	prod := slots(s.sets[setProducts], "Name", "MeasurementUnit", "StandardPricePerLot")
	unitCode := s.sets[setUnits].byName["Code"].idx
	curSign := s.sets[setCurrencies].byName["CurrencySign"].idx
	notes := []string{"Deliver to the back entrance.", "Call before delivery.", "Urgent: needed for the weekend.", "Доставка до склада, рампа 2.", "Моля, фактура на хартия."}

	common := func(e *entity, slot []int, no string, date time.Time, state string, void bool, typ *entity, party *entity) {
		e.vals[slot[0]] = strVal(no)
		e.vals[slot[1]] = timeVal(date)
		e.vals[slot[2]] = enumVal(documentState, state)
		e.vals[slot[3]] = boolVal(void)
		e.vals[slot[4]] = refVal(typ)
		e.vals[slot[5]] = refVal(g.enterprise)
		e.vals[slot[6]] = refVal(party)
		e.vals[slot[7]] = timeVal(date.Add(time.Duration(8*3600+g.rnd.IntN(9*3600)) * time.Second))
	}
	later := func(d time.Time, maxDays int) time.Time {
		d = d.AddDate(0, 0, g.rnd.IntN(maxDays+1))
		if d.After(s.today) {
			return s.today
		}
		return d
	}
	settled := func(d time.Time) string {
		switch age := int(s.today.Sub(d).Hours() / 24); {
		case age < 30:
			return "Released"
		case age%3 == 0:
			return "Closed"
		}
		return "Completed"
	}

	nLine, nInv, nInvLine, nShp, nShpLine := 0, 0, 0, 0, 0
	// order makes sales order n of customer c, age days old, with its lines and
	// (once released) its invoice and shipment; fixed orders are the fixture's.
	order := func(n int, c *entity, age int, fixed bool) {
		date := s.today.AddDate(0, 0, -age)
		state, void := orderState(age, g.rnd.IntN(100)), !fixed && g.rnd.IntN(100) < 3
		if fixed {
			state = "Released"
			if age > 30 {
				state = "Completed"
			}
		}
		cur := c.vals[cust[1]].ref
		curCode := cur.vals[curSign].s
		party := c.vals[cust[0]].ref
		o := s.newRow(orders, n, fixture.UUID(setSalesOrders, n))
		common(o, od, fmt.Sprintf("%07d", n), date, state, void, g.orderType, party)
		o.vals[od[8]] = refVal(c)
		if g.rnd.IntN(10) == 0 {
			o.vals[od[9]] = refVal(c)
		}
		o.vals[od[10]] = refVal(cur)
		if g.rnd.IntN(10) < 6 {
			o.vals[od[11]] = strVal(fmt.Sprintf("PO-%05d", 10000+n*7%90000))
		}
		o.vals[od[12]] = timeVal(date.AddDate(0, 0, 3+g.rnd.IntN(12)))
		o.vals[od[13]] = timeVal(date.AddDate(0, 0, int(c.vals[cust[2]].n)))
		if g.rnd.IntN(5) == 0 {
			o.vals[od[14]] = strVal(notes[g.rnd.IntN(len(notes))])
		}
		count := 1 + g.rnd.IntN(10)
		first := g.rnd.IntN(len(g.products))
		for k := 0; k < count; k++ {
			p := g.products[(first+k*37)%len(g.products)]
			unit := p.vals[prod[1]].ref
			qty := float64(1 + g.rnd.IntN(50))
			price := p.vals[prod[2]].n
			if curCode == "EUR" {
				price = round2(price / eurRate)
			}
			disc := float64([]int{0, 0, 0, 5, 10}[g.rnd.IntN(5)])
			nLine++
			l := s.newRow(orderLines, nLine, fixture.UUID(setSalesOrderLines, nLine))
			l.parent = o
			l.vals[ol[0]] = refVal(o)
			l.vals[ol[1]] = numVal(float64(10 * (k + 1)))
			l.vals[ol[2]] = refVal(p)
			l.vals[ol[3]] = p.vals[prod[0]]
			l.vals[ol[4]] = value{n: qty, s: unit.vals[unitCode].s}
			l.vals[ol[5]] = refVal(unit)
			l.vals[ol[6]] = amountVal(price, curCode)
			l.vals[ol[7]] = amountVal(round2(qty*price*(1-disc/100)), curCode)
			l.vals[ol[8]] = numVal(disc)
			o.lines = append(o.lines, l)
		}
		if void || o.vals[od[2]].n < released {
			return // only released, not voided orders are invoiced and shipped
		}
		if fixed || g.rnd.IntN(10) < 7 {
			nInv++
			d := later(date, 10)
			if fixed {
				d = date
			}
			inv := s.newRow(invoices, nInv, fixture.UUID(setInvoices, nInv))
			common(inv, id, fmt.Sprintf("%010d", 1000000000+nInv), d, settled(d), false, g.invoiceType, party)
			inv.vals[id[8]] = refVal(c)
			inv.vals[id[9]] = refVal(cur)
			inv.vals[id[10]] = timeVal(d.AddDate(0, 0, int(c.vals[cust[2]].n)))
			for k, ln := range o.lines {
				nInvLine++
				x := s.newRow(invoiceLines, nInvLine, fixture.UUID(setInvoiceLines, nInvLine))
				x.parent = inv
				x.vals[il[0]] = refVal(inv)
				x.vals[il[1]] = numVal(float64(10 * (k + 1)))
				x.vals[il[2]] = refVal(ln) // product, quantity, prices and order come from the order line
				inv.lines = append(inv.lines, x)
			}
		}
		if fixed || g.rnd.IntN(4) < 3 {
			nShp++
			d := later(date, 7)
			if fixed {
				d = date
			}
			shp := s.newRow(shipments, nShp, fixture.UUID(setShipments, nShp))
			common(shp, sd, fmt.Sprintf("S%07d", nShp), d, settled(d), false, g.shipmentType, party)
			shp.vals[sd[8]] = refVal(g.stores[g.rnd.IntN(len(g.stores))])
			shp.vals[sd[9]] = o.vals[od[12]]
			for k, ln := range o.lines {
				nShpLine++
				x := s.newRow(shipmentLines, nShpLine, fixture.UUID(setShipmentLines, nShpLine))
				x.parent = shp
				x.vals[sl[0]] = refVal(shp)
				x.vals[sl[1]] = numVal(float64(10 * (k + 1)))
				x.vals[sl[2]] = refVal(ln)
				shp.lines = append(shp.lines, x)
			}
		}
	}
	total := 1000 * g.scale
	for n := 1; n <= total; n++ {
		var c *entity
		var age int
		fixed := n <= 4*len(fixtureAges)
		if fixed {
			c, age = g.customers[(n-1)/len(fixtureAges)], fixtureAges[(n-1)%len(fixtureAges)]
		} else {
			if k := g.rnd.IntN(10); k < 4 {
				c = g.customers[k] // the fixture customers get 40% of the orders
			} else {
				c = g.customers[4+g.rnd.IntN(len(g.customers)-4)]
			}
			age = g.rnd.IntN(365 * demoYears)
		}
		order(n, c, age, fixed)
	}
	// Generated portal users' orders come after the demo orders and draw from
	// a source of their own, so the demo rows do not depend on how many
	// users were generated. Their orders lie within the last 300 days (inside
	// the one-year window of the order roles).
	demo := g.rnd
	for k, c := range g.portalCustomers {
		g.rnd = rand.New(rand.NewPCG(20261201, uint64(k)<<8|uint64(g.scale)))
		for range portalOrders * g.scale {
			total++
			order(total, c, g.rnd.IntN(300), false)
		}
	}
	g.rnd = demo
	g.agreements()
}

// portalOrders is how many sales orders each generated portal user's
// customer has per unit of scale: more than a dashboard page (20).
const portalOrders = 24

// orderState spreads states by age: recent orders are still being planned,
// old ones are completed or closed.
func orderState(age, roll int) string {
	switch {
	case age < 14:
		switch {
		case roll < 25:
			return "New"
		case roll < 45:
			return "Planned"
		case roll < 60:
			return "FirmPlanned"
		}
		return "Released"
	case age < 60:
		if roll < 60 {
			return "Released"
		}
		return "Completed"
	case roll < 4:
		return "New" // a few forgotten drafts
	case roll < 6:
		return "Adjustment"
	case roll < 50:
		return "Completed"
	}
	return "Closed"
}

// agreements gives every third customer (and the fixture customers) a
// yearly service agreement.
func (g *generator) agreements() {
	s := g.s
	es := s.sets[setAgreements]
	ad := slots(es, "DocumentNo", "DocumentDate", "State", "Void", "DocumentType", "EnterpriseCompany", "ToParty", "CreationTime",
		"Customer", "StartDateTime", "EndDateTime")
	party := s.sets[setCustomers].byName["Party"].idx
	n := 0
	for i, c := range g.customers {
		if i >= 4 && i%3 != 0 {
			continue
		}
		n++
		start := s.today.AddDate(0, -g.rnd.IntN(18), -g.rnd.IntN(28))
		a := s.newRow(es, n, fixture.UUID(setAgreements, n))
		a.vals[ad[0]] = strVal(fmt.Sprintf("SA-%04d", n))
		a.vals[ad[1]] = timeVal(start)
		state := "Released"
		if start.AddDate(1, 0, 0).Before(s.today) {
			state = "Closed"
		}
		a.vals[ad[2]] = enumVal(documentState, state)
		a.vals[ad[3]] = boolVal(false)
		a.vals[ad[4]] = refVal(g.agreementType)
		a.vals[ad[5]] = refVal(g.enterprise)
		a.vals[ad[6]] = c.vals[party]
		a.vals[ad[7]] = timeVal(start.Add(9 * time.Hour))
		a.vals[ad[8]] = refVal(c)
		a.vals[ad[9]] = timeVal(start)
		a.vals[ad[10]] = timeVal(start.AddDate(1, 0, 0))
	}
}

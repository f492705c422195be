package access

import (
	"fmt"
	"strings"
)

// Role is an ERP.net customer external access role. Its value is ERP.net's level (L10 ... L90), so roles compare
// by what they include: a higher role includes everything of the lower ones.
type Role int

// The roles of Crm_Sales_CustomerExternalAccess (docs/erpnet.md § Customer external access).
const (
	RoleBasic            Role = 10 // customer profile and shipments
	RoleOrders           Role = 20 // + sales orders, without prices
	RoleOrdersWithPrices Role = 30 // + prices
	RoleOrdersBilling    Role = 40 // + invoices
	RoleAdmin            Role = 80 // everything for the customer
	RoleOwner            Role = 90 // everything for the customer
)

var roleNames = map[Role]string{
	RoleBasic: "Basic", RoleOrders: "Orders", RoleOrdersWithPrices: "OrdersWithPrices",
	RoleOrdersBilling: "OrdersBilling", RoleAdmin: "Admin", RoleOwner: "Owner",
}

// String is the role's enum name as the Domain API serializes it.
func (r Role) String() string {
	if n, ok := roleNames[r]; ok {
		return n
	}
	return fmt.Sprintf("L%d", int(r))
}

// ParseRole accepts the enum names (Basic, Orders, OrdersWithPrices, OrdersBilling, Admin, Owner; case-insensitive,
// with or without spaces or underscores) and the stored L-codes (L10 ... L90), since ERP.net versions differ in
// which they serialize.
func ParseRole(s string) (Role, error) {
	key := strings.ToLower(strings.NewReplacer(" ", "", "_", "", "-", "").Replace(strings.TrimSpace(s)))
	for r, n := range roleNames {
		if key == strings.ToLower(n) || key == fmt.Sprintf("l%d", int(r)) {
			return r, nil
		}
	}
	switch key {
	case "billing", "ordersandbilling":
		return RoleOrdersBilling, nil
	case "orderswithprice", "ordersprices":
		return RoleOrdersWithPrices, nil
	}
	return 0, fmt.Errorf("access: unknown external access role %q", s)
}

// Permission is something a role allows.
type Permission int

// Permissions, in the order roles add them.
const (
	ViewCustomer Permission = iota + 1
	ViewShipments
	ViewSalesOrders
	ViewPrices
	ViewInvoices
)

// Allows reports whether the role grants p.
func (r Role) Allows(p Permission) bool {
	switch p {
	case ViewCustomer, ViewShipments:
		return r >= RoleBasic
	case ViewSalesOrders:
		return r >= RoleOrders
	case ViewPrices:
		return r >= RoleOrdersWithPrices
	case ViewInvoices:
		return r >= RoleOrdersBilling
	}
	return false
}

// Permissions lists what the role allows, in a stable order.
func (r Role) Permissions() []Permission {
	var out []Permission
	for _, p := range []Permission{ViewCustomer, ViewShipments, ViewSalesOrders, ViewPrices, ViewInvoices} {
		if r.Allows(p) {
			out = append(out, p)
		}
	}
	return out
}

package odata

import (
	"net/http"
	"sort"
	"strings"
)

// edmType is the EDM type of a property kind.
func edmType(p *prop) string {
	switch p.kind {
	case kString:
		return "Edm.String"
	case kInt:
		return "Edm.Int32"
	case kDecimal:
		return "Edm.Decimal"
	case kBool:
		return "Edm.Boolean"
	case kDate, kDateTime:
		return "Edm.DateTimeOffset"
	case kEnum:
		return "Erp." + p.enum.name
	case kML:
		return "Erp.MultilanguageString"
	case kAmount:
		return "Erp.Amount"
	case kQuantity:
		return "Erp.Quantity"
	case kGUID:
		return "Edm.Guid"
	}
	return ""
}

// metadata answers a hand-built EDMX of the emulated sets (namespace Erp,
// as ERP.net's casts use), derived from the same schema the engine runs on.
func (h *handler) metadata(w http.ResponseWriter) error {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">` + "\n")
	b.WriteString(`<edmx:DataServices><Schema Namespace="Erp" xmlns="http://docs.oasis-open.org/odata/ns/edm">` + "\n")
	for _, ct := range []struct{ name, unit string }{{"Amount", "Currency"}, {"Quantity", "Unit"}} {
		b.WriteString(`<ComplexType Name="` + ct.name + `"><Property Name="Value" Type="Edm.Decimal" Nullable="false"/>`)
		b.WriteString(`<Property Name="` + ct.unit + `" Type="Edm.String"/></ComplexType>` + "\n")
	}
	b.WriteString(`<ComplexType Name="MultilanguageString">`)
	for _, l := range languages {
		b.WriteString(`<Property Name="` + l + `" Type="Edm.String"/>`)
	}
	b.WriteString("</ComplexType>\n")
	enums := map[string]*enumType{}
	for _, es := range h.s.order {
		for _, p := range es.props {
			if p.enum != nil {
				enums[p.enum.name] = p.enum
			}
		}
	}
	names := make([]string, 0, len(enums))
	for n := range enums {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b.WriteString(`<EnumType Name="` + n + `">`)
		for _, m := range enums[n].members {
			b.WriteString(`<Member Name="` + m + `"/>`)
		}
		b.WriteString("</EnumType>\n")
	}
	for _, es := range h.s.order {
		b.WriteString(`<EntityType Name="` + es.typeName + `"`)
		if es.base != nil {
			b.WriteString(` BaseType="Erp.` + es.base.typeName + `"`)
		}
		b.WriteString(">")
		if es.base == nil {
			b.WriteString(`<Key><PropertyRef Name="Id"/></Key>`)
		}
		for _, p := range es.props {
			if es.base != nil && es.base.byName[p.name] != nil {
				continue // inherited
			}
			switch p.kind {
			case kRef:
				b.WriteString(`<NavigationProperty Name="` + p.name + `" Type="Erp.` + h.s.sets[p.target].typeName + `"/>`)
			case kLines:
				b.WriteString(`<NavigationProperty Name="` + p.name + `" Type="Collection(Erp.` + h.s.sets[p.target].typeName + `)" ContainsTarget="true"/>`)
			default:
				nullable := ""
				if p.kind == kGUID {
					nullable = ` Nullable="false"`
				}
				b.WriteString(`<Property Name="` + p.name + `" Type="` + edmType(p) + `"` + nullable + `/>`)
			}
		}
		b.WriteString("</EntityType>\n")
	}
	for _, es := range h.s.order {
		if es.document { // one overload of the bound action per document type
			b.WriteString(`<Action Name="ChangeState" IsBound="true"><Parameter Name="bindingParameter" Type="Erp.` + es.typeName + `"/>`)
			b.WriteString(`<Parameter Name="newState" Type="Erp.DocumentState"/></Action>` + "\n")
		}
	}
	b.WriteString(`<Function Name="GetVersion"><ReturnType Type="Edm.String"/></Function>` + "\n")
	b.WriteString(`<EntityContainer Name="Container">`)
	for _, es := range h.s.order {
		b.WriteString(`<EntitySet Name="` + es.name + `" EntityType="Erp.` + es.typeName + `"/>`)
	}
	b.WriteString(`<FunctionImport Name="GetVersion" Function="Erp.GetVersion"/>`)
	b.WriteString("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>\n")
	w.Header().Set("Content-Type", "application/xml;charset=utf-8")
	w.Header().Set("OData-Version", odataVersion)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(b.String()))
	return nil
}

package odata

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// generator fills a Store with deterministic demo data: the same scale and
// date always give the same rows (seeded PRNG, Ids from fixture.ID).
type generator struct {
	s     *Store
	scale int
	rnd   *rand.Rand

	enterprise, orderType, invoiceType, shipmentType, agreementType *entity
	currencies                                                      map[string]*entity
	units                                                           map[string]*entity
	stores, products, customers, companies                          []*entity

	portalUsers     int       // generated portal users (fixture.GeneratedUser 1..portalUsers)
	portalCustomers []*entity // their customers, portalCustomers[k-1] for user k
}

func newGenerator(s *Store, scale int) *generator {
	return &generator{s: s, scale: scale, rnd: rand.New(rand.NewPCG(20261129, uint64(scale))),
		currencies: map[string]*entity{}, units: map[string]*entity{}}
}

// row creates row n of set with its fixture Id and the given property values.
func (g *generator) row(set string, n int, kv ...any) *entity {
	es := g.s.sets[set]
	idSet := set
	if es.base != nil {
		idSet = es.base.name // persons and companies share the parties' Ids
	}
	e := g.s.newRow(es, n, fixture.UUID(idSet, n))
	for i := 0; i < len(kv); i += 2 {
		p := es.byName[kv[i].(string)]
		e.vals[p.idx] = kv[i+1].(value)
	}
	return e
}

func enumVal(e *enumType, name string) value {
	r, ok := e.rank(name)
	if !ok {
		panic("odata: demo data uses unknown " + e.name + " member " + name)
	}
	return value{s: name, n: float64(r)}
}

func (g *generator) run() {
	g.reference()
	g.parties()
	g.makeCustomers()
	g.users()
	g.catalog()
	g.documents()
}

type named struct{ code, en, bg string }

func (g *generator) reference() {
	for i, c := range []named{{"BGN", "Bulgarian lev", "Български лев"}, {"EUR", "Euro", "Евро"}, {"USD", "US dollar", "Щатски долар"}} {
		g.currencies[c.code] = g.row(setCurrencies, i+1, "CurrencySign", strVal(c.code), "Name", mlVal(c.en, c.bg))
	}
	for i, u := range []named{{"pcs", "Pieces", "Броя"}, {"kg", "Kilogram", "Килограм"}, {"l", "Litre", "Литър"}, {"m", "Metre", "Метър"}, {"box", "Box", "Кашон"}} {
		g.units[u.code] = g.row(setUnits, i+1, "Code", strVal(u.code), "Name", mlVal(u.en, u.bg))
	}
	types := []struct{ code, en, bg, entity string }{
		{"SO", "Sales Order", "Поръчка за продажба", "Crm.Sales.SalesOrders"},
		{"INV", "Invoice", "Фактура", "Crm.Invoicing.Invoices"},
		{"SHP", "Shipment", "Експедиция", "Logistics.Shipment.Shipments"},
		{"SA", "Service Agreement", "Договор за обслужване", "Applications.Service.ServiceAgreements"},
	}
	var dt []*entity
	for i, t := range types {
		dt = append(dt, g.row(setDocumentTypes, i+1, "Code", strVal(t.code), "TypeName", mlVal(t.en, t.bg), "EntityName", strVal(t.entity)))
	}
	g.orderType, g.invoiceType, g.shipmentType, g.agreementType = dt[0], dt[1], dt[2], dt[3]
	for i, st := range []named{{"MAIN", "Sofia main warehouse", "Централен склад София"}, {"PLV", "Plovdiv warehouse", "Склад Пловдив"}, {"VAR", "Varna warehouse", "Склад Варна"}} {
		g.stores = append(g.stores, g.row(setStores, i+1, "Code", strVal(st.code), "Name", mlVal(st.en, st.bg)))
	}
}

// companyNames are the customers' companies: 1-4 are the fixture customers.
var companyNames = []named{
	{"", "Alpha Trading", "Алфа Трейдинг"}, {"", "Beta Foods", "Бета Храни"}, {"", "Gamma Build", "Гама Билд"},
	{"", "Delta Retail", "Делта Ритейл"}, {"", "Epsilon Logistics", "Епсилон Логистик"}, {"", "Zeta Pharma", "Зета Фарма"},
	{"", "Eta Textiles", "Ета Текстил"}, {"", "Theta Motors", "Тета Моторс"}, {"", "Iota Systems", "Йота Системс"},
	{"", "Kappa Office", "Капа Офис"}, {"", "Lambda Energy", "Ламбда Енерджи"}, {"", "Sigma Hotels", "Сигма Хотели"},
	{"", "Omega Clinics", "Омега Клиники"}, {"", "Orion Bakery", "Орион Пекарна"}, {"", "Vega Markets", "Вега Маркет"},
	{"", "Rila Water", "Рила Вода"}, {"", "Pirin Timber", "Пирин Дървесина"}, {"", "Balkan Print", "Балкан Принт"},
	{"", "Danube Shipping", "Дунав Шипинг"}, {"", "Vitosha Cafe", "Витоша Кафе"}, {"", "Struma Farms", "Струма Ферми"},
	{"", "Maritsa Dairy", "Марица Млечни"}, {"", "Iskar Electric", "Искър Електрик"}, {"", "Tundzha Wines", "Тунджа Вина"},
}

// personNames: 1-5 are the fixture users' persons; the rest are customer contacts.
var personNames = [][2]named{
	{{"", "Anna", "Анна"}, {"", "Petrova", "Петрова"}}, {{"", "Boris", "Борис"}, {"", "Georgiev", "Георгиев"}},
	{{"", "Celia", "Селия"}, {"", "Dimitrova", "Димитрова"}}, {{"", "Dimitar", "Димитър"}, {"", "Nikolov", "Николов"}},
	{{"", "Elena", "Елена"}, {"", "Stoyanova", "Стоянова"}}, {{"", "Georgi", "Георги"}, {"", "Ivanov", "Иванов"}},
	{{"", "Maria", "Мария"}, {"", "Todorova", "Тодорова"}}, {{"", "Ivan", "Иван"}, {"", "Petrov", "Петров"}},
	{{"", "Nadia", "Надя"}, {"", "Koleva", "Колева"}}, {{"", "Stefan", "Стефан"}, {"", "Hristov", "Христов"}},
	{{"", "Vesela", "Весела"}, {"", "Angelova", "Ангелова"}}, {{"", "Kalin", "Калин"}, {"", "Marinov", "Маринов"}},
}

const companyPartyBase = 1000 // company n is party 1000+n (fixture numbering); 0 is the enterprise company

func (g *generator) parties() {
	for i, pn := range personNames {
		n := i + 1
		female := pn[1].en[len(pn[1].en)-1] == 'a'
		gen := "Male"
		if female {
			gen = "Female"
		}
		g.row(setPersons, n, "PartyCode", strVal(fmt.Sprintf("P-%04d", n)),
			"PartyName", mlVal(pn[0].en+" "+pn[1].en, pn[0].bg+" "+pn[1].bg), "PartyType", enumVal(partyType, "Person"),
			"IsActive", boolVal(true), "FirstName", mlVal(pn[0].en, pn[0].bg), "LastName", mlVal(pn[1].en, pn[1].bg),
			"BirthDate", timeVal(time.Date(1970+n*2, time.Month(1+n%12), 1+n%27, 0, 0, 0, 0, time.UTC)), "Gender", enumVal(gender, gen))
	}
	var countries []*entity
	for i, c := range []named{{"BG", "Bulgaria", "България"}, {"RO", "Romania", "Румъния"}, {"GR", "Greece", "Гърция"}, {"DE", "Germany", "Германия"}} {
		countries = append(countries, g.row(setCountries, i+1, "Code", strVal(c.code), "Name", mlVal(c.en, c.bg)))
	}
	own := named{"", "Emulated Trading Ltd", "Емулирана Търговия ЕООД"}
	for n, c := range append([]named{own}, companyNames...) {
		reg := fmt.Sprintf("%09d", 201000000+n*7919)
		e := g.row(setCompanies, companyPartyBase+n, "PartyCode", strVal(fmt.Sprintf("C-%04d", n)),
			"PartyName", mlVal(c.en, c.bg), "PartyType", enumVal(partyType, "Company"), "IsActive", boolVal(true),
			"PartyUniqueNumber", strVal(reg), "Name", mlVal(c.en, c.bg), "RegistrationNumber", strVal(reg),
			"RegistrationVATNumber", strVal("BG"+reg), "Country", refVal(countries[max(0, n%9-5)])) // mostly Bulgarian
		g.companies = append(g.companies, e)
		g.mechanisms(n, e, c.en)
	}
	g.enterprise = g.row(setEnterprise, 1, "Code", strVal("EMU"), "Name", mlVal(own.en, own.bg),
		"Company", refVal(g.companies[0]), "BaseCurrency", refVal(g.currencies["BGN"]))
}

// mechanisms gives company n an e-mail, a phone and an address.
func (g *generator) mechanisms(n int, party *entity, name string) {
	slug := ""
	for _, r := range name {
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		if r >= 'a' && r <= 'z' {
			slug += string(r)
		}
	}
	cities := []string{"Sofia", "Plovdiv", "Varna", "Burgas", "Ruse"}
	for k, m := range []struct{ typ, name, purpose string }{
		{"Mail", "office@" + slug + ".example", "Primary"},
		{"Phone", fmt.Sprintf("+359 2 %03d %04d", 100+n, 1000+n*37), "Primary"},
		{"Address", fmt.Sprintf("%d Industrial St., %s", 3+n, cities[n%len(cities)]), "Shipping"},
	} {
		row := n*3 + k + 1
		cm := g.row(setMechanisms, row, "Name", strVal(m.name), "ContactMechanismType", enumVal(mechanismType, m.typ))
		g.row(setPartyMechanisms, row, "Party", refVal(party), "ContactMechanism", refVal(cm),
			"ContactMechanismPurpose", strVal(m.purpose), "IsDefault", boolVal(true), "IsActive", boolVal(true))
	}
}

func (g *generator) makeCustomers() {
	for i := range companyNames {
		n := i + 1
		cur := "BGN"
		if n%5 == 0 {
			cur = "EUR"
		}
		g.customers = append(g.customers, g.row(setCustomers, n, "Number", strVal(fmt.Sprintf("C%05d", n)),
			"Party", refVal(g.companies[n]), "EnterpriseCompany", refVal(g.enterprise), "Active", boolVal(n != len(companyNames)),
			"CreditLimit", amountVal(float64(5000*(1+n%7)), cur), "DefaultCurrency", refVal(g.currencies[cur]),
			"DefaultPaymentTermDays", numVal(float64([]int{0, 14, 30, 45, 60}[n%5]))))
	}
	// Each generated portal user's customer is a company of its own. Nothing here
	// draws from g.rnd, so the demo rows stay the same whatever portalUsers is.
	for k := 1; k <= g.portalUsers; k++ {
		n := fixture.GeneratedN(k)
		name := named{"", fmt.Sprintf("Portal Customer %03d", k), fmt.Sprintf("Портален клиент %03d", k)}
		reg := fmt.Sprintf("%09d", 301000000+k*7919)
		company := g.row(setCompanies, n, "PartyCode", strVal(fmt.Sprintf("W-%04d", k)),
			"PartyName", mlVal(name.en, name.bg), "PartyType", enumVal(partyType, "Company"), "IsActive", boolVal(true),
			"PartyUniqueNumber", strVal(reg), "Name", mlVal(name.en, name.bg), "RegistrationNumber", strVal(reg),
			"RegistrationVATNumber", strVal("BG"+reg))
		g.portalCustomers = append(g.portalCustomers, g.row(setCustomers, n, "Number", strVal(fmt.Sprintf("W%05d", k)),
			"Party", refVal(company), "EnterpriseCompany", refVal(g.enterprise), "Active", boolVal(true),
			"CreditLimit", amountVal(10000, "BGN"), "DefaultCurrency", refVal(g.currencies["BGN"]),
			"DefaultPaymentTermDays", numVal(30)))
	}
}

// customerN is customer row n: a demo customer (1-based) or a generated
// portal user's (fixture.GeneratedN).
func (g *generator) customerN(n int) *entity {
	if n > fixture.GeneratedBase {
		return g.portalCustomers[n-fixture.GeneratedBase-1]
	}
	return g.customers[n-1]
}

func (g *generator) users() {
	users := map[string]*entity{}
	all := fixture.Users()
	for k := 1; k <= g.portalUsers; k++ {
		all = append(all, fixture.GeneratedUser(k))
	}
	for _, u := range all {
		person := null
		if u.PersonN > 0 {
			person = refVal(g.s.sets[setPersons].rows[u.PersonN-1])
		}
		users[u.Login] = g.row(setUsers, u.N, "Login", strVal(u.Login), "Name", mlVal(u.Name, u.NameBG), "Email", strVal(u.Email),
			"UserType", enumVal(userType, u.UserType), "Active", boolVal(u.Active), "IsAdmin", boolVal(u.IsAdmin), "Person", person)
	}
	for _, a := range fixture.AccessesIn(g.portalUsers) {
		shipTo, days := null, null
		if a.ShipToCustomerN > 0 {
			shipTo = refVal(g.customerN(a.ShipToCustomerN))
		}
		if a.DaysBackAccess != nil {
			days = numVal(float64(*a.DaysBackAccess))
		}
		notes := null
		if a.Notes != "" {
			notes = strVal(a.Notes)
		}
		g.row(setAccess, a.N, "Customer", refVal(g.customerN(a.CustomerN)), "ShipToCustomer", shipTo,
			"User", refVal(users[a.UserLogin]), "Role", enumVal(accessRole, a.Role), "DaysBackAccess", days, "Notes", notes)
	}
}

// catalogGroups: 10 groups × 8 items × 3 variants = 240 products.
var catalogGroups = []struct {
	group    named
	unit     string
	price    float64
	items    []named
	variants []named
}{
	{named{"COF", "Coffee & Tea", "Кафе и чай"}, "pcs", 9, []named{{"", "Espresso beans", "Кафе на зърна еспресо"}, {"", "Ground coffee", "Мляно кафе"}, {"", "Green tea", "Зелен чай"}, {"", "Black tea", "Черен чай"}, {"", "Herbal tea", "Билков чай"}, {"", "Coffee capsules", "Кафе капсули"}, {"", "Instant coffee", "Разтворимо кафе"}, {"", "Cocoa", "Какао"}}, []named{{"", "250 g", "250 г"}, {"", "500 g", "500 г"}, {"", "1 kg", "1 кг"}}},
	{named{"BEV", "Beverages", "Напитки"}, "box", 14, []named{{"", "Mineral water", "Минерална вода"}, {"", "Orange juice", "Портокалов сок"}, {"", "Apple juice", "Ябълков сок"}, {"", "Lemonade", "Лимонада"}, {"", "Iced tea", "Студен чай"}, {"", "Cola", "Кола"}, {"", "Tonic water", "Тоник"}, {"", "Energy drink", "Енергийна напитка"}}, []named{{"", "6 × 0.5 l", "6 × 0,5 л"}, {"", "12 × 0.33 l", "12 × 0,33 л"}, {"", "6 × 1.5 l", "6 × 1,5 л"}}},
	{named{"OFF", "Office supplies", "Офис консумативи"}, "pcs", 6, []named{{"", "Copy paper", "Копирна хартия"}, {"", "Ballpoint pens", "Химикалки"}, {"", "Sticky notes", "Самозалепващи листчета"}, {"", "Stapler", "Телбод"}, {"", "Folders", "Папки"}, {"", "Notebook", "Тетрадка"}, {"", "Highlighters", "Маркери"}, {"", "Envelopes", "Пликове"}}, []named{{"", "Standard", "Стандарт"}, {"", "Premium", "Премиум"}, {"", "Eco", "Еко"}}},
	{named{"CLN", "Cleaning", "Почистване"}, "l", 7, []named{{"", "Floor cleaner", "Препарат за под"}, {"", "Glass cleaner", "Препарат за стъкла"}, {"", "Dish soap", "Препарат за съдове"}, {"", "Hand soap", "Течен сапун"}, {"", "Disinfectant", "Дезинфектант"}, {"", "Degreaser", "Обезмаслител"}, {"", "Bleach", "Белина"}, {"", "Air freshener", "Ароматизатор"}}, []named{{"", "1 l", "1 л"}, {"", "5 l", "5 л"}, {"", "10 l", "10 л"}}},
	{named{"HWR", "Hardware", "Железария"}, "pcs", 4, []named{{"", "Wood screws", "Винтове за дърво"}, {"", "Anchor bolts", "Анкерни болтове"}, {"", "Hinges", "Панти"}, {"", "Door handle", "Дръжка за врата"}, {"", "Padlock", "Катинар"}, {"", "Wall plugs", "Дюбели"}, {"", "Nails", "Пирони"}, {"", "Brackets", "Скоби"}}, []named{{"", "small", "малки"}, {"", "medium", "средни"}, {"", "large", "големи"}}},
	{named{"ELC", "Electrical", "Електрически"}, "m", 3, []named{{"", "Power cable", "Захранващ кабел"}, {"", "Network cable", "Мрежов кабел"}, {"", "LED strip", "LED лента"}, {"", "Cable duct", "Кабелен канал"}, {"", "Speaker wire", "Кабел за тонколони"}, {"", "Coaxial cable", "Коаксиален кабел"}, {"", "Heat-shrink tube", "Термошлаух"}, {"", "Ground wire", "Заземяващ проводник"}}, []named{{"", "1.5 mm²", "1,5 мм²"}, {"", "2.5 mm²", "2,5 мм²"}, {"", "4 mm²", "4 мм²"}}},
	{named{"PKG", "Packaging", "Опаковки"}, "pcs", 2, []named{{"", "Cardboard box", "Кашон"}, {"", "Stretch film", "Стреч фолио"}, {"", "Packing tape", "Опаковъчно тиксо"}, {"", "Bubble wrap", "Фолио с мехурчета"}, {"", "Paper bag", "Хартиена торба"}, {"", "Pallet", "Палет"}, {"", "Labels", "Етикети"}, {"", "Foam corners", "Ъглови протектори"}}, []named{{"", "S", "S"}, {"", "M", "M"}, {"", "L", "L"}}},
	{named{"SNK", "Snacks", "Закуски"}, "box", 11, []named{{"", "Salted crackers", "Солени крекери"}, {"", "Chocolate bar", "Шоколадово блокче"}, {"", "Wafers", "Вафли"}, {"", "Roasted peanuts", "Печени фъстъци"}, {"", "Potato chips", "Картофен чипс"}, {"", "Granola bar", "Зърнено блокче"}, {"", "Dried apricots", "Сушени кайсии"}, {"", "Biscuits", "Бисквити"}}, []named{{"", "12 pcs", "12 бр."}, {"", "24 pcs", "24 бр."}, {"", "48 pcs", "48 бр."}}},
	{named{"DRY", "Dairy", "Млечни"}, "kg", 8, []named{{"", "White cheese", "Сирене"}, {"", "Yellow cheese", "Кашкавал"}, {"", "Yogurt", "Кисело мляко"}, {"", "Butter", "Масло"}, {"", "Cottage cheese", "Извара"}, {"", "Cream", "Сметана"}, {"", "Fresh milk", "Прясно мляко"}, {"", "Kefir", "Кефир"}}, []named{{"", "cow", "краве"}, {"", "sheep", "овче"}, {"", "goat", "козе"}}},
	{named{"TLS", "Tools", "Инструменти"}, "pcs", 25, []named{{"", "Hammer", "Чук"}, {"", "Screwdriver set", "Комплект отвертки"}, {"", "Pliers", "Клещи"}, {"", "Tape measure", "Ролетка"}, {"", "Utility knife", "Макетен нож"}, {"", "Spirit level", "Нивелир"}, {"", "Hand saw", "Ръчен трион"}, {"", "Wrench set", "Комплект ключове"}}, []named{{"", "basic", "базов"}, {"", "pro", "професионален"}, {"", "heavy duty", "усилен"}}},
}

func (g *generator) catalog() {
	n := 0
	for gi, cg := range catalogGroups {
		grp := g.row(setProductGroups, gi+1, "Code", strVal(cg.group.code), "Name", mlVal(cg.group.en, cg.group.bg))
		for ii, it := range cg.items {
			for vi, v := range cg.variants {
				n++
				price := math.Round(cg.price*(1+float64(ii)*0.35)*(1+float64(vi)*0.8)*100) / 100
				p := g.row(setProducts, n, "PartNumber", strVal(fmt.Sprintf("%s-%03d", cg.group.code, ii*10+vi+1)),
					"Name", mlVal(it.en+", "+v.en, it.bg+", "+v.bg),
					"Description", mlVal(it.en+" ("+v.en+") from our "+cg.group.en+" range", it.bg+" ("+v.bg+") от гамата "+cg.group.bg),
					"Active", boolVal(n%37 != 0), "ShowInCatalog", boolVal(n%11 != 0), "MeasurementUnit", refVal(g.units[cg.unit]),
					"ProductGroup", refVal(grp), "StandardPricePerLot", amountVal(price, "BGN"))
				g.products = append(g.products, p)
			}
		}
	}
	row := 0
	for pi, p := range g.products {
		unit := p.vals[p.set.byName["MeasurementUnit"].idx].ref
		code := unit.vals[unit.set.byName["Code"].idx].s
		for si, st := range g.stores {
			if (pi+si)%3 == 2 {
				continue // not every product is stocked in every store
			}
			row++
			g.row(setBalances, row, "Product", refVal(p), "Store", refVal(st),
				"QuantityBase", value{n: float64(g.rnd.IntN(500)), s: code})
		}
	}
}

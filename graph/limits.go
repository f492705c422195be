package graph

import (
	"cmp"
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/lexer"

	"github.com/erpgraph/erpgraph/errcode"
)

// Limits bound what one operation may ask for. A zero field takes its default (graphql-armor's production
// defaults where it has one, adapted to this schema); a negative field turns that limit off.
type Limits struct {
	// MaxTokens is the number of lexical tokens of the document, counted before it is parsed. Default 1000.
	MaxTokens int
	// MaxDepth is the nesting of selection sets, fragments inlined: `{ salesOrders { nodes { id } } }` has depth
	// 2 (leaf fields do not add a level). Default 6.
	MaxDepth int
	// MaxAliases is the number of aliased fields in the operation, fragments counted where they are spread.
	// Default 15.
	MaxAliases int
	// MaxRootFields is the number of fields of the operation's top-level selection. Default 10.
	MaxRootFields int
	// MaxDirectives is the number of directive uses in the operation. Default 50.
	MaxDirectives int
	// MaxCost bounds what an operation will cost ERP.net (see cost.go): ReadCost (50) for every upstream read it
	// causes plus 1 for every row those reads return, following the read plan: `first` rows per root list,
	// relations nested into their parent's read add rows only, relations a loader reads add their chunked reads,
	// and a list without paging (order lines, invoices of an order, stock ...) is assumed to hold ListEstimate
	// entries. The dashboard costs 760 at first: 20 and 3,600 at first: 100. Default 5000.
	MaxCost int
}

// Default limits.
const (
	DefaultMaxTokens     = 1000
	DefaultMaxDepth      = 6
	DefaultMaxAliases    = 15
	DefaultMaxRootFields = 10
	DefaultMaxDirectives = 50
	DefaultMaxCost       = 5000
	// ListEstimate is the size the cost analysis assumes for lists without paging arguments.
	ListEstimate = 10
)

func (l Limits) withDefaults() Limits {
	l.MaxTokens = cmp.Or(l.MaxTokens, DefaultMaxTokens)
	l.MaxDepth = cmp.Or(l.MaxDepth, DefaultMaxDepth)
	l.MaxAliases = cmp.Or(l.MaxAliases, DefaultMaxAliases)
	l.MaxRootFields = cmp.Or(l.MaxRootFields, DefaultMaxRootFields)
	l.MaxDirectives = cmp.Or(l.MaxDirectives, DefaultMaxDirectives)
	l.MaxCost = cmp.Or(l.MaxCost, DefaultMaxCost)
	return l
}

// limiter is the gqlgen extension enforcing Limits. Tokens are counted on the raw document (after persisted
// queries resolved it), before gqlparser parses it; the rest is measured on the validated operation.
type limiter struct {
	limits        Limits
	introspection bool // dev mode: introspection queries are allowed, and exempt from depth and cost
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
	graphql.OperationContextMutator
} = &limiter{}

func (*limiter) ExtensionName() string { return "erpgraphLimits" }

func (l *limiter) Validate(graphql.ExecutableSchema) error { return nil }

func refuse(code, format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{Message: fmt.Sprintf(format, args...), Extensions: map[string]any{"code": code}}
}

// MutateOperationParameters counts tokens before anything parses the document: a huge document costs only one
// pass of the lexer, which stops at the limit.
func (l *limiter) MutateOperationParameters(_ context.Context, p *graphql.RawParams) *gqlerror.Error {
	if l.limits.MaxTokens < 0 || p.Query == "" {
		return nil
	}
	lx := lexer.New(&ast.Source{Input: p.Query})
	for n := 0; ; n++ {
		tok, err := lx.ReadToken()
		if err != nil || tok.Kind == lexer.EOF {
			return nil // a lexical error is the parser's to report
		}
		if n >= l.limits.MaxTokens {
			return refuse(errcode.TooManyTokens, "the document has more than %d tokens", l.limits.MaxTokens)
		}
	}
}

// MutateOperationContext measures the validated operation.
func (l *limiter) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	op := oc.Operation
	if op == nil {
		return nil
	}
	m := measure(oc.Doc, op.SelectionSet, op.Directives)
	if m.introspection {
		if !l.introspection {
			return refuse(errcode.IntrospectionDisabled, "introspection is disabled on this server")
		}
		if m.onlyIntrospection {
			return nil // GraphiQL's introspection query is deeper than any data query; it reads no ERP data
		}
	}
	switch lim := l.limits; {
	case lim.MaxRootFields >= 0 && m.rootFields > lim.MaxRootFields:
		return refuse(errcode.TooManyRootFields, "the operation selects %d root fields; at most %d are allowed", m.rootFields, lim.MaxRootFields)
	case lim.MaxAliases >= 0 && m.aliases > lim.MaxAliases:
		return refuse(errcode.TooManyAliases, "the operation uses %d aliases; at most %d are allowed", m.aliases, lim.MaxAliases)
	case lim.MaxDirectives >= 0 && m.directives > lim.MaxDirectives:
		return refuse(errcode.TooManyDirectives, "the operation uses %d directives; at most %d are allowed", m.directives, lim.MaxDirectives)
	case lim.MaxDepth >= 0 && m.depth > lim.MaxDepth:
		return refuse(errcode.QueryTooDeep, "the operation is nested %d levels deep; at most %d are allowed", m.depth, lim.MaxDepth)
	}
	if l.limits.MaxCost >= 0 {
		if cost := operationCost(oc.Doc, op, oc.Variables); cost > l.limits.MaxCost {
			return refuse(errcode.QueryTooComplex, "the operation's estimated cost is %d; at most %d is allowed (lower `first`, or select less)", cost, l.limits.MaxCost)
		}
	}
	return nil
}

// metrics of one operation, fragments counted where they are spread.
type metrics struct {
	rootFields, aliases, directives, depth int
	introspection, onlyIntrospection       bool
}

// measure walks the operation once per fragment (memoized), so a chain of fragments that each spread the next
// twice costs linear time even though its expansion is exponential; sums saturate instead of overflowing.
func measure(doc *ast.QueryDocument, root ast.SelectionSet, opDirectives ast.DirectiveList) metrics {
	type sub struct{ aliases, directives, depth int }
	memo := map[string]*sub{}
	var walk func(set ast.SelectionSet) sub
	walk = func(set ast.SelectionSet) sub {
		var s sub
		for _, sel := range set {
			var child sub
			switch sel := sel.(type) {
			case *ast.Field:
				if sel.Alias != "" && sel.Alias != sel.Name {
					s.aliases = satAdd(s.aliases, 1)
				}
				s.directives = satAdd(s.directives, len(sel.Directives))
				if len(sel.SelectionSet) > 0 {
					child = walk(sel.SelectionSet)
					child.depth++
				}
			case *ast.InlineFragment:
				s.directives = satAdd(s.directives, len(sel.Directives))
				child = walk(sel.SelectionSet)
			case *ast.FragmentSpread:
				s.directives = satAdd(s.directives, len(sel.Directives))
				if m, ok := memo[sel.Name]; ok {
					child = *m
				} else if def := doc.Fragments.ForName(sel.Name); def != nil {
					memo[sel.Name] = &sub{} // a cycle (refused by validation anyway) adds nothing
					child = walk(def.SelectionSet)
					child.directives = satAdd(child.directives, len(def.Directives))
					memo[sel.Name] = &child
				}
			}
			s.aliases = satAdd(s.aliases, child.aliases)
			s.directives = satAdd(s.directives, child.directives)
			s.depth = max(s.depth, child.depth)
		}
		return s
	}
	top := walk(root)
	m := metrics{aliases: top.aliases, directives: satAdd(top.directives, len(opDirectives)), depth: top.depth,
		onlyIntrospection: true}
	var roots func(set ast.SelectionSet, seen map[string]bool)
	roots = func(set ast.SelectionSet, seen map[string]bool) {
		for _, sel := range set {
			switch sel := sel.(type) {
			case *ast.Field:
				m.rootFields++
				switch sel.Name {
				case "__schema", "__type":
					m.introspection = true
				case "__typename":
				default:
					m.onlyIntrospection = false
				}
			case *ast.InlineFragment:
				roots(sel.SelectionSet, seen)
			case *ast.FragmentSpread:
				if def := doc.Fragments.ForName(sel.Name); def != nil && !seen[sel.Name] {
					seen[sel.Name] = true
					roots(def.SelectionSet, seen)
				}
			}
		}
	}
	roots(root, map[string]bool{})
	return m
}

func satAdd(a, b int) int {
	const ceiling = 1 << 40
	if a+b > ceiling {
		return ceiling
	}
	return a + b
}

func satMul(a, b int) int {
	const ceiling = 1 << 40
	if a != 0 && b > ceiling/a {
		return ceiling
	}
	return a * b
}

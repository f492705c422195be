package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/lexer"
)

// RecordExtension is the gqlgen extension that fills the request's Record
// with the operation (name, type, document hash, variable names) and its
// outcome (the errors' codes), from what the executor already decoded and
// answered: nothing reads the body or the response a second time. Add it to
// the executor before every other extension, so it sees the request as the
// client sent it (before trusted documents or persisted queries resolve it)
// and the answer as the client gets it.
type RecordExtension struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
	graphql.ResponseInterceptor
} = RecordExtension{}

// ExtensionName names the extension for gqlgen.
func (RecordExtension) ExtensionName() string { return "erpgraphRequestRecord" }

// Validate accepts every schema.
func (RecordExtension) Validate(graphql.ExecutableSchema) error { return nil }

// maxNameLen bounds the operation name kept: it is the client's to choose.
const maxNameLen = 128

// maxRecordedErrors bounds the errors kept per operation (a list of a
// hundred foreign ids answers a hundred NOT_FOUNDs); Outcome is the first.
const maxRecordedErrors = 100

// MutateOperationParameters notes the operation as sent; it never refuses one.
func (RecordExtension) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	op := operationOf(ctx)
	if op == nil {
		return nil
	}
	op.Hash = persistedHash(raw.Extensions)
	if raw.Query != "" {
		sum := sha256.Sum256([]byte(raw.Query))
		op.Hash = hex.EncodeToString(sum[:])
	}
	op.Name, op.document = truncate(raw.OperationName), raw.Query
	op.Variables = op.Variables[:0]
	for k := range raw.Variables {
		op.Variables = append(op.Variables, k)
	}
	slices.Sort(op.Variables)
	return nil
}

// InterceptResponse notes what ran and how it ended.
func (RecordExtension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	rec := RecordOf(ctx)
	if rec == nil || rec.GraphQL == nil || resp == nil {
		return resp
	}
	op := rec.GraphQL
	if graphql.HasOperationContext(ctx) && graphql.GetOperationContext(ctx).Operation != nil {
		o := graphql.GetOperationContext(ctx).Operation
		op.Type, op.Name, op.Valid = string(o.Operation), cmp.Or(op.Name, truncate(o.Name)), true
	} else if op.document != "" {
		// The document did not parse (or no operation was chosen): its tokens
		// still name it, as a client's log would.
		typ, name := firstOperation(op.document)
		op.Type, op.Name = typ, cmp.Or(op.Name, truncate(name))
	}
	op.document = ""
	rec.Outcome = outcomeOK
	for i, e := range resp.Errors {
		code, _ := e.Extensions["code"].(string)
		if i == 0 {
			rec.Outcome = cmp.Or(code, outcomeError)
		}
		if len(op.Errors) < maxRecordedErrors {
			op.Errors = append(op.Errors, OperationError{Code: code, Path: e.Path.String()})
		}
	}
	return resp
}

func operationOf(ctx context.Context) *Operation {
	if rec := RecordOf(ctx); rec != nil {
		return rec.GraphQL
	}
	return nil
}

func truncate(name string) string {
	if len(name) > maxNameLen {
		return name[:maxNameLen]
	}
	return name
}

// persistedHash is extensions.persistedQuery.sha256Hash, or "".
func persistedHash(ext map[string]any) string {
	pq, _ := ext["persistedQuery"].(map[string]any)
	h, _ := pq["sha256Hash"].(string)
	return h
}

// firstOperation finds the type and name of the first operation in a
// document that did not parse, by its tokens (bounded: names come early).
func firstOperation(query string) (typ, name string) {
	lx := lexer.New(&ast.Source{Input: query})
	depth, fragment := 0, false
	for i := 0; i < 10_000; i++ {
		tok, err := lx.ReadToken()
		if err != nil || tok.Kind == lexer.EOF {
			return "", ""
		}
		switch tok.Kind {
		case lexer.BraceL:
			if depth == 0 && typ == "" && !fragment {
				return "query", "" // shorthand query: { ... }
			}
			depth++
		case lexer.BraceR:
			if depth--; depth == 0 {
				fragment = false
			}
		case lexer.Name:
			if depth != 0 || fragment {
				continue
			}
			if typ != "" {
				return typ, tok.Value
			}
			switch tok.Value {
			case "query", "mutation", "subscription":
				typ = tok.Value
			case "fragment":
				fragment = true
			}
		default:
			if typ != "" && depth == 0 {
				return typ, "" // anonymous operation with variables: query ($x: ...)
			}
		}
	}
	return typ, ""
}

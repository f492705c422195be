package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/lexer"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/erpgraph/erpgraph/errcode"
	"github.com/erpgraph/erpgraph/tracing"
)

// RecordExtension is the gqlgen extension that fills the request's Record
// with the operation (name, type, document hash, variable names) and its
// outcome (the errors' codes), from what the executor already decoded and
// answered: nothing reads the body or the response a second time. In a
// traced request it also opens the operation's span (see InterceptOperation).
// Add it to
// the executor before every other extension, so it sees the request as the
// client sent it (before trusted documents or persisted queries resolve it)
// and the answer as the client gets it.
type RecordExtension struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
	graphql.OperationInterceptor
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

// InterceptOperation runs a valid operation under a span of its own, child of
// the server span, when the request is traced: named "query Dashboard" (type
// and name, as the semantic conventions name it), it carries the operation's
// name, type and document hash, and at its end the outcome code and the number
// of errors. Never variable values, never the document. It starts when gqlgen
// began reading the operation, so parsing and validation are inside it.
func (RecordExtension) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	rec := RecordOf(ctx)
	if rec == nil || rec.GraphQL == nil || !tracing.On(ctx) {
		return next(ctx)
	}
	oc := graphql.GetOperationContext(ctx)
	typ, name := "", rec.GraphQL.Name
	if oc.Operation != nil {
		typ, name = string(oc.Operation.Operation), cmp.Or(name, truncate(oc.Operation.Name))
	}
	spanName := cmp.Or(strings.TrimSpace(typ+" "+name), "graphql")
	attrs := []attribute.KeyValue{semconv.GraphQLOperationTypeKey.String(typ), AttrDocHash.String(rec.GraphQL.Hash)}
	if name != "" {
		attrs = append(attrs, semconv.GraphQLOperationName(name))
	}
	opts := []trace.SpanStartOption{trace.WithAttributes(attrs...)}
	if start := oc.Stats.OperationStart; !start.IsZero() {
		opts = append(opts, trace.WithTimestamp(start))
	}
	ctx, span := tracing.Start(ctx, spanName, opts...)
	responses := next(ctx)
	return func(ctx context.Context) *graphql.Response {
		resp := responses(ctx)
		if resp != nil && resp.HasNext != nil && *resp.HasNext {
			return resp // incremental delivery: the operation goes on
		}
		if resp != nil {
			span.SetAttributes(AttrErrors.Int(len(resp.Errors)))
		}
		span.SetAttributes(AttrOutcome.String(rec.outcome()))
		if o := rec.Outcome; o == errcode.Internal || strings.HasPrefix(o, "UPSTREAM_") {
			span.SetStatus(codes.Error, o)
		}
		span.End()
		return resp
	}
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

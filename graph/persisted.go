package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/erpgraph/erpgraph/errcode"
)

// TrustedDocuments is a manifest of the operations a build of an app may send: document ids (usually the
// document's sha256) mapped to documents. Clients send the id as Apollo's persisted-query hash
// (extensions.persistedQuery.sha256Hash) or as `documentId`; a document sent in full is recognized by its sha256.
type TrustedDocuments struct {
	byID   map[string]string
	bodies map[string]bool // sha256 hex of every document
}

// ParseTrustedDocuments reads a manifest in either common format: Apollo's persisted-query manifest
// {"format":"apollo-persisted-query-manifest","version":1,"operations":[{"id","body","name","type"}]}, or a
// plain JSON object of id → document (as written by GraphQL Code Generator's client preset and Relay).
func ParseTrustedDocuments(data []byte) (*TrustedDocuments, error) {
	td := &TrustedDocuments{byID: map[string]string{}, bodies: map[string]bool{}}
	var apollo struct {
		Format     string `json:"format"`
		Operations []struct {
			ID   string `json:"id"`
			Body string `json:"body"`
		} `json:"operations"`
	}
	if err := json.Unmarshal(data, &apollo); err == nil && apollo.Format != "" {
		if apollo.Format != "apollo-persisted-query-manifest" {
			return nil, fmt.Errorf("graph: trusted documents: unknown manifest format %q", apollo.Format)
		}
		for i, op := range apollo.Operations {
			if err := td.add(op.ID, op.Body); err != nil {
				return nil, fmt.Errorf("graph: trusted documents: operation %d: %w", i, err)
			}
		}
	} else {
		var plain map[string]string
		if err := json.Unmarshal(data, &plain); err != nil {
			return nil, errors.New("graph: trusted documents: not an Apollo persisted-query manifest nor a JSON object of id → document")
		}
		for id, body := range plain {
			if err := td.add(id, body); err != nil {
				return nil, fmt.Errorf("graph: trusted documents: %q: %w", id, err)
			}
		}
	}
	if len(td.byID) == 0 {
		return nil, errors.New("graph: trusted documents: the manifest lists no operation")
	}
	return td, nil
}

// LoadTrustedDocuments reads a manifest file (see ParseTrustedDocuments).
func LoadTrustedDocuments(path string) (*TrustedDocuments, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("graph: trusted documents: %w", err)
	}
	return ParseTrustedDocuments(data)
}

func (td *TrustedDocuments) add(id, body string) error {
	switch {
	case strings.TrimSpace(id) == "":
		return errors.New("empty id")
	case strings.TrimSpace(body) == "":
		return errors.New("empty document")
	}
	if prev, ok := td.byID[id]; ok && prev != body {
		return errors.New("the id names two different documents")
	}
	td.byID[id] = body
	td.bodies[sha256Hex(body)] = true
	return nil
}

// Len is the number of documents.
func (td *TrustedDocuments) Len() int { return len(td.byID) }

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// persisted resolves trusted document ids and, in only mode, refuses every other document. It runs before
// gqlgen's automatic persisted queries, which then see a request that carries its document.
type persisted struct {
	docs *TrustedDocuments // may be nil
	only bool
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = persisted{}

func (persisted) ExtensionName() string                   { return "erpgraphTrustedDocuments" }
func (persisted) Validate(graphql.ExecutableSchema) error { return nil }

func (p persisted) MutateOperationParameters(_ context.Context, raw *graphql.RawParams) *gqlerror.Error {
	id := persistedID(raw.Extensions)
	if p.docs != nil && id != "" {
		if body, ok := p.docs.byID[id]; ok {
			if raw.Query != "" && raw.Query != body {
				return refuse(errcode.PersistedQueryHashMismatch, "the document does not match the trusted document %s", id)
			}
			raw.Query = body
			// The id may not be the document's sha256: automatic persisted queries must not check it.
			raw.Extensions = maps.Clone(raw.Extensions)
			delete(raw.Extensions, "persistedQuery")
			return nil
		}
	}
	if !p.only {
		return nil
	}
	switch {
	case raw.Query == "" && p.docs != nil && p.docs.bodies[id]:
		return nil // the sha256 of a trusted document with another id: automatic persisted queries may know it
	case raw.Query == "" && id != "":
		return refuse(errcode.OperationNotAllowed, "this server runs only its trusted documents, and %s is not one of them", id)
	case raw.Query == "":
		return nil // the transport answers the missing document
	case p.docs == nil || !p.docs.bodies[sha256Hex(raw.Query)]:
		return refuse(errcode.OperationNotAllowed, "this server runs only its trusted documents; send the id of one (extensions.persistedQuery.sha256Hash)")
	}
	// A trusted document sent in full: automatic persisted queries may still check and cache its hash.
	return nil
}

// persistedID is extensions.persistedQuery.sha256Hash, or "".
func persistedID(ext map[string]any) string {
	pq, _ := ext["persistedQuery"].(map[string]any)
	id, _ := pq["sha256Hash"].(string)
	return id
}

// PersistedQueryStore keeps the documents of automatic persisted queries by their sha256 (hex). The in-memory
// store (NewMemoryPersistedQueries) is per replica; a shared one (Redis) lets a client that registered a document
// on one replica send its hash to another. It must be safe for concurrent use. A store that fails costs a
// PERSISTED_QUERY_NOT_FOUND round trip (the client sends the document again), never a failed operation.
type PersistedQueryStore interface {
	Get(ctx context.Context, hash string) (document string, ok bool, err error)
	Put(ctx context.Context, hash, document string) error
}

// MemoryPersistedQueries is the in-memory PersistedQueryStore: an LRU of at most size documents
// (hashicorp/golang-lru/v2).
type MemoryPersistedQueries struct {
	docs *lru.Cache[string, string]
}

// NewMemoryPersistedQueries returns a store of at most size documents.
func NewMemoryPersistedQueries(size int) *MemoryPersistedQueries {
	c, err := lru.New[string, string](max(size, 1))
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &MemoryPersistedQueries{docs: c}
}

// Get implements PersistedQueryStore; it never fails.
func (m *MemoryPersistedQueries) Get(_ context.Context, hash string) (string, bool, error) {
	doc, ok := m.docs.Get(hash)
	return doc, ok, nil
}

// Put implements PersistedQueryStore; it never fails.
func (m *MemoryPersistedQueries) Put(_ context.Context, hash, document string) error {
	m.docs.Add(hash, document)
	return nil
}

// apqCache adapts a PersistedQueryStore to gqlgen's automatic-persisted-query cache: documents above
// maxCachedDocument are not stored (a thousand of them near the body limit would hold a gigabyte), and a failing
// store is logged and counts as a miss.
type apqCache struct {
	store PersistedQueryStore
	log   *slog.Logger
}

func (c apqCache) Get(ctx context.Context, hash string) (string, bool) {
	doc, ok, err := c.store.Get(ctx, hash)
	if err != nil {
		c.log.WarnContext(ctx, "graph: persisted-query store failed; answering PERSISTED_QUERY_NOT_FOUND", "err", err)
		return "", false
	}
	return doc, ok
}

func (c apqCache) Add(ctx context.Context, hash, document string) {
	if len(document) > maxCachedDocument {
		return
	}
	if err := c.store.Put(ctx, hash, document); err != nil {
		c.log.WarnContext(ctx, "graph: persisted-query store failed; the document is not kept", "err", err)
	}
}

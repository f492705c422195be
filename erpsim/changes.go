package erpsim

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// RenameProduct gives product id a new English name, as a user editing it in
// ERP.net would: its ObjectVersion and AggregateLastUpdateTimeUtc move (to
// the Sim's clock), so an incremental pull sees the change.
func (s *Sim) RenameProduct(id, name string) error {
	u, err := uuid.Parse(id)
	if err != nil {
		return fmt.Errorf("erpsim: rename product: %w", err)
	}
	if err := s.store.RenameProduct(u, name, s.now()); err != nil {
		return fmt.Errorf("erpsim: rename product %s: %w", id, err)
	}
	return nil
}

// AdjustStock adds delta to the first current balance of product id (never
// below zero) and returns the new quantity, as a goods movement would.
func (s *Sim) AdjustStock(productID string, delta float64) (float64, error) {
	u, err := uuid.Parse(productID)
	if err != nil {
		return 0, fmt.Errorf("erpsim: adjust stock: %w", err)
	}
	q, err := s.store.AdjustStock(u, delta)
	if err != nil {
		return 0, fmt.Errorf("erpsim: adjust stock of %s: %w", productID, err)
	}
	return q, nil
}

// AddProduct adds a product to the catalogue, as a user creating one in
// ERP.net would (its AggregateLastUpdateTimeUtc is the Sim's clock), and
// returns its Id. Nothing refers to it, so DeleteProduct can remove it.
func (s *Sim) AddProduct(partNumber, name string) (string, error) {
	id, err := s.store.AddProduct(partNumber, name, s.now())
	if err != nil {
		return "", fmt.Errorf("erpsim: add product %s: %w", partNumber, err)
	}
	return id.String(), nil
}

// DeleteProduct deletes product id, as a user deleting it in ERP.net would:
// it is simply gone, and no incremental pull on AggregateLastUpdateTimeUtc
// can see that. A product that rows still refer to is refused.
func (s *Sim) DeleteProduct(id string) error {
	u, err := uuid.Parse(id)
	if err != nil {
		return fmt.Errorf("erpsim: delete product: %w", err)
	}
	if err := s.store.DeleteProduct(u); err != nil {
		return fmt.Errorf("erpsim: delete product %s: %w", id, err)
	}
	return nil
}

// Churn changes reference data every interval until ctx ends: it renames one
// product and moves one stock balance, walking the catalogue in Id order,
// and it alternately adds a product and deletes the one it added. A running
// instance whose reference data moves, for watching a change and a deletion
// arrive (`go run . sim -churn 5s`).
func (s *Sim) Churn(ctx context.Context, every time.Duration) {
	ids := s.store.ProductIDs()
	if len(ids) == 0 || every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var added string // the product churn added and deletes next
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-t.C:
		}
		id := ids[n%len(ids)]
		_ = s.store.RenameProduct(id, fmt.Sprintf("Changed product %d", n+1), s.now())
		_, _ = s.store.AdjustStock(id, float64(n%7-3))
		s.log.Debug("erpsim: churn changed a product and its stock", "product", id)
		if added == "" {
			if added, _ = s.AddProduct(fmt.Sprintf("CHURN-%06d", n+1), fmt.Sprintf("Churn product %d", n+1)); added != "" {
				s.log.Debug("erpsim: churn added a product", "product", added)
			}
		} else if s.DeleteProduct(added) == nil {
			s.log.Debug("erpsim: churn deleted a product", "product", added)
			added = ""
		}
	}
}

package engine

import (
	"errors"
	"testing"

	"github.com/creditd/creditd/credit"
)

func TestCheckText(t *testing.T) {
	if err := CheckText("action", "agent.run ünïcode"); err != nil {
		t.Fatalf("plain text: %v", err)
	}
	err := CheckText("action", "agent\x00run")
	var e *credit.Error
	if !errors.As(err, &e) || e.Code != credit.CodeValidation || e.Field != "action" {
		t.Fatalf("NUL: %v, want VALIDATION on action", err)
	}
	props := map[string]any{"a": []any{1.0, "x", map[string]any{"k\x00": true}}}
	if err := CheckJSONText("properties", props); credit.CodeOf(err) != credit.CodeValidation {
		t.Fatalf("NUL in a nested key: %v", err)
	}
	if err := CheckJSONText("properties", map[string]any{"a": []any{"ok", 2.0}}); err != nil {
		t.Fatalf("clean JSON: %v", err)
	}
}

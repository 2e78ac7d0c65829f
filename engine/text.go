package engine

import (
	"strings"

	"github.com/creditd/creditd/credit"
)

// Text is stored alike by both databases only without NUL: PostgreSQL
// refuses "\x00" in text and jsonb, SQLite keeps it. Input checks refuse it
// up front, naming the field, so both dialects answer the same.

// CheckText refuses s when it holds a NUL byte: a VALIDATION error naming
// field, nil otherwise.
func CheckText(field, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return credit.Invalid(field, "must not contain the NUL character (\\u0000)")
	}
	return nil
}

// CheckJSONText is CheckText over every key and string of a JSON value
// (maps, lists, strings, as encoding/json decodes them).
func CheckJSONText(field string, v any) error {
	switch x := v.(type) {
	case string:
		return CheckText(field, x)
	case map[string]any:
		for k, e := range x {
			if err := CheckText(field, k); err != nil {
				return err
			}
			if err := CheckJSONText(field, e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := CheckJSONText(field, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// Package playbook is the credit playbook's format: one document (YAML in
// a pricing team's git repository, or the same as JSON for applyPlaybook)
// holding the whole credit model: units, segments and their value model,
// weight registers, policies, plans and the change terms. Unknown fields
// are errors, everywhere. docs/playbook.schema.json is its JSON Schema (for
// editors); examples/agent-vendor.playbook.yaml is an example.
//
// Package playbook only reads and checks documents; engine/ledger's
// ApplyPlaybook plans and applies them.
package playbook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
)

// Document is a playbook.
type Document struct {
	Units       []Unit       `json:"units,omitempty"`
	Segments    []Segment    `json:"segments,omitempty"`
	Registers   []Register   `json:"registers,omitempty"`
	Policies    []Policy     `json:"policies,omitempty"`
	Plans       []Plan       `json:"plans,omitempty"`
	ChangeTerms *ChangeTerms `json:"changeTerms,omitempty"`
}

// Unit says what one credit represents (documentation for the model; the
// engine does not read it).
type Unit struct {
	Name        string `json:"name"`
	Kind        string `json:"kind,omitempty"` // input, activity, capacity, output, outcome
	Description string `json:"description,omitempty"`
}

// Segment is a buyer segment and its value model (documentation; a
// weight's valuePerAction is the value the engine reads).
type Segment struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	ValueModel  string `json:"valueModel,omitempty"`
}

// Register is a weight register: its name and weights (WeightInput's
// fields).
type Register struct {
	Name    string   `json:"name"`
	Weights []Weight `json:"weights"`
}

// Weight is one action's weight.
type Weight struct {
	Action          string           `json:"action"`
	Credits         decimal.Decimal  `json:"credits"`
	Expression      string           `json:"expression,omitempty"`
	ValuePerAction  *decimal.Decimal `json:"valuePerAction,omitempty"`
	CostPerAction   *decimal.Decimal `json:"costPerAction,omitempty"`
	DegradedAllowed bool             `json:"allowedInDegradedMode,omitempty"`
}

// Policy is a policy (PolicyInput's fields).
type Policy struct {
	Name       string            `json:"name"`
	Kind       credit.PolicyKind `json:"kind"`
	Expression string            `json:"expression"`
}

// Plan is a plan (PlanInput's fields).
type Plan struct {
	Name                  string                `json:"name"`
	Period                credit.Period         `json:"period"`
	IncludedCredits       decimal.Decimal       `json:"includedCredits"`
	PricePerCredit        decimal.Decimal       `json:"pricePerCredit"`
	PlatformFee           decimal.Decimal       `json:"platformFee"`
	Currency              string                `json:"currency,omitempty"`
	RegisterName          string                `json:"registerName"`
	OverageMode           credit.OverageMode    `json:"overageMode"`
	OveragePrice          *decimal.Decimal      `json:"overagePrice,omitempty"`
	AutoTopUpThreshold    *decimal.Decimal      `json:"autoTopUpThreshold,omitempty"`
	AutoTopUpCredits      *decimal.Decimal      `json:"autoTopUpCredits,omitempty"`
	AutoTopUpCap          *int                  `json:"autoTopUpCap,omitempty"`
	BorrowLimit           *decimal.Decimal      `json:"borrowLimit,omitempty"`
	RolloverMode          credit.RolloverMode   `json:"rolloverMode"`
	RolloverCap           *decimal.Decimal      `json:"rolloverCap,omitempty"`
	OnDemandPrice         *decimal.Decimal      `json:"onDemandPrice,omitempty"`
	OnDemandExpiryDays    *int                  `json:"onDemandExpiryDays,omitempty"`
	IncentiveCapPerPeriod *decimal.Decimal      `json:"incentiveCapPerPeriod,omitempty"`
	IncentiveCapPerMember *decimal.Decimal      `json:"incentiveCapPerMember,omitempty"`
	IncentiveExpiryDays   *int                  `json:"incentiveExpiryDays,omitempty"`
	Family                string                `json:"family,omitempty"`
	Tier                  *int                  `json:"tier,omitempty"`
	ChangeCredits         credit.ChangeCredits  `json:"changeCredits,omitempty"`
	EntitledActions       []string              `json:"entitledActions,omitempty"`
	SeedCredits           *decimal.Decimal      `json:"seedCredits,omitempty"`
	MemberLimit           *decimal.Decimal      `json:"memberLimit,omitempty"`
	OnDemandTiers         []credit.PriceTier    `json:"onDemandTiers,omitempty"`
	OverageTiers          []credit.PriceTier    `json:"overageTiers,omitempty"`
	SegmentPrices         []credit.SegmentPrice `json:"segmentPrices,omitempty"`
	TermEndCredits        credit.TermEndCredits `json:"termEndCredits,omitempty"`
	TermEndRefundRate     *decimal.Decimal      `json:"termEndRefundRate,omitempty"`
	NoticeDays            *int                  `json:"noticeDays,omitempty"`
}

// ChangeTerms are how the document's price changes take effect:
// effectiveFrom (default now) for its new register and policy versions.
// Notice periods and grandfathering are plan and subscription terms
// (noticeDays, grandfatheredUntil), checked when it applies.
type ChangeTerms struct {
	EffectiveFrom *time.Time `json:"effectiveFrom,omitempty"`
}

// MaxSize bounds a document.
const MaxSize = 4 << 20

// ParseYAML reads a YAML playbook.
func ParseYAML(data []byte) (Document, error) {
	if len(data) > MaxSize {
		return Document{}, credit.Invalid("document", "a playbook is at most %d bytes", MaxSize)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return Document{}, credit.Invalid("document", "not YAML: %v", err)
	}
	return ParseJSON(js)
}

// ParseJSON reads a JSON playbook (unknown fields are errors).
func ParseJSON(data []byte) (Document, error) {
	if len(data) > MaxSize {
		return Document{}, credit.Invalid("document", "a playbook is at most %d bytes", MaxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var d Document
	if err := dec.Decode(&d); err != nil {
		return Document{}, credit.Invalid("document", "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return d, d.Check()
}

// Check refuses what the document cannot mean: nameless or duplicate
// entries, a plan on a register of neither the document nor (checked when
// it applies) the live model. Rules and plans are checked in full when it
// is planned.
func (d Document) Check() error {
	seen := map[string]bool{}
	for i, r := range d.Registers {
		switch {
		case r.Name == "":
			return credit.Invalid(fmt.Sprintf("registers[%d].name", i), "is required")
		case seen["r:"+r.Name]:
			return credit.Invalid(fmt.Sprintf("registers[%d].name", i), "register %q appears twice", r.Name)
		}
		seen["r:"+r.Name] = true
	}
	for i, p := range d.Policies {
		switch {
		case p.Name == "":
			return credit.Invalid(fmt.Sprintf("policies[%d].name", i), "is required")
		case seen["p:"+p.Name]:
			return credit.Invalid(fmt.Sprintf("policies[%d].name", i), "policy %q appears twice", p.Name)
		}
		seen["p:"+p.Name] = true
	}
	for i, p := range d.Plans {
		switch {
		case p.Name == "":
			return credit.Invalid(fmt.Sprintf("plans[%d].name", i), "is required")
		case seen["l:"+p.Name]:
			return credit.Invalid(fmt.Sprintf("plans[%d].name", i), "plan %q appears twice", p.Name)
		}
		seen["l:"+p.Name] = true
	}
	return nil
}

// Marshal writes d as YAML.
func Marshal(d Document) ([]byte, error) {
	js, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(js)
}

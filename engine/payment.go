package engine

import (
	"time"

	"github.com/creditd/creditd/credit"
)

// Credits that wait for payment. A purchase or a grant may open PENDING
// (Opening.PaymentDue set): the grant is created with its amount but holds
// nothing (remaining 0, no opening entry), so no draw, hold, transfer,
// refund or void can touch it, and balances show it as pending. Its charge,
// if it has one, is written at once: the bill exists, its payment does not.
// Then exactly one of:
//
//   - ConfirmPayment: the opening GRANT entry of +amount, written now; from
//     here the grant is like any other (its expiry and refund window still
//     count from when it was created);
//   - FailPayment (the vendor's payment system said no, or the payment
//     window ran out): the grant becomes FAILED, still holding nothing,
//     and its charge is reversed by a negative charge referencing it.
//
// Both are idempotent: confirming a PAID grant or failing a FAILED one
// decides nothing.

// PaymentChange moves an existing grant's payment status.
type PaymentChange struct {
	Grant int
	To    credit.Payment
}

// Paid reports whether the grant's credits are paid for (a grant from
// before payments existed, with no status, is).
func (g Grant) Paid() bool { return g.Payment == "" || g.Payment == credit.PaymentPaid }

// waiting is the error of a credit movement on a grant that is not paid.
func (g Grant) waiting(code credit.Code) error {
	if g.Payment == credit.PaymentFailed {
		return credit.Errorf(code, "grant %d's payment failed: it holds no credits", g.ID)
	}
	return credit.Errorf(code, "grant %d waits for payment: it holds no credits until confirmPayment (failPayment cancels it)", g.ID)
}

// ConfirmPayment decides the confirmation of a pending grant's payment at
// now: its opening entry and its status PAID. Nothing when it is already
// PAID; CONFLICT when its payment failed or it expired while waiting (fail
// it, which reverses its charge, and sell again).
func ConfirmPayment(org, pool int, g Grant, now time.Time) (Posting, error) {
	switch {
	case g.Paid():
		return Posting{Org: org}, nil
	case g.Payment == credit.PaymentFailed:
		return Posting{}, credit.Errorf(credit.CodeConflict, "grant %d's payment already failed: it cannot be confirmed (buy again)", g.ID)
	case g.ExpiresAt != nil && !g.ExpiresAt.After(now):
		return Posting{}, credit.Errorf(credit.CodeConflict, "grant %d expired at %s while it waited for payment: failPayment reverses its charge",
			g.ID, g.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return Posting{Org: org,
		Moves:    []Move{{Pool: pool, Grant: g.ID, Kind: credit.EntryGrant, Amount: g.Amount, Memo: "payment confirmed"}},
		Payments: []PaymentChange{{Grant: g.ID, To: credit.PaymentPaid}}}, nil
}

// FailPayment decides the failure of a pending grant's payment: status
// FAILED and, when a charge billed it, a negative charge of what is left of
// it referencing it (memo: why, as the caller wrote it). Nothing when it already FAILED; CONFLICT when it is
// PAID (refund or void it instead).
func FailPayment(org int, g Grant, billed *PaidCharge, memo string) (Posting, error) {
	switch {
	case g.Payment == credit.PaymentFailed:
		return Posting{Org: org}, nil
	case g.Paid():
		return Posting{}, credit.Errorf(credit.CodeConflict, "grant %d is paid: refund or void it instead", g.ID)
	}
	out := Posting{Org: org, Payments: []PaymentChange{{Grant: g.ID, To: credit.PaymentFailed}}}
	if billed == nil {
		return out, nil
	}
	if rest := billed.Amount.Sub(billed.Refunded); rest.IsPositive() {
		grantID, of := g.ID, billed.ID
		out.Charges = []Charge{{Kind: billed.Kind, Credits: g.Amount.Neg(), Amount: rest.Neg(), Currency: billed.Currency,
			SubscriptionID: billed.SubscriptionID, Grant: &grantID, RefundOf: &of, Memo: memo}}
	}
	return out, nil
}

// Package credit is the vocabulary of the credit model: its enums (pool
// kinds, credit types, entry kinds, decisions, modes, periods, roles) and
// its domain error codes, with the Error type that carries them. It is a
// leaf: storage (ent), the engine, the rules and the API import it, and it
// knows nothing of any of them nor of a transport (the codes of keys, rate
// limits, request size and query depth belong to the API).
package credit

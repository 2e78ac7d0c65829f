// Package report reads an organisation's usage for people: summaries
// grouped and summed in the database, filtered listings with keyset
// pagination, and CSV exports streamed page by page.
//
// Access control is the caller's: every function takes an organisation id
// and reads only that organisation's rows.
package report

package report

// SetLimits lowers the export page size and the summary's row limit for a
// test, so that small data crosses page and limit boundaries; it returns
// the function that restores them.
func SetLimits(page, summaryRows int) (restore func()) {
	oldPage, oldRows := exportPage, maxSummaryRows
	exportPage, maxSummaryRows = page, summaryRows
	return func() { exportPage, maxSummaryRows = oldPage, oldRows }
}

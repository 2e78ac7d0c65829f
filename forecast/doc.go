// Package forecast predicts a pool's credit burn from its daily history and
// projects its balance over a horizon: when it depletes, how much it would
// burn beyond its balance (overage) and how much would expire unused
// (breakage). It is pure: no database, no clock; the caller passes the
// history and the schedule, Predict returns numbers.
//
// # Model
//
// Burn is a daily series with a strong weekly shape (people work on
// weekdays) and, for a growing customer, a trend. The model follows the
// length of the history:
//
//   - 14 days or more: additive Holt-Winters with a damped trend and a
//     weekly season (period 7), the ETS(A,Ad,A) model. Additive because burn
//     can be zero on weekends (a multiplicative season cannot start from
//     zero); damped (phi <= 0.98) so that a trend seen in a few weeks does not
//     run away over a 366-day horizon: the trend adds at most
//     phi/(1-phi) times the last slope. Two full weeks are the least that
//     separates a weekly season from a level. The smoothing parameters are
//     chosen by grid search minimising the one-step-ahead squared error over
//     the history: alpha, beta, gamma in {0.1, ..., 0.9} (729 fits) at
//     phi = 0.98, then phi in {0.80, 0.90, 0.95, 0.98} with those fixed, then
//     the 729 again if phi changed. On synthetic weekly series this chose as
//     well as the full 2916-point grid at a quarter to a half of its cost
//     (about 2 ms for 182 days); fits that fall behind the best so far stop
//     early. The search is deterministic. Only the last 182 days are used:
//     older burn says little about next month and the cap bounds the cost.
//   - 1 to 13 days: the mean of the days, no trend and no season (too few
//     points to tell a weekday from noise).
//   - none (empty, or nothing but zeros): "no history", zero burn.
//
// Days before the first non-zero burn are dropped as the pool's pre-history
// (a pool created three weeks ago reports zeros before it existed), and
// HistoryDays counts the days the model used.
//
// # Prediction interval
//
// Day.Low and Day.High bound an approximately 80% prediction interval,
// forecast -/+ 1.2816 sigma sqrt(h) for the h-th day ahead, where sigma is
// the root mean square of the one-step-ahead residuals of the chosen fit.
// The sqrt(h) growth is the random-walk approximation of how errors
// accumulate: simpler than the exact ETS variance, and on the wide side for
// small alpha (with +/-10% noise, 94% of the next 14 days fell inside the
// band over 200 synthetic series: read it as "at least 80%"). The mean model treats days as independent draws, so its
// band, mean -/+ 1.2816 s sqrt(1 + 1/n) with s the sample standard deviation,
// does not widen (one day of history: s is taken as the mean itself). Bounds
// are clamped at zero, like the forecasts. DailyBurnLow and DailyBurnHigh
// are the means of the daily bounds: they assume an error persists over the
// horizon, so they are wider than a band for the average of independent days.
//
// # Balance
//
// The balance is projected day by day over the horizon, in exact decimals
// with the daily forecasts rounded to 4 places:
//
//   - Allocations arrive at the start of the day that contains their At.
//   - An expiry at exactly 00:00 UTC happens at the start of its day, before
//     that day's burn; an expiry at any other time happens at the end of its
//     day, after that day's burn (the day's burn may still use it). What is
//     left of the credits then is breakage.
//   - Burn draws first from the credits that expire soonest, then from the
//     balance that does not expire (FEFO, the engine's default draw order);
//     Available minus the sum of Expiries is the non-expiring part. When
//     Expiries add up to more than Available, the soonest are reduced first,
//     as if the difference had already been drawn in draw order.
//     Allocated credits are taken not to expire within the horizon.
//   - Burn that finds no balance is overage; a later allocation does not pay
//     it back.
//   - DepletesAt is the first day with burn wanted that ends with a zero
//     balance.
//
// Overage and breakage are summed up to Until: PeriodEnd, or the end of the
// horizon when there is no period or it ends later. A day counts in full for
// overage when it starts before Until; an expiry counts as breakage when its
// At is not after Until.
package forecast

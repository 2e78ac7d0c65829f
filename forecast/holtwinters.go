package forecast

import (
	"fmt"
	"math"
)

// hwParams are the smoothing parameters of damped additive Holt-Winters:
// level (alpha), trend (beta), season (gamma) and trend damping (phi).
type hwParams struct{ alpha, beta, gamma, phi float64 }

// hwState is the model after some days: level, trend and one seasonal term
// per day of the week, indexed by the day's position in the series mod 7.
type hwState struct {
	level, trend float64
	season       [SeasonDays]float64
}

// hwPhis are the damping factors searched; 0.98 is the usual upper bound
// (above it the damping hardly damps).
var hwPhis = [...]float64{0.80, 0.90, 0.95, 0.98}

// holtWinters fits damped additive Holt-Winters to y (at least two weeks) by
// grid search over the one-step-ahead squared error.
func holtWinters(y []float64) model {
	p, sse := hwSearch(y)
	s, _ := p.run(y, hwInit(y), math.Inf(1))
	sigma := math.Sqrt(sse / float64(len(y)-SeasonDays))
	last := len(y) - 1
	return model{
		method: fmt.Sprintf("holt-winters additive, damped trend, weekly seasonality (alpha=%.1f, beta=%.1f, gamma=%.1f, phi=%.2f) over %d days",
			p.alpha, p.beta, p.gamma, p.phi, len(y)),
		at: func(h int) (float64, float64) {
			damped := p.phi * (1 - math.Pow(p.phi, float64(h))) / (1 - p.phi)
			burn := s.level + damped*s.trend + s.season[(last+h)%SeasonDays]
			return burn, z80 * sigma * math.Sqrt(float64(h))
		},
	}
}

// hwSearch returns the parameters with the least one-step squared error
// over y, and that error. It searches coordinate-wise: alpha, beta, gamma
// over the grid at the least damping, then phi with them fixed, then the
// grid again if phi changed. Ties keep the first in grid order, so the
// choice is deterministic.
func hwSearch(y []float64) (hwParams, float64) {
	init := hwInit(y)
	top := hwPhis[len(hwPhis)-1]
	best, sse := hwGrid(y, init, top)
	for _, phi := range hwPhis {
		p := hwParams{best.alpha, best.beta, best.gamma, phi}
		if _, e := p.run(y, init, sse); e < sse {
			best, sse = p, e
		}
	}
	if best.phi != top {
		best, sse = hwGrid(y, init, best.phi)
	}
	if math.IsInf(sse, 0) || math.IsNaN(sse) {
		return hwParams{0.1, 0.1, 0.1, top}, 0
	}
	return best, sse
}

// hwGrid returns the alpha, beta, gamma in {0.1, ..., 0.9} with the least
// one-step squared error over y under damping phi, and that error.
func hwGrid(y []float64, init hwState, phi float64) (hwParams, float64) {
	best, bestSSE := hwParams{0.1, 0.1, 0.1, phi}, math.Inf(1)
	for a := 1; a <= 9; a++ {
		for b := 1; b <= 9; b++ {
			for g := 1; g <= 9; g++ {
				p := hwParams{float64(a) / 10, float64(b) / 10, float64(g) / 10, phi}
				if _, sse := p.run(y, init, bestSSE); sse < bestSSE {
					best, bestSSE = p, sse
				}
			}
		}
	}
	return best, bestSSE
}

// hwInit estimates the state at the end of the first week from the first
// two: the level and slope from the two weekly means, each weekday's
// seasonal term from its deviations from the detrended means (so the seven
// terms add up to zero).
func hwInit(y []float64) hwState {
	m1, m2 := meanOf(y[:SeasonDays]), meanOf(y[SeasonDays:2*SeasonDays])
	trend := (m2 - m1) / SeasonDays
	centre := float64(SeasonDays-1) / 2 // the week's mean sits on its middle day
	s := hwState{level: m1 + centre*trend, trend: trend}
	for i := range s.season {
		offset := (float64(i) - centre) * trend
		s.season[i] = (y[i] - m1 - offset + y[i+SeasonDays] - m2 - offset) / 2
	}
	return s
}

// run updates s over y from the second week on (the error-correction form
// of ETS(A,Ad,A)) and returns the final state and the sum of the squared
// one-step-ahead errors. It stops early, with a sum above bound, once the
// sum passes bound: the grid search needs no more of a worse fit.
func (p hwParams) run(y []float64, s hwState, bound float64) (hwState, float64) {
	var sse float64
	for t, i := SeasonDays, 0; t < len(y); t, i = t+1, (i+1)%SeasonDays {
		damped := p.phi * s.trend
		e := y[t] - (s.level + damped + s.season[i])
		if sse += e * e; sse > bound {
			return s, sse
		}
		level := s.level + damped + p.alpha*e
		s.trend = damped + p.beta*(level-s.level-damped)
		s.season[i] += p.gamma * (y[t] - level - s.season[i])
		s.level = level
	}
	return s, sse
}

// meanOf is the arithmetic mean of a non-empty slice.
func meanOf(x []float64) float64 {
	var sum float64
	for _, v := range x {
		sum += v
	}
	return sum / float64(len(x))
}

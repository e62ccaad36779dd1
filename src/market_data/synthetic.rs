//! A seeded synthetic market for benchmarks and scale tests: geometric random-walk price paths
//! with drift regimes, volatility clustering, gaps and volume spikes on the NYSE calendar,
//! plus a few deliberate defects. Clearly synthetic: symbols are `SYN0000`…; never real data.

use crate::calendar;
use crate::market_data::DailyBar;
use chrono::NaiveDate;

/// A small, fast, seeded PRNG (SplitMix64); good enough for test data, deterministic everywhere.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Parameters of a synthetic market.
#[derive(Debug, Clone)]
pub struct SyntheticMarket {
    pub seed: u64,
    pub symbols: usize,
    /// Sessions per symbol, ending at `last_session`.
    pub sessions: usize,
    pub last_session: NaiveDate,
    /// Fraction of symbols given one defective bar (high < low, or a zero-volume day).
    pub defect_fraction: f64,
}

impl SyntheticMarket {
    /// An R3K-sized market: 3,000 symbols × 520 sessions.
    pub fn russell_3000(last_session: NaiveDate) -> Self {
        Self {
            seed: 3000,
            symbols: 3000,
            sessions: 520,
            last_session,
            defect_fraction: 0.02,
        }
    }

    pub fn symbol_name(index: usize) -> String {
        format!("SYN{index:04}")
    }

    /// The session dates, ascending, ending at `last_session`.
    pub fn session_dates(&self) -> Result<Vec<NaiveDate>, calendar::CalendarError> {
        let mut dates = Vec::with_capacity(self.sessions);
        let mut date = calendar::session_on_or_before(self.last_session)?;
        while dates.len() < self.sessions {
            dates.push(date);
            date = calendar::previous_session(date)?;
        }
        dates.reverse();
        Ok(dates)
    }

    /// Bars of symbol `index`: deterministic for a given seed and index.
    pub fn bars(&self, index: usize, dates: &[NaiveDate]) -> Vec<DailyBar> {
        let mut rng =
            SplitMix64::new(self.seed ^ (index as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        let mut price = 5.0 + 195.0 * rng.uniform();
        let base_volume = 2.0e5 + 5.0e6 * rng.uniform().powi(2);
        let mut vol = 0.01 + 0.02 * rng.uniform();
        let mut drift = 0.0;
        let mut bars = Vec::with_capacity(dates.len());
        for &date in dates {
            if rng.uniform() < 0.02 {
                drift = 0.0015 * rng.normal();
            }
            // Volatility clustering: mean-reverting with shocks.
            vol = (0.9 * vol + 0.1 * 0.018 + 0.002 * rng.normal().abs()).clamp(0.004, 0.06);
            let gap = if rng.uniform() < 0.01 {
                0.06 * rng.normal()
            } else {
                0.0
            };
            let open = price * (1.0 + gap + 0.3 * vol * rng.normal());
            let close = (open * (1.0 + drift + vol * rng.normal())).max(0.5);
            let open = open.max(0.5);
            let high = open.max(close) * (1.0 + vol * rng.uniform());
            let low = open.min(close) * (1.0 - vol * rng.uniform());
            let spike = if rng.uniform() < 0.03 {
                2.0 + 2.0 * rng.uniform()
            } else {
                1.0
            };
            let volume = (base_volume * spike * (0.6 + 0.8 * rng.uniform())).round();
            bars.push(DailyBar {
                date,
                open: round_cents(open),
                high: round_cents(high),
                low: round_cents(low),
                close: round_cents(close),
                volume,
            });
            price = close;
        }
        if !bars.is_empty() && rng.uniform() < self.defect_fraction {
            let i = (rng.next_u64() % bars.len() as u64) as usize;
            if rng.uniform() < 0.5 {
                let bar = &mut bars[i];
                (bar.high, bar.low) = (bar.low, bar.high);
            } else {
                bars[i].volume = 0.0;
            }
        }
        bars
    }
}

fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_on_sessions() {
        let market = SyntheticMarket {
            seed: 7,
            symbols: 3,
            sessions: 30,
            last_session: NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
            defect_fraction: 0.0,
        };
        let dates = market.session_dates().unwrap();
        assert_eq!(dates.len(), 30);
        assert_eq!(*dates.last().unwrap(), market.last_session);
        assert!(dates.iter().all(|d| calendar::is_session(*d).unwrap()));
        // Thanksgiving 2026-11-26 is skipped.
        assert!(!dates.contains(&NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()));
        let a = market.bars(1, &dates);
        assert_eq!(a, market.bars(1, &dates));
        assert_ne!(a, market.bars(2, &dates));
        for bar in &a {
            assert!(bar.low <= bar.open.min(bar.close) && bar.high >= bar.open.max(bar.close));
            assert!(bar.low > 0.0 && bar.volume > 0.0);
        }
    }

    #[test]
    fn uniform_and_normal_are_sane() {
        let mut rng = SplitMix64::new(1);
        let xs: Vec<f64> = (0..10_000).map(|_| rng.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(
            mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}

//! Checks the scanner's indicators, anchors and AVWAP against pandas on real bars: the demo
//! data set's S&P 500 bars (data/demo/bars.csv.gz) and the values that
//! `tools/golden_indicators.py` computed from them with plain pandas (see its header for the
//! versions). Regenerate the golden file with that script rather than editing it.
//!
//! Values must agree to 1e-9 relative (1e-12 absolute near zero); NaN must be NaN. Full
//! series list only their non-NaN values, so an index absent from the golden file must be
//! NaN here.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::BufReader;

use avwap::market_data::{BarSeries, DailyBar};
use avwap::scan::anchors::{
    anchor_candidates, anchored_vwap, avwap_with_sigma_last, most_recent_gap,
    most_recent_volume_breakout, rolling_vwap, swing_high, swing_low, AnchorParams,
};
use avwap::scan::indicators::{
    adx, atr, quantile_last, rolling_quantile, slope_last, sma, trend_score, weekly_closes,
    TrendScoreParams,
};
use avwap::watchlist::AnchorKind;
use chrono::NaiveDate;
use flate2::read::GzDecoder;

const BARS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/demo/bars.csv.gz");
const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/golden_indicators.csv"
);

const REL_TOL: f64 = 1e-9;
const ABS_TOL: f64 = 1e-12;

type Key = (String, String, String);

/// `(symbol, series, param)` → `index → value`.
fn read_golden() -> BTreeMap<Key, BTreeMap<usize, f64>> {
    let mut reader = csv::Reader::from_path(GOLDEN)
        .unwrap_or_else(|e| panic!("cannot read {GOLDEN}: {e} (run tools/golden_indicators.py)"));
    let headers = reader.headers().expect("golden header").clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        ["symbol", "series", "param", "index", "value"],
        "{GOLDEN}: header"
    );
    let mut golden: BTreeMap<Key, BTreeMap<usize, f64>> = BTreeMap::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.unwrap_or_else(|e| panic!("{GOLDEN}:{}: {e}", line + 2));
        let index: usize = record[3]
            .parse()
            .unwrap_or_else(|_| panic!("{GOLDEN}:{}: bad index", line + 2));
        let value: f64 = record[4]
            .parse()
            .unwrap_or_else(|_| panic!("{GOLDEN}:{}: bad value", line + 2));
        golden
            .entry((
                record[0].to_string(),
                record[1].to_string(),
                record[2].to_string(),
            ))
            .or_default()
            .insert(index, value);
    }
    golden
}

/// The demo bars of `symbols`, parsed straight from the CSV (no validation beyond parsing;
/// a few demo rows have the open outside [low, high], which no indicator here reads).
fn read_bars(symbols: &HashSet<String>) -> BTreeMap<String, BarSeries> {
    let file = File::open(BARS).unwrap_or_else(|e| panic!("cannot open {BARS}: {e}"));
    let mut reader = csv::Reader::from_reader(BufReader::new(GzDecoder::new(file)));
    let mut out: BTreeMap<String, BarSeries> = BTreeMap::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.unwrap_or_else(|e| panic!("{BARS}:{}: {e}", line + 2));
        let symbol = &record[1];
        if !symbols.contains(symbol) {
            continue;
        }
        let num = |i: usize| -> f64 {
            record[i]
                .parse()
                .unwrap_or_else(|_| panic!("{BARS}:{}: bad number {:?}", line + 2, &record[i]))
        };
        let bar = DailyBar {
            date: NaiveDate::parse_from_str(&record[0], "%Y-%m-%d")
                .unwrap_or_else(|_| panic!("{BARS}:{}: bad date", line + 2)),
            open: num(2),
            high: num(3),
            low: num(4),
            close: num(5),
            volume: num(6),
        };
        out.entry(symbol.to_string())
            .or_insert_with(|| BarSeries::new(symbol))
            .push(bar);
    }
    for series in out.values() {
        assert!(
            series.dates.windows(2).all(|w| w[0] < w[1]),
            "{}: dates not ascending",
            series.symbol
        );
    }
    out
}

fn head(series: &BarSeries, k: usize) -> BarSeries {
    BarSeries {
        symbol: series.symbol.clone(),
        dates: series.dates[..k].to_vec(),
        open: series.open[..k].to_vec(),
        high: series.high[..k].to_vec(),
        low: series.low[..k].to_vec(),
        close: series.close[..k].to_vec(),
        volume: series.volume[..k].to_vec(),
    }
}

/// Tracks comparisons and the worst relative error per series name.
#[derive(Default)]
struct Report {
    compared: BTreeMap<String, (usize, f64)>,
    failures: Vec<String>,
}

impl Report {
    fn value(&mut self, what: &str, context: &str, actual: f64, expected: f64) {
        let entry = self.compared.entry(what.to_string()).or_insert((0, 0.0));
        entry.0 += 1;
        if expected.is_nan() || actual.is_nan() {
            if expected.is_nan() != actual.is_nan() {
                self.failures.push(format!(
                    "{what} {context}: got {actual}, expected {expected}"
                ));
            }
            return;
        }
        let diff = (actual - expected).abs();
        if expected != 0.0 {
            entry.1 = entry.1.max(diff / expected.abs());
        }
        if diff > (REL_TOL * expected.abs()).max(ABS_TOL) {
            self.failures.push(format!(
                "{what} {context}: got {actual:?}, expected {expected:?}"
            ));
        }
    }

    /// Every index of `actual` against the golden map (absent = NaN).
    fn series(
        &mut self,
        what: &str,
        symbol: &str,
        actual: &[f64],
        golden: Option<&BTreeMap<usize, f64>>,
    ) {
        let empty = BTreeMap::new();
        let golden = golden.unwrap_or(&empty);
        if let Some((&max, _)) = golden.last_key_value() {
            if max >= actual.len() {
                self.failures.push(format!(
                    "{what} {symbol}: golden has index {max}, series has {} values",
                    actual.len()
                ));
            }
        }
        for (i, &a) in actual.iter().enumerate() {
            let e = golden.get(&i).copied().unwrap_or(f64::NAN);
            self.value(what, &format!("{symbol}[{i}]"), a, e);
        }
    }

    fn index(&mut self, what: &str, context: &str, actual: Option<usize>, expected: f64) {
        self.value(
            what,
            context,
            actual.map_or(f64::NAN, |i| i as f64),
            expected,
        );
    }
}

#[test]
fn indicators_and_avwap_match_pandas() {
    let golden = read_golden();
    let symbols: HashSet<String> = golden.keys().map(|k| k.0.clone()).collect();
    assert!(
        symbols.len() >= 10,
        "golden file covers {} symbols",
        symbols.len()
    );
    let bars = read_bars(&symbols);
    let get = |sym: &str, series: &str, param: &str| {
        golden.get(&(sym.to_string(), series.to_string(), param.to_string()))
    };
    let scalar = |sym: &str, series: &str, param: usize| -> f64 {
        let map = get(sym, series, &param.to_string())
            .unwrap_or_else(|| panic!("golden lacks {sym} {series} {param}"));
        *map.values().next().unwrap_or(&f64::NAN)
    };
    let ts_params = TrendScoreParams::default();
    let anchor_params = AnchorParams::default();
    let mut report = Report::default();

    for (sym, s) in &bars {
        let n = s.len();
        let (h, l, c, v) = (&s.high[..], &s.low[..], &s.close[..], &s.volume[..]);
        report.series("sma50", sym, &sma(c, 50), get(sym, "sma50", ""));
        let atr14 = atr(h, l, c, 14);
        report.series("atr14", sym, &atr14, get(sym, "atr14", ""));
        report.series("adx14", sym, &adx(h, l, c, 14), get(sym, "adx14", ""));
        let atr_pct: Vec<f64> = atr14.iter().zip(c).map(|(a, c)| 100.0 * a / c).collect();
        report.series(
            "atr_pct_median120",
            sym,
            &rolling_quantile(&atr_pct, 120, 0.5),
            get(sym, "atr_pct_median120", ""),
        );
        report.series(
            "rolling_vwap20",
            sym,
            &rolling_vwap(h, l, c, v, 20),
            get(sym, "rolling_vwap20", ""),
        );
        report.series(
            "weekly_close",
            sym,
            &weekly_closes(&s.dates, c),
            get(sym, "weekly_close", ""),
        );

        let avwap_keys: Vec<&Key> = golden
            .keys()
            .filter(|k| k.0 == *sym && k.1 == "avwap")
            .collect();
        assert_eq!(avwap_keys.len(), 4, "{sym}: expected 4 anchors");
        for key in avwap_keys {
            let anchor: usize = key.2.parse().expect("anchor param");
            let series = anchored_vwap(h, l, c, v, anchor);
            report.series(
                "avwap",
                &format!("{sym}@{anchor}"),
                &series,
                golden.get(key),
            );
            let bands = avwap_with_sigma_last(h, l, c, v, anchor);
            assert_eq!(
                bands.vwap.to_bits(),
                series[n - 1].to_bits(),
                "{sym}@{anchor}"
            );
            report.value(
                "avwap_sigma_last",
                &format!("{sym}@{anchor}"),
                bands.sigma,
                scalar(sym, "avwap_sigma_last", anchor),
            );
        }

        let cuts: Vec<usize> = golden
            .keys()
            .filter(|k| k.0 == *sym && k.1 == "trend_score")
            .map(|k| k.2.parse().expect("cut param"))
            .collect();
        assert!(cuts.contains(&n) && cuts.len() >= 5, "{sym}: cuts {cuts:?}");
        for k in cuts {
            let part = head(s, k);
            let ctx = format!("{sym}[..{k}]");
            let (ph, pl, pc) = (&part.high[..], &part.low[..], &part.close[..]);
            report.value(
                "trend_score",
                &ctx,
                trend_score(ph, pl, pc, &ts_params),
                scalar(sym, "trend_score", k),
            );
            report.value(
                "sma50_slope10_pct",
                &ctx,
                100.0 * slope_last(&sma(pc, 50), 10),
                scalar(sym, "sma50_slope10_pct", k),
            );
            let part_atr_pct: Vec<f64> = atr(ph, pl, pc, 14)
                .iter()
                .zip(pc)
                .map(|(a, c)| 100.0 * a / c)
                .collect();
            report.value(
                "atr_pct_median120_last",
                &ctx,
                quantile_last(&part_atr_pct, 120, 0.5),
                scalar(sym, "atr_pct_median120_last", k),
            );
            report.index(
                "anchor_gap",
                &ctx,
                most_recent_gap(
                    &part.open,
                    pc,
                    anchor_params.lookback,
                    anchor_params.gap_fraction,
                ),
                scalar(sym, "anchor_gap", k),
            );
            report.index(
                "anchor_volbreakout",
                &ctx,
                most_recent_volume_breakout(&part, &anchor_params),
                scalar(sym, "anchor_volbreakout", k),
            );
            report.index(
                "anchor_swinglow",
                &ctx,
                swing_low(pl, 20),
                scalar(sym, "anchor_swinglow", k),
            );
            report.index(
                "anchor_swinghigh",
                &ctx,
                swing_high(ph, 20),
                scalar(sym, "anchor_swinghigh", k),
            );
        }

        // Calendar anchors on real dates: the data reaches back before 2010, so YTD is the
        // year's first session. MTD (unless another anchor shares its bar) is the symbol's
        // first bar of August 2010: that is Aug 3 for ETFC, which has no Aug 2 bar; a hole
        // after the period start is treated like any missing bar inside an AVWAP window.
        let candidates = anchor_candidates(s, &anchor_params, false);
        let date_of = |kind| {
            candidates
                .iter()
                .find(|a| a.kind == kind)
                .map(|a| s.dates[a.index])
        };
        assert_eq!(
            date_of(AnchorKind::Ytd),
            NaiveDate::from_ymd_opt(2010, 1, 4),
            "{sym}"
        );
        let august = NaiveDate::from_ymd_opt(2010, 8, 1).expect("constant date");
        let first_august_bar = s.dates.iter().copied().find(|d| *d >= august);
        if let Some(mtd) = date_of(AnchorKind::Mtd) {
            assert_eq!(Some(mtd), first_august_bar, "{sym}");
        }
        let compat = anchor_candidates(s, &anchor_params, true);
        assert_eq!(
            (compat[0].kind, compat[0].index),
            (AnchorKind::Ytd, 0),
            "{sym}"
        );
    }

    for (what, (count, max_rel)) in &report.compared {
        println!("{what:>24}: {count:>6} values, max relative error {max_rel:.3e}");
    }
    assert!(
        report.failures.is_empty(),
        "{} mismatches, first ones:\n{}",
        report.failures.len(),
        report
            .failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

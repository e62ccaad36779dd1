use super::*;
use chrono::TimeZone;
use rust_decimal_macros_free::dec;

/// `Decimal` literals without a macro crate: parses exact text.
mod rust_decimal_macros_free {
    macro_rules! dec {
        ($text:expr) => {
            rust_decimal::Decimal::from_str_exact(stringify!($text)).unwrap()
        };
    }
    pub(crate) use dec;
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn points() -> Vec<EquityPoint> {
    vec![
        EquityPoint {
            date: day("2010-03-01"),
            equity: dec!(100000),
            cash: dec!(100000),
            long_value: dec!(0),
            benchmark: 111.44,
        },
        EquityPoint {
            date: day("2010-03-02"),
            equity: dec!(100123.45),
            cash: dec!(80012.1),
            long_value: dec!(20111.35),
            benchmark: 0.1 + 0.2,
        },
    ]
}

fn trip() -> RoundTrip {
    RoundTrip {
        symbol: "BRK.B".into(),
        scan_date: day("2010-03-01"),
        anchor_date: day("2010-02-05"),
        entry_level: dec!(70.25),
        entry_time: Utc.with_ymd_and_hms(2010, 3, 1, 14, 40, 0).unwrap(),
        exit_time: Utc.with_ymd_and_hms(2010, 3, 4, 20, 0, 0).unwrap(),
        entry_price: dec!(70.3125),
        exit_price: dec!(72.1),
        qty: dec!(140),
        initial_stop: dec!(68.9),
        target_r1: dec!(71.7),
        target_r2: dec!(73.1),
        trimmed: true,
        exit_reason: ExitReason::Stop,
        gross_pnl: dec!(250.25),
        costs: dec!(2.8),
        net_pnl: dec!(247.45),
        r_multiple: 247.45 / (140.0 * 1.4125),
        traded_notional: dec!(19937.75),
    }
}

#[test]
fn equity_round_trips_exactly() {
    let mut bytes = Vec::new();
    write_equity_csv(&mut bytes, &points()).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert_eq!(
        text,
        "date,equity,cash,long_value,benchmark\n\
         2010-03-01,100000,100000,0,111.44\n\
         2010-03-02,100123.45,80012.1,20111.35,0.30000000000000004\n"
    );
    assert_eq!(read_equity_csv(&bytes[..]).unwrap(), points());
}

#[test]
fn trades_round_trip_exactly() {
    let mut other = trip();
    other.symbol = "A,\"B\"".into();
    other.trimmed = false;
    other.exit_reason = ExitReason::EndOfBacktest;
    other.r_multiple = -1.0 / 3.0;
    other.exit_time = Utc.timestamp_opt(1_267_713_000, 123_000_000).unwrap();
    let trips = vec![trip(), other];
    let mut bytes = Vec::new();
    write_trades_csv(&mut bytes, &trips).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(TRADES_COLUMNS.join(",").as_str()));
    assert_eq!(
        lines.next(),
        Some(
            "BRK.B,2010-03-01,2010-02-05,70.25,2010-03-01T14:40:00Z,2010-03-04T20:00:00Z,\
             70.3125,72.1,140,68.9,71.7,73.1,true,stop,250.25,2.8,247.45,1.2513274336283184,19937.75"
        )
    );
    assert_eq!(read_trades_csv(&bytes[..]).unwrap(), trips);
}

#[test]
fn every_exit_reason_reads_back() {
    for reason in [
        ExitReason::Stop,
        ExitReason::TargetR2,
        ExitReason::StopLevel,
        ExitReason::Flatten,
        ExitReason::EndOfBacktest,
    ] {
        assert_eq!(reason.as_str().parse::<ExitReason>(), Ok(reason));
    }
    assert_eq!("Stop".parse::<ExitReason>(), Err(UnknownExitReason));
}

#[test]
fn empty_files_are_refused_and_header_only_files_are_empty_lists() {
    assert!(matches!(
        read_equity_csv(&b""[..]),
        Err(PerformanceCsvError::Empty {
            file: "equity.csv",
            ..
        })
    ));
    assert_eq!(
        read_trades_csv(format!("{}\n", TRADES_COLUMNS.join(",")).as_bytes()).unwrap(),
        vec![]
    );
}

#[test]
fn a_wrong_header_is_named() {
    let err = read_equity_csv(&b"date,equity,cash,benchmark\n2010-03-01,1,1,1\n"[..]).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("equity.csv line 1 has the header \"date,equity,cash,benchmark\""),
        "{message}"
    );
    assert!(
        message.contains("date,equity,cash,long_value,benchmark"),
        "{message}"
    );
}

#[test]
fn a_bad_field_names_its_line_and_column() {
    let text = "date,equity,cash,long_value,benchmark\n\
                2010-03-01,100000,100000,0,111.44\n\
                2010-03-02,100k,100000,0,111.44\n";
    assert_eq!(
        read_equity_csv(text.as_bytes()),
        Err(PerformanceCsvError::Field {
            file: "equity.csv",
            line: 3,
            column: "equity",
            found: "\"100k\"".into(),
            expected: "a decimal number",
        })
    );
    let mut bytes = Vec::new();
    write_trades_csv(&mut bytes, &[trip()]).unwrap();
    let text = String::from_utf8(bytes)
        .unwrap()
        .replace(",stop,", ",stopped,");
    let message = read_trades_csv(text.as_bytes()).unwrap_err().to_string();
    assert!(
        message.starts_with(
            "trades.csv line 2, column exit_reason: \"stopped\" is not an exit reason"
        ),
        "{message}"
    );
    let text = text.replace("2010-03-04T20:00:00Z", "2010-03-04 20:00");
    let message = read_trades_csv(text.as_bytes()).unwrap_err().to_string();
    assert!(message.contains("line 2, column exit_time"), "{message}");
}

#[test]
fn a_short_row_and_bad_utf8_are_malformed_with_their_line() {
    let text = "date,equity,cash,long_value,benchmark\n2010-03-01,1,1,0\n";
    assert!(matches!(
        read_equity_csv(text.as_bytes()),
        Err(PerformanceCsvError::Malformed {
            file: "equity.csv",
            line: 2,
            ..
        })
    ));
    let bytes = b"date,equity,cash,long_value,benchmark\n2010-03-01,1,1,0,\xff\n";
    assert!(matches!(
        read_equity_csv(&bytes[..]),
        Err(PerformanceCsvError::Malformed { line: 2, .. })
    ));
}

#[test]
fn equity_dates_must_increase() {
    let text = "date,equity,cash,long_value,benchmark\n\
                2010-03-02,1,1,0,1\n\
                2010-03-02,1,1,0,1\n";
    assert_eq!(
        read_equity_csv(text.as_bytes()),
        Err(PerformanceCsvError::DateOrder {
            file: "equity.csv",
            line: 3,
            date: day("2010-03-02"),
            previous: day("2010-03-02"),
        })
    );
}

#[test]
fn long_values_are_cut_in_messages() {
    let long = "9".repeat(10_000);
    let text = format!("date,equity,cash,long_value,benchmark\n2010-03-01,{long},1,0,1\n");
    let message = read_equity_csv(text.as_bytes()).unwrap_err().to_string();
    assert!(message.len() < 400, "{message}");
}

mod fuzz {
    //! Both readers on arbitrary bytes and on byte mutations of valid files: they return,
    //! never panic, and what they accept writes back to a file that reads the same.
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    fn valid_files() -> (Vec<u8>, Vec<u8>) {
        let mut equity = Vec::new();
        write_equity_csv(&mut equity, &points()).unwrap();
        let mut trades = Vec::new();
        let mut second = trip();
        second.exit_reason = ExitReason::TargetR2;
        write_trades_csv(&mut trades, &[trip(), second]).unwrap();
        (equity, trades)
    }

    fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
        let token = prop::sample::select(vec![
            &b","[..],
            b"\n",
            b"\r\n",
            b"\"",
            b"\xff",
            b"\0",
            b"-",
            b"1e309",
            b"NaN",
            b"inf",
            b"2010-02-30",
            b"99999999999999999999999999999999",
            b"T25:00:00Z",
            b"",
        ]);
        let edit = (
            0usize..4,
            any::<prop::sample::Index>(),
            any::<u8>(),
            token,
            0usize..24,
        );
        prop::collection::vec(edit, 1..4).prop_map(move |edits| {
            let mut bytes = valid.clone();
            for (kind, at, byte, token, len) in edits {
                let at = at.index(bytes.len() + 1);
                match kind {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => {
                        bytes.splice(at..at, token.iter().copied());
                    }
                    2 => {
                        let end = (at + len).min(bytes.len());
                        bytes.drain(at..end);
                    }
                    _ => {
                        let end = (at + len).min(bytes.len());
                        let copy = bytes[at..end].to_vec();
                        bytes.splice(at..at, copy);
                    }
                }
            }
            bytes
        })
    }

    /// Reads `bytes` both ways; returns the rows accepted.
    fn check(bytes: &[u8]) -> usize {
        let mut accepted = 0;
        match read_equity_csv(bytes) {
            Ok(points) => {
                let mut again = Vec::new();
                write_equity_csv(&mut again, &points).unwrap();
                let reread = read_equity_csv(&again[..]).unwrap();
                // NaN benchmarks compare unequal: compare the written text instead.
                let mut third = Vec::new();
                write_equity_csv(&mut third, &reread).unwrap();
                assert_eq!(again, third);
                accepted += points.len();
            }
            Err(e) => assert!(e.to_string().len() < 600, "{e}"),
        }
        match read_trades_csv(bytes) {
            Ok(trips) => {
                let mut again = Vec::new();
                write_trades_csv(&mut again, &trips).unwrap();
                let mut third = Vec::new();
                write_trades_csv(&mut third, &read_trades_csv(&again[..]).unwrap()).unwrap();
                assert_eq!(again, third);
                accepted += trips.len();
            }
            Err(e) => assert!(e.to_string().len() < 600, "{e}"),
        }
        accepted
    }

    fn run(cases: u32, strategy: impl Strategy<Value = Vec<u8>>) -> usize {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let accepted = std::sync::atomic::AtomicUsize::new(0);
        runner
            .run(&strategy, |bytes| {
                accepted.fetch_add(check(&bytes), std::sync::atomic::Ordering::Relaxed);
                Ok(())
            })
            .unwrap();
        accepted.into_inner()
    }

    #[test]
    fn arbitrary_bytes() {
        run(2000, prop::collection::vec(any::<u8>(), 0..400));
    }

    #[test]
    fn mutations_of_valid_files() {
        let (equity, trades) = valid_files();
        let accepted = run(2000, mutated(equity)) + run(2000, mutated(trades));
        // Not vacuous: many mutated files still read.
        assert!(accepted > 100, "{accepted} rows accepted");
    }
}

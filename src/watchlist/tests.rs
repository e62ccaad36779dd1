use super::*;
use rust_decimal_macros_free::dec;

/// Tiny stand-in for a decimal literal macro without adding a dependency.
mod rust_decimal_macros_free {
    macro_rules! dec {
        ($s:literal) => {
            rust_decimal::Decimal::from_str_exact(stringify!($s)).unwrap()
        };
    }
    pub(crate) use dec;
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// The predecessor's illustrative row (upstream-scanner.md §4.7) plus our two columns.
pub(crate) fn sample_row() -> WatchlistRow {
    WatchlistRow {
        scan_date: date("2026-01-20"),
        symbol: "AXTA".into(),
        direction: Direction::Long,
        trend_tier: TrendTier::A,
        price: dec!(33.02),
        entry_level: dec!(32.43),
        entry_dist_pct: dec!(1.82),
        stop_loss: dec!(32.1),
        target_r1: dec!(33.34),
        target_r2: dec!(33.67),
        trend_score: dec!(21.734512),
        sector: "Materials".into(),
        anchor: AnchorKind::SwingLow20,
        avwap_slope: dec!(0.0125),
        setup_vwap_control: ControlLabel::Bullish,
        setup_vwap_reclaim: CrossLabel::None,
        setup_vwap_acceptance: CrossLabel::Bullish,
        setup_vwap_dist_pct: Some(dec!(1.05)),
        setup_avwap_control: ControlLabel::Bullish,
        setup_avwap_reclaim: CrossLabel::None,
        setup_avwap_acceptance: CrossLabel::Bullish,
        setup_avwap_dist_pct: Some(dec!(1.82)),
        setup_extension_state: ExtensionLabel::Moderate,
        setup_gap_reset: GapResetLabel::None,
        setup_structure_state: ControlLabel::Bullish,
        data_as_of: date("2026-01-16"),
        anchor_date: date("2025-12-29"),
    }
}

const SAMPLE_LINE: &str = "1,2026-01-20,AXTA,Long,A,33.02,32.43,1.82,32.10,33.34,33.67,21.734512,Materials,SwingLow20,0.0125,bullish,none,bullish,1.05,bullish,none,bullish,1.82,moderate,none,bullish,2026-01-16,2025-12-29\n";

fn header_line() -> String {
    format!("{}\n", COLUMNS.join(","))
}

fn parse(text: &str) -> Result<Vec<WatchlistRow>, WatchlistError> {
    parse_watchlist(text.as_bytes(), Path::new("wl.csv"))
}

fn invalid_at(text: &str) -> (u64, String, String) {
    match parse(text).unwrap_err() {
        WatchlistError::Invalid {
            line,
            column,
            message,
            ..
        } => (line, column, message),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn header_keeps_the_predecessor_columns_in_order() {
    let predecessor = "SchemaVersion,ScanDate,Symbol,Direction,TrendTier,Price,Entry_Level,Entry_DistPct,Stop_Loss,Target_R1,Target_R2,TrendScore,Sector,Anchor,AVWAP_Slope,Setup_VWAP_Control,Setup_VWAP_Reclaim,Setup_VWAP_Acceptance,Setup_VWAP_DistPct,Setup_AVWAP_Control,Setup_AVWAP_Reclaim,Setup_AVWAP_Acceptance,Setup_AVWAP_DistPct,Setup_Extension_State,Setup_Gap_Reset,Setup_Structure_State";
    assert_eq!(COLUMNS[..26].join(","), predecessor);
    assert_eq!(&COLUMNS[26..], &["DataAsOf", "AnchorDate"]);
}

#[test]
fn renders_the_expected_bytes() {
    let bytes = render(&[sample_row()]);
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        format!("{}{SAMPLE_LINE}", header_line())
    );
}

#[test]
fn round_trips_through_a_real_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daily_candidates.csv");
    let mut second = sample_row();
    second.symbol = "BRK.B".into();
    second.setup_vwap_dist_pct = None;
    second.trend_score = dec!(-3.5);
    write_watchlist(&path, &[sample_row(), second.clone()]).unwrap();
    let rows = read_watchlist(&path).unwrap();
    assert_eq!(rows.len(), 2);
    // 32.1 is written as 32.10 and reads back as the same value.
    assert_eq!(rows[0], sample_row());
    assert_eq!(rows[1], second);
    // Writing what we read gives the same bytes.
    assert_eq!(render(&rows), std::fs::read(&path).unwrap());
}

#[test]
fn header_only_is_a_valid_empty_list() {
    assert!(parse(&header_line()).unwrap().is_empty());
    assert_eq!(render(&[]), header_line().into_bytes());
}

#[test]
fn empty_file_is_invalid() {
    let (line, _, message) = invalid_at("");
    assert_eq!(line, 1);
    assert!(message.contains("empty"), "{message}");
}

#[test]
fn truncated_file_is_invalid_with_its_line() {
    let full = format!("{}{SAMPLE_LINE}", header_line());
    // Cut in the middle of the data line: no final newline.
    let cut = &full[..full.len() - 30];
    let (line, column, message) = invalid_at(cut);
    assert_eq!(line, 2);
    assert_eq!(column, "(end of file)");
    assert!(message.contains("truncated"), "{message}");
    // Cut exactly after a comma but with a newline added: wrong field count.
    let (line, _, message) = invalid_at(&format!("{}\n", &full[..full.len() - 30]));
    assert_eq!(line, 2);
    assert!(message.contains("fields"), "{message}");
}

#[test]
fn garbage_is_invalid() {
    let (line, column, message) = invalid_at("<html><body>502 Bad Gateway</body></html>\n");
    assert_eq!(line, 1);
    assert_eq!(column, "SchemaVersion");
    assert!(message.contains("header column 1"), "{message}");
    assert!(parse("\u{0}\u{1}\u{2}garbage\n").is_err());
}

#[test]
fn legacy_predecessor_header_is_rejected_naming_the_missing_column() {
    let legacy = format!("{}\n", COLUMNS[..26].join(","));
    let (line, column, message) = invalid_at(&legacy);
    assert_eq!((line, column.as_str()), (1, "DataAsOf"));
    assert!(message.contains("found nothing"), "{message}");
}

#[test]
fn each_bad_field_is_reported_with_line_and_column() {
    let cases: &[(&str, &str, &str)] = &[
        ("2026-01-20", "2026-13-20", "ScanDate"),
        ("AXTA", "axta", "Symbol"),
        ("Long", "Short", "Direction"),
        (",A,", ",C,", "TrendTier"),
        ("33.02", "abc", "Price"),
        ("33.02", "-1", "Price"),
        ("32.43", "0", "Entry_Level"),
        ("21.734512", "1e5", "TrendScore"),
        ("SwingLow20", "Swing", "Anchor"),
        ("moderate", "huge", "Setup_Extension_State"),
        ("2026-01-16", "2026-01-20", "DataAsOf"),
        ("2025-12-29", "2026-01-17", "AnchorDate"),
    ];
    for (from, to, column) in cases {
        let line = SAMPLE_LINE.replacen(from, to, 1);
        let text = format!("{}{SAMPLE_LINE}{line}", header_line().replace("AXTA", "X"))
            .replacen("AXTA", "MSFT", 1);
        let (line_no, found_column, message) = invalid_at(&text);
        assert_eq!(line_no, 3, "{column}: {message}");
        assert_eq!(found_column, *column, "{message}");
    }
}

#[test]
fn schema_version_and_duplicates_and_mixed_scan_dates() {
    let v2 = SAMPLE_LINE.replacen("1,", "2,", 1);
    let (_, column, message) = invalid_at(&format!("{}{v2}", header_line()));
    assert_eq!(column, "SchemaVersion");
    assert!(message.contains("not supported"), "{message}");

    let (line, column, _) = invalid_at(&format!("{}{SAMPLE_LINE}{SAMPLE_LINE}", header_line()));
    assert_eq!((line, column.as_str()), (3, "Symbol"));

    let other = SAMPLE_LINE
        .replacen("AXTA", "MSFT", 1)
        .replacen("2026-01-20", "2026-01-21", 1);
    let (line, column, _) = invalid_at(&format!("{}{SAMPLE_LINE}{other}", header_line()));
    assert_eq!((line, column.as_str()), (3, "ScanDate"));
}

#[test]
fn utf8_bom_and_crlf_from_spreadsheet_tools_are_accepted() {
    let text = format!("\u{feff}{}{SAMPLE_LINE}", header_line()).replace('\n', "\r\n");
    assert_eq!(parse(&text).unwrap(), vec![sample_row()]);
}

#[test]
fn decimals_are_written_half_even_at_fixed_places() {
    let mut row = sample_row();
    row.price = dec!(10.005);
    row.trend_score = dec!(1.23456749);
    row.avwap_slope = dec!(-0.00005);
    let rec = row.to_record();
    assert_eq!(rec[5], "10.00");
    assert_eq!(rec[11], "1.234567");
    assert_eq!(rec[14], "0.0000");
}

#[test]
fn symbols() {
    for ok in ["A", "BRK.B", "BF-B", "X1"] {
        assert!(is_valid_symbol(ok), "{ok}");
    }
    for bad in ["", "brk.b", ".A", "A B", "TOOLONGSYMBOL1", "A,B"] {
        assert!(!is_valid_symbol(bad), "{bad}");
    }
}

#[test]
fn labels_parse_their_own_spelling_only() {
    for a in AnchorKind::ALL {
        assert_eq!(a.as_str().parse::<AnchorKind>().unwrap(), *a);
    }
    assert!("ytd".parse::<AnchorKind>().is_err());
    assert!("Bullish".parse::<ControlLabel>().is_err());
}

// ---- hostile inputs (issue 14) -------------------------------------------------------------

/// Rows for `count` distinct symbols (S0, S1, …) of the sample.
fn many_rows(count: usize) -> Vec<WatchlistRow> {
    (0..count)
        .map(|i| {
            let mut row = sample_row();
            row.symbol = format!("S{i}");
            row
        })
        .collect()
}

#[test]
fn only_line_ends_or_a_bom_is_an_empty_file_not_a_panic() {
    for bytes in [
        &b"\n"[..],
        b"\r\n",
        b"\n\n\n",
        b"\r\r\n",
        b"\xef\xbb\xbf\n",
        b"\xef\xbb\xbf\r\n",
    ] {
        match parse_watchlist(bytes, Path::new("wl.csv")) {
            Err(WatchlistError::Invalid {
                line,
                column,
                message,
                ..
            }) => {
                assert_eq!((line, column.as_str()), (1, "(header)"), "{bytes:?}");
                assert!(message.contains("the file is empty"), "{message}");
                assert!(message.contains("line ends"), "{message}");
                assert!(message.contains("header line"), "{message}");
            }
            other => panic!("{bytes:?}: {other:?}"),
        }
    }
}

#[test]
fn a_full_list_of_max_rows_is_accepted_and_one_more_is_refused() {
    let rows = many_rows(MAX_ROWS);
    let bytes = render(&rows);
    assert!((bytes.len() as u64) < MAX_BYTES, "{}", bytes.len());
    assert_eq!(
        parse_watchlist(&bytes, Path::new("wl.csv")).unwrap().len(),
        MAX_ROWS
    );

    let bytes = render(&many_rows(MAX_ROWS + 1));
    let text = String::from_utf8(bytes).unwrap();
    let (line, column, message) = invalid_at(&text);
    assert_eq!((line, column.as_str()), (MAX_ROWS as u64 + 2, "(file)"));
    assert!(message.contains("more than 1000 data rows"), "{message}");
}

#[test]
fn the_writer_refuses_more_rows_than_the_readers_accept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daily_candidates.csv");
    let err = write_watchlist(&path, &many_rows(MAX_ROWS + 1)).unwrap_err();
    assert!(
        matches!(err, WatchlistError::TooManyRows { rows: 1001, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("scan.max_candidates"), "{err}");
    assert!(!path.exists());
}

#[test]
fn a_huge_header_line_is_refused_and_quoted_briefly() {
    // 1,000,000 bytes of header: under the file limit, far over the line limit.
    let header = format!("{}\n", "SchemaVersion".repeat(1_000_000 / 13));
    let (line, column, message) = invalid_at(&header);
    assert_eq!((line, column.as_str()), (1, "(record)"));
    assert!(message.contains("more than the 4096"), "{message}");
    assert!(message.len() < 500, "{} bytes: {message}", message.len());
}

#[test]
fn a_long_bad_field_is_quoted_briefly() {
    let sector = "x".repeat(3000);
    let line = SAMPLE_LINE.replacen("AXTA", &sector, 1);
    let (line_no, column, message) = invalid_at(&format!("{}{line}", header_line()));
    assert_eq!((line_no, column.as_str()), (2, "Symbol"));
    assert!(message.contains("(3000 bytes in all)"), "{message}");
    assert!(message.len() < 400, "{} bytes: {message}", message.len());
}

#[test]
fn oversized_bytes_are_refused_by_the_parser_too() {
    let mut bytes = header_line().into_bytes();
    bytes.resize(MAX_BYTES as usize + 1, b'\n');
    let (line, column, message) = match parse_watchlist(&bytes, Path::new("wl.csv")) {
        Err(WatchlistError::Invalid {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("{other:?}"),
    };
    assert_eq!((line, column.as_str()), (1, "(file)"));
    assert!(message.contains("1048577 bytes"), "{message}");
}

#[test]
fn the_reader_refuses_a_fifo_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daily_candidates.csv");
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(status.success());
    let started = std::time::Instant::now();
    let err = read_watchlist(&path).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert!(
        matches!(
            err,
            WatchlistError::Read(crate::fsutil::ReadError::NotRegular { .. })
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("is a FIFO (named pipe), not a regular file"),
        "{err}"
    );
}

#[test]
fn the_reader_refuses_an_oversized_file_before_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daily_candidates.csv");
    let file = std::fs::File::create(&path).unwrap();
    // Sparse: 100 MB that costs no disk, and is never read.
    file.set_len(100_000_000).unwrap();
    let err = read_watchlist(&path).unwrap_err();
    let message = err.to_string();
    assert!(
        message
            .contains("is 100000000 bytes, more than the 1048576 bytes accepted for a watchlist"),
        "{message}"
    );
}

mod fuzz {
    //! The reader on arbitrary bytes and on mutations of a valid file: it returns, never
    //! panics, and its errors stay short. `cargo test` runs a few thousand cases per target;
    //! the `#[ignore]`d `*_million` tests run 1,000,000 and print the count and time.
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    /// A valid two-row file to mutate.
    fn valid() -> Vec<u8> {
        let mut second = sample_row();
        second.symbol = "BRK.B".into();
        second.setup_vwap_dist_pct = None;
        render(&[sample_row(), second])
    }

    /// Byte edits of a valid file: overwrite, insert, delete, truncate, duplicate a range, and
    /// splice in tokens that matter to the format.
    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        let token = prop::sample::select(vec![
            &b","[..],
            b"\n",
            b"\r\n",
            b"\"",
            b"\xef\xbb\xbf",
            b"\xff",
            b"\0",
            b"-",
            b"9999999999999999999999999999999",
            b"1e308",
            b"NaN",
            b"2026-02-30",
            b"",
        ]);
        let edit = (
            0usize..4,
            any::<prop::sample::Index>(),
            any::<u8>(),
            token,
            0usize..64,
        );
        prop::collection::vec(edit, 1..8).prop_map(|edits| {
            let mut bytes = valid();
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

    /// Parses `bytes`; true when they are a valid watchlist.
    fn check(bytes: &[u8]) -> bool {
        match parse_watchlist(bytes, Path::new("wl.csv")) {
            Ok(rows) => {
                assert!(rows.len() <= MAX_ROWS);
                true
            }
            Err(e) => {
                let message = e.to_string();
                // A bounded message: path, position, column name and a short excerpt.
                assert!(message.len() < 1200, "{} bytes: {message}", message.len());
                false
            }
        }
    }

    /// Runs `cases` cases; returns the time taken and how many inputs were valid.
    fn run(cases: u32, strategy: impl Strategy<Value = Vec<u8>>) -> (std::time::Duration, usize) {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let valid = std::sync::atomic::AtomicUsize::new(0);
        let started = std::time::Instant::now();
        runner
            .run(&strategy, |bytes| {
                if check(&bytes) {
                    valid.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(())
            })
            .unwrap();
        (started.elapsed(), valid.into_inner())
    }

    fn arbitrary() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..600)
    }

    #[test]
    fn arbitrary_bytes() {
        run(3000, arbitrary());
    }

    #[test]
    fn mutations_of_a_valid_file() {
        let (_, valid) = run(3000, mutated());
        // Not vacuous: some mutations keep the file valid (a digit changed), most do not.
        assert!(valid > 0 && valid < 3000, "{valid} of 3000 valid");
    }

    #[test]
    #[ignore = "long: 1,000,000 cases; run with --ignored --nocapture"]
    fn arbitrary_bytes_million() {
        let (took, valid) = run(1_000_000, arbitrary());
        println!("watchlist reader, arbitrary bytes: 1000000 cases ({valid} valid) in {took:.1?}");
    }

    #[test]
    #[ignore = "long: 1,000,000 cases; run with --ignored --nocapture"]
    fn mutations_million() {
        let (took, valid) = run(1_000_000, mutated());
        println!(
            "watchlist reader, mutations of a valid file: 1000000 cases ({valid} valid) in {took:.1?}"
        );
    }
}

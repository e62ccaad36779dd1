//! Universe parsing, loading, caching and fallback, with small synthetic fixtures
//! (`tests/fixtures/universe/`, invented data in the iShares IWV layout) and a loopback HTTP server.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use avwap::universe::{
    load_universe, parse_cleaned, parse_holdings, parse_ishares_raw, read_cache, CacheError,
    FnFallback, HoldingsFormat, LoadOptions, ParseError, ParseOptions, UniverseError,
    UniverseFallback, UniverseSource, CACHE_FILE, CACHE_SIDECAR,
};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/universe")
        .join(name)
}

fn read_fixture(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

fn symbols(members: &[avwap::universe::Member]) -> Vec<&str> {
    members.iter().map(|m| m.symbol.as_str()).collect()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 27, 12, 0, 0).unwrap()
}

/// Options for the small fixtures (14 equity rows in the raw one).
fn opts(source: Option<String>, state: &Path) -> LoadOptions {
    let mut o = LoadOptions::new(source, state);
    o.min_members = 10;
    o.timeout = Duration::from_secs(5);
    o
}

const RAW_MEMBERS: [&str; 14] = [
    "NVDA", "AAPL", "BRK.B", "FOXA", "GOOGL", "BF.B", "HEI.A", "LEN.B", "MOG.A", "GEF.B", "CWEN.A",
    "ADRO", "MSFT", "JPM",
];

#[test]
fn raw_ishares_file_with_every_quirk() {
    let text = read_fixture("iwv_raw.csv");
    assert!(text.starts_with('\u{feff}'), "fixture keeps its BOM");
    let parsed = parse_ishares_raw(&text, &ParseOptions::default()).unwrap();

    assert_eq!(symbols(&parsed.members), RAW_MEMBERS);
    assert_eq!(parsed.as_of, NaiveDate::from_ymd_opt(2026, 7, 24));
    let r = &parsed.report;
    assert_eq!(r.format, HoldingsFormat::IsharesRaw);
    assert_eq!(r.header_line, 10, "9-line preamble");
    // Money Market, Cash, 2 Futures, Cash Collateral ("-" ticker), FX, CVR, escrow, CVR by name.
    assert_eq!(r.dropped_non_equity, 9, "{:#?}", r.non_equity);
    let dropped: Vec<&str> = r
        .non_equity
        .iter()
        .map(|(_, s)| s.split(':').next().unwrap())
        .collect();
    assert_eq!(
        dropped,
        ["XTSLA", "USD", "ESU6", "RTYU6", "-", "EUR", "INH", "P5N994", "GTXI"]
    );
    assert_eq!(r.duplicates, 1);
    assert_eq!(r.duplicate_symbols, ["ADRO"]);
    assert_eq!(r.remapped.len(), 7);
    assert!(r.remapped.contains(&("BRKB".into(), "BRK.B".into())));
    assert!(r.remapped.contains(&("CWENA".into(), "CWEN.A".into())));
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.trailer_lines, 2, "disclaimer lines after the table");
    assert_eq!(r.rows, 24);

    // Quoted thousands in Market Value do not shift the columns after them.
    let nvda = &parsed.members[0];
    assert_eq!(nvda.name, "NVIDIA CORP");
    assert_eq!(nvda.sector, "Information Technology");
    assert_eq!(nvda.weight, Some(6.44));
    // The first ADRO row (weight from the first occurrence) is the one kept.
    let adro = parsed.members.iter().find(|m| m.symbol == "ADRO").unwrap();
    assert_eq!(adro.weight, Some(0.0));
}

#[test]
fn bom_and_line_endings_do_not_matter() {
    let text = read_fixture("iwv_raw.csv");
    let with_bom = parse_holdings(&text, &ParseOptions::default()).unwrap();
    let plain = text.trim_start_matches('\u{feff}').replace("\r\n", "\n");
    let without = parse_holdings(&plain, &ParseOptions::default()).unwrap();
    assert_eq!(with_bom, without);
}

#[test]
fn cleaned_file() {
    let text = read_fixture("cleaned.csv");
    let parsed = parse_cleaned(&text, &ParseOptions::default()).unwrap();
    assert_eq!(
        symbols(&parsed.members),
        ["NVDA", "MSFT", "BRK.B", "BF.B", "JPM", "KO"]
    );
    assert_eq!(parsed.as_of, None);
    let r = &parsed.report;
    assert_eq!(r.format, HoldingsFormat::Cleaned);
    assert_eq!(r.dropped_non_equity, 4, "USD, ESH6 by sector; escrow; CVR");
    assert_eq!(r.duplicates, 1);
    assert_eq!(r.remapped, [("BRKB".to_string(), "BRK.B".to_string())]);
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.rejected[0].0, 13, "line of the invalid symbol");
    assert!(r.rejected[0].1.contains("BAD$"), "{:?}", r.rejected);
    let ko = parsed.members.last().unwrap();
    assert_eq!(ko.weight, Some(1000.5), "quoted thousands separator");
    // Auto-detection agrees.
    assert_eq!(
        parse_holdings(&text, &ParseOptions::default()).unwrap(),
        parsed
    );
}

#[test]
fn format_specific_parsers_refuse_the_other_layout() {
    let raw = read_fixture("iwv_raw.csv");
    let cleaned = read_fixture("cleaned.csv");
    assert_eq!(
        parse_cleaned(&raw, &ParseOptions::default()).unwrap_err(),
        ParseError::NotCleaned(10)
    );
    assert!(matches!(
        parse_ishares_raw(&cleaned, &ParseOptions::default()).unwrap_err(),
        ParseError::NotRaw(_)
    ));
}

#[test]
fn html_and_blocked_pages_are_not_holdings() {
    let o = ParseOptions::default();
    assert_eq!(
        parse_holdings(&read_fixture("challenge.html"), &o).unwrap_err(),
        ParseError::Html
    );
    assert!(matches!(
        parse_holdings(&read_fixture("access_denied.txt"), &o).unwrap_err(),
        ParseError::Blocked(_)
    ));
    assert_eq!(
        parse_holdings("a,b\n1,2\n", &o).unwrap_err(),
        ParseError::NoHeader(200)
    );
}

#[test]
fn extra_remaps_extend_and_override_the_table() {
    let text = "Ticker,Name,Sector,Weight\nBRKB,B,Fin,1\nXYZA,X,Fin,1\n";
    let o = ParseOptions {
        extra_remaps: vec![
            ("XYZA".into(), "XYZ.A".into()),
            ("BRKB".into(), "BRKB".into()),
        ],
        ..ParseOptions::default()
    };
    let parsed = parse_cleaned(text, &o).unwrap();
    assert_eq!(symbols(&parsed.members), ["BRKB", "XYZ.A"]);
}

#[test]
fn truncated_row_is_rejected_not_mistaken_for_the_trailer() {
    let text = "Ticker,Name,Sector,Asset Class,Weight (%)\n\
                AAPL,APPLE,IT,Equity,5\n\
                MSFT,MICROSOFT,IT\n\
                JPM,JPM,Fin,Equity,1\n";
    let parsed = parse_ishares_raw(text, &ParseOptions::default()).unwrap();
    assert_eq!(symbols(&parsed.members), ["AAPL", "JPM"]);
    assert_eq!(parsed.report.rejected.len(), 1);
    assert_eq!(parsed.report.rejected[0].0, 3);
    assert_eq!(parsed.report.trailer_lines, 0);
}

// ---------------------------------------------------------------------------------------------
// Loader

/// Serve `responses` (status line, content type, body) to successive connections on loopback.
fn serve(responses: Vec<(&'static str, &'static str, Vec<u8>)>) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/iwv.ajax?fileType=csv&fileName=IWV_holdings&token=s3cret",
        listener.local_addr().unwrap().port()
    );
    let handle = std::thread::spawn(move || {
        for (status, content_type, body) in responses {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (url, handle)
}

/// A loopback URL nobody listens on.
fn unreachable_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/iwv.csv")
}

fn no_fallback() -> Option<&'static mut dyn UniverseFallback> {
    None
}

#[test]
fn file_source_is_loaded_and_cached() {
    let state = tempfile::tempdir().unwrap();
    let path = fixture("iwv_raw.csv");
    let o = opts(Some(path.display().to_string()), state.path());
    let out = load_universe(&o, t0(), no_fallback()).unwrap();
    assert_eq!(out.universe.source, UniverseSource::File(path.clone()));
    assert_eq!(symbols(&out.universe.members), RAW_MEMBERS);
    assert!(out.skipped.is_empty());
    assert_eq!(out.cache_error, None);
    assert_eq!(
        std::fs::read(state.path().join(CACHE_FILE)).unwrap(),
        std::fs::read(&path).unwrap(),
        "cache holds the accepted text byte for byte"
    );
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.path().join(CACHE_SIDECAR)).unwrap()).unwrap();
    assert_eq!(sidecar["members"], 14);
    assert_eq!(sidecar["as_of"], "2026-07-24");
    assert_eq!(sidecar["fetched_at"], "2026-07-27T12:00:00Z");
    assert!(out.universe.source.to_string().starts_with("file "));
}

#[test]
fn url_source_is_fetched_redacted_and_cached() {
    let state = tempfile::tempdir().unwrap();
    let body = std::fs::read(fixture("iwv_raw.csv")).unwrap();
    let (url, server) = serve(vec![("200 OK", "text/csv", body.clone())]);
    let out = load_universe(&opts(Some(url), state.path()), t0(), no_fallback()).unwrap();
    server.join().unwrap();
    let UniverseSource::Url(shown) = &out.universe.source else {
        panic!("{:?}", out.universe.source)
    };
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("fileName=IWV_holdings"), "{shown}");
    assert_eq!(out.universe.len(), 14);
    assert_eq!(std::fs::read(state.path().join(CACHE_FILE)).unwrap(), body);
}

/// Seed the cache by loading the fixture file at `at`.
fn seed_cache(state: &Path, at: DateTime<Utc>) {
    let o = opts(Some(fixture("iwv_raw.csv").display().to_string()), state);
    load_universe(&o, at, no_fallback()).unwrap();
}

#[test]
fn html_page_with_status_200_is_refused_and_the_cache_is_used() {
    let state = tempfile::tempdir().unwrap();
    let seeded_at = t0() - chrono::Duration::days(3);
    seed_cache(state.path(), seeded_at);
    let cached = std::fs::read(state.path().join(CACHE_FILE)).unwrap();

    let page = std::fs::read(fixture("challenge.html")).unwrap();
    let (url, server) = serve(vec![("200 OK", "text/html; charset=utf-8", page)]);
    let out = load_universe(&opts(Some(url), state.path()), t0(), no_fallback()).unwrap();
    server.join().unwrap();

    assert_eq!(out.skipped.len(), 1);
    assert!(out.skipped[0].contains("HTML page"), "{:?}", out.skipped);
    assert!(out.skipped[0].contains("text/html"), "{:?}", out.skipped);
    assert!(!out.skipped[0].contains("s3cret"), "{:?}", out.skipped);
    match &out.universe.source {
        UniverseSource::Cache {
            fetched_at,
            origin,
            age_hours,
        } => {
            assert_eq!(*fetched_at, seeded_at);
            assert!(origin.starts_with("file "), "{origin}");
            assert_eq!(*age_hours, 72);
        }
        other => panic!("{other:?}"),
    }
    assert!(out.universe.source.is_degraded());
    assert!(out.universe.source.to_string().contains("3.0 days old"));
    assert_eq!(symbols(&out.universe.members), RAW_MEMBERS);
    assert_eq!(
        std::fs::read(state.path().join(CACHE_FILE)).unwrap(),
        cached,
        "a refused page never replaces the cache"
    );
}

#[test]
fn blocked_text_page_with_status_200_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let page = std::fs::read(fixture("access_denied.txt")).unwrap();
    let (url, server) = serve(vec![("200 OK", "text/plain", page)]);
    let mut fallback = FnFallback::new("test list", || {
        Ok((0..12)
            .map(|i| format!("S{}", (b'A' + i) as char))
            .collect())
    });
    let out = load_universe(&opts(Some(url), state.path()), t0(), Some(&mut fallback)).unwrap();
    server.join().unwrap();
    assert!(out.skipped[0].contains("blocked"), "{:?}", out.skipped);
    assert!(
        out.skipped[1].contains("no cached copy"),
        "{:?}",
        out.skipped
    );
    assert_eq!(
        out.universe.source,
        UniverseSource::Fallback("test list".into())
    );
    assert!(!state.path().join(CACHE_FILE).exists());
}

#[test]
fn http_error_and_short_file_are_refused() {
    let state = tempfile::tempdir().unwrap();
    seed_cache(state.path(), t0());
    let (url, server) = serve(vec![
        ("403 Forbidden", "text/plain", b"nope".to_vec()),
        (
            "200 OK",
            "text/csv",
            b"Ticker,Name,Sector,Weight\nAAPL,APPLE,IT,5\n".to_vec(),
        ),
    ]);
    let o = opts(Some(url), state.path());
    let first = load_universe(&o, t0(), no_fallback()).unwrap();
    assert!(first.skipped[0].contains("HTTP 403"), "{:?}", first.skipped);
    let second = load_universe(&o, t0(), no_fallback()).unwrap();
    server.join().unwrap();
    assert!(
        second.skipped[0].contains("only 1 equity rows, fewer than the minimum 10"),
        "{:?}",
        second.skipped
    );
    assert!(matches!(
        second.universe.source,
        UniverseSource::Cache { .. }
    ));
}

#[test]
fn unreachable_url_falls_back_to_the_cache() {
    let state = tempfile::tempdir().unwrap();
    seed_cache(state.path(), t0() - chrono::Duration::hours(30));
    let mut called = false;
    let mut fallback = FnFallback::new("never", || {
        called = true;
        Err("should not be called".to_string())
    });
    let out = load_universe(
        &opts(Some(unreachable_url()), state.path()),
        t0(),
        Some(&mut fallback),
    )
    .unwrap();
    drop(fallback);
    assert!(!called, "the cache comes before the fallback");
    assert!(
        out.skipped[0].contains("cannot connect"),
        "{:?}",
        out.skipped
    );
    assert!(matches!(
        out.universe.source,
        UniverseSource::Cache { age_hours: 30, .. }
    ));
    assert_eq!(out.universe.as_of, NaiveDate::from_ymd_opt(2026, 7, 24));
}

#[test]
fn cache_with_stale_sidecar_uses_the_file_time_and_max_age_is_enforced() {
    let state = tempfile::tempdir().unwrap();
    seed_cache(state.path(), t0());
    // A crash between the two cache writes: new CSV, old sidecar.
    let csv = state.path().join(CACHE_FILE);
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text.push_str("\r\n");
    std::fs::write(&csv, text).unwrap();
    let now = Utc::now();
    let out = load_universe(&opts(None, state.path()), now, no_fallback()).unwrap();
    match &out.universe.source {
        UniverseSource::Cache { origin, .. } => assert!(origin.contains("unknown origin")),
        other => panic!("{other:?}"),
    }
    assert_eq!(out.skipped, ["no source configured (scan.universe.source)"]);

    let mut o = opts(None, state.path());
    o.max_cache_age = Some(chrono::Duration::days(7));
    let err = load_universe(&o, now + chrono::Duration::days(8), no_fallback()).unwrap_err();
    assert!(
        err.to_string().contains("older than the allowed 7 days"),
        "{err}"
    );
}

#[test]
fn the_cache_is_read_as_the_loader_reads_it() {
    let state = tempfile::tempdir().unwrap();
    let o = opts(None, state.path());
    match read_cache(&o, t0()) {
        Err(CacheError::Missing(path)) => assert_eq!(path, state.path().join(CACHE_FILE)),
        other => panic!("{other:?}"),
    }
    seed_cache(state.path(), t0());
    let u = read_cache(&o, t0() + chrono::Duration::hours(30)).unwrap();
    assert_eq!(symbols(&u.members), RAW_MEMBERS);
    match &u.source {
        UniverseSource::Cache {
            fetched_at,
            origin,
            age_hours,
        } => {
            assert_eq!(*fetched_at, t0());
            assert!(origin.starts_with("file "), "{origin}");
            assert_eq!(*age_hours, 30);
        }
        other => panic!("{other:?}"),
    }
    // Read only: nothing was rewritten.
    let sidecar = std::fs::read(state.path().join(CACHE_SIDECAR)).unwrap();
    read_cache(&o, Utc::now()).unwrap();
    assert_eq!(
        std::fs::read(state.path().join(CACHE_SIDECAR)).unwrap(),
        sidecar
    );
    std::fs::write(state.path().join(CACHE_FILE), "<html>Access Denied</html>").unwrap();
    match read_cache(&o, t0()) {
        Err(CacheError::Unusable(why)) => assert!(why.starts_with("cache "), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_cache_uses_the_fallback_closure() {
    let state = tempfile::tempdir().unwrap();
    let mut fallback = FnFallback::new("alpaca active us_equity assets", || {
        let mut v: Vec<String> = RAW_MEMBERS.iter().map(|s| s.to_string()).collect();
        v.push("AAPL".into()); // duplicate
        v.push("bad symbol".into());
        Ok(v)
    });
    let out = load_universe(
        &opts(Some(unreachable_url()), state.path()),
        t0(),
        Some(&mut fallback),
    )
    .unwrap();
    assert_eq!(out.skipped.len(), 2, "{:?}", out.skipped);
    assert_eq!(
        out.universe.source,
        UniverseSource::Fallback("alpaca active us_equity assets".into())
    );
    assert_eq!(
        out.universe.source.to_string(),
        "fallback alpaca active us_equity assets"
    );
    assert_eq!(out.universe.len(), 14);
    assert_eq!(out.universe.report.duplicates, 1);
    assert_eq!(out.universe.report.rejected.len(), 1);
    assert!(
        !state.path().join(CACHE_FILE).exists(),
        "fallback lists are not cached as holdings"
    );
}

#[test]
fn nothing_works_gives_a_clear_error() {
    let state = tempfile::tempdir().unwrap();
    let mut fallback = FnFallback::new("alpaca", || Err("no credentials".to_string()));
    let err = load_universe(
        &opts(Some(unreachable_url()), state.path()),
        t0(),
        Some(&mut fallback),
    )
    .unwrap_err();
    let UniverseError::NoSource { attempts, .. } = &err;
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    let msg = err.to_string();
    assert!(msg.contains("no universe source worked"), "{msg}");
    assert!(msg.contains("cannot connect"), "{msg}");
    assert!(msg.contains("no cached copy"), "{msg}");
    assert!(msg.contains("fallback alpaca: no credentials"), "{msg}");
    assert!(msg.contains("To fix"), "{msg}");

    let err = load_universe(&opts(None, state.path()), t0(), no_fallback()).unwrap_err();
    assert!(err.to_string().contains("no fallback configured"), "{err}");
}

#[test]
fn missing_file_is_reported() {
    let state = tempfile::tempdir().unwrap();
    let err = load_universe(
        &opts(Some("/nonexistent/iwv.csv".into()), state.path()),
        t0(),
        no_fallback(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("file /nonexistent/iwv.csv"),
        "{err}"
    );
}

#[test]
fn product_page_link_is_followed_once() {
    let state = tempfile::tempdir().unwrap();
    let page = br#"<!DOCTYPE html><html><body>
        <a class="icon-xls-export" href="/us/products/239714/fund/1467271812596.ajax?fileType=csv&amp;fileName=IWV_holdings&amp;dataType=fund">Detailed Holdings</a>
        </body></html>"#
        .to_vec();
    let csv = std::fs::read(fixture("iwv_raw.csv")).unwrap();
    let (url, server) = serve(vec![
        ("200 OK", "text/html", page),
        ("200 OK", "text/csv", csv),
    ]);
    let out = load_universe(&opts(Some(url), state.path()), t0(), no_fallback()).unwrap();
    server.join().unwrap();
    assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    assert_eq!(out.universe.len(), 14);
    assert!(matches!(out.universe.source, UniverseSource::Url(_)));
}

#[test]
fn full_size_synthetic_file_meets_the_default_minimum() {
    let mut text = String::from(
        "\u{feff}iShares Russell 3000 ETF\nFund Holdings as of,\"Jan 02, 2026\"\n\n\
         Ticker,Name,Sector,Asset Class,Market Value,Weight (%),Exchange\n",
    );
    let mut n = 0;
    for a in b'A'..=b'Z' {
        for b in b'A'..=b'Z' {
            for c in b'A'..=b'E' {
                let t = format!("{}{}{}", a as char, b as char, c as char);
                text.push_str(&format!(
                    "\"{t}\",\"{t} INC\",\"Industrials\",\"Equity\",\"1,234,567.00\",\"0.03\",\"NYSE\"\n"
                ));
                n += 1;
            }
        }
    }
    text.push_str("\n\"disclaimer\"\n");
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("iwv.csv");
    std::fs::write(&file, &text).unwrap();
    let o = LoadOptions::new(Some(file.display().to_string()), state.path());
    let out = load_universe(&o, t0(), no_fallback()).unwrap();
    assert_eq!(out.universe.len(), n);
    assert_eq!(n, 3380);
    assert_eq!(out.universe.as_of, NaiveDate::from_ymd_opt(2026, 1, 2));

    // The fixture (14 equities) is below the default minimum of 1000.
    let o = LoadOptions::new(
        Some(fixture("iwv_raw.csv").display().to_string()),
        state.path(),
    );
    let out = load_universe(&o, t0(), no_fallback()).unwrap();
    assert!(
        out.skipped[0].contains("fewer than the minimum 1000"),
        "{:?}",
        out.skipped
    );
    assert!(matches!(out.universe.source, UniverseSource::Cache { .. }));
}

//! `avwap-scan --provider alpaca` end to end against the fake Alpaca server: universe from a
//! cleaned holdings file, bars topped up into the store, only missing sessions fetched again,
//! a clear, fast failure without credentials, and Alpaca's asset list as the universe when no
//! holdings source or cache is usable.

use super::fake_alpaca;

use avwap::calendar;
use avwap::market_data::synthetic::SyntheticMarket;
use avwap::watchlist::read_watchlist;
use chrono::{NaiveDate, NaiveTime};
use fake_alpaca::{FakeAlpaca, FakeAsset, FakeBar, KEY_ID, SECRET};
use std::path::Path;
use std::process::{Command, Output};

const SCAN: &str = env!("CARGO_BIN_EXE_avwap-scan");

fn scan(state: &Path, config: &Path, creds: bool) -> Output {
    let mut cmd = Command::new(SCAN);
    cmd.args([
        "--provider",
        "alpaca",
        "--as-of",
        "2026-11-30",
        "--state-dir",
    ])
    .arg(state)
    .arg("--config")
    .arg(config)
    .env_remove("AVWAP_CONFIG")
    .env_remove("AVWAP_STATE_DIR")
    .env_remove("CREDENTIALS_DIRECTORY")
    .env("RUST_LOG", "warn");
    if creds {
        cmd.env("APCA_API_KEY_ID", KEY_ID)
            .env("APCA_API_SECRET_KEY", SECRET);
    } else {
        cmd.env_remove("APCA_API_KEY_ID")
            .env_remove("APCA_API_SECRET_KEY");
    }
    cmd.output().expect("run avwap-scan")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// 60 synthetic symbols × 300 sessions up to the data date, served as Alpaca daily bars.
fn serve_market(fake: &FakeAlpaca, last: NaiveDate) -> Vec<String> {
    let market = SyntheticMarket {
        seed: 77,
        symbols: 60,
        sessions: 300,
        last_session: last,
        defect_fraction: 0.0,
    };
    let dates = market.session_dates().unwrap();
    let mut symbols = Vec::new();
    for i in 0..market.symbols {
        // Letters only: a holdings ticker with digits is dropped as a future or an escrow line.
        let symbol = format!(
            "SY{}{}",
            (b'A' + (i / 26) as u8) as char,
            (b'A' + (i % 26) as u8) as char
        );
        let bars = market
            .bars(i, &dates)
            .into_iter()
            .map(|b| FakeBar {
                t: calendar::ny_instant(b.date, NaiveTime::MIN),
                o: b.open,
                h: b.high,
                l: b.low,
                c: b.close,
                v: b.volume as u64,
            })
            .collect();
        fake.set_bars(&symbol, bars);
        symbols.push(symbol);
    }
    symbols
}

fn setup(fake: &FakeAlpaca, dir: &Path) -> std::path::PathBuf {
    let symbols = serve_market(fake, "2026-11-27".parse().unwrap());
    let mut holdings = String::from("Ticker,Name,Sector,Weight\n");
    for (i, s) in symbols.iter().enumerate() {
        holdings.push_str(&format!("{s},Synthetic {i},Industrials,0.1\n"));
    }
    std::fs::write(dir.join("holdings.csv"), holdings).unwrap();
    let config = dir.join("avwap.toml");
    std::fs::write(
        &config,
        format!(
            "[scan.universe]\nsource = \"holdings.csv\"\nmin_members = 50\n\n\
             [scan.regime]\nbenchmark = \"equal-weight\"\n\n\
             [alpaca]\ntrading_url = \"{url}\"\ndata_url = \"{url}\"\n",
            url = fake.url()
        ),
    )
    .unwrap();
    config
}

#[test]
fn alpaca_provider_tops_up_the_store_and_scans_the_universe() {
    let fake = FakeAlpaca::start();
    let dir = tempfile::tempdir().unwrap();
    let config = setup(&fake, dir.path());

    let out = scan(dir.path(), &config, true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = read_watchlist(&dir.path().join("daily_candidates.csv")).unwrap();
    assert!(rows
        .iter()
        .all(|r| r.data_as_of == "2026-11-27".parse::<NaiveDate>().unwrap()));
    assert!(rows.iter().all(|r| r.sector == "Industrials"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("scan.json")).unwrap()).unwrap();
    assert_eq!(json["counts"]["universe"], 60);
    assert!(
        json["universe"]["source"]
            .as_str()
            .unwrap()
            .contains("holdings.csv"),
        "{}",
        json["universe"]
    );
    let first = fake.count("GET", "/v2/stocks/bars");
    assert!(first >= 2, "a cold fill pages through {first} requests");
    // Every bars request asks for SIP, split-adjusted, explicit start and end.
    for r in fake
        .requests()
        .iter()
        .filter(|r| r.path == "/v2/stocks/bars")
    {
        let has = |k: &str, v: Option<&str>| {
            r.query
                .iter()
                .any(|(key, value)| key == k && v.is_none_or(|v| value == v))
        };
        assert!(
            has("feed", Some("sip")) && has("adjustment", Some("split")),
            "{:?}",
            r.query
        );
        assert!(has("start", None) && has("end", None), "{:?}", r.query);
    }

    // The same scan again: the store is current, nothing more is fetched, same list.
    let before = std::fs::read(dir.path().join("daily_candidates.csv")).unwrap();
    let out = scan(dir.path(), &config, true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fake.count("GET", "/v2/stocks/bars"), first);
    assert_eq!(
        std::fs::read(dir.path().join("daily_candidates.csv")).unwrap(),
        before
    );
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}

#[test]
fn without_credentials_it_fails_fast_and_writes_nothing() {
    let fake = FakeAlpaca::start();
    let dir = tempfile::tempdir().unwrap();
    let config = setup(&fake, dir.path());
    let started = std::time::Instant::now();
    let out = scan(dir.path(), &config, false);
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        stderr(&out).contains("APCA_API_KEY_ID") || stderr(&out).contains("alpaca-key-id"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fake.requests().len(),
        0,
        "nothing may be sent without credentials"
    );
    assert!(!dir.path().join("daily_candidates.csv").exists());
}

#[test]
fn unreachable_alpaca_fails_with_its_own_code() {
    let fake = FakeAlpaca::start();
    let dir = tempfile::tempdir().unwrap();
    let config = setup(&fake, dir.path());
    // Point the data URL at a closed port.
    let text = std::fs::read_to_string(&config).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::fs::write(
        &config,
        text.replace(&fake.url(), &format!("http://{closed}")),
    )
    .unwrap();
    let out = scan(dir.path(), &config, true);
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains(SECRET),
        "the secret leaked: {}",
        stderr(&out)
    );
    assert!(!dir.path().join("daily_candidates.csv").exists());
}

#[test]
fn without_holdings_or_cache_the_universe_falls_back_to_alpaca_assets() {
    let fake = FakeAlpaca::start();
    let dir = tempfile::tempdir().unwrap();
    let config = setup(&fake, dir.path());
    // The configured holdings file is gone and nothing was ever cached.
    std::fs::remove_file(dir.path().join("holdings.csv")).unwrap();
    // The same 60 symbols `setup` serves bars for, now listed as Alpaca assets.
    let symbols = serve_market(&fake, "2026-11-27".parse().unwrap());
    let mut assets: Vec<FakeAsset> = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| FakeAsset::equity(s, if i % 2 == 0 { "NYSE" } else { "NASDAQ" }))
        .collect();
    // Not for the universe: OTC, not tradable.
    assets.push(FakeAsset::equity("OTCX", "OTC"));
    let mut halted = FakeAsset::equity("HALTD", "NYSE");
    halted.tradable = false;
    assets.push(halted);
    fake.set_assets(assets);

    let out = scan(dir.path(), &config, true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("holdings.csv"), "{}", stderr(&out));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("scan.json")).unwrap()).unwrap();
    assert_eq!(json["counts"]["universe"], 60);
    let source = json["universe"]["source"].as_str().unwrap();
    assert!(source.contains("alpaca assets"), "{source}");
    assert!(source.contains("degraded"), "{source}");
    assert_eq!(fake.count("GET", "/v2/assets"), 1);
    let bars_symbols: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.path == "/v2/stocks/bars")
        .flat_map(|r| {
            r.query
                .iter()
                .filter(|(k, _)| k == "symbols")
                .flat_map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!bars_symbols.iter().any(|s| s == "OTCX" || s == "HALTD"));

    // min_members still applies: too few assets fail the scan and keep the old list.
    fake.set_assets(vec![FakeAsset::equity("AAA", "NYSE")]);
    let before = std::fs::read(dir.path().join("daily_candidates.csv")).unwrap();
    let out = scan(dir.path(), &config, true);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("fewer than the minimum"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(dir.path().join("daily_candidates.csv")).unwrap(),
        before
    );
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}

/// `n` symbols of letters only (a holdings ticker with digits is dropped), none of them
/// `serve_market`'s: members Alpaca has no bars for.
fn unknown_members(n: usize) -> Vec<String> {
    (0..n)
        .map(|mut i| {
            let mut s = String::from("NB");
            for _ in 0..3 {
                s.push((b'A' + (i % 26) as u8) as char);
                i /= 26;
            }
            s
        })
        .collect()
}

fn write_holdings(dir: &Path, symbols: &[String]) {
    let mut holdings = String::from("Ticker,Name,Sector,Weight\n");
    for (i, s) in symbols.iter().enumerate() {
        holdings.push_str(&format!("{s},Member {i},Industrials,0.01\n"));
    }
    std::fs::write(dir.join("holdings.csv"), holdings).unwrap();
}

/// Issue 15 finding 6: `bars` may omit symbols. The coverage floor counts every member of the
/// universe the scan was asked to cover, whatever Alpaca returned: a 3,001-member universe with
/// bars for 60 fails with exit 13 and the counts, and the previous watchlist stays.
#[test]
fn scan_fails_below_coverage_when_alpaca_omits_symbols() {
    let fake = FakeAlpaca::start();
    let dir = tempfile::tempdir().unwrap();
    let config = setup(&fake, dir.path());
    let out = scan(dir.path(), &config, true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let watchlist = std::fs::read(dir.path().join("daily_candidates.csv")).unwrap();
    let report = std::fs::read(dir.path().join("scan.json")).unwrap();
    let served = serve_market(&fake, "2026-11-27".parse().unwrap());

    // 2,941 more members Alpaca answers nothing for: 60 of 3,001 (2.0%) have bars.
    let mut members = served.clone();
    members.extend(unknown_members(2941));
    write_holdings(dir.path(), &members);
    let out = scan(dir.path(), &config, true);
    assert_eq!(out.status.code(), Some(13), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("only 60 of 3001 symbols (2.0%) have a bar for 2026-11-27"),
        "{text}"
    );
    assert!(
        text.contains(
            "2941 have no bars at all (no bars returned for them up to 2026-11-27: NBAAA, NBAAB"
        ),
        "{text}"
    );
    assert!(text.contains("scan.min_coverage"), "{text}");
    assert!(
        text.contains("Alpaca returned no bars for 2941 of the 3001 symbols requested"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("daily_candidates.csv")).unwrap(),
        watchlist,
        "the previous watchlist stays"
    );
    assert_eq!(std::fs::read(dir.path().join("scan.json")).unwrap(), report);

    // 5 omitted of 65 (92.3% covered) pass the 90% floor; scan.json counts and lists them.
    let mut members = served.clone();
    let missing = unknown_members(5);
    members.extend(missing.clone());
    write_holdings(dir.path(), &members);
    let out = scan(dir.path(), &config, true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("scan.json")).unwrap()).unwrap();
    assert_eq!(json["counts"]["universe"], 65);
    assert_eq!(json["universe"]["size"], 65);
    assert_eq!(json["counts"]["without_bars"], 5);
    assert_eq!(json["counts"]["covered"], 60);
    assert_eq!(json["universe"]["without_bars"], serde_json::json!(missing));
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}

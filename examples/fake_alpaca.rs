//! TEST-ONLY: the repository's fake Alpaca server (`tests/alpaca/fake_alpaca/`, the one the
//! integration tests use) as a standalone program, plus a webhook receiver, for the
//! real-systemd VM scenario (`tests/vm/paper.sh`). It is a Cargo example, not one of the
//! package's binaries: `cargo build --release --example fake_alpaca`. It speaks plain HTTP on
//! loopback, accepts only the fake's own key pair and trades nothing real; never point a
//! deployment at it.
//!
//! ```text
//! fake_alpaca --listen 127.0.0.1:18480 --control 127.0.0.1:18481 \
//!             --data-as-of 2030-06-12 --holdings /var/lib/avwap/holdings.csv \
//!             --webhook-log /root/alerts.log [--symbols 120]
//! ```
//!
//! Alpaca API on `--listen` (what the fake serves: assets, calendar, daily and 10-minute bars,
//! latest trades, account, orders, positions), seeded with:
//! - a synthetic market (`SyntheticMarket`, seed 77) of `--symbols` letter-only symbols × 300
//!   daily bars ending at `--data-as-of`, as Alpaca daily bars; the same symbols as active
//!   tradable assets, and as an iShares-style holdings file written to `--holdings` (the
//!   scan's universe);
//! - avwap's own NYSE calendar for the data date ± 2 years (the execution compares them).
//!
//! Behaviour on top of the fake: every open buy limit order is filled in full at its limit
//! price about a second after it arrives (a marketable entry), and once `/session` was called
//! the 10-minute bars and latest trades of that day are kept current (a breakout above each
//! tradable watchlist row's entry level that holds).
//!
//! Control and webhook on `--control` (never stalled):
//! - `GET  /health`                      → 200
//! - `POST /session?watchlist=PATH`      → read the watchlist, serve a breakout for each row
//!   whose stop lies clearly below its entry level; answers the symbols (`&at=RFC3339`: bars
//!   as of that instant instead of kept current, to try it with `--once --at` on a host)
//! - `POST /stall?seconds=N`             → the Alpaca API stops answering for N seconds
//!   (requests are read and recorded, then held without an answer: `set_stalled`)
//! - `GET  /orders`                      → every order the fake holds (Alpaca's `Order` JSON)
//! - `GET  /count?method=GET&path=/v2/stocks/bars` → how many such requests it received
//! - `POST /webhook`                     → the body is appended, one line, to `--webhook-log`
#![allow(dead_code)] // the fake's test-only helpers this program does not call

// The fake's `crate::common::{http, alpaca_order}`, as the test binaries declare them.
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/alpaca/fake_alpaca/mod.rs"]
mod fake_alpaca;

use avwap::calendar::{ny_datetime, ny_instant, sessions_between};
use avwap::market_data::synthetic::SyntheticMarket;
use chrono::{DateTime, Duration as Days, NaiveDate, NaiveTime, Utc};
use common::http;
use fake_alpaca::{FakeAlpaca, FakeAsset, FakeBar, FakeCalendarDay};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Args {
    listen: String,
    control: String,
    data_as_of: NaiveDate,
    holdings: PathBuf,
    webhook_log: PathBuf,
    symbols: usize,
}

fn args() -> Result<Args, String> {
    let mut a = std::env::args().skip(1);
    let (mut listen, mut control, mut as_of, mut holdings, mut webhook, mut symbols) =
        (None, None, None, None, None, 120usize);
    while let Some(flag) = a.next() {
        let mut value = || a.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = Some(value()?),
            "--control" => control = Some(value()?),
            "--data-as-of" => {
                as_of = Some(value()?.parse().map_err(|e| format!("--data-as-of: {e}"))?)
            }
            "--holdings" => holdings = Some(PathBuf::from(value()?)),
            "--webhook-log" => webhook = Some(PathBuf::from(value()?)),
            "--symbols" => symbols = value()?.parse().map_err(|e| format!("--symbols: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or("--listen ADDR is required")?,
        control: control.ok_or("--control ADDR is required")?,
        data_as_of: as_of.ok_or("--data-as-of YYYY-MM-DD is required")?,
        holdings: holdings.ok_or("--holdings PATH is required")?,
        webhook_log: webhook.ok_or("--webhook-log PATH is required")?,
        symbols,
    })
}

/// Letters only: a holdings ticker with digits is dropped as a future or an escrow line.
fn symbol(i: usize) -> String {
    format!(
        "SY{}{}",
        (b'A' + (i / 26 % 26) as u8) as char,
        (b'A' + (i % 26) as u8) as char
    )
}

fn seed(fake: &FakeAlpaca, a: &Args) -> Result<usize, String> {
    let market = SyntheticMarket {
        seed: 77,
        symbols: a.symbols.min(26 * 26),
        sessions: 300,
        last_session: a.data_as_of,
        defect_fraction: 0.0,
    };
    let dates = market.session_dates().map_err(|e| e.to_string())?;
    let mut holdings = String::from("Ticker,Name,Sector,Weight\n");
    let mut assets = Vec::new();
    let mut bars_total = 0;
    for i in 0..market.symbols {
        let s = symbol(i);
        let bars: Vec<FakeBar> = market
            .bars(i, &dates)
            .into_iter()
            .map(|b| FakeBar {
                t: ny_instant(b.date, NaiveTime::MIN),
                o: b.open,
                h: b.high,
                l: b.low,
                c: b.close,
                v: b.volume as u64,
            })
            .collect();
        bars_total += bars.len();
        fake.set_bars(&s, bars);
        holdings.push_str(&format!("{s},Synthetic {i},Industrials,0.1\n"));
        assets.push(FakeAsset::equity(&s, "NYSE"));
    }
    fake.set_assets(assets);
    std::fs::write(&a.holdings, holdings)
        .map_err(|e| format!("writing {}: {e}", a.holdings.display()))?;
    let days = sessions_between(
        a.data_as_of - Days::days(730),
        a.data_as_of + Days::days(730),
    )
    .map_err(|e| e.to_string())?
    .into_iter()
    .map(|s| {
        FakeCalendarDay::new(
            s.date,
            &ny_datetime(s.open).format("%H:%M").to_string(),
            &ny_datetime(s.close).format("%H:%M").to_string(),
        )
    })
    .collect();
    fake.set_calendar(days);
    Ok(bars_total)
}

/// A breakout above `entry` on the New York `date`: the 09:30 bar below it, every later
/// completed 10-minute bar above it and holding, the latest trade just above it, now.
fn serve_breakout(fake: &FakeAlpaca, symbol: &str, entry: f64, at: Option<DateTime<Utc>>) {
    let now = at.unwrap_or_else(Utc::now);
    let date = avwap::calendar::ny_date(now);
    let open = ny_instant(date, NaiveTime::from_hms_opt(9, 30, 0).unwrap());
    let mut bars = Vec::new();
    let mut start = open;
    while start + chrono::Duration::minutes(10) <= now && bars.len() < 39 {
        let close = if bars.is_empty() {
            entry * 0.99
        } else if bars.len() == 1 {
            entry * 1.004
        } else {
            entry * 1.005
        };
        bars.push(FakeBar {
            t: start,
            o: close * 0.999,
            h: close * 1.001,
            l: close * 0.998,
            c: close,
            v: 50_000,
        });
        start += chrono::Duration::minutes(10);
    }
    fake.set_intraday_bars(symbol, bars);
    if now >= open {
        fake.set_latest_trade(
            symbol,
            now - chrono::Duration::seconds(1),
            entry * 1.005,
            100,
        );
    }
}

fn session(
    fake: &FakeAlpaca,
    watchlist: &str,
    at: Option<DateTime<Utc>>,
) -> Result<Vec<(String, f64)>, String> {
    let rows = avwap::watchlist::read_watchlist(std::path::Path::new(watchlist))
        .map_err(|e| format!("{watchlist}: {e}"))?;
    let below = Decimal::new(995, 3);
    let picked: Vec<(String, f64)> = rows
        .iter()
        .filter(|r| r.stop_loss < r.entry_level * below)
        .filter_map(|r| Some((r.symbol.clone(), r.entry_level.to_f64()?)))
        .collect();
    for (s, e) in &picked {
        serve_breakout(fake, s, *e, at);
    }
    Ok(picked)
}

fn query<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn control(
    listener: TcpListener,
    fake: Arc<FakeAlpaca>,
    breakouts: Arc<Mutex<Vec<(String, f64)>>>,
    webhook_log: PathBuf,
) {
    let log = Arc::new(Mutex::new(()));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let (fake, breakouts, webhook_log, log) = (
            fake.clone(),
            breakouts.clone(),
            webhook_log.clone(),
            log.clone(),
        );
        std::thread::spawn(move || {
            let Some(req) = http::read_request(&stream) else {
                return;
            };
            let (status, body) = match (req.method.as_str(), req.path.as_str()) {
                ("GET", "/health") => (200, json!({"ok": true})),
                ("POST", "/webhook") => {
                    let _guard = log.lock().unwrap_or_else(|p| p.into_inner());
                    let line = String::from_utf8_lossy(&req.body).replace('\n', " ");
                    let written = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&webhook_log)
                        .and_then(|mut f| writeln!(f, "{line}"));
                    eprintln!("fake_alpaca: webhook: {line}");
                    match written {
                        Ok(()) => (200, json!({"ok": true})),
                        Err(e) => (500, json!({"error": e.to_string()})),
                    }
                }
                ("POST", "/stall") => {
                    let secs: u64 = query(&req.query, "seconds")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(180);
                    fake.set_stalled(true);
                    eprintln!("fake_alpaca: stalled for {secs} s");
                    let f = fake.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(secs));
                        f.set_stalled(false);
                        eprintln!("fake_alpaca: answering again");
                    });
                    (200, json!({"stalled_seconds": secs}))
                }
                ("POST", "/session") => {
                    // `at` (RFC 3339): bars as of that instant, not kept current (to try the
                    // program against `avwap-execution --once --at` on a host).
                    let at = query(&req.query, "at")
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&Utc));
                    match session(&fake, query(&req.query, "watchlist").unwrap_or(""), at) {
                        Ok(picked) if at.is_some() => (
                            200,
                            json!({"symbols": picked.iter().map(|(s, _)| s).collect::<Vec<_>>()}),
                        ),
                        Ok(picked) => {
                            let symbols: Vec<&str> =
                                picked.iter().map(|(s, _)| s.as_str()).collect();
                            eprintln!("fake_alpaca: breakouts for {symbols:?}");
                            let answer = json!({"symbols": symbols});
                            *breakouts.lock().unwrap_or_else(|p| p.into_inner()) = picked;
                            (200, answer)
                        }
                        Err(e) => (400, json!({"error": e})),
                    }
                }
                ("GET", "/orders") => (
                    200,
                    Value::Array(fake.orders().iter().map(|o| o.json()).collect()),
                ),
                ("GET", "/count") => {
                    let (m, p) = (
                        query(&req.query, "method").unwrap_or("GET"),
                        query(&req.query, "path").unwrap_or(""),
                    );
                    (200, json!({"count": fake.count(m, p)}))
                }
                _ => (404, json!({"error": "no such control endpoint"})),
            };
            http::write_response(stream, status, &[], Some(&body));
        });
    }
}

fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fake_alpaca (test-only): {e}");
            std::process::exit(2);
        }
    };
    let fake = Arc::new(FakeAlpaca::start_on(&a.listen));
    let bars = match seed(&fake, &a) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("fake_alpaca: seeding failed: {e}");
            std::process::exit(1);
        }
    };
    let listener = match TcpListener::bind(&a.control) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fake_alpaca: cannot listen on {}: {e}", a.control);
            std::process::exit(1);
        }
    };
    let breakouts: Arc<Mutex<Vec<(String, f64)>>> = Arc::default();
    // Fills (marketable entries) and the current session's bars, every second.
    {
        let (fake, breakouts) = (fake.clone(), breakouts.clone());
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            for o in fake.orders() {
                let open = matches!(o.status.as_str(), "new" | "accepted" | "partially_filled");
                if open && o.side == "buy" && o.order_type == "limit" && o.qty > o.filled_qty {
                    if let Some(price) = o.limit_price {
                        eprintln!(
                            "fake_alpaca: filling {} {} @ {price}",
                            o.client_order_id, o.qty
                        );
                        // (the service may cancel it meanwhile: `fill` then panics)
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            fake.fill(&o.id, o.qty - o.filled_qty, price)
                        }));
                    }
                }
            }
            let list = breakouts.lock().unwrap_or_else(|p| p.into_inner()).clone();
            for (s, e) in &list {
                serve_breakout(&fake, s, *e, None);
            }
        });
    }
    eprintln!(
        "fake_alpaca (test-only): Alpaca API on http://{} ({} symbols, {bars} daily bars to {}), control and webhook on http://{}",
        a.listen, a.symbols, a.data_as_of, a.control
    );
    control(listener, fake, breakouts, a.webhook_log);
}

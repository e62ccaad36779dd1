//! An Alpaca-shaped HTTP front (loopback) over the simulated broker of one state directory,
//! so the crash-safety suite can run the real binary in `alpaca-paper` mode: every order,
//! fill and fault goes through `AlpacaBroker`, `AlpacaClient`, HTTP and JSON, while the
//! broker state stays in `sim_broker.sqlite` where the suite's invariants read it.
//!
//! Trading API (paths and shapes of `trading-api.json`): `GET /v2/clock`, `/v2/account`,
//! `/v2/positions`, `/v2/orders?status=open`, `/v2/orders:by_client_order_id`, `/v2/calendar`,
//! `POST /v2/orders`, `PATCH`/`DELETE /v2/orders/{id}`. Market Data API: `GET /v2/stocks/bars`
//! (`timeframe=10Min`) and `/v2/stocks/trades/latest`, served from the same seeded synthetic
//! path the simulator fills on (`service::sim_market`), never a bar after the front's `now`.
//!
//! Simulator faults become HTTP: `UnknownOutcome` → the connection closes without an answer
//! (the client cannot know), `RetryableRead` → 500, `RateLimited` → 429 with `Retry-After`,
//! `Rejected` → 403/422 with Alpaca's code, `Auth` → 401, `NotFound` → 404. `CrashAfterAccept`
//! commits the call, then kills the client process with SIGABRT before answering.

use avwap::broker::sim::SimBroker;
use avwap::broker::{
    Broker, BrokerError, BrokerOrder, OrderRequest, OrderType, ReplaceRequest, Side, TimeInForce,
};
use avwap::config::Config;
use avwap::execution::service::{open_local_book, sim_market, SIM_BROKER_FILE};
use avwap::market_data::intraday::{IntradayFeed, SyntheticIntradayFeed};
use avwap::market_data::BarStore;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::common::alpaca_order::FakeOrder;
use crate::common::http;
use std::sync::{Arc, Mutex, OnceLock};

pub const KEY_ID: &str = "PKFRONTKEY0000000001";
pub const SECRET: &str = "front-secret-not-for-logs";

struct Inner {
    dir: PathBuf,
    now: Mutex<DateTime<Utc>>,
    client_pid: Mutex<Option<u32>>,
    /// The synthetic market of the front's current day, built once per day.
    market: Mutex<Option<(NaiveDate, Arc<SyntheticIntradayFeed>)>>,
    /// Serialises broker calls: one client at a time, like one process per state dir.
    broker_lock: Mutex<()>,
    /// Requests served, by "METHOD path".
    served: Mutex<HashMap<String, usize>>,
}

/// One front per state directory, kept for the life of the test process.
pub struct AlpacaFront {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

static FRONTS: OnceLock<Mutex<HashMap<PathBuf, Arc<AlpacaFront>>>> = OnceLock::new();

/// The front serving `dir` (started on first use).
pub fn front_for(dir: &Path) -> Arc<AlpacaFront> {
    let mut fronts = FRONTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    fronts
        .entry(dir.to_path_buf())
        .or_insert_with(|| Arc::new(AlpacaFront::start(dir)))
        .clone()
}

impl AlpacaFront {
    fn start(dir: &Path) -> AlpacaFront {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Alpaca front");
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            now: Mutex::new(DateTime::<Utc>::MIN_UTC),
            client_pid: Mutex::new(None),
            market: Mutex::new(None),
            broker_lock: Mutex::new(()),
            served: Mutex::new(HashMap::new()),
        });
        let served = inner.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let inner = served.clone();
                std::thread::spawn(move || handle(stream, &inner));
            }
        });
        AlpacaFront { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The simulated "now" for the next run (the binary's `--at`).
    pub fn set_now(&self, now: DateTime<Utc>) {
        *self.inner.now.lock().unwrap() = now;
    }

    /// How many `method path` requests this front has answered or dropped.
    pub fn served(&self, method: &str, path: &str) -> usize {
        let served = self.inner.served.lock().unwrap();
        served
            .get(&format!("{method} {path}"))
            .copied()
            .unwrap_or(0)
    }

    /// The process a `CrashAfterAccept` fault must kill.
    pub fn set_client_pid(&self, pid: Option<u32>) {
        *self.inner.client_pid.lock().unwrap() = pid;
    }

    /// The configuration file that points `alpaca-paper` at this front.
    pub fn config_file(&self) -> PathBuf {
        let path = self.inner.dir.join("alpaca-front.toml");
        if !path.exists() {
            std::fs::write(
                &path,
                format!(
                    "mode = \"alpaca-paper\"\n[alpaca]\ntrading_url = \"{0}\"\ndata_url = \"{0}\"\n",
                    self.url()
                ),
            )
            .unwrap();
        }
        path
    }
}

struct Reply {
    status: u16,
    body: Value,
    headers: Vec<(String, String)>,
}

fn reply(status: u16, body: Value) -> Option<Reply> {
    Some(Reply {
        status,
        body,
        headers: Vec::new(),
    })
}

fn alpaca_error(status: u16, code: &str, message: &str) -> Option<Reply> {
    let code: u64 = code.parse().unwrap_or(40010000);
    reply(status, json!({"code": code, "message": message}))
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn order_json(o: &BrokerOrder) -> Value {
    FakeOrder::from_broker(o).json()
}

impl FakeOrder {
    /// An order of the simulated broker as Alpaca would list it (the crash suite's front).
    pub fn from_broker(o: &avwap::broker::BrokerOrder) -> FakeOrder {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        FakeOrder {
            id: o.id.clone(),
            client_order_id: o.client_order_id.clone(),
            symbol: o.symbol.clone(),
            side: o.side.as_str().to_string(),
            order_type: o.order_type.as_str().to_string(),
            time_in_force: o.time_in_force.as_str().to_string(),
            qty: o.qty,
            filled_qty: o.filled_qty,
            filled_avg_price: o.filled_avg_price,
            limit_price: o.limit_price,
            stop_price: o.stop_price,
            status: o.status.as_str().to_string(),
            created_at: time(o.submitted_at),
            updated_at: time(o.updated_at),
            replaced_by: o.replaced_by.clone(),
            replaces: None,
        }
    }
}

/// A broker error as Alpaca would answer it; `None`: close without answering.
fn broker_error(e: BrokerError) -> Option<Reply> {
    match e {
        BrokerError::UnknownOutcome { .. } => None,
        BrokerError::RetryableRead { message } => alpaca_error(500, "50010000", &message),
        BrokerError::RateLimited { retry_after } => {
            let mut r = alpaca_error(429, "42910000", "rate limit exceeded")?;
            let secs = retry_after.map_or(1, |d| d.as_secs().max(1));
            r.headers.push(("Retry-After".into(), secs.to_string()));
            Some(r)
        }
        BrokerError::Rejected { code, message } => {
            let code = code.unwrap_or_else(|| "40010000".into());
            let status = if code.starts_with("403") { 403 } else { 422 };
            alpaca_error(status, &code, &message)
        }
        BrokerError::Auth { message } => alpaca_error(401, "40110000", &message),
        BrokerError::NotFound { message } => alpaca_error(404, "40410000", &message),
        BrokerError::Unsupported(message) => alpaca_error(422, "40010000", &message),
        // The simulated broker never raises it (it is the Alpaca client's deadline verdict);
        // a 503 is the nearest answer that means "not processed".
        BrokerError::NotSent { message } => alpaca_error(503, "50310000", &message),
        // The simulated broker never raises it either (it judges an Alpaca answer).
        BrokerError::Malformed { message, .. } => alpaca_error(500, "50010000", &message),
    }
}

fn decimal(body: &Value, name: &str) -> Result<Option<Decimal>, String> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Decimal::from_str(s)
            .map(Some)
            .map_err(|_| format!("{name} is not a decimal")),
        Some(_) => Err(format!("{name} must be a decimal string")),
    }
}

fn text<'a>(body: &'a Value, name: &str) -> Result<&'a str, String> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{name} is required"))
}

fn order_request(body: &Value) -> Result<OrderRequest, String> {
    Ok(OrderRequest {
        client_order_id: text(body, "client_order_id")?.to_string(),
        symbol: text(body, "symbol")?.to_string(),
        side: Side::parse(text(body, "side")?).ok_or("bad side")?,
        qty: decimal(body, "qty")?.ok_or("qty is required")?,
        order_type: OrderType::parse(text(body, "type")?).ok_or("bad type")?,
        limit_price: decimal(body, "limit_price")?,
        stop_price: decimal(body, "stop_price")?,
        time_in_force: TimeInForce::parse(text(body, "time_in_force")?)
            .ok_or("bad time_in_force")?,
    })
}

fn replace_request(body: &Value) -> Result<ReplaceRequest, String> {
    Ok(ReplaceRequest {
        client_order_id: text(body, "client_order_id")?.to_string(),
        qty: decimal(body, "qty")?,
        limit_price: decimal(body, "limit_price")?,
        stop_price: decimal(body, "stop_price")?,
    })
}

fn query<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }

    fn market(&self) -> Arc<SyntheticIntradayFeed> {
        let today = avwap::calendar::ny_date(self.now());
        let mut cached = self.market.lock().unwrap();
        if let Some((day, feed)) = cached.as_ref() {
            if *day == today {
                return feed.clone();
            }
        }
        let store = BarStore::open(&self.dir.join("bars.sqlite")).expect("the case's bar store");
        let symbols = store.symbols().expect("bar store symbols");
        drop(store);
        let feed = Arc::new(sim_market(&self.dir, &symbols, today).expect("the synthetic market"));
        *cached = Some((today, feed.clone()));
        feed
    }

    fn broker(&self) -> SimBroker {
        let mut broker = open_local_book(
            &self.dir.join(SIM_BROKER_FILE),
            &Config::default(),
            self.now(),
            self.market(),
        )
        .expect("open the simulated broker behind the front");
        let pid = *self.client_pid.lock().unwrap();
        broker.set_crash_hook(Box::new(move || {
            if let Some(pid) = pid {
                let _ = std::process::Command::new("kill")
                    .args(["-ABRT", &pid.to_string()])
                    .status();
                // Let the signal land before the connection closes.
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }));
        broker
    }

    fn route(
        &self,
        method: &str,
        path: &str,
        pairs: &[(String, String)],
        body: &Value,
    ) -> Option<Reply> {
        let now = self.now();
        match (method, path) {
            ("GET", "/v2/stocks/bars") => return self.bars(pairs, now),
            ("GET", "/v2/stocks/trades/latest") => return self.latest_trades(pairs, now),
            ("GET", "/v2/calendar") => return reply(200, json!([])),
            _ => {}
        }
        let _serial = self.broker_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut broker = self.broker();
        let bad = |m: String| alpaca_error(422, "40010000", &m);
        let result: Result<Value, BrokerError> = match (method, path) {
            ("GET", "/v2/clock") => broker.clock().map(|c| {
                json!({"timestamp": time(c.timestamp), "is_open": c.is_open,
                       "next_open": time(c.next_open), "next_close": time(c.next_close)})
            }),
            ("GET", "/v2/account") => broker.account().map(|a| {
                json!({"id": "front", "account_number": "PAFRONT0001", "status": "ACTIVE",
                       "currency": "USD", "equity": a.equity.to_string(),
                       "buying_power": a.buying_power.to_string(),
                       "trade_suspended_by_user": a.trading_suspended,
                       "trading_blocked": false, "account_blocked": false})
            }),
            ("GET", "/v2/positions") => broker.positions().map(|ps| {
                Value::Array(
                    ps.iter()
                        .map(|p| {
                            json!({"symbol": p.symbol, "qty": p.qty.to_string(),
                                   "avg_entry_price": p.avg_entry_price.to_string(),
                                   "side": "long", "asset_class": "us_equity"})
                        })
                        .collect(),
                )
            }),
            ("GET", "/v2/orders") => match query(pairs, "status") {
                // One page: the suite never has 500 open orders.
                Some("open") => broker
                    .open_orders()
                    .map(|os| Value::Array(os.iter().map(order_json).collect())),
                // The recovery lookup: one symbol's orders since a time, any state.
                Some("all") => {
                    let Some(symbol) = query(pairs, "symbols") else {
                        return bad("status=all is served for one symbol only".into());
                    };
                    let since = query(pairs, "after")
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
                    broker
                        .orders_for_symbol(symbol, since)
                        .map(|os| Value::Array(os.iter().map(order_json).collect()))
                }
                _ => return bad("the front serves status=open and status=all only".into()),
            },
            ("GET", "/v2/orders:by_client_order_id") => {
                let Some(id) = query(pairs, "client_order_id") else {
                    return bad("client_order_id is required".into());
                };
                match broker.order_by_client_id(id) {
                    Ok(Some(o)) => Ok(order_json(&o)),
                    Ok(None) => return alpaca_error(404, "40410000", "order not found"),
                    Err(e) => Err(e),
                }
            }
            ("POST", "/v2/orders") => match order_request(body) {
                Ok(request) => broker.submit(&request).map(|o| order_json(&o)),
                Err(m) => return bad(m),
            },
            (m, p) if p.starts_with("/v2/orders/") => {
                let id = &p["/v2/orders/".len()..];
                match m {
                    "PATCH" => match replace_request(body) {
                        Ok(request) => broker.replace(id, &request).map(|o| order_json(&o)),
                        Err(m) => return bad(m),
                    },
                    "DELETE" => match broker.cancel(id) {
                        Ok(()) => return reply(204, Value::Null),
                        Err(e) => Err(e),
                    },
                    _ => return alpaca_error(405, "40510000", "method not allowed"),
                }
            }
            _ => return alpaca_error(404, "40410000", "endpoint not found"),
        };
        match result {
            Ok(value) => reply(200, value),
            Err(e) => broker_error(e),
        }
    }

    fn symbols(pairs: &[(String, String)]) -> Vec<String> {
        query(pairs, "symbols")
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn bars(&self, pairs: &[(String, String)], now: DateTime<Utc>) -> Option<Reply> {
        if query(pairs, "timeframe") != Some("10Min") {
            return alpaca_error(422, "40010000", "the front serves timeframe=10Min only");
        }
        let parse = |name: &str| {
            query(pairs, name)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let start = parse("start").unwrap_or(now - chrono::Duration::days(5));
        let end = parse("end").unwrap_or(now).min(now);
        let market = self.market();
        let mut bars = serde_json::Map::new();
        for symbol in Self::symbols(pairs) {
            // Closed bars only (a bar is stamped with its start, as Alpaca does).
            let list: Vec<Value> = market
                .bars_between(&symbol, start, end)
                .into_iter()
                .filter(|b| b.start >= start && b.end <= now)
                .map(|b| {
                    json!({"t": time(b.start), "o": b.open, "h": b.high, "l": b.low,
                           "c": b.close, "v": b.volume, "n": 1, "vw": b.close})
                })
                .collect();
            if !list.is_empty() {
                bars.insert(symbol, Value::Array(list));
            }
        }
        reply(200, json!({"bars": bars, "next_page_token": null}))
    }

    fn latest_trades(&self, pairs: &[(String, String)], now: DateTime<Utc>) -> Option<Reply> {
        let market = self.market();
        let mut trades = serde_json::Map::new();
        for symbol in Self::symbols(pairs) {
            if let Some(bar) = market.last_closed_bars(&symbol, now, 1).pop() {
                trades.insert(
                    symbol,
                    json!({"t": time(bar.end), "p": bar.close, "s": 100, "x": "V", "i": 1,
                           "c": ["@"], "z": "C"}),
                );
            }
        }
        reply(200, json!({"trades": trades}))
    }
}

fn handle(stream: TcpStream, inner: &Inner) {
    let Some(request) = http::read_request(&stream) else {
        return;
    };
    *inner
        .served
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(format!("{} {}", request.method, request.path))
        .or_default() += 1;
    let authorized = request.header("apca-api-key-id") == Some(KEY_ID)
        && request.header("apca-api-secret-key") == Some(SECRET);
    let answer = if authorized {
        let body = request.json_body().unwrap_or(Value::Null);
        inner.route(&request.method, &request.path, &request.query, &body)
    } else {
        alpaca_error(401, "40110000", "request is not authorized")
    };
    // No answer: an unknown outcome, the connection closes.
    if let Some(answer) = answer {
        let body = (answer.status != 204).then_some(&answer.body);
        http::write_response(stream, answer.status, &answer.headers, body);
    }
}

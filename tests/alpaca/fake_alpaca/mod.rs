//! A stateful fake of the Alpaca Trading API (and of the Market Data API's
//! `GET /v2/stocks/bars`, daily and 10-minute, and `GET /v2/stocks/trades/latest`) on 127.0.0.1,
//! for tests (std only: a
//! `TcpListener`, a minimal HTTP/1.1 parser, one thread per connection, `Connection: close`).
//!
//! Follows the official spec (`trading-api.json`) for the subset we use, and Alpaca's observed
//! behaviour: `client_order_id` unique forever (422 `40010001`), shares held by open sells are
//! not available (403 `40310000`), replace creates a new order and marks the old `replaced`
//! with `replaced_by`, `filled_qty` is cumulative, `suspend_trade` blocks new orders.
//!
//! Bars follow `market-data-api.json`: parameters are validated against the spec's names and
//! enums, the page holds at most `limit` bars over all symbols (ordered by symbol, then time),
//! and `next_page_token` is opaque and `null` on the last page. Bars are served as stored:
//! two bars of one `t` (`set_bars`) are both served, across a page boundary when it falls
//! between them.
//!
//! [`Quirks`] make the fake answer in ways the spec allows but the happy path never shows:
//! symbols nobody asked for in `bars`, unknown extra fields, a calendar body of any shape.
//!
//! Fault injection per method and path prefix: timeout after accepting, 5xx before or after
//! processing, 429 with `Retry-After`, an exhausted `X-RateLimit-Remaining`; for every request,
//! a slow answer (`set_answer_delay`) or none at all (`set_stalled`). Every request is
//! recorded (method, path, query pairs, JSON body) for the conformance checks of `contract`
//! (`contract::check_request`, `contract::assert_all_conform`): the one copy of what the official
//! specs allow for the requests we send.
//!
//! The HTTP is `tests/common/http.rs`, the order shape `tests/common/alpaca_order.rs` (both
//! shared with the crash suite's Alpaca front).

pub mod contract;

use crate::common::alpaca_order::FakeOrder;
use crate::common::http::{self, RawRequest};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const KEY_ID: &str = "PKFAKEKEYID000000001";
/// Recognisable, so a leak into any output can be searched for.
pub const SECRET: &str = "FAKE-SECRET-zq8Xw3vLeak-canary";
pub const ACCOUNT_NUMBER: &str = "PA3FAKE0001";

/// An injected fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Process the request, then say nothing for this long (past the client's timeout).
    TimeoutAfterAccept(Duration),
    /// Answer this status without processing.
    Status(u16),
    /// Process the request, then answer this status (e.g. 500 after the order exists).
    StatusAfterAccept(u16),
    /// 429 with `Retry-After` (seconds), without processing.
    TooManyRequests { retry_after_secs: u64 },
    /// Process normally but report `X-RateLimit-Remaining: 0`, reset in this many seconds.
    QuotaExhausted { reset_in_secs: u64 },
    /// A misbehaving proxy: answer this status without processing, the request's headers
    /// (the key pair included) copied into the body: Alpaca's `{"code", "message"}` shape
    /// plus a `headers` object when `json`, plain text otherwise.
    ReflectHeaders { status: u16, json: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
}

impl FakeOrder {
    fn is_open(&self) -> bool {
        matches!(
            self.status.as_str(),
            "new"
                | "accepted"
                | "pending_new"
                | "partially_filled"
                | "pending_cancel"
                | "pending_replace"
                | "held"
        )
    }
}

/// One stored bar of the fake Market Data API.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeBar {
    pub t: DateTime<Utc>,
    pub o: f64,
    pub h: f64,
    pub l: f64,
    pub c: f64,
    pub v: u64,
}

/// Rewrites the JSON body of a successful answer: how a test makes the fake answer the other
/// ways the spec allows (optional fields absent, nulls, foreign elements, another order).
pub type Rewrite = Arc<dyn Fn(Value) -> Value + Send + Sync>;

/// Pending rewrites: (method, path prefix, rewrite, answers left).
#[derive(Default)]
struct Rewrites(Vec<(String, String, Rewrite, usize)>);

impl std::fmt::Debug for Rewrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} rewrite(s)", self.0.len())
    }
}

impl Rewrites {
    fn take(&mut self, method: &str, path: &str) -> Option<Rewrite> {
        let index = self
            .0
            .iter()
            .position(|(m, prefix, _, _)| m == method && path.starts_with(prefix.as_str()))?;
        let rewrite = self.0[index].2.clone();
        self.0[index].3 -= 1;
        if self.0[index].3 == 0 {
            self.0.remove(index);
        }
        Some(rewrite)
    }
}

/// Answers the spec allows (or a broken server gives) that the fake does not give by itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quirks {
    /// Symbols whose stored bars every bars answer carries, whether requested or not (`bars`
    /// is a free map in the spec).
    pub unrequested_bars: Vec<String>,
    /// Unknown fields in every bars page and bar and every calendar day (the spec's objects
    /// are open: a client must ignore what it does not know).
    pub extra_fields: bool,
    /// Served as the `200` body of `GET /v2/calendar` instead of the stored days.
    pub calendar_body: Option<Value>,
    /// Served as the `200` body of every `GET /v2/stocks/bars` (after its parameters are
    /// checked) instead of the stored bars.
    pub bars_body: Option<Value>,
}

#[derive(Debug, Default)]
struct State {
    rewrites: Rewrites,
    quirks: Quirks,
    /// symbol → bars sorted by `t`.
    bars: BTreeMap<String, Vec<FakeBar>>,
    /// symbol → 10-minute bars sorted by `t` (bar START), served for `timeframe=10Min`.
    intraday_bars: BTreeMap<String, Vec<FakeBar>>,
    /// symbol → latest trade (`t`, `p`, `s`), served by `GET /v2/stocks/trades/latest`.
    latest_trades: BTreeMap<String, (DateTime<Utc>, f64, u64)>,
    /// Served by `GET /v2/calendar` (empty until a test calls `set_calendar`).
    calendar: Vec<FakeCalendarDay>,
    /// Served by `GET /v2/assets` (empty until a test calls `set_assets`).
    assets: Vec<FakeAsset>,
    orders: Vec<FakeOrder>,
    used_client_ids: HashSet<String>,
    /// symbol → (qty, avg entry price)
    positions: HashMap<String, (Decimal, Decimal)>,
    suspend_trade: bool,
    next_id: u64,
    requests: Vec<Recorded>,
    faults: Vec<(String, String, Fault, usize)>,
    /// Every request waits this long before it is processed and answered.
    answer_delay: Duration,
    /// Requests are read and recorded, then neither processed nor answered while this holds.
    stalled: bool,
}

impl State {
    fn now_text(&mut self) -> String {
        self.next_id += 1;
        let base = chrono::DateTime::parse_from_rfc3339("2026-11-30T15:00:00Z").unwrap();
        (base + chrono::Duration::milliseconds(self.next_id as i64))
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("00000000-0000-4000-8000-{:012}", self.next_id)
    }

    /// Shares of `symbol` not held by open sells (other than `except`).
    fn available(&self, symbol: &str, except: Option<&str>) -> Decimal {
        let held = self.positions.get(symbol).map(|p| p.0).unwrap_or_default();
        let reserved: Decimal = self
            .orders
            .iter()
            .filter(|o| o.symbol == symbol && o.side == "sell" && o.is_open())
            .filter(|o| Some(o.id.as_str()) != except)
            .map(|o| o.qty - o.filled_qty)
            .sum();
        held - reserved
    }

    fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let index = self
            .faults
            .iter()
            .position(|(m, p, _, n)| m == method && path.starts_with(p.as_str()) && *n > 0)?;
        let entry = &mut self.faults[index];
        entry.3 -= 1;
        let fault = entry.2.clone();
        if entry.3 == 0 {
            self.faults.remove(index);
        }
        Some(fault)
    }
}

/// The fake server; stops when dropped.
pub struct FakeAlpaca {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Drop for FakeAlpaca {
    fn drop(&mut self) {
        // Let stalled connections go.
        self.lock().stalled = false;
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

impl FakeAlpaca {
    pub fn start() -> FakeAlpaca {
        FakeAlpaca::start_on("127.0.0.1:0")
    }

    /// On a given address (the standalone, test-only `examples/fake_alpaca.rs`).
    pub fn start_on(addr: &str) -> FakeAlpaca {
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let s = s.clone();
                std::thread::spawn(move || handle(stream, &s));
            }
        });
        FakeAlpaca { addr, state, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inject `fault` for the next `times` requests with this method and path prefix.
    pub fn inject(&self, method: &str, path_prefix: &str, fault: Fault, times: usize) {
        self.lock()
            .faults
            .push((method.to_string(), path_prefix.to_string(), fault, times));
    }

    /// Rewrite the JSON body of the next `times` successful answers to this method and path
    /// prefix (`usize::MAX`: every one). The request is processed as usual first.
    pub fn rewrite_answers(
        &self,
        method: &str,
        path_prefix: &str,
        times: usize,
        rewrite: impl Fn(Value) -> Value + Send + Sync + 'static,
    ) {
        self.lock().rewrites.0.push((
            method.to_string(),
            path_prefix.to_string(),
            Arc::new(rewrite),
            times,
        ));
    }

    /// Delay every later answer by `delay` (a slow server; `Duration::ZERO` ends it).
    pub fn set_answer_delay(&self, delay: Duration) {
        self.lock().answer_delay = delay;
    }

    /// Stall: accept connections and read and record requests, but neither process nor
    /// answer them while stalled (a hung server or a black hole after the handshake).
    pub fn set_stalled(&self, stalled: bool) {
        self.lock().stalled = stalled;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    pub fn count(&self, method: &str, path: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    pub fn orders(&self) -> Vec<FakeOrder> {
        self.lock().orders.clone()
    }

    pub fn order_by_client_id(&self, client_order_id: &str) -> Option<FakeOrder> {
        self.lock()
            .orders
            .iter()
            .find(|o| o.client_order_id == client_order_id)
            .cloned()
    }

    pub fn set_position(&self, symbol: &str, qty: Decimal, avg_entry_price: Decimal) {
        self.lock()
            .positions
            .insert(symbol.to_string(), (qty, avg_entry_price));
    }

    pub fn position(&self, symbol: &str) -> Option<(Decimal, Decimal)> {
        self.lock().positions.get(symbol).copied()
    }

    /// Answer with `quirks` from now on (replacing the previous ones).
    pub fn set_quirks(&self, quirks: Quirks) {
        self.lock().quirks = quirks;
    }

    /// Store bars of `symbol` as given (any `t`; two bars of one `t` are both served, in the
    /// order given), replacing what it had.
    pub fn set_bars(&self, symbol: &str, mut bars: Vec<FakeBar>) {
        bars.sort_by_key(|b| b.t);
        self.lock().bars.insert(symbol.to_string(), bars);
    }

    /// Store 10-minute bars of `symbol` (`t` = bar START, as Alpaca stamps them), replacing
    /// what it had; served for `timeframe=10Min`.
    pub fn set_intraday_bars(&self, symbol: &str, mut bars: Vec<FakeBar>) {
        bars.sort_by_key(|b| b.t);
        self.lock().intraday_bars.insert(symbol.to_string(), bars);
    }

    /// Set the latest trade of `symbol` (served by `GET /v2/stocks/trades/latest`).
    pub fn set_latest_trade(&self, symbol: &str, t: DateTime<Utc>, price: f64, size: u64) {
        self.lock()
            .latest_trades
            .insert(symbol.to_string(), (t, price, size));
    }

    /// Store one daily bar per date for each symbol, stamped like Alpaca's: `t` is midnight
    /// New York in UTC. Prices are deterministic and valid (low ≤ open, close ≤ high).
    pub fn add_daily_bars(&self, symbols: &[String], dates: &[NaiveDate]) {
        let mut state = self.lock();
        for (k, symbol) in symbols.iter().enumerate() {
            let list = state.bars.entry(symbol.clone()).or_default();
            for (i, date) in dates.iter().enumerate() {
                let base = 20.0 + (k % 50) as f64 + (i % 17) as f64 * 0.25;
                list.push(FakeBar {
                    t: avwap::calendar::ny_instant(*date, NaiveTime::MIN),
                    o: base,
                    h: base + 1.0,
                    l: base - 1.0,
                    c: base + 0.5,
                    v: 100_000 + (i as u64) * 10,
                });
            }
            list.sort_by_key(|b| b.t);
            list.dedup_by_key(|b| b.t);
        }
    }

    /// Force a status (e.g. one our code does not handle).
    pub fn set_status(&self, order_id: &str, status: &str) {
        let mut state = self.lock();
        if let Some(o) = state.orders.iter_mut().find(|o| o.id == order_id) {
            o.status = status.to_string();
        }
    }

    /// Fill `qty` more shares of an open order at `price`: `filled_qty` grows cumulatively,
    /// `filled_avg_price` is the running average, the position follows.
    pub fn fill(&self, order_id: &str, qty: Decimal, price: Decimal) {
        let mut state = self.lock();
        let now = state.now_text();
        let order = state
            .orders
            .iter_mut()
            .find(|o| o.id == order_id)
            .expect("fill: no such order");
        assert!(
            order.is_open(),
            "fill: order {order_id} is {}",
            order.status
        );
        let total = order.filled_qty + qty;
        assert!(total <= order.qty, "fill: overfill of {order_id}");
        let avg = order.filled_avg_price.unwrap_or_default() * order.filled_qty + price * qty;
        order.filled_avg_price = Some((avg / total).round_dp(4));
        order.filled_qty = total;
        order.status = if total == order.qty {
            "filled"
        } else {
            "partially_filled"
        }
        .to_string();
        order.updated_at = now;
        let (symbol, side) = (order.symbol.clone(), order.side.clone());
        let entry = state
            .positions
            .entry(symbol.clone())
            .or_insert((Decimal::ZERO, Decimal::ZERO));
        if side == "buy" {
            let cost = entry.0 * entry.1 + qty * price;
            entry.0 += qty;
            entry.1 = (cost / entry.0).round_dp(4);
        } else {
            entry.0 -= qty;
        }
        if entry.0.is_zero() {
            state.positions.remove(&symbol);
        }
    }
}

struct Reply {
    status: u16,
    body: Option<Value>,
    headers: Vec<(String, String)>,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        body: Some(body),
        headers: Vec::new(),
    }
}

fn error(status: u16, code: u64, message: &str) -> Reply {
    reply(status, json!({"code": code, "message": message}))
}

fn handle(stream: TcpStream, state: &Arc<Mutex<State>>) {
    let Some(request) = http::read_request(&stream) else {
        return;
    };
    let json_body = request.json_body();
    let authorized = request.header("apca-api-key-id") == Some(KEY_ID)
        && request.header("apca-api-secret-key") == Some(SECRET);
    let RawRequest {
        method,
        path,
        query,
        headers,
        ..
    } = request;
    let recorded = Recorded {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        body: json_body.clone(),
        headers: headers
            .iter()
            .filter(|(n, _)| n != "apca-api-secret-key")
            .cloned()
            .collect(),
    };
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    if lock().stalled {
        lock().requests.push(recorded);
        // Hold the connection open, answering nothing, until the stall ends.
        while lock().stalled {
            std::thread::sleep(Duration::from_millis(20));
        }
        return;
    }
    let delay = lock().answer_delay;
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }

    let (fault, mut answer) = {
        let mut st = lock();
        st.requests.push(recorded);
        let fault = st.take_fault(&method, &path);
        let answer = match &fault {
            Some(Fault::Status(code)) => error(*code, 50010000, "internal server error"),
            Some(Fault::TooManyRequests { retry_after_secs }) => {
                let mut r = error(429, 42910000, "rate limit exceeded");
                r.headers
                    .push(("Retry-After".into(), retry_after_secs.to_string()));
                r
            }
            Some(Fault::ReflectHeaders { status, json: true }) => {
                let text: Vec<String> = headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
                let map: serde_json::Map<String, Value> = headers
                    .iter()
                    .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                    .collect();
                reply(
                    *status,
                    json!({
                        "code": 40110000,
                        "message": format!("proxy saw: {}", text.join("; ")),
                        "headers": map,
                    }),
                )
            }
            _ if !authorized => error(401, 40110000, "request is not authorized"),
            _ => {
                let mut answer = route(&mut st, &method, &path, &query, json_body.as_ref());
                if (200..300).contains(&answer.status) && answer.body.is_some() {
                    if let Some(rewrite) = st.rewrites.take(&method, &path) {
                        answer.body = answer.body.take().map(|body| rewrite(body));
                    }
                }
                answer
            }
        };
        (fault, answer)
    };
    match fault {
        Some(Fault::TimeoutAfterAccept(wait)) => {
            std::thread::sleep(wait);
            return; // connection dropped without an answer
        }
        Some(Fault::StatusAfterAccept(code)) => {
            answer = error(code, 50010000, "internal server error");
        }
        Some(Fault::ReflectHeaders {
            status,
            json: false,
        }) => {
            let mut text = String::from("<html><body><h1>Proxy error</h1><pre>\r\n");
            for (n, v) in &headers {
                text.push_str(&format!("{n}: {v}\r\n"));
            }
            text.push_str("</pre></body></html>");
            write_text_response(stream, status, &text);
            return;
        }
        Some(Fault::QuotaExhausted { reset_in_secs }) => {
            let reset = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + reset_in_secs;
            answer
                .headers
                .push(("X-RateLimit-Remaining".into(), "0".into()));
            answer
                .headers
                .push(("X-RateLimit-Reset".into(), reset.to_string()));
        }
        _ => {}
    }
    http::write_response(stream, answer.status, &answer.headers, answer.body.as_ref());
}

/// An answer whose body is not JSON (an HTML error page of a proxy).
fn write_text_response(mut stream: TcpStream, status: u16, text: &str) {
    use std::io::Write;
    let head = format!(
        "HTTP/1.1 {status} Proxy Error\r\nContent-Length: {}\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n",
        text.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(text.as_bytes());
    let _ = stream.flush();
}

fn str_field<'a>(body: &'a Value, name: &str) -> Result<Option<&'a str>, Reply> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(error(422, 40010000, &format!("{name} must be a string"))),
    }
}

fn dec_field(body: &Value, name: &str) -> Result<Option<Decimal>, Reply> {
    match str_field(body, name)? {
        None => Ok(None),
        Some(s) => s
            .parse::<Decimal>()
            .map(Some)
            .map_err(|_| error(422, 40010000, &format!("invalid {name}"))),
    }
}

fn route(
    st: &mut State,
    method: &str,
    path: &str,
    query: &[(String, String)],
    body: Option<&Value>,
) -> Reply {
    let q = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let empty = json!({});
    let body = body.unwrap_or(&empty);
    let result: Result<Reply, Reply> = (|| match (method, path) {
        ("GET", "/v2/stocks/bars") => stock_bars(st, query),
        ("GET", "/v2/stocks/trades/latest") => latest_trades(st, query),
        ("GET", "/v2/calendar") => market_calendar(st, query),
        ("GET", "/v2/assets") => list_assets(st, query),
        ("GET", "/v2/clock") => Ok(reply(
            200,
            json!({"timestamp":"2026-11-30T10:00:00.123-05:00","is_open":true,
                   "next_open":"2026-12-01T09:30:00-05:00","next_close":"2026-11-30T16:00:00-05:00"}),
        )),
        ("GET", "/v2/account") => Ok(reply(
            200,
            json!({"id":"e6fe16f3-64a4-4921-8928-cadf02f92f98","account_number":ACCOUNT_NUMBER,
                   "status":"ACTIVE","currency":"USD","cash":"100000","equity":"100000.00",
                   "buying_power":"200000.00","trade_suspended_by_user":st.suspend_trade,
                   "trading_blocked":false,"account_blocked":false,"pattern_day_trader":false}),
        )),
        ("GET", "/v2/positions") => {
            let mut list: Vec<_> = st.positions.iter().collect();
            list.sort_by(|a, b| a.0.cmp(b.0));
            let avail: Vec<Value> = list
                .iter()
                .map(|(sym, (qty, avg))| {
                    json!({"symbol":sym,"asset_class":"us_equity","exchange":"NYSE",
                           "qty":qty.to_string(),"qty_available":st.available(sym, None).to_string(),
                           "avg_entry_price":avg.to_string(),"side":"long",
                           "market_value":(qty * avg).to_string(),"cost_basis":(qty * avg).to_string()})
                })
                .collect();
            Ok(reply(200, Value::Array(avail)))
        }
        ("GET", "/v2/orders") => {
            let status = q("status").unwrap_or("open");
            if !["open", "closed", "all"].contains(&status) {
                return Err(error(422, 40010000, "invalid status"));
            }
            let limit: usize = q("limit").map(|l| l.parse().unwrap_or(0)).unwrap_or(50);
            if limit == 0 || limit > 500 {
                return Err(error(422, 40010000, "invalid limit"));
            }
            let mut list: Vec<&FakeOrder> = st
                .orders
                .iter()
                .filter(|o| match status {
                    "open" => o.is_open(),
                    "closed" => !o.is_open(),
                    _ => true,
                })
                .collect();
            if let Some(symbols) = q("symbols") {
                let wanted: HashSet<&str> = symbols.split(',').collect();
                list.retain(|o| wanted.contains(o.symbol.as_str()));
            }
            if let Some(after) = q("after") {
                // RFC 3339 in UTC on both sides: the text order is the time order.
                list.retain(|o| o.created_at.as_str() > after);
            }
            if q("direction").unwrap_or("desc") == "desc" {
                list.reverse();
            }
            if let Some(after) = q("after_order_id") {
                // Orders submitted after that one (in submission order).
                let pos = st.orders.iter().position(|o| o.id == after);
                let Some(pos) = pos else {
                    return Err(error(422, 40010000, "after_order_id not found"));
                };
                let later: HashSet<&str> =
                    st.orders[pos + 1..].iter().map(|o| o.id.as_str()).collect();
                list.retain(|o| later.contains(o.id.as_str()));
            }
            Ok(reply(
                200,
                Value::Array(list.iter().take(limit).map(|o| o.json()).collect()),
            ))
        }
        ("POST", "/v2/orders") => submit(st, body),
        ("GET", "/v2/orders:by_client_order_id") => {
            let cid = q("client_order_id").unwrap_or("");
            st.orders
                .iter()
                .find(|o| o.client_order_id == cid)
                .map(|o| reply(200, o.json()))
                .ok_or_else(|| error(404, 40410000, "order not found"))
        }
        ("PATCH", "/v2/account/configurations") => {
            match body.get("suspend_trade") {
                Some(Value::Bool(b)) => st.suspend_trade = *b,
                Some(_) => return Err(error(422, 40010000, "suspend_trade must be a boolean")),
                None => {}
            }
            Ok(reply(
                200,
                json!({"dtbp_check":"entry","trade_confirm_email":"all","suspend_trade":st.suspend_trade,
                       "no_shorting":false,"fractional_trading":true,"max_margin_multiplier":"4"}),
            ))
        }
        (m, p) if p.starts_with("/v2/orders/") => {
            let id = &p["/v2/orders/".len()..];
            let Some(index) = st.orders.iter().position(|o| o.id == id) else {
                return Err(error(404, 40410000, "order not found"));
            };
            match m {
                "GET" => Ok(reply(200, st.orders[index].json())),
                "DELETE" => {
                    if !st.orders[index].is_open() {
                        return Err(error(422, 42210000, "order is not cancelable"));
                    }
                    let now = st.now_text();
                    let o = &mut st.orders[index];
                    o.status = "canceled".into();
                    o.updated_at = now;
                    Ok(Reply {
                        status: 204,
                        body: None,
                        headers: Vec::new(),
                    })
                }
                "PATCH" => replace(st, index, body),
                _ => Err(error(405, 40510000, "method not allowed")),
            }
        }
        _ => Err(error(404, 40410000, "endpoint not found")),
    })();
    result.unwrap_or_else(|e| e)
}

fn take_client_id(st: &mut State, body: &Value) -> Result<String, Reply> {
    let cid = match str_field(body, "client_order_id")? {
        Some(c) if c.len() > 128 => {
            return Err(error(422, 40010000, "client_order_id is too long"))
        }
        Some(c) => c.to_string(),
        None => st.new_id(),
    };
    if !st.used_client_ids.insert(cid.clone()) {
        return Err(error(422, 40010001, "client_order_id must be unique"));
    }
    Ok(cid)
}

fn submit(st: &mut State, body: &Value) -> Result<Reply, Reply> {
    if st.suspend_trade {
        return Err(error(
            403,
            40310000,
            "new orders are rejected by user request",
        ));
    }
    let symbol = str_field(body, "symbol")?
        .ok_or_else(|| error(422, 40010000, "symbol is required"))?
        .to_string();
    let qty = dec_field(body, "qty")?.ok_or_else(|| error(422, 40010000, "qty is required"))?;
    let side = str_field(body, "side")?.unwrap_or("");
    if side != "buy" && side != "sell" {
        return Err(error(422, 40010000, "invalid side"));
    }
    let side = side.to_string();
    let order_type = str_field(body, "type")?.unwrap_or("").to_string();
    if !["market", "limit", "stop", "stop_limit", "trailing_stop"].contains(&order_type.as_str()) {
        return Err(error(422, 40010000, "invalid order type"));
    }
    let tif = str_field(body, "time_in_force")?.unwrap_or("").to_string();
    if !["day", "gtc", "opg", "cls", "ioc", "fok"].contains(&tif.as_str()) {
        return Err(error(422, 40010000, "invalid time_in_force"));
    }
    let limit_price = dec_field(body, "limit_price")?;
    let stop_price = dec_field(body, "stop_price")?;
    if order_type == "limit" && limit_price.is_none() {
        return Err(error(422, 40010000, "limit_price is required"));
    }
    if order_type == "stop" && stop_price.is_none() {
        return Err(error(422, 40010000, "stop_price is required"));
    }
    if side == "sell" {
        let available = st.available(&symbol, None);
        if qty > available {
            return Err(error(
                403,
                40310000,
                &format!("insufficient qty available for order (requested: {qty}, available: {available})"),
            ));
        }
    }
    let cid = take_client_id(st, body)?;
    let id = st.new_id();
    let now = st.now_text();
    let order = FakeOrder {
        id,
        client_order_id: cid,
        symbol,
        side,
        order_type,
        time_in_force: tif,
        qty,
        filled_qty: Decimal::ZERO,
        filled_avg_price: None,
        limit_price,
        stop_price,
        status: "new".into(),
        created_at: now.clone(),
        updated_at: now,
        replaced_by: None,
        replaces: None,
    };
    let json = order.json();
    st.orders.push(order);
    Ok(reply(200, json))
}

fn replace(st: &mut State, index: usize, body: &Value) -> Result<Reply, Reply> {
    let old = st.orders[index].clone();
    if !old.is_open() {
        return Err(error(422, 42210000, "order is not open"));
    }
    let qty = dec_field(body, "qty")?.unwrap_or(old.qty);
    let limit_price = dec_field(body, "limit_price")?.or(old.limit_price);
    let stop_price = dec_field(body, "stop_price")?.or(old.stop_price);
    if old.side == "sell" {
        let available = st.available(&old.symbol, Some(&old.id));
        if qty - old.filled_qty > available {
            return Err(error(
                403,
                40310000,
                &format!("insufficient qty available for order (requested: {qty}, available: {available})"),
            ));
        }
    }
    let cid = take_client_id(st, body)?;
    let id = st.new_id();
    let now = st.now_text();
    let new = FakeOrder {
        id: id.clone(),
        client_order_id: cid,
        qty,
        filled_qty: Decimal::ZERO,
        filled_avg_price: None,
        limit_price,
        stop_price,
        status: "new".into(),
        created_at: now.clone(),
        updated_at: now.clone(),
        replaced_by: None,
        replaces: Some(old.id.clone()),
        ..old
    };
    let o = &mut st.orders[index];
    o.status = "replaced".into();
    o.replaced_by = Some(id);
    o.updated_at = now;
    let json = new.json();
    st.orders.push(new);
    Ok(reply(200, json))
}

fn bad_request(message: &str) -> Reply {
    error(400, 40010000, message)
}

/// The page token: the last symbol served and the index of its last bar served (an index, not
/// a time, so that two bars of one `t` are both served).
fn encode_token(symbol: &str, index: usize) -> String {
    format!("{symbol}|{index}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_token(token: &str) -> Option<(String, usize)> {
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let (symbol, index) = text.split_once('|')?;
    Some((symbol.to_string(), index.parse().ok()?))
}

/// `GET /v2/stocks/bars` (daily timeframe only), per `market-data-api.json`.
fn stock_bars(st: &State, query: &[(String, String)]) -> Result<Reply, Reply> {
    let q = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let known = [
        "symbols",
        "timeframe",
        "start",
        "end",
        "limit",
        "adjustment",
        "asof",
        "feed",
        "currency",
        "page_token",
        "sort",
    ];
    if let Some((k, _)) = query.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(bad_request(&format!("unknown parameter {k}")));
    }
    let mut symbols: Vec<&str> = q("symbols")
        .ok_or_else(|| bad_request("symbols is required"))?
        .split(',')
        .filter(|s| !s.is_empty())
        .collect();
    if symbols.is_empty() {
        return Err(bad_request("symbols is required"));
    }
    symbols.extend(st.quirks.unrequested_bars.iter().map(String::as_str));
    symbols.sort_unstable();
    symbols.dedup();
    let store = match q("timeframe") {
        Some("1Day") | Some("1D") => &st.bars,
        Some("10Min") | Some("10T") => &st.intraday_bars,
        None => return Err(bad_request("timeframe is required")),
        Some(other) => {
            return Err(bad_request(&format!(
                "fake serves 1Day and 10Min only, not {other}"
            )))
        }
    };
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, Reply> {
        q(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| bad_request(&format!("invalid {name}")))
            })
            .transpose()
    };
    let start = time("start")?.unwrap_or(DateTime::<Utc>::MIN_UTC);
    let end = time("end")?.unwrap_or(DateTime::<Utc>::MAX_UTC);
    let limit: usize = match q("limit") {
        None => 1000,
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| (1..=10_000).contains(l))
            .ok_or_else(|| bad_request("invalid limit"))?,
    };
    if let Some(adj) = q("adjustment") {
        if !adj
            .split(',')
            .all(|a| ["raw", "split", "dividend", "spin-off", "all"].contains(&a))
        {
            return Err(bad_request("invalid adjustment"));
        }
    }
    if let Some(feed) = q("feed") {
        if !["iex", "otc", "sip", "boats"].contains(&feed) {
            return Err(bad_request("invalid feed"));
        }
    }
    match q("sort") {
        None | Some("asc") => {}
        Some("desc") => return Err(bad_request("fake serves sort=asc only")),
        Some(_) => return Err(bad_request("invalid sort")),
    }
    if let Some(body) = &st.quirks.bars_body {
        return Ok(reply(200, body.clone()));
    }
    let after = match q("page_token") {
        None => None,
        Some(t) => Some(decode_token(t).ok_or_else(|| bad_request("invalid page_token"))?),
    };
    let mut page: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut taken = 0usize;
    let mut last: Option<(&str, usize)> = None;
    let mut more = false;
    'symbols: for symbol in symbols {
        if let Some((s, _)) = &after {
            if symbol < s.as_str() {
                continue;
            }
        }
        let Some(list) = store.get(symbol) else {
            continue;
        };
        let mut from = list.partition_point(|b| b.t < start);
        if let Some((s, index)) = &after {
            if symbol == s.as_str() {
                from = from.max(index + 1);
            }
        }
        for (index, bar) in list.iter().enumerate().skip(from) {
            if bar.t > end {
                break;
            }
            if taken == limit {
                more = true;
                break 'symbols;
            }
            let mut wire = json!({
                "t": bar.t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "o": bar.o, "h": bar.h, "l": bar.l, "c": bar.c, "v": bar.v,
                "n": 1000, "vw": (bar.h + bar.l) / 2.0,
            });
            if st.quirks.extra_fields {
                wire["x_unknown"] = json!({"added": "later"});
            }
            page.entry(symbol).or_default().push(wire);
            taken += 1;
            last = Some((symbol, index));
        }
    }
    let token = match (more, last) {
        (true, Some((s, index))) => Value::String(encode_token(s, index)),
        _ => Value::Null,
    };
    let mut body = json!({"bars": page, "next_page_token": token});
    if st.quirks.extra_fields {
        body["currency"] = json!("USD");
        body["x_unknown"] = json!([1, 2, 3]);
    }
    Ok(reply(200, body))
}

/// `GET /v2/stocks/trades/latest`, per `market-data-api.json` (`symbols` required, `feed` from
/// `stock_latest_feed`, `currency`). Symbols without a trade are absent from `trades`.
fn latest_trades(st: &State, query: &[(String, String)]) -> Result<Reply, Reply> {
    let q = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let known = ["symbols", "feed", "currency"];
    if let Some((k, _)) = query.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(bad_request(&format!("unknown parameter {k}")));
    }
    let symbols: Vec<&str> = q("symbols")
        .ok_or_else(|| bad_request("symbols is required"))?
        .split(',')
        .filter(|s| !s.is_empty())
        .collect();
    if symbols.is_empty() {
        return Err(bad_request("symbols is required"));
    }
    if let Some(feed) = q("feed") {
        if !["sip", "iex", "delayed_sip", "boats", "overnight", "otc"].contains(&feed) {
            return Err(bad_request("invalid feed"));
        }
    }
    let mut trades = serde_json::Map::new();
    for symbol in symbols {
        if let Some((t, p, size)) = st.latest_trades.get(symbol) {
            trades.insert(
                symbol.to_string(),
                json!({
                    "t": t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                    "p": p, "s": size, "x": "V", "i": 1, "c": ["@"], "z": "C",
                }),
            );
        }
    }
    Ok(reply(200, json!({"trades": trades})))
}

/// One day of the fake `GET /v2/calendar` (schema `legacy_calendar_day`; times are New York
/// wall clock).
#[derive(Debug, Clone, PartialEq)]
pub struct FakeCalendarDay {
    pub date: NaiveDate,
    /// `HH:MM`, e.g. `09:30`.
    pub open: String,
    /// `HH:MM`, e.g. `16:00` or `13:00`.
    pub close: String,
}

impl FakeCalendarDay {
    pub fn new(date: NaiveDate, open: &str, close: &str) -> FakeCalendarDay {
        FakeCalendarDay {
            date,
            open: open.to_string(),
            close: close.to_string(),
        }
    }

    fn json(&self) -> Value {
        json!({
            "date": self.date.format("%Y-%m-%d").to_string(),
            "open": self.open,
            "close": self.close,
            "session_open": "0400",
            "session_close": "2000",
            "settlement_date": (self.date + chrono::Duration::days(1)).format("%Y-%m-%d").to_string(),
        })
    }
}

/// One asset of the fake `GET /v2/assets` (schema `Assets`).
#[derive(Debug, Clone, PartialEq)]
pub struct FakeAsset {
    pub symbol: String,
    pub name: String,
    /// `us_equity`, `crypto`, …
    pub class: String,
    /// Schema `Exchange`: AMEX, ARCA, BATS, NYSE, NASDAQ, NYSEARCA, OTC (Alpaca also sends
    /// values outside the enum, e.g. `CRYPTO`).
    pub exchange: String,
    /// `active` or `inactive`.
    pub status: String,
    pub tradable: bool,
}

impl FakeAsset {
    /// An active, tradable US equity.
    pub fn equity(symbol: &str, exchange: &str) -> FakeAsset {
        FakeAsset {
            symbol: symbol.to_string(),
            name: format!("{symbol} Inc. Common Stock"),
            class: "us_equity".to_string(),
            exchange: exchange.to_string(),
            status: "active".to_string(),
            tradable: true,
        }
    }

    fn json(&self) -> Value {
        json!({
            "id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
            "class": self.class,
            "exchange": self.exchange,
            "symbol": self.symbol,
            "name": self.name,
            "status": self.status,
            "tradable": self.tradable,
            "marginable": true,
            "shortable": true,
            "easy_to_borrow": true,
            "borrow_status": "easy_to_borrow",
            "fractionable": true,
            "attributes": [],
        })
    }
}

impl FakeAlpaca {
    /// The days `GET /v2/calendar` serves (filtered by `start`/`end`), replacing what it had.
    pub fn set_calendar(&self, mut days: Vec<FakeCalendarDay>) {
        days.sort_by_key(|d| d.date);
        self.lock().calendar = days;
    }

    /// The assets `GET /v2/assets` serves (filtered by `status` and `asset_class`), replacing
    /// what it had.
    pub fn set_assets(&self, assets: Vec<FakeAsset>) {
        self.lock().assets = assets;
    }
}

/// A `start`/`end` of `GET /v2/calendar`: the spec types it `date-time` (Go `legacyTime`), which
/// accepts a plain `YYYY-MM-DD` date as well as RFC 3339.
fn calendar_bound(name: &str, value: &str) -> Result<NaiveDate, Reply> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .or_else(|_| DateTime::parse_from_rfc3339(value).map(|t| t.date_naive()))
        .map_err(|_| bad_request(&format!("invalid {name}")))
}

/// Refuse a parameter the spec does not list; else a lookup of the given ones.
fn known_params<'a>(
    query: &'a [(String, String)],
    known: &[&str],
) -> Result<impl Fn(&str) -> Option<&'a str>, Reply> {
    if let Some((k, _)) = query.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(bad_request(&format!("unknown parameter {k}")));
    }
    Ok(move |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    })
}

/// `GET /v2/calendar`, per `trading-api.json` (`LegacyCalendar`: `start`, `end`, `date_type`).
fn market_calendar(st: &State, query: &[(String, String)]) -> Result<Reply, Reply> {
    let q = known_params(query, &["start", "end", "date_type"])?;
    if let Some(t) = q("date_type") {
        if !["TRADING", "SETTLEMENT"].contains(&t) {
            return Err(bad_request("invalid date_type"));
        }
    }
    let start = q("start").map(|v| calendar_bound("start", v)).transpose()?;
    let end = q("end").map(|v| calendar_bound("end", v)).transpose()?;
    if let Some(body) = &st.quirks.calendar_body {
        return Ok(reply(200, body.clone()));
    }
    let days: Vec<Value> = st
        .calendar
        .iter()
        .filter(|d| start.is_none_or(|s| d.date >= s) && end.is_none_or(|e| d.date <= e))
        .map(|d| {
            let mut day = d.json();
            if st.quirks.extra_fields {
                day["x_unknown"] = json!("ignored");
            }
            day
        })
        .collect();
    Ok(reply(200, Value::Array(days)))
}

/// `GET /v2/assets`, per `trading-api.json` (`get-v2-assets`: `status`, `asset_class` (default
/// `us_equity`), `exchange`, `attributes`).
fn list_assets(st: &State, query: &[(String, String)]) -> Result<Reply, Reply> {
    let q = known_params(query, &["status", "asset_class", "exchange", "attributes"])?;
    let class = q("asset_class").unwrap_or("us_equity");
    if !["us_equity", "us_option", "crypto", "ipo"].contains(&class) {
        return Err(bad_request("invalid asset_class"));
    }
    let status = q("status");
    let exchange = q("exchange");
    let assets: Vec<Value> = st
        .assets
        .iter()
        .filter(|a| a.class == class)
        .filter(|a| status.is_none_or(|s| a.status == s))
        .filter(|a| exchange.is_none_or(|e| a.exchange == e))
        .map(FakeAsset::json)
        .collect();
    Ok(reply(200, Value::Array(assets)))
}

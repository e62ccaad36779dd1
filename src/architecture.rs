//! The layering of the crate, as code: [`RULES`] says which module may import which (the same
//! table ARCHITECTURE.md shows), and the tests below fail on every `crate::…` path in `src/`
//! that breaks it, and on any difference between this table and the document's.
//!
//! What is checked: every `crate::<module>[::<sub>]…` path in code and in doc comments (`use`
//! lines, grouped `use crate::{a, b::c}` trees and inline paths; rustdoc resolves doc links, and
//! a lower layer's docs pointing up are how cycles start). Not checked: `super::` paths (they
//! stay inside a module), plain `//` comments, string literals, and the binaries in `src/bin`
//! (they sit above everything and use `avwap::`).

/// The layers, bottom-up. A module may only import modules of its own or a lower layer, and
/// only those its row lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    /// Exit codes, atomic files, the clock and calendar, secrets: import nothing of avwap.
    Foundation,
    /// Data formats and pure domain logic: watchlist, bars, broker model and simulator,
    /// universe parsing, the scan and execution cores.
    Domain,
    /// The TOML configuration: pure data composing the domain sections.
    Config,
    /// I/O at the edges: the Alpaca HTTP client, logging, alerts, systemd and `/proc`, the
    /// process plumbing of the execution service.
    Edge,
    /// What the binaries call: each wires configuration, edges and domain for one command.
    Application,
}

impl Layer {
    fn name(self) -> &'static str {
        match self {
            Layer::Foundation => "foundation",
            Layer::Domain => "domain",
            Layer::Config => "config",
            Layer::Edge => "edge",
            Layer::Application => "application",
        }
    }
}

/// One row of the table: a module (a top-level module, or a sub-module that sits in another
/// layer than its parent), its layer, and the modules it may import. A file belongs to the row
/// of the longest module path that contains it.
struct Rule {
    module: &'static str,
    layer: Layer,
    may_import: &'static [&'static str],
}

const fn rule(module: &'static str, layer: Layer, may_import: &'static [&'static str]) -> Rule {
    Rule {
        module,
        layer,
        may_import,
    }
}

use Layer::{Application, Config, Domain, Edge, Foundation};

/// The one layer table. ARCHITECTURE.md shows it (a test keeps the two equal).
const RULES: &[Rule] = &[
    rule("calendar", Foundation, &[]),
    rule("credentials", Foundation, &[]),
    rule("exit", Foundation, &[]),
    rule("fsutil", Foundation, &[]),
    rule("watchlist", Domain, &["fsutil"]),
    rule("market_data", Domain, &["calendar", "fsutil", "watchlist"]),
    rule("broker", Domain, &["calendar", "market_data"]),
    rule("universe", Domain, &["fsutil", "watchlist"]),
    rule(
        "scan",
        Domain,
        &["calendar", "fsutil", "market_data", "watchlist"],
    ),
    rule(
        "execution",
        Domain,
        &["broker", "calendar", "market_data", "watchlist"],
    ),
    rule("config", Config, &["execution", "exit", "fsutil", "scan"]),
    rule(
        "alpaca",
        Edge,
        &[
            "broker",
            "calendar",
            "config",
            "credentials",
            "fsutil",
            "market_data",
            "universe",
        ],
    ),
    rule("execution::process", Edge, &["exit"]),
    rule("ops", Edge, &[]),
    rule("ops::alerts", Edge, &["config", "credentials"]),
    rule("ops::logging", Edge, &["credentials"]),
    rule("ops::procs", Edge, &[]),
    rule("ops::systemd", Edge, &[]),
    rule(
        "cli",
        Application,
        &["config", "credentials", "exit", "ops::logging"],
    ),
    rule(
        "gate",
        Application,
        &["calendar", "exit", "fsutil", "watchlist"],
    ),
    rule(
        "ops::check",
        Application,
        &[
            "calendar",
            "config",
            "execution",
            "execution::process",
            "gate",
            "ops::procs",
            "ops::systemd",
            "universe",
            "watchlist",
        ],
    ),
    rule(
        "ops::notify",
        Application,
        &[
            "calendar",
            "config",
            "credentials",
            "execution",
            "exit",
            "ops::alerts",
            "ops::systemd",
        ],
    ),
    rule(
        "scan::service",
        Application,
        &[
            "alpaca",
            "calendar",
            "config",
            "credentials",
            "exit",
            "market_data",
            "ops::alerts",
            "scan",
            "universe",
            "watchlist",
        ],
    ),
    rule(
        "execution::venue",
        Application,
        &["alpaca", "broker", "config", "credentials", "exit"],
    ),
    rule(
        "execution::service",
        Application,
        &[
            "alpaca",
            "broker",
            "calendar",
            "config",
            "credentials",
            "execution",
            "execution::process",
            "execution::venue",
            "exit",
            "market_data",
            "ops::alerts",
            "watchlist",
        ],
    ),
    rule(
        "simulation",
        Application,
        &[
            "calendar",
            "config",
            "execution",
            "execution::service",
            "exit",
            "market_data",
            "scan",
            "watchlist",
        ],
    ),
];

/// Files that belong to no row: the crate root (module declarations only) and this check.
const UNCHECKED_FILES: &[&str] = &["lib.rs", "architecture.rs"];

/// Where ARCHITECTURE.md's copy of the table starts and ends.
const TABLE_BEGIN: &str = "<!-- layer-table:begin (generated from src/architecture.rs RULES) -->";
const TABLE_END: &str = "<!-- layer-table:end -->";

/// `text` with string and char literals, plain `//` comments and block comments blanked out
/// (newlines kept, so line numbers stay right); doc comments (`///`, `//!`) are kept.
fn code_and_docs(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            let third = chars.get(i + 2).copied();
            let fourth = chars.get(i + 3).copied();
            let doc = third == Some('!') || (third == Some('/') && fourth != Some('/'));
            while i < chars.len() && chars[i] != '\n' {
                out.push(if doc { chars[i] } else { ' ' });
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            continue;
        }
        let starts_token = i == 0 || !is_ident(chars[i - 1]);
        // Raw strings: r"…", r#"…"#, br"…" (the b is copied as an ordinary character).
        if c == 'r' && starts_token || c == 'r' && i > 0 && chars[i - 1] == 'b' {
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                let hashes = j - i - 1;
                out.extend(chars[i..=j].iter().map(|&c| blank(c)));
                i = j + 1;
                while i < chars.len() {
                    let closes =
                        chars[i] == '"' && (1..=hashes).all(|h| chars.get(i + h) == Some(&'#'));
                    if closes {
                        for _ in 0..=hashes {
                            out.push(' ');
                        }
                        i += hashes + 1;
                        break;
                    }
                    out.push(blank(chars[i]));
                    i += 1;
                }
                continue;
            }
        }
        if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() {
                match chars[i] {
                    '\\' => {
                        out.push(' ');
                        if let Some(&escaped) = chars.get(i + 1) {
                            out.push(blank(escaped));
                        }
                        i += 2;
                    }
                    '"' => {
                        out.push(' ');
                        i += 1;
                        break;
                    }
                    other => {
                        out.push(blank(other));
                        i += 1;
                    }
                }
            }
            continue;
        }
        if c == '\'' {
            // A char literal ('x', '\n', '\u{1F600}'); anything else is a lifetime or label.
            let end = if next == Some('\\') {
                (i + 3..chars.len()).find(|&k| chars[k] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                for _ in i..=end {
                    out.push(' ');
                }
                i = end + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// One `crate::…` path found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CratePath {
    line: usize,
    segments: Vec<String>,
}

impl CratePath {
    fn text(&self) -> String {
        format!("crate::{}", self.segments.join("::"))
    }
}

/// Every `crate::` path in `code` (already passed through [`code_and_docs`]), use trees
/// expanded: `crate::{a, b::{c, self}}` gives `a`, `b::c` and `b`.
fn crate_paths(code: &str) -> Vec<CratePath> {
    const CRATE: &[char] = &['c', 'r', 'a', 't', 'e', ':', ':'];
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(at) = (i..chars.len()).find(|&k| chars[k..].starts_with(CRATE)) {
        i = at + CRATE.len();
        let preceded_by_ident = at > 0 && {
            let p = chars[at - 1];
            p.is_alphanumeric() || p == '_' || p == '$'
        };
        if preceded_by_ident {
            continue;
        }
        let line = chars[..at].iter().filter(|&&c| c == '\n').count() + 1;
        let mut parser = TreeParser { chars: &chars, i };
        let mut paths = Vec::new();
        parser.tree(&mut Vec::new(), &mut paths);
        i = parser.i.max(i);
        found.extend(
            paths
                .into_iter()
                .filter(|segments| !segments.is_empty())
                .map(|segments| CratePath { line, segments }),
        );
    }
    found
}

/// A recursive-descent reader of one use tree (or inline path) after `crate::`.
struct TreeParser<'a> {
    chars: &'a [char],
    i: usize,
}

impl TreeParser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }

    fn ident(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.i += 1;
        }
        (self.i > start).then(|| self.chars[start..self.i].iter().collect())
    }

    fn double_colon(&mut self) -> bool {
        if self.peek() == Some(':') && self.chars.get(self.i + 1) == Some(&':') {
            self.i += 2;
            true
        } else {
            false
        }
    }

    /// Read a tree whose path so far is `prefix`; push every complete path to `out`.
    fn tree(&mut self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match self.peek() {
            Some('{') => {
                self.i += 1;
                loop {
                    self.skip_space();
                    match self.peek() {
                        Some('}') => {
                            self.i += 1;
                            return;
                        }
                        Some(',') => self.i += 1,
                        None => return,
                        _ => {
                            let before = self.i;
                            self.tree(&mut prefix.clone(), out);
                            self.skip_space();
                            // `name as alias`
                            let mark = self.i;
                            if self.ident().as_deref() == Some("as") {
                                self.skip_space();
                                self.ident();
                            } else {
                                self.i = mark;
                            }
                            if self.i == before {
                                // Not a tree: step over it rather than loop forever.
                                self.i += 1;
                            }
                        }
                    }
                }
            }
            Some('*') => {
                self.i += 1;
                out.push(prefix.clone());
            }
            _ => match self.ident() {
                Some(segment) if segment == "self" => out.push(prefix.clone()),
                Some(segment) => {
                    prefix.push(segment);
                    let mark = self.i;
                    if self.double_colon()
                        && matches!(self.peek(), Some(c) if c == '{' || c == '*' || c.is_alphanumeric() || c == '_')
                    {
                        self.tree(prefix, out);
                    } else {
                        self.i = mark;
                        out.push(prefix.clone());
                    }
                }
                None => out.push(prefix.clone()),
            },
        }
    }
}

/// The module path of a file under `src/`: `scan/service.rs` → `scan::service`,
/// `scan/mod.rs` → `scan`.
fn module_of(relative: &std::path::Path) -> Vec<String> {
    let mut segments: Vec<String> = relative
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = segments.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" {
            segments.push(stem.to_string());
        }
    }
    segments
}

/// The row a module path belongs to: the longest row module containing it.
fn rule_for(segments: &[String]) -> Option<&'static Rule> {
    RULES
        .iter()
        .filter(|r| {
            let parts: Vec<&str> = r.module.split("::").collect();
            parts.len() <= segments.len() && parts.iter().zip(segments).all(|(a, b)| *a == b)
        })
        .max_by_key(|r| r.module.split("::").count())
}

fn rule_named(module: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.module == module)
}

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// What a walk over `src/` found.
#[derive(Debug, Default)]
struct Walk {
    /// Every import that breaks the table, one line each naming the file, the import and the
    /// rule broken.
    problems: Vec<String>,
    /// Imports that leave their own module, as (from, to): the edges the table allows.
    edges: std::collections::BTreeSet<(&'static str, &'static str)>,
}

/// Check every `crate::` path under `src` against the table.
fn walk(src: &std::path::Path) -> Walk {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut edges = std::collections::BTreeSet::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap_or(&file);
        let shown = format!("src/{}", relative.display());
        if relative.starts_with("bin")
            || UNCHECKED_FILES.contains(&relative.to_string_lossy().as_ref())
        {
            continue;
        }
        let module = module_of(relative);
        let Some(own) = rule_for(&module) else {
            problems.push(format!(
                "{shown}: module `{}` has no row in the layer table; add one to RULES in \
                 src/architecture.rs and to ARCHITECTURE.md",
                module.join("::")
            ));
            continue;
        };
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("cannot read {shown}: {e}"));
        for path in crate_paths(&code_and_docs(&text)) {
            let Some(target) = rule_for(&path.segments) else {
                problems.push(format!(
                    "{shown}:{}: `{}` names no module of the layer table",
                    path.line,
                    path.text()
                ));
                continue;
            };
            if target.module == own.module {
                continue;
            }
            if own.may_import.contains(&target.module) {
                edges.insert((own.module, target.module));
                continue;
            }
            let allowed = if own.may_import.is_empty() {
                "nothing of avwap".to_string()
            } else {
                own.may_import.join(", ")
            };
            problems.push(format!(
                "{shown}:{}: `{}` breaks the layering: `{}` ({}) may not import `{}` ({}); \
                 `{}` may import only: {allowed}. See ARCHITECTURE.md.",
                path.line,
                path.text(),
                own.module,
                own.layer.name(),
                target.module,
                target.layer.name(),
                own.module,
            ));
        }
    }
    Walk { problems, edges }
}

/// The table as ARCHITECTURE.md shows it.
fn render_table() -> String {
    let mut rows: Vec<&Rule> = RULES.iter().collect();
    rows.sort_by_key(|r| (r.layer, r.module));
    let mut out = String::from("| layer | module | may import |\n|---|---|---|\n");
    for r in rows {
        let allowed = if r.may_import.is_empty() {
            "—".to_string()
        } else {
            r.may_import
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| {} | `{}` | {allowed} |\n",
            r.layer.name(),
            r.module
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn paths_in(text: &str) -> Vec<String> {
        crate_paths(&code_and_docs(text))
            .iter()
            .map(CratePath::text)
            .collect()
    }

    #[test]
    fn every_crate_import_follows_the_layer_table() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let walk = walk(&src);
        assert!(
            walk.problems.is_empty(),
            "{} import(s) break the layer table:\n{}",
            walk.problems.len(),
            walk.problems.join("\n")
        );
        // Not vacuous: the walk saw the imports the crate is built on.
        for edge in [
            ("scan::service", "alpaca"),
            ("execution::service", "execution::venue"),
            ("alpaca", "credentials"),
            ("simulation", "scan"),
        ] {
            assert!(
                walk.edges.contains(&edge),
                "{edge:?} not seen: {:?}",
                walk.edges
            );
        }
    }

    #[test]
    fn the_table_is_layered_and_acyclic() {
        for (i, r) in RULES.iter().enumerate() {
            assert!(
                RULES[..i].iter().all(|other| other.module != r.module),
                "`{}` has two rows",
                r.module
            );
            for m in r.may_import {
                let target = rule_named(m)
                    .unwrap_or_else(|| panic!("`{}` may import `{m}`, which has no row", r.module));
                assert!(
                    target.layer <= r.layer,
                    "`{}` ({}) may import `{m}` ({}): a higher layer",
                    r.module,
                    r.layer.name(),
                    target.layer.name()
                );
            }
        }
        // Within a layer, imports must not go round in a circle.
        fn visit(module: &str, stack: &mut Vec<&'static str>) {
            let r = rule_named(module).expect("checked above");
            if let Some(start) = stack.iter().position(|m| *m == r.module) {
                panic!(
                    "the layer table has a cycle: {} -> {}",
                    stack[start..].join(" -> "),
                    r.module
                );
            }
            stack.push(r.module);
            for m in r.may_import {
                visit(m, stack);
            }
            stack.pop();
        }
        for r in RULES {
            visit(r.module, &mut Vec::new());
        }
    }

    #[test]
    fn architecture_md_shows_this_table() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md");
        let doc = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let shown = doc
            .split_once(TABLE_BEGIN)
            .and_then(|(_, rest)| rest.split_once(TABLE_END))
            .map(|(table, _)| table.trim())
            .unwrap_or_else(|| {
                panic!("ARCHITECTURE.md has no table between {TABLE_BEGIN} and {TABLE_END}")
            });
        let expected = render_table();
        assert_eq!(
            shown,
            expected.trim(),
            "ARCHITECTURE.md's layer table differs from RULES in src/architecture.rs; \
             replace it with:\n{expected}"
        );
    }

    #[test]
    fn every_row_holds_a_module_that_exists() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for r in RULES {
            let relative: std::path::PathBuf = r.module.split("::").collect();
            let file = src.join(&relative).with_extension("rs");
            let dir = src.join(&relative).join("mod.rs");
            assert!(
                file.exists() || dir.exists(),
                "the layer table names `{}`, but neither {} nor {} exists",
                r.module,
                file.display(),
                dir.display()
            );
        }
    }

    #[test]
    fn use_trees_are_expanded() {
        assert_eq!(
            paths_in("use crate::{calendar::{self, Clock}, exit::ExitCode as Code, ops::*};"),
            [
                "crate::calendar",
                "crate::calendar::Clock",
                "crate::exit::ExitCode",
                "crate::ops"
            ]
        );
        assert_eq!(
            paths_in(
                "use crate::scan::{\n    config::ScanConfig,\n    run::{run_scan, ScanPlan},\n};"
            ),
            [
                "crate::scan::config::ScanConfig",
                "crate::scan::run::run_scan",
                "crate::scan::run::ScanPlan"
            ]
        );
    }

    #[test]
    fn inline_paths_and_doc_links_count_strings_and_comments_do_not() {
        let text = r##"
            //! See [`crate::alpaca::access`].
            /// Uses [`crate::execution::service::run`]
            fn f() -> crate::config::Config {
                let _ = crate::calendar::ny_date(now);
                let _ = "crate::ops::alerts";
                let _ = r#"crate::ops::check "quoted""#;
                let _ = '"'; let _: &'static str = "x";
                // crate::simulation in a plain comment
                /* crate::gate /* nested */ crate::cli */
                $crate::exit::ExitCode::Ok;
                mycrate::scan::run();
                crate::market_data::BarStore::<u8>::open();
            }
        "##;
        assert_eq!(
            paths_in(text),
            [
                "crate::alpaca::access",
                "crate::execution::service::run",
                "crate::config::Config",
                "crate::calendar::ny_date",
                "crate::market_data::BarStore",
            ]
        );
    }

    #[test]
    fn line_numbers_survive_blanked_strings_and_comments() {
        let text = "let a = \"x\ny\";\n/* one\ntwo */\nuse crate::gate;\n";
        let found = crate_paths(&code_and_docs(text));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 5);
    }

    #[test]
    fn files_map_to_the_longest_row() {
        let of = |p: &str| rule_for(&module_of(Path::new(p))).map(|r| r.module);
        assert_eq!(of("scan/service.rs"), Some("scan::service"));
        assert_eq!(of("scan/select/tests.rs"), Some("scan"));
        assert_eq!(of("scan/mod.rs"), Some("scan"));
        assert_eq!(of("execution/process/lock.rs"), Some("execution::process"));
        assert_eq!(of("ops/mod.rs"), Some("ops"));
        assert_eq!(of("nowhere.rs"), None);
    }

    #[test]
    fn a_forbidden_import_is_reported_with_file_import_and_rule() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path();
        std::fs::create_dir_all(src.join("calendar")).unwrap();
        std::fs::write(
            src.join("calendar/clock.rs"),
            "//! The clock.\n\nuse crate::execution::service;\n",
        )
        .unwrap();
        let problems = walk(src).problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        let p = &problems[0];
        assert!(
            p.starts_with("src/calendar/clock.rs:3: `crate::execution::service`"),
            "{p}"
        );
        assert!(
            p.contains("`calendar` (foundation) may not import `execution::service` (application)"),
            "{p}"
        );
        assert!(p.contains("may import only: nothing of avwap"), "{p}");
    }
}

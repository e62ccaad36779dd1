//! Class-share tickers: iShares writes NYSE class shares without the dot (`BRKB`), brokers
//! (Alpaca) use the dotted form (`BRK.B`).
//!
//! There is no safe general rule for the undotted form: Nasdaq class shares carry the class letter
//! *without* a dot as their real symbol (`FOXA`, `NWSA`, `GOOGL`, `LBRDA`, `RUSHB`, `KELYA`), so
//! "split off a trailing A/B" would break them. We therefore use
//!
//! 1. a small, explicit table of known NYSE class shares that iShares writes without the dot
//!    ([`KNOWN_CLASS_SHARES`]), extendable by the caller through
//!    [`ParseOptions::extra_remaps`](super::ParseOptions), and
//! 2. one unambiguous rule: a ticker written with an explicit separator between a 1–5 letter base
//!    and a single class letter — `BRK B`, `BRK/B`, `BRK-B` (Yahoo style) — becomes `BRK.B`.
//!
//! Anything else is left as written.

/// Known undotted class-share tickers (as iShares writes them) and their broker symbols.
///
/// The first eight are the ones seen in the predecessor's IWV snapshot (reference
/// upstream-scanner.md §1.3); the rest are other NYSE-listed dual-class Russell 3000 members whose
/// undotted form is not itself a listed symbol. Check new entries against the broker's asset list.
pub const KNOWN_CLASS_SHARES: &[(&str, &str)] = &[
    ("BRKA", "BRK.A"),
    ("BRKB", "BRK.B"),
    ("BFA", "BF.A"),
    ("BFB", "BF.B"),
    ("HEIA", "HEI.A"),
    ("LENB", "LEN.B"),
    ("MOGA", "MOG.A"),
    ("MOGB", "MOG.B"),
    ("GEFB", "GEF.B"),
    ("CWENA", "CWEN.A"),
    ("UHALB", "UHAL.B"),
    ("CRDA", "CRD.A"),
    ("CRDB", "CRD.B"),
    ("BIOB", "BIO.B"),
    ("GTNA", "GTN.A"),
];

/// The broker symbol for `ticker` (already trimmed and upper-cased), or `None` when it stays as
/// written. `extra` entries take precedence over the built-in table.
pub fn remap_class_share(ticker: &str, extra: &[(String, String)]) -> Option<String> {
    if let Some((_, to)) = extra.iter().find(|(from, _)| from == ticker) {
        return (to != ticker).then(|| to.clone());
    }
    if let Some((_, to)) = KNOWN_CLASS_SHARES.iter().find(|(from, _)| *from == ticker) {
        return Some((*to).to_string());
    }
    separator_rule(ticker)
}

/// `BRK B` / `BRK/B` / `BRK-B` → `BRK.B`: base of 1–5 letters, one separator, one class letter.
fn separator_rule(ticker: &str) -> Option<String> {
    let bytes = ticker.as_bytes();
    if bytes.len() < 3 {
        return None;
    }
    let sep = bytes.len() - 2;
    let base = &ticker[..sep];
    let class = bytes[bytes.len() - 1];
    let separator_ok = matches!(bytes[sep], b' ' | b'/' | b'-');
    let base_ok = (1..=5).contains(&base.len()) && base.bytes().all(|b| b.is_ascii_uppercase());
    (separator_ok && base_ok && class.is_ascii_uppercase())
        .then(|| format!("{base}.{}", class as char))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_rule() {
        assert_eq!(remap_class_share("BRKB", &[]).as_deref(), Some("BRK.B"));
        assert_eq!(remap_class_share("CWENA", &[]).as_deref(), Some("CWEN.A"));
        assert_eq!(remap_class_share("BRK B", &[]).as_deref(), Some("BRK.B"));
        assert_eq!(remap_class_share("BF/B", &[]).as_deref(), Some("BF.B"));
        assert_eq!(remap_class_share("HEI-A", &[]).as_deref(), Some("HEI.A"));
        // Nasdaq class shares are real undotted symbols and must stay as written.
        for kept in ["FOXA", "NWSA", "GOOGL", "LBRDA", "AAPL", "BRK.B", "A", "AB"] {
            assert_eq!(remap_class_share(kept, &[]), None, "{kept}");
        }
    }

    #[test]
    fn extra_entries_win() {
        let extra = vec![
            ("XYZA".to_string(), "XYZ.A".to_string()),
            ("BRKB".to_string(), "BRKB".to_string()),
        ];
        assert_eq!(remap_class_share("XYZA", &extra).as_deref(), Some("XYZ.A"));
        assert_eq!(remap_class_share("BRKB", &extra), None);
    }

    #[test]
    fn table_targets_are_valid_symbols() {
        for (from, to) in KNOWN_CLASS_SHARES {
            assert!(crate::watchlist::is_valid_symbol(to), "{from} -> {to}");
            assert!(!from.contains('.'));
        }
    }
}

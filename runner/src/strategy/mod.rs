//! Anonymization strategies: deterministic, keyed, localised replacements.
//!
//! Every replacement derives from HMAC-SHA256(secret, original value) and
//! nothing else — not the row, not the table — so re-running is idempotent
//! and one person's value becomes the same pseudonym in every table. The
//! secret is `LETHE_HASH_KEY`, or a key the ledger generates once per
//! target; it never comes from a job file. NULL stays NULL (SPEC §6.15).

mod words;

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use lethe_connector::{ColumnKind, Value};
use sha2::Sha256;

use crate::spec::model::{Locale, Strategy};
pub use words::{Words, words};

/// The text `redact` writes.
pub const REDACTED: &str = "[redacted]";
/// The domain of `hash-email` addresses (`.invalid` is reserved: RFC 2606).
pub const EMAIL_DOMAIN: &str = "anonymized.invalid";
/// Hex digits of the hash that `hash` keeps at least, so distinct values stay distinct.
const MIN_HASH_HEX: usize = 16;

/// The secret replacements are keyed with.
#[derive(Clone)]
pub struct HashKey([u8; 32]);

impl HashKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A key from arbitrary text (`LETHE_HASH_KEY`): SHA-256 of it.
    pub fn from_secret(secret: &str) -> Self {
        use sha2::Digest;
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// HMAC-SHA256 of a value.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut m =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(data);
        m.finalize().into_bytes().into()
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(..)")
    }
}

/// What a strategy needs to know of the column it writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Column {
    pub kind: Option<ColumnKind>,
    pub max_length: Option<u32>,
}

/// Why a value cannot be replaced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategyError {
    #[error("`{strategy}` writes up to {needed} characters, but the column holds at most {max}")]
    TooLong {
        strategy: &'static str,
        needed: usize,
        max: u32,
    },
    #[error("`{strategy}` needs a date or time, but the value is not one")]
    NotADate { strategy: &'static str },
    #[error("`{strategy}` writes text, but the column holds {kind}")]
    WrongKind {
        strategy: &'static str,
        kind: &'static str,
    },
}

/// Computes replacements.
#[derive(Debug, Clone)]
pub struct Strategist {
    key: HashKey,
    locale: Locale,
}

impl Strategist {
    pub fn new(key: HashKey, locale: Locale) -> Self {
        Self { key, locale }
    }

    pub fn locale(&self) -> Locale {
        self.locale
    }

    /// The HMAC of a value: the root every replacement derives from, and
    /// what the trace scan compares.
    pub fn mac(&self, v: &Value) -> [u8; 32] {
        self.key.mac(&canonical(v))
    }

    /// The HMAC of a normalised text (the trace scan's needles).
    pub fn mac_text(&self, text: &str) -> [u8; 32] {
        self.key.mac(text.as_bytes())
    }

    /// The HMAC of a value under a purpose's tag, so it never equals a MAC
    /// made for another purpose (a replacement, a needle).
    pub fn mac_tagged(&self, tag: &str, v: &Value) -> [u8; 32] {
        let mut data = Vec::with_capacity(tag.len() + 16);
        data.extend_from_slice(tag.as_bytes());
        data.push(0);
        data.extend_from_slice(&canonical(v));
        self.key.mac(&data)
    }

    /// The replacement of `original` by `strategy` for a column.
    pub fn replace(
        &self,
        strategy: Strategy,
        original: &Value,
        col: Column,
    ) -> Result<Value, StrategyError> {
        if original.is_null() {
            return Ok(Value::Null);
        }
        let name = strategy.as_str();
        let text = |s: String| -> Result<Value, StrategyError> {
            if let Some(kind) = col.kind
                && !matches!(kind, ColumnKind::Text | ColumnKind::Other)
            {
                return Err(StrategyError::WrongKind {
                    strategy: name,
                    kind: kind_name(kind),
                });
            }
            if let Some(max) = col.max_length {
                let n = s.chars().count();
                if n > max as usize {
                    return Err(StrategyError::TooLong {
                        strategy: name,
                        needed: n,
                        max,
                    });
                }
            }
            Ok(Value::Text(s))
        };
        let h = self.mac(original);
        let w = words(self.locale);
        match strategy {
            Strategy::Null => Ok(Value::Null),
            Strategy::Keep => Ok(original.clone()),
            Strategy::Redact => text(REDACTED.to_owned()),
            Strategy::FakeFirstName => text(pick(w.first_names, &h, 0).to_owned()),
            Strategy::FakeLastName => text(pick(w.last_names, &h, 8).to_owned()),
            Strategy::FakeName => text(format!(
                "{} {}",
                pick(w.first_names, &h, 0),
                pick(w.last_names, &h, 8)
            )),
            Strategy::FakePhone => text(phone(pick(w.phones, &h, 0), &h)),
            Strategy::FakeStreet => text(street(w, &h)),
            Strategy::FakeCity => text(pick(w.cities, &h, 16).to_owned()),
            Strategy::Hash => {
                let hex = hex::encode(h);
                let keep = match col.max_length {
                    Some(max) if (max as usize) < hex.len() => {
                        if (max as usize) < MIN_HASH_HEX {
                            return Err(StrategyError::TooLong {
                                strategy: name,
                                needed: MIN_HASH_HEX,
                                max,
                            });
                        }
                        max as usize
                    }
                    _ => hex.len(),
                };
                text(hex[..keep].to_owned())
            }
            Strategy::HashEmail => text(format!("{}@{EMAIL_DOMAIN}", &hex::encode(h)[..20])),
            Strategy::TruncateYear | Strategy::TruncateMonth => {
                truncate(original, strategy == Strategy::TruncateMonth)
                    .ok_or(StrategyError::NotADate { strategy: name })
            }
        }
    }

    /// The longest text a strategy can write in this locale, for checking a
    /// column's length before anything runs (`None`: not text, or unbounded).
    pub fn max_len(&self, strategy: Strategy) -> Option<usize> {
        let w = words(self.locale);
        let longest = |xs: &[&str]| xs.iter().map(|s| s.chars().count()).max().unwrap_or(0);
        Some(match strategy {
            Strategy::Redact => REDACTED.len(),
            Strategy::FakeFirstName => longest(w.first_names),
            Strategy::FakeLastName => longest(w.last_names),
            Strategy::FakeName => longest(w.first_names) + 1 + longest(w.last_names),
            Strategy::FakePhone => longest(w.phones),
            Strategy::FakeStreet => longest(w.street_kinds) + longest(w.street_names) + 6,
            Strategy::FakeCity => longest(w.cities),
            Strategy::Hash => MIN_HASH_HEX,
            Strategy::HashEmail => 21 + EMAIL_DOMAIN.len(),
            _ => return None,
        })
    }

    /// A variant for a unique column whose first choice is already taken:
    /// still derived from the original and the attempt number only.
    pub fn disambiguate(&self, replacement: &Value, attempt: u32) -> Value {
        match replacement {
            Value::Text(s) => {
                let h = self.key.mac(format!("{attempt}\u{0}{s}").as_bytes());
                let suffix = &hex::encode(h)[..6];
                match s.split_once('@') {
                    Some((local, domain)) => Value::Text(format!("{local}.{suffix}@{domain}")),
                    None => Value::Text(format!("{s}-{suffix}")),
                }
            }
            other => other.clone(),
        }
    }
}

fn kind_name(k: ColumnKind) -> &'static str {
    match k {
        ColumnKind::Text => "text",
        ColumnKind::Integer => "integers",
        ColumnKind::Decimal => "decimals",
        ColumnKind::Float => "numbers",
        ColumnKind::Boolean => "booleans",
        ColumnKind::Date => "dates",
        ColumnKind::Timestamp => "timestamps",
        ColumnKind::Bytes => "bytes",
        ColumnKind::Other => "values",
    }
}

/// The bytes a value is keyed by: its type and its exact content, so that
/// `Asa@x.se` and `asa@x.se` differ (SPEC §6.15), and 1 differs from "1".
pub fn canonical(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    match v {
        Value::Null => out.push(b'n'),
        Value::Bool(b) => {
            out.push(b'b');
            out.push(u8::from(*b));
        }
        Value::Int(i) => {
            out.push(b'i');
            out.extend_from_slice(i.to_string().as_bytes());
        }
        Value::Float(f) => {
            out.push(b'f');
            out.extend_from_slice(f.to_string().as_bytes());
        }
        Value::Text(s) => {
            out.push(b't');
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(b'x');
            out.extend_from_slice(b);
        }
    }
    out
}

fn word(h: &[u8; 32], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[at..at + 8]);
    u64::from_le_bytes(b)
}

fn pick<'a>(xs: &'a [&'a str], h: &[u8; 32], at: usize) -> &'a str {
    if xs.is_empty() {
        return "";
    }
    xs[(word(h, at) % xs.len() as u64) as usize]
}

fn phone(format: &str, h: &[u8; 32]) -> String {
    let mut n = word(h, 16) ^ word(h, 24);
    format
        .chars()
        .map(|c| match c {
            '#' => {
                let d = (n % 10) as u8;
                n /= 10;
                char::from(b'0' + d)
            }
            '^' => {
                let d = (n % 9) as u8 + 1;
                n /= 9;
                char::from(b'0' + d)
            }
            other => other,
        })
        .collect()
}

fn street(w: &Words, h: &[u8; 32]) -> String {
    let kind = pick(w.street_kinds, h, 0);
    let name = pick(w.street_names, h, 8);
    let number = word(h, 24) % 240 + 1;
    if w.street_joined {
        format!("{name}{kind} {number}")
    } else if w.street_before {
        format!("{kind} {name}, {number}")
    } else {
        format!("{number} {name} {kind}")
    }
}

/// `1985-06-17…` → `1985-01-01…` (or `1985-06-01…`), keeping the value's form:
/// the separator, a time part (zeroed) and a zone suffix stay as written.
fn truncate(v: &Value, keep_month: bool) -> Option<Value> {
    match v {
        Value::Text(s) => {
            let b = s.as_bytes();
            let digits = |r: std::ops::Range<usize>| {
                b.get(r.clone())
                    .is_some_and(|x| x.iter().all(u8::is_ascii_digit))
            };
            if b.len() < 10
                || !digits(0..4)
                || b[4] != b'-'
                || !digits(5..7)
                || b[7] != b'-'
                || !digits(8..10)
            {
                return None;
            }
            let mut out = String::with_capacity(s.len());
            out.push_str(&s[..5]);
            out.push_str(if keep_month { &s[5..7] } else { "01" });
            out.push_str("-01");
            // Zero the time of day; keep the zone suffix and separators.
            let rest = &s[10..];
            let mut zone_started = false;
            for (i, c) in rest.char_indices() {
                if i > 0 && (c == 'Z' || c == 'z' || ((c == '+' || c == '-') && i > 1)) {
                    zone_started = true;
                }
                out.push(if !zone_started && c.is_ascii_digit() {
                    '0'
                } else {
                    c
                });
            }
            Some(Value::Text(out))
        }
        Value::Int(secs) => {
            let ts = jiff::Timestamp::from_second(*secs).ok()?;
            let dt = ts.to_zoned_datetime(jiff::tz::TimeZone::UTC);
            let month = if keep_month { dt.month() } else { 1 };
            let start = jiff::civil::date(dt.year(), month, 1)
                .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .ok()?;
            Some(Value::Int(start.timestamp().as_second()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(locale: Locale) -> Strategist {
        Strategist::new(HashKey::from_secret("test key"), locale)
    }

    fn t(v: &str) -> Value {
        Value::Text(v.to_owned())
    }

    #[test]
    fn null_stays_null() {
        for strategy in [
            Strategy::FakeName,
            Strategy::Hash,
            Strategy::Redact,
            Strategy::TruncateYear,
        ] {
            assert_eq!(
                s(Locale::En).replace(strategy, &Value::Null, Column::default()),
                Ok(Value::Null)
            );
        }
    }

    #[test]
    fn deterministic_and_case_sensitive() {
        let a = s(Locale::SvSe)
            .replace(Strategy::HashEmail, &t("Asa@x.se"), Column::default())
            .unwrap();
        let b = s(Locale::SvSe)
            .replace(Strategy::HashEmail, &t("Asa@x.se"), Column::default())
            .unwrap();
        let c = s(Locale::SvSe)
            .replace(Strategy::HashEmail, &t("asa@x.se"), Column::default())
            .unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.as_text().unwrap().ends_with("@anonymized.invalid"));
        let other_key = Strategist::new(HashKey::from_secret("other"), Locale::SvSe);
        assert_ne!(
            other_key
                .replace(Strategy::HashEmail, &t("Asa@x.se"), Column::default())
                .unwrap(),
            a
        );
    }

    #[test]
    fn localised_fakes() {
        let v = s(Locale::RuRu)
            .replace(Strategy::FakeName, &t("Ivan"), Column::default())
            .unwrap();
        assert!(
            v.as_text()
                .unwrap()
                .chars()
                .any(|c| ('А'..='я').contains(&c)),
            "{v}"
        );
        let p = s(Locale::SvSe)
            .replace(Strategy::FakePhone, &t("070-123 45 67"), Column::default())
            .unwrap();
        assert!(p.as_text().unwrap().starts_with('0'), "{p}");
        let st = s(Locale::PtBr)
            .replace(Strategy::FakeStreet, &t("Rua X"), Column::default())
            .unwrap();
        assert!(st.as_text().unwrap().contains(", "), "{st}");
    }

    #[test]
    fn truncation_keeps_the_form() {
        let st = s(Locale::En);
        let y = |v: &str| {
            st.replace(Strategy::TruncateYear, &t(v), Column::default())
                .unwrap()
        };
        assert_eq!(y("1985-06-17"), t("1985-01-01"));
        assert_eq!(y("1985-06-17 10:11:12"), t("1985-01-01 00:00:00"));
        assert_eq!(y("1985-06-17T10:11:12Z"), t("1985-01-01T00:00:00Z"));
        assert_eq!(
            y("1985-06-17T10:11:12.5+02:00"),
            t("1985-01-01T00:00:00.0+02:00")
        );
        assert_eq!(
            st.replace(Strategy::TruncateMonth, &t("1985-06-17"), Column::default())
                .unwrap(),
            t("1985-06-01")
        );
        assert_eq!(
            st.replace(
                Strategy::TruncateYear,
                &Value::Int(487_814_400),
                Column::default()
            )
            .unwrap(),
            Value::Int(473_385_600)
        );
        assert!(
            st.replace(Strategy::TruncateYear, &t("17/06/1985"), Column::default())
                .is_err()
        );
    }

    #[test]
    fn column_limits_are_errors_not_truncation() {
        let st = s(Locale::SvSe);
        let narrow = Column {
            kind: Some(ColumnKind::Text),
            max_length: Some(5),
        };
        assert!(matches!(
            st.replace(Strategy::FakePhone, &t("070-123 45 67"), narrow),
            Err(StrategyError::TooLong { .. })
        ));
        let numeric = Column {
            kind: Some(ColumnKind::Integer),
            max_length: None,
        };
        assert!(matches!(
            st.replace(Strategy::FakeName, &t("x"), numeric),
            Err(StrategyError::WrongKind { .. })
        ));
        let hash20 = Column {
            kind: Some(ColumnKind::Text),
            max_length: Some(20),
        };
        assert_eq!(
            st.replace(Strategy::Hash, &t("x"), hash20)
                .unwrap()
                .as_text()
                .unwrap()
                .len(),
            20
        );
    }

    #[test]
    fn distinct_originals_stay_distinct_for_unique_strategies() {
        let st = s(Locale::En);
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000 {
            let v = st
                .replace(
                    Strategy::HashEmail,
                    &t(&format!("user{i}@x.se")),
                    Column::default(),
                )
                .unwrap();
            assert!(seen.insert(v.render()), "collision at {i}");
        }
        let a = st.disambiguate(&t("abc@anonymized.invalid"), 1);
        let b = st.disambiguate(&t("abc@anonymized.invalid"), 2);
        assert_ne!(a, b);
        assert!(a.as_text().unwrap().ends_with("@anonymized.invalid"));
    }
}

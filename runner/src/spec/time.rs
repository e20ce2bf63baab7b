//! Dates in conditions, periods, and how both turn into instants.
//!
//! A job writes dates as ISO days (`2017-12-31`), ISO times
//! (`2017-12-31T23:59:59Z`, or without a zone: the system's time zone) or
//! periods before the plan's clock (`-90d`, `-18mo`, `-3y`). The planner turns
//! every one into an instant, so connectors only ever compare instants.
//!
//! A day compares by the calendar (SPEC §6.1): `after: D` holds from the start
//! of `D+1`, `before: D` until the start of `D`, `on_or_before: D` until the
//! start of `D+1`, `on_or_after: D` from the start of `D` — days start at
//! midnight in the system model's `timezone` (UTC by default).

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The regular expression the schema uses for date values.
pub const DATE_PATTERN: &str = r"^(-[0-9]+(h|d|w|mo|y)|[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?)?)$";

/// A unit of a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

impl Unit {
    fn suffix(self) -> &'static str {
        match self {
            Unit::Hours => "h",
            Unit::Days => "d",
            Unit::Weeks => "w",
            Unit::Months => "mo",
            Unit::Years => "y",
        }
    }
}

/// A length of calendar time: `90d`, `18mo`, `3y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    pub amount: u32,
    pub unit: Unit,
}

impl Period {
    fn span(self) -> jiff::Span {
        let n = i64::from(self.amount);
        match self.unit {
            Unit::Hours => n.hours(),
            Unit::Days => n.days(),
            Unit::Weeks => n.weeks(),
            Unit::Months => n.months(),
            Unit::Years => n.years(),
        }
    }

    /// The instant this period before `clock`, by the calendar of `tz`.
    pub fn before(self, clock: Timestamp, tz: &TimeZone) -> Timestamp {
        let zoned = clock.to_zoned_datetime(tz.clone());
        zoned
            .checked_sub(self.span())
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MIN)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}

fn parse_period(s: &str) -> Option<Period> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let amount = s[..digits].parse().ok()?;
    let unit = match &s[digits..] {
        "h" => Unit::Hours,
        "d" => Unit::Days,
        "w" => Unit::Weeks,
        "mo" => Unit::Months,
        "y" => Unit::Years,
        _ => return None,
    };
    Some(Period { amount, unit })
}

/// A date or time as a job writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DateValue {
    /// A calendar day: compares by the day (SPEC §6.1).
    Day(Date),
    /// An instant with an explicit zone.
    Instant(Timestamp),
    /// A wall-clock time without a zone: in the system model's time zone.
    Local(DateTime),
    /// A period before the plan's clock.
    Ago(Period),
}

/// Why a date could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a date: {why}")]
pub struct DateError {
    pub text: String,
    pub why: String,
}

impl FromStr for DateValue {
    type Err = DateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| DateError {
            text: s.to_owned(),
            why: why.to_owned(),
        };
        if let Some(rest) = s.strip_prefix('-') {
            return parse_period(rest).map(DateValue::Ago).ok_or_else(|| {
                err("a relative date is a minus sign, a number and a unit: -90d, -2w, -18mo, -3y, -12h")
            });
        }
        if s.len() == 10 {
            return s
                .parse::<Date>()
                .map(DateValue::Day)
                .map_err(|_| err("expected a calendar day such as 2017-12-31"));
        }
        let has_zone = {
            let t = &s[10.min(s.len())..];
            t.ends_with(['Z', 'z']) || t.contains(['+']) || t.rfind('-').is_some()
        };
        if has_zone {
            s.parse::<Timestamp>()
                .map(DateValue::Instant)
                .map_err(|_| err("expected a time such as 2017-12-31T23:59:59Z"))
        } else {
            s.parse::<DateTime>()
                .map(DateValue::Local)
                .map_err(|_| err("expected a time such as 2017-12-31T23:59:59"))
        }
    }
}

impl fmt::Display for DateValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateValue::Day(d) => write!(f, "{d}"),
            DateValue::Instant(t) => write!(f, "{t}"),
            DateValue::Local(dt) => write!(f, "{dt}"),
            DateValue::Ago(p) => write!(f, "-{p}"),
        }
    }
}

impl Serialize for DateValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DateValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for DateValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DateValue".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A calendar day (2017-12-31, compared by the day), a time (2017-12-31T23:59:59Z; without a zone, the system's time zone), or a period before the plan's clock (-90d, -2w, -18mo, -3y, -12h).",
            "type": "string",
            "pattern": DATE_PATTERN,
            "examples": ["2017-12-31", "-90d", "-3y", "2017-12-31T23:59:59Z"],
        })
    }
}

/// The comparison a temporal condition makes against an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeCmp {
    Lt,
    Le,
    Gt,
    Ge,
}

/// What turns written dates into instants: the plan's clock and the system's zone.
#[derive(Debug, Clone)]
pub struct Clock {
    pub now: Timestamp,
    pub tz: TimeZone,
}

impl Clock {
    pub fn new(now: Timestamp, tz: TimeZone) -> Self {
        Self { now, tz }
    }

    fn day_start(&self, d: Date) -> Timestamp {
        d.to_zoned_datetime(self.tz.clone())
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MAX)
    }

    /// The instant a value names (a day names its first instant).
    pub fn instant(&self, v: &DateValue) -> Timestamp {
        match v {
            DateValue::Day(d) => self.day_start(*d),
            DateValue::Instant(t) => *t,
            DateValue::Local(dt) => self.tz.to_timestamp(*dt).unwrap_or(Timestamp::MAX),
            DateValue::Ago(p) => p.before(self.now, &self.tz),
        }
    }

    fn next_day_start(&self, d: Date) -> Timestamp {
        d.tomorrow()
            .map(|t| self.day_start(t))
            .unwrap_or(Timestamp::MAX)
    }

    /// `after: v`
    pub fn after(&self, v: &DateValue) -> (TimeCmp, Timestamp) {
        match v {
            DateValue::Day(d) => (TimeCmp::Ge, self.next_day_start(*d)),
            _ => (TimeCmp::Gt, self.instant(v)),
        }
    }

    /// `before: v`
    pub fn before(&self, v: &DateValue) -> (TimeCmp, Timestamp) {
        (TimeCmp::Lt, self.instant(v))
    }

    /// `on_or_before: v`
    pub fn on_or_before(&self, v: &DateValue) -> (TimeCmp, Timestamp) {
        match v {
            DateValue::Day(d) => (TimeCmp::Lt, self.next_day_start(*d)),
            _ => (TimeCmp::Le, self.instant(v)),
        }
    }

    /// `on_or_after: v`
    pub fn on_or_after(&self, v: &DateValue) -> (TimeCmp, Timestamp) {
        (TimeCmp::Ge, self.instant(v))
    }

    /// True when `v` lies less than a year before the clock (or after it):
    /// the `recent-cutoff` warning (SPEC §6.6).
    pub fn is_recent(&self, v: &DateValue) -> bool {
        let year_ago = Period {
            amount: 1,
            unit: Unit::Years,
        }
        .before(self.now, &self.tz);
        self.instant(v) > year_ago
    }
}

/// A positive length of wall time: `500ms`, `5s`, `30m`, `48h`, `7d`, `2w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Duration {
    pub amount: u32,
    pub unit: DurationUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DurationUnit {
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
}

/// The regular expression the schema uses for durations.
pub const DURATION_PATTERN: &str = r"^[0-9]+(ms|s|m|h|d|w)$";

impl Duration {
    pub fn to_signed(self) -> SignedDuration {
        let n = i64::from(self.amount);
        match self.unit {
            DurationUnit::Milliseconds => SignedDuration::from_millis(n),
            DurationUnit::Seconds => SignedDuration::from_secs(n),
            DurationUnit::Minutes => SignedDuration::from_mins(n),
            DurationUnit::Hours => SignedDuration::from_hours(n),
            DurationUnit::Days => SignedDuration::from_hours(24 * n),
            DurationUnit::Weeks => SignedDuration::from_hours(24 * 7 * n),
        }
    }
}

impl FromStr for Duration {
    type Err = DateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DateError {
            text: s.to_owned(),
            why: "a duration is a number and a unit: 500ms, 5s, 30m, 48h, 7d, 2w".to_owned(),
        };
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err());
        }
        let amount = s[..digits].parse().map_err(|_| err())?;
        let unit = match &s[digits..] {
            "ms" => DurationUnit::Milliseconds,
            "s" => DurationUnit::Seconds,
            "m" => DurationUnit::Minutes,
            "h" => DurationUnit::Hours,
            "d" => DurationUnit::Days,
            "w" => DurationUnit::Weeks,
            _ => return Err(err()),
        };
        Ok(Duration { amount, unit })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = match self.unit {
            DurationUnit::Milliseconds => "ms",
            DurationUnit::Seconds => "s",
            DurationUnit::Minutes => "m",
            DurationUnit::Hours => "h",
            DurationUnit::Days => "d",
            DurationUnit::Weeks => "w",
        };
        write!(f, "{}{u}", self.amount)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A length of wall time: a number and a unit (s seconds, m minutes, h hours, d days, w weeks).",
            "type": "string",
            "pattern": DURATION_PATTERN,
            "examples": ["7d", "48h", "30m"],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> Clock {
        Clock::new("2026-11-25T12:00:00Z".parse().unwrap(), TimeZone::UTC)
    }

    fn dv(s: &str) -> DateValue {
        s.parse().unwrap()
    }

    #[test]
    fn parses_each_form() {
        assert!(matches!(dv("2017-12-31"), DateValue::Day(_)));
        assert!(matches!(dv("2017-12-31T23:59:59Z"), DateValue::Instant(_)));
        assert!(matches!(
            dv("2017-12-31T23:59:59+02:00"),
            DateValue::Instant(_)
        ));
        assert!(matches!(dv("2017-12-31T23:59:59"), DateValue::Local(_)));
        assert_eq!(
            dv("-18mo"),
            DateValue::Ago(Period {
                amount: 18,
                unit: Unit::Months
            })
        );
        assert!("2017-02-30".parse::<DateValue>().is_err());
        assert!("-5x".parse::<DateValue>().is_err());
        assert!("yesterday".parse::<DateValue>().is_err());
    }

    #[test]
    fn days_compare_by_the_calendar() {
        let c = clock();
        let d = dv("2017-12-31");
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(c.after(&d), (TimeCmp::Ge, t("2018-01-01T00:00:00Z")));
        assert_eq!(c.before(&d), (TimeCmp::Lt, t("2017-12-31T00:00:00Z")));
        assert_eq!(c.on_or_before(&d), (TimeCmp::Lt, t("2018-01-01T00:00:00Z")));
        assert_eq!(c.on_or_after(&d), (TimeCmp::Ge, t("2017-12-31T00:00:00Z")));
        let i = dv("2017-12-31T10:00:00Z");
        assert_eq!(c.after(&i), (TimeCmp::Gt, t("2017-12-31T10:00:00Z")));
        assert_eq!(c.on_or_before(&i), (TimeCmp::Le, t("2017-12-31T10:00:00Z")));
    }

    #[test]
    fn days_start_in_the_model_zone() {
        let c = Clock::new(
            "2026-11-25T12:00:00Z".parse().unwrap(),
            TimeZone::get("Europe/Stockholm").unwrap(),
        );
        let (_, at) = c.after(&dv("2017-12-31"));
        assert_eq!(at, "2017-12-31T23:00:00Z".parse::<Timestamp>().unwrap());
    }

    #[test]
    fn relative_periods_use_the_calendar() {
        let c = clock();
        assert_eq!(
            c.instant(&dv("-18mo")),
            "2025-05-25T12:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            c.instant(&dv("-90d")),
            "2026-08-27T12:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert!(c.is_recent(&dv("-90d")));
        assert!(!c.is_recent(&dv("-2y")));
        assert!(c.is_recent(&dv("2026-01-01")));
        assert!(!c.is_recent(&dv("2025-11-25")));
    }
}

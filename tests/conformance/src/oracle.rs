//! Random condition trees and data sets, and an evaluator of SPEC §1 and
//! §6 written without lethe's code: what the SQL a connector runs must
//! select, on any engine.
//!
//! Stored times come in the forms systems store them (a bare day, wall-clock
//! time, UTC, an offset) around the turn of 2017/2018; text in several
//! scripts, with `%` and `_`; NULLs everywhere.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use lethe::spec::condition::{Aggregate, Condition, Operand, Scalar, Test};
use lethe::spec::time::DateValue;
use proptest::prelude::*;

// ------------------------------------------------------------------ data

#[derive(Debug, Clone)]
pub struct Customer {
    pub id: i64,
    pub name: Option<String>,
    pub score: Option<i64>,
    pub seen: Option<String>,
    pub orders: Vec<Order>,
}

#[derive(Debug, Clone)]
pub struct Order {
    pub amount: Option<i64>,
    pub placed: Option<String>,
}

pub const NAMES: &[&str] = &[
    "Ana",
    "ana",
    "Åsa",
    "50%_off",
    "x_y",
    "Ω",
    "Maria Svensson",
    "",
];

/// Stored times around the turn of 2017/2018, in the forms systems store.
pub fn stamp() -> impl Strategy<Value = String> {
    let days = prop_oneof![
        Just("2017-12-30"),
        Just("2017-12-31"),
        Just("2018-01-01"),
        Just("2018-01-02")
    ];
    let times = prop_oneof![
        Just("00:00:00"),
        Just("23:59:59"),
        Just("12:00:00"),
        Just("02:30:00")
    ];
    let form = 0..5u8;
    (days, times, form).prop_map(|(d, t, f)| match f {
        0 => d.to_owned(),
        1 => format!("{d} {t}"),
        2 => format!("{d}T{t}Z"),
        3 => format!("{d}T{t}+02:00"),
        _ => format!("{d}T{t}-03:00"),
    })
}

pub fn order() -> impl Strategy<Value = Order> {
    (
        proptest::option::of(0..60i64),
        proptest::option::of(stamp()),
    )
        .prop_map(|(amount, placed)| Order { amount, placed })
}

pub fn customers() -> impl Strategy<Value = Vec<Customer>> {
    proptest::collection::vec(
        (
            proptest::option::of(proptest::sample::select(NAMES).prop_map(str::to_owned)),
            proptest::option::of(-3..10i64),
            proptest::option::of(stamp()),
            proptest::collection::vec(order(), 0..4),
        ),
        1..9,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (name, score, seen, orders))| Customer {
                id: i as i64 + 1,
                name,
                score,
                seen,
                orders,
            })
            .collect()
    })
}

// ------------------------------------------------------------- conditions

pub fn date_value() -> impl Strategy<Value = DateValue> {
    proptest::sample::select(vec![
        "2017-12-31",
        "2018-01-01",
        "2017-12-31T12:00:00Z",
        "2017-12-31T23:59:59",
        "2018-01-01T00:00:00-03:00",
        "-9y",
        "-101mo",
    ])
    .prop_map(|s| s.parse().expect("a valid date"))
}

pub fn date_test() -> impl Strategy<Value = Test> {
    prop_oneof![
        date_value().prop_map(Test::Before),
        date_value().prop_map(Test::After),
        date_value().prop_map(Test::OnOrBefore),
        date_value().prop_map(Test::OnOrAfter),
        date_value().prop_map(|d| Test::Lt(Operand::Date(d))),
        date_value().prop_map(|d| Test::Gte(Operand::Date(d))),
        (date_value(), date_value())
            .prop_map(|(a, b)| Test::Between(Operand::Date(a), Operand::Date(b))),
        any::<bool>().prop_map(Test::IsNull),
    ]
}

pub fn number_test() -> impl Strategy<Value = Test> {
    let n = -2..12i64;
    prop_oneof![
        n.clone().prop_map(|v| Test::Eq(Scalar::Int(v))),
        n.clone().prop_map(|v| Test::Ne(Scalar::Int(v))),
        n.clone().prop_map(|v| Test::Lt(Operand::Int(v))),
        n.clone().prop_map(|v| Test::Lte(Operand::Int(v))),
        n.clone().prop_map(|v| Test::Gt(Operand::Int(v))),
        n.clone().prop_map(|v| Test::Gte(Operand::Int(v))),
        (n.clone(), n.clone()).prop_map(|(a, b)| Test::Between(Operand::Int(a), Operand::Int(b))),
        proptest::collection::vec(n.clone(), 1..4)
            .prop_map(|v| Test::In(v.into_iter().map(Scalar::Int).collect())),
        proptest::collection::vec(n, 1..4)
            .prop_map(|v| Test::NotIn(v.into_iter().map(Scalar::Int).collect())),
        any::<bool>().prop_map(Test::IsNull),
    ]
}

pub fn text_test() -> impl Strategy<Value = Test> {
    let name = proptest::sample::select(NAMES).prop_map(|s| Scalar::Text(s.to_owned()));
    prop_oneof![
        name.clone().prop_map(Test::Eq),
        name.clone().prop_map(Test::Ne),
        proptest::collection::vec(name.clone(), 1..3).prop_map(Test::In),
        proptest::collection::vec(name, 1..3).prop_map(Test::NotIn),
        proptest::sample::select(vec!["a", "A", "%", "_", "0%_", "Sv", "Ω"])
            .prop_map(|s| Test::Contains(s.to_owned())),
        any::<bool>().prop_map(Test::IsNull),
    ]
}

pub fn field(f: &str, t: Test) -> Condition {
    Condition::Field {
        field: f.to_owned(),
        test: t,
    }
}

pub fn order_leaf() -> impl Strategy<Value = Condition> {
    prop_oneof![
        number_test().prop_map(|t| field("amount", t)),
        date_test().prop_map(|t| field("placed", t))
    ]
}

pub fn customer_leaf() -> impl Strategy<Value = Condition> {
    prop_oneof![
        text_test().prop_map(|t| field("name", t)),
        number_test().prop_map(|t| field("score", t)),
        date_test().prop_map(|t| field("seen", t)),
        (any::<bool>(), proptest::collection::vec(order_leaf(), 0..3)).prop_map(
            |(negated, filter)| {
                Condition::Related {
                    relation: "orders".into(),
                    negated,
                    filter,
                }
            }
        ),
        number_test().prop_map(|t| Condition::Aggregate {
            func: Aggregate::Sum,
            relation: "orders".into(),
            field: Some("amount".into()),
            test: t,
        }),
        (0..4i64).prop_map(|n| Condition::Aggregate {
            func: Aggregate::Count,
            relation: "orders".into(),
            field: None,
            test: Test::Gte(Operand::Int(n)),
        }),
        number_test().prop_map(|t| Condition::Aggregate {
            func: Aggregate::Min,
            relation: "orders".into(),
            field: Some("amount".into()),
            test: t,
        }),
        date_test().prop_map(|t| Condition::Aggregate {
            func: Aggregate::Max,
            relation: "orders".into(),
            field: Some("placed".into()),
            test: t,
        }),
    ]
}

pub fn condition() -> impl Strategy<Value = Condition> {
    customer_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Condition::All),
            proptest::collection::vec(inner.clone(), 1..4).prop_map(Condition::Any),
            inner.prop_map(|c| Condition::Not(Box::new(c))),
        ]
    })
}

// ---------------------------------------------------------------- oracle

pub struct Oracle {
    pub now: Timestamp,
    pub tz: TimeZone,
}

impl Oracle {
    /// A stored time as an instant: with a zone as written, without one
    /// in the system's zone; a bare day is its midnight.
    pub fn stored(&self, s: &str) -> Timestamp {
        if s.len() == 10 {
            let d: Date = s.parse().unwrap();
            return d.to_zoned_datetime(self.tz.clone()).unwrap().timestamp();
        }
        if let Ok(t) = s.parse::<Timestamp>() {
            return t;
        }
        let dt: DateTime = s.replace(' ', "T").parse().unwrap();
        self.tz.to_timestamp(dt).unwrap()
    }

    fn day_start(&self, d: Date) -> Timestamp {
        d.to_zoned_datetime(self.tz.clone()).unwrap().timestamp()
    }

    /// (is a calendar day, the instant it names)
    fn operand(&self, d: &DateValue) -> (Option<Date>, Timestamp) {
        match d {
            DateValue::Day(day) => (Some(*day), self.day_start(*day)),
            DateValue::Instant(t) => (None, *t),
            DateValue::Local(dt) => (None, self.tz.to_timestamp(*dt).unwrap()),
            DateValue::Ago(p) => {
                let z = self.now.to_zoned_datetime(self.tz.clone());
                let n = i64::from(p.amount);
                let span = match p.unit {
                    lethe::spec::time::Unit::Hours => n.hours(),
                    lethe::spec::time::Unit::Days => n.days(),
                    lethe::spec::time::Unit::Weeks => n.weeks(),
                    lethe::spec::time::Unit::Months => n.months(),
                    lethe::spec::time::Unit::Years => n.years(),
                };
                (None, z.checked_sub(span).unwrap().timestamp())
            }
        }
    }

    fn next_day(&self, d: Date) -> Timestamp {
        self.day_start(d.tomorrow().unwrap())
    }

    fn before(&self, v: Timestamp, d: &DateValue) -> bool {
        v < self.operand(d).1
    }

    fn after(&self, v: Timestamp, d: &DateValue) -> bool {
        match self.operand(d) {
            (Some(day), _) => v >= self.next_day(day),
            (None, t) => v > t,
        }
    }

    fn on_or_before(&self, v: Timestamp, d: &DateValue) -> bool {
        match self.operand(d) {
            (Some(day), _) => v < self.next_day(day),
            (None, t) => v <= t,
        }
    }

    fn on_or_after(&self, v: Timestamp, d: &DateValue) -> bool {
        v >= self.operand(d).1
    }

    fn time_test(&self, v: Option<Timestamp>, t: &Test) -> bool {
        if let Test::IsNull(b) = t {
            return v.is_none() == *b;
        }
        let Some(v) = v else { return false };
        match t {
            Test::Before(d) | Test::Lt(Operand::Date(d)) => self.before(v, d),
            Test::After(d) | Test::Gt(Operand::Date(d)) => self.after(v, d),
            Test::OnOrBefore(d) | Test::Lte(Operand::Date(d)) => self.on_or_before(v, d),
            Test::OnOrAfter(d) | Test::Gte(Operand::Date(d)) => self.on_or_after(v, d),
            Test::Between(Operand::Date(a), Operand::Date(b)) => {
                self.on_or_after(v, a) && self.on_or_before(v, b)
            }
            other => panic!("not a date test: {other:?}"),
        }
    }

    fn number_test(&self, v: Option<i64>, t: &Test) -> bool {
        let int = |s: &Scalar| match s {
            Scalar::Int(i) => *i,
            other => panic!("not a number: {other:?}"),
        };
        let op = |o: &Operand| match o {
            Operand::Int(i) => *i,
            other => panic!("not a number: {other:?}"),
        };
        if let Test::IsNull(b) = t {
            return v.is_none() == *b;
        }
        let Some(v) = v else { return false };
        match t {
            Test::Eq(s) => v == int(s),
            Test::Ne(s) => v != int(s),
            Test::Lt(o) => v < op(o),
            Test::Lte(o) => v <= op(o),
            Test::Gt(o) => v > op(o),
            Test::Gte(o) => v >= op(o),
            Test::Between(a, b) => v >= op(a) && v <= op(b),
            Test::In(xs) => xs.iter().any(|x| int(x) == v),
            Test::NotIn(xs) => xs.iter().all(|x| int(x) != v),
            other => panic!("not a number test: {other:?}"),
        }
    }

    fn text_test(&self, v: Option<&str>, t: &Test) -> bool {
        let text = |s: &Scalar| match s {
            Scalar::Text(t) => t.clone(),
            other => panic!("not text: {other:?}"),
        };
        if let Test::IsNull(b) = t {
            return v.is_none() == *b;
        }
        let Some(v) = v else { return false };
        match t {
            Test::Eq(s) => v == text(s),
            Test::Ne(s) => v != text(s),
            Test::In(xs) => xs.iter().any(|x| text(x) == v),
            Test::NotIn(xs) => xs.iter().all(|x| text(x) != v),
            Test::Contains(needle) => v.contains(needle.as_str()),
            other => panic!("not a text test: {other:?}"),
        }
    }

    fn order(&self, o: &Order, c: &Condition) -> bool {
        match c {
            Condition::All(items) => items.iter().all(|i| self.order(o, i)),
            Condition::Field { field, test } if field == "amount" => {
                self.number_test(o.amount, test)
            }
            Condition::Field { field, test } if field == "placed" => {
                self.time_test(o.placed.as_deref().map(|s| self.stored(s)), test)
            }
            other => panic!("not an order condition: {other:?}"),
        }
    }

    pub fn customer(&self, r: &Customer, c: &Condition) -> bool {
        match c {
            Condition::All(items) => items.iter().all(|i| self.customer(r, i)),
            Condition::Any(items) => items.iter().any(|i| self.customer(r, i)),
            Condition::Not(i) => !self.customer(r, i),
            Condition::Field { field, test } => match field.as_str() {
                "name" => self.text_test(r.name.as_deref(), test),
                "score" => self.number_test(r.score, test),
                "seen" => self.time_test(r.seen.as_deref().map(|s| self.stored(s)), test),
                other => panic!("no field {other}"),
            },
            Condition::Related {
                negated, filter, ..
            } => {
                let any = r
                    .orders
                    .iter()
                    .any(|o| filter.iter().all(|f| self.order(o, f)));
                any != *negated
            }
            Condition::Aggregate {
                func, field, test, ..
            } => match (func, field.as_deref()) {
                (Aggregate::Sum, Some("amount")) => {
                    let s: i64 = r.orders.iter().filter_map(|o| o.amount).sum();
                    self.number_test(Some(s), test)
                }
                (Aggregate::Count, None) => self.number_test(Some(r.orders.len() as i64), test),
                (Aggregate::Min, Some("amount")) => {
                    self.number_test(r.orders.iter().filter_map(|o| o.amount).min(), test)
                }
                (Aggregate::Max, Some("placed")) => {
                    let max = r
                        .orders
                        .iter()
                        .filter_map(|o| o.placed.as_deref())
                        .map(|s| self.stored(s))
                        .max();
                    self.time_test(max, test)
                }
                other => panic!("no aggregate {other:?}"),
            },
            Condition::Criterion { .. } => panic!("no criteria here"),
        }
    }
}

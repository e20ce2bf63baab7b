use std::collections::BTreeMap;

use lethe_connector::{AggFunc, CmpOp, Cond, Expr, Instant, Join, Select, Tally, Update, Value};

use super::*;

fn col(c: &str) -> Expr {
    Expr::Column(c.to_owned())
}

fn purchases() -> Join {
    Join {
        table: "purchases".into(),
        foreign_key: "customer_id".into(),
        key: "id".into(),
    }
}

fn show(s: &Statement) -> String {
    format!("{}\n-- params: {:?}", s.sql, s.params)
}

fn select_where(filter: Cond) -> String {
    select_where_in(&Sqlite::default(), filter)
}

fn select_where_in(d: &dyn Dialect, filter: Cond) -> String {
    let q = Select {
        table: "customers".into(),
        columns: vec!["id".into(), "created_at".into()],
        flags: vec![],
        filter,
        order_by: vec!["created_at".into(), "last_name".into(), "id".into()],
        limit: None,
    };
    show(&select(d, &q).unwrap())
}

/// The test tables' types, as each server engine names them.
fn catalog(pg: bool) -> Catalog {
    use lethe_connector::ColumnKind as K;
    let mut c = Catalog::default();
    let cols: &[(&str, &str, K, &str, &str)] = &[
        ("customers", "id", K::Integer, "pg_catalog.int4", "int"),
        ("customers", "kind", K::Text, "pg_catalog.text", "varchar"),
        (
            "customers",
            "status",
            K::Text,
            "pg_catalog.varchar",
            "varchar",
        ),
        (
            "customers",
            "last_name",
            K::Text,
            "pg_catalog.varchar",
            "varchar",
        ),
        (
            "customers",
            "email",
            K::Text,
            "pg_catalog.varchar",
            "varchar",
        ),
        (
            "customers",
            "phone",
            K::Text,
            "pg_catalog.varchar",
            "varchar",
        ),
        ("customers", "notes", K::Text, "pg_catalog.text", "text"),
        (
            "customers",
            "birth_date",
            K::Date,
            "pg_catalog.date",
            "date",
        ),
        (
            "customers",
            "created_at",
            K::Timestamp,
            "pg_catalog.timestamp",
            "datetime",
        ),
        (
            "customers",
            "seen_at",
            K::Timestamp,
            "pg_catalog.timestamptz",
            "timestamp",
        ),
        ("purchases", "id", K::Integer, "pg_catalog.int8", "bigint"),
        (
            "purchases",
            "customer_id",
            K::Integer,
            "pg_catalog.int4",
            "int",
        ),
        (
            "purchases",
            "amount",
            K::Decimal,
            "pg_catalog.numeric",
            "decimal",
        ),
        (
            "purchases",
            "purchased_at",
            K::Timestamp,
            "pg_catalog.timestamptz",
            "timestamp",
        ),
    ];
    for (t, col, kind, p, m) in cols {
        c.insert(
            t,
            col,
            ColumnType {
                kind: *kind,
                name: (if pg { p } else { m }).to_string(),
            },
        );
    }
    c
}

fn servers() -> [(&'static str, Box<dyn Dialect>); 2] {
    [
        (
            "postgres",
            Box::new(Postgres {
                catalog: catalog(true),
                fold_collation: Some("und-x-icu".into()),
            }),
        ),
        (
            "mysql",
            Box::new(Mysql {
                catalog: catalog(false),
            }),
        ),
    ]
}

#[test]
fn every_condition() {
    let at = Instant {
        utc: "2018-01-01T00:00:00Z".into(),
        local: "2018-01-01 00:00:00".into(),
    };
    let c = Cond::And(vec![
        Cond::In {
            expr: col("kind"),
            values: vec!["private".into(), Value::Null],
            negated: false,
        },
        Cond::Exists {
            join: purchases(),
            filter: Box::new(Cond::True),
        },
        Cond::Not(Box::new(Cond::Exists {
            join: purchases(),
            filter: Box::new(Cond::Time {
                expr: col("purchased_at"),
                op: CmpOp::Ge,
                at: at.clone(),
            }),
        })),
        Cond::Or(vec![
            Cond::Compare {
                expr: Expr::Aggregate {
                    func: AggFunc::Sum,
                    join: purchases(),
                    column: Some("amount".into()),
                },
                op: CmpOp::Lt,
                value: Value::Int(1000),
            },
            Cond::Contains {
                expr: col("notes"),
                text: "50%_off".into(),
            },
            Cond::IsNull {
                expr: col("phone"),
                negated: true,
            },
        ]),
        Cond::Time {
            expr: Expr::Aggregate {
                func: AggFunc::Max,
                join: purchases(),
                column: Some("purchased_at".into()),
            },
            op: CmpOp::Lt,
            at,
        },
        Cond::In {
            expr: col("status"),
            values: vec![],
            negated: true,
        },
    ]);
    insta::assert_snapshot!(select_where(c));
}

/// One statement of each kind on the server engines: casts where types
/// differ, exact text comparison, times by column type, the batched update.
#[test]
fn server_dialects() {
    let at = Instant {
        utc: "2017-12-31T23:00:00Z".into(),
        local: "2018-01-01 00:00:00".into(),
    };
    let filter = Cond::And(vec![
        Cond::In {
            expr: col("kind"),
            values: vec!["private".into()],
            negated: false,
        },
        Cond::Compare {
            expr: col("birth_date"),
            op: CmpOp::Lt,
            value: "1990-01-01".into(),
        },
        Cond::Time {
            expr: col("created_at"),
            op: CmpOp::Lt,
            at: at.clone(),
        },
        Cond::Time {
            expr: col("seen_at"),
            op: CmpOp::Lt,
            at: at.clone(),
        },
        Cond::Time {
            expr: Expr::Aggregate {
                func: AggFunc::Max,
                join: purchases(),
                column: Some("purchased_at".into()),
            },
            op: CmpOp::Lt,
            at,
        },
        Cond::Compare {
            expr: Expr::Aggregate {
                func: AggFunc::Sum,
                join: purchases(),
                column: Some("amount".into()),
            },
            op: CmpOp::Lt,
            value: Value::Int(1000),
        },
        Cond::Contains {
            expr: col("notes"),
            text: "50%_off".into(),
        },
        Cond::Normalized {
            expr: col("email"),
            form: lethe_connector::Normalization::Folded,
            values: vec!["åsa@x.se".into()],
        },
        Cond::Normalized {
            expr: col("phone"),
            form: lethe_connector::Normalization::Digits,
            values: vec!["4670".into()],
        },
        Cond::Sql {
            template: "{{ key }} IN (SELECT customer_id FROM purchases WHERE purchased_at < {{ param('d') }} AND amount > {{ param('n') }})".into(),
            key: "id".into(),
            params: BTreeMap::from([
                ("d".to_owned(), Value::from("2018-01-01")),
                ("n".to_owned(), Value::Int(5)),
            ]),
            types: BTreeMap::from([
                ("d".to_owned(), lethe_connector::ParamType::Date),
                ("n".to_owned(), lethe_connector::ParamType::Int),
            ]),
        },
    ]);
    for (name, d) in servers() {
        let mut out = select_where_in(d.as_ref(), filter.clone());
        out.push_str("\n\n");
        for s in update(
            d.as_ref(),
            &Update::Rows {
                table: "customers".into(),
                key: "id".into(),
                columns: vec!["email".into(), "birth_date".into()],
                rows: vec![
                    vec![1.into(), "a@x.invalid".into(), Value::Null],
                    vec![2.into(), Value::Null, "1985-01-01".into()],
                ],
            },
        )
        .unwrap()
        {
            out.push_str(&show(&s));
        }
        out.push_str("\n\n");
        out.push_str(&show(
            &delete_returning(
                d.as_ref(),
                &Delete {
                    table: "purchases".into(),
                    filter: Cond::InSet {
                        column: "customer_id".into(),
                        table: "customers".into(),
                        key: "id".into(),
                        filter: Box::new(Cond::keys("id", vec![1.into()])),
                    },
                },
                &["id".into(), "amount".into()],
            )
            .unwrap(),
        ));
        insta::assert_snapshot!(format!("server_dialects_{name}"), out);
    }
}

#[test]
fn times_in_a_zone_split_by_stored_form() {
    let c = Cond::Time {
        expr: col("created_at"),
        op: CmpOp::Ge,
        at: Instant {
            utc: "2017-12-31T23:00:00Z".into(),
            local: "2018-01-01 00:00:00".into(),
        },
    };
    insta::assert_snapshot!(select_where(c));
}

#[test]
fn criteria_bind_their_values() {
    let params = BTreeMap::from([(
        "date".to_owned(),
        Value::from("x'); DROP TABLE customers; --"),
    )]);
    let c = Cond::Sql {
        template: "NOT EXISTS (SELECT 1 FROM purchases p WHERE p.customer_id = {{ key }} AND p.purchased_at > {{ param(\"date\") }}) AND {{ param('date') | upper }} <> ''".into(),
        key: "id".into(),
        params,
        types: BTreeMap::new(),
    };
    let out = select_where(c);
    assert!(!out.lines().next().unwrap().contains("DROP"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn criteria_reject_unknown_parameters() {
    let c = Cond::Sql {
        template: "{{ key }} > {{ param('nope') }}".into(),
        key: "id".into(),
        params: BTreeMap::new(),
        types: BTreeMap::new(),
    };
    let q = Select {
        table: "t".into(),
        columns: vec!["id".into()],
        flags: vec![],
        filter: c,
        order_by: vec![],
        limit: None,
    };
    let e = select(&Sqlite::default(), &q).unwrap_err().to_string();
    assert!(e.contains("no parameter `nope`"), "{e}");
}

#[test]
fn names_are_quoted() {
    let c = Cond::Compare {
        expr: col("we\"ird"),
        op: CmpOp::Eq,
        value: Value::Int(1),
    };
    let out = select_where(c);
    assert!(out.contains("t0.\"we\"\"ird\""), "{out}");
}

#[test]
fn flags_tallies_and_writes() {
    let q = Select {
        table: "customers".into(),
        columns: vec!["id".into(), "created_at".into()],
        flags: vec![Cond::Exists {
            join: purchases(),
            filter: Box::new(Cond::True),
        }],
        filter: Cond::True,
        order_by: vec!["created_at".into(), "id".into()],
        limit: Some(10),
    };
    let mut out = show(&select(&Sqlite::default(), &q).unwrap());
    out.push_str("\n\n");
    out.push_str(&show(
        &tally(
            &Sqlite::default(),
            &Tally {
                table: "customers".into(),
                filter: Cond::keys("id", vec![1.into(), 2.into()]),
                counts: vec![None, Some("email".into())],
            },
        )
        .unwrap(),
    ));
    out.push_str("\n\n");
    for s in update(
        &Sqlite::default(),
        &Update::Rows {
            table: "customers".into(),
            key: "id".into(),
            columns: vec!["email".into(), "phone".into()],
            rows: vec![
                vec![1.into(), "a@x.invalid".into(), Value::Null],
                vec![2.into(), "b@x.invalid".into(), "+46 70".into()],
            ],
        },
    )
    .unwrap()
    {
        out.push_str(&show(&s));
    }
    out.push_str("\n\n");
    for s in update(
        &Sqlite::default(),
        &Update::Set {
            table: "contracts".into(),
            filter: Cond::keys("id", vec![7.into()]),
            set: vec![("status".into(), "cancelled".into())],
        },
    )
    .unwrap()
    {
        out.push_str(&show(&s));
    }
    out.push_str("\n\n");
    out.push_str(&show(
        &delete(
            &Sqlite::default(),
            &Delete {
                table: "purchases".into(),
                filter: Cond::InSet {
                    column: "customer_id".into(),
                    table: "customers".into(),
                    key: "id".into(),
                    filter: Box::new(Cond::keys("id", vec![1.into()])),
                },
            },
        )
        .unwrap(),
    ));
    out.push_str("\n\n");
    for s in insert(
        &Sqlite::default(),
        &Insert {
            table: "service_orders".into(),
            columns: vec!["contract_id".into(), "kind".into()],
            rows: vec![vec![7.into(), "equipment-removal".into()]],
        },
    ) {
        out.push_str(&show(&s));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn large_writes_are_split_to_the_parameter_limit() {
    let rows: Vec<Vec<Value>> = (0..20_000)
        .map(|i| vec![Value::Int(i), Value::Int(i)])
        .collect();
    let stmts = update(
        &Sqlite::default(),
        &Update::Rows {
            table: "t".into(),
            key: "id".into(),
            columns: vec!["x".into()],
            rows,
        },
    )
    .unwrap();
    assert_eq!(stmts.len(), 20);
    assert!(
        stmts
            .iter()
            .all(|s| s.params.len() <= Sqlite::default().max_params())
    );
}

mod values_stay_bound {
    //! The compiler never writes a value into SQL text: random condition
    //! trees and writes carrying values that are themselves SQL (quotes,
    //! comments, statement ends) compile, on every dialect, to statements
    //! whose text holds none of those values — each is a bound parameter.

    use proptest::prelude::*;

    use super::*;

    /// Values meant to break out of a string or a statement.
    const HOSTILE: &[&str] = &[
        "x'; DROP TABLE customers; --",
        "\") OR 1=1 --",
        "`; DELETE FROM customers; #",
        "Robert'); DROP TABLE students;--",
        "'/**/OR/**/'1'='1",
        "\\'; SELECT pg_sleep(10); --",
        "$1 OR TRUE",
        "?; TRUNCATE customers",
    ];

    fn hostile() -> impl Strategy<Value = Value> {
        (0..HOSTILE.len(), 0u32..1000).prop_map(|(i, n)| Value::Text(format!("{}{n}", HOSTILE[i])))
    }

    fn leaf() -> impl Strategy<Value = Cond> {
        let column = prop_oneof![Just("name"), Just("email"), Just("city")];
        prop_oneof![
            (column.clone(), hostile()).prop_map(|(c, v)| Cond::Compare {
                expr: col(c),
                op: CmpOp::Eq,
                value: v,
            }),
            (column.clone(), prop::collection::vec(hostile(), 1..4)).prop_map(|(c, v)| Cond::In {
                expr: col(c),
                values: v,
                negated: false,
            }),
            (column.clone(), hostile()).prop_map(|(c, v)| Cond::Contains {
                expr: col(c),
                text: match v {
                    Value::Text(t) => t,
                    _ => String::new(),
                },
            }),
            hostile().prop_map(|v| Cond::Exists {
                join: purchases(),
                filter: Box::new(Cond::Compare {
                    expr: col("note"),
                    op: CmpOp::Ne,
                    value: v,
                }),
            }),
        ]
    }

    fn tree() -> impl Strategy<Value = Cond> {
        leaf().prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..3).prop_map(Cond::And),
                prop::collection::vec(inner.clone(), 1..3).prop_map(Cond::Or),
                inner.prop_map(|c| Cond::Not(Box::new(c))),
            ]
        })
    }

    fn values_of(c: &Cond, out: &mut Vec<String>) {
        match c {
            Cond::And(v) | Cond::Or(v) => v.iter().for_each(|c| values_of(c, out)),
            Cond::Not(c) => values_of(c, out),
            Cond::Compare {
                value: Value::Text(t),
                ..
            } => out.push(t.clone()),
            Cond::In { values, .. } => {
                out.extend(values.iter().filter_map(|v| v.as_text().map(str::to_owned)))
            }
            Cond::Contains { text, .. } => out.push(text.clone()),
            Cond::Exists { filter, .. } => values_of(filter, out),
            _ => {}
        }
    }

    fn dialects() -> Vec<Box<dyn Dialect>> {
        let mut v: Vec<Box<dyn Dialect>> = vec![Box::new(Sqlite { zoned: true })];
        v.extend(servers().into_iter().map(|(_, d)| d));
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn selections_bind_every_value(filter in tree()) {
            let mut values = Vec::new();
            values_of(&filter, &mut values);
            for d in dialects() {
                let q = Select {
                    table: "customers".into(),
                    columns: vec!["id".into()],
                    flags: vec![filter.clone()],
                    filter: filter.clone(),
                    order_by: vec![],
                    limit: None,
                };
                let s = select(d.as_ref(), &q).unwrap();
                for v in &values {
                    prop_assert!(!s.sql.contains(v.as_str()), "{}: `{v}` in {}", d.name(), s.sql);
                }
                let t = tally(d.as_ref(), &Tally { table: "customers".into(), filter: filter.clone(), counts: vec![None] }).unwrap();
                for v in &values {
                    prop_assert!(!t.sql.contains(v.as_str()), "{}: `{v}` in {}", d.name(), t.sql);
                }
            }
        }

        #[test]
        fn writes_bind_every_value(vs in prop::collection::vec(hostile(), 1..5), keys in prop::collection::vec(0i64..100, 1..5)) {
            for d in dialects() {
                let set = Update::Set {
                    table: "customers".into(),
                    filter: Cond::keys("id", keys.iter().map(|k| Value::Int(*k)).collect()),
                    set: vec![("name".into(), vs[0].clone())],
                };
                let rows = Update::Rows {
                    table: "customers".into(),
                    key: "id".into(),
                    columns: vec!["name".into()],
                    rows: keys.iter().zip(vs.iter().cycle()).map(|(k, v)| vec![Value::Int(*k), v.clone()]).collect(),
                };
                let ins = lethe_connector::Insert {
                    table: "customers".into(),
                    columns: vec!["name".into()],
                    rows: vs.iter().map(|v| vec![v.clone()]).collect(),
                };
                let mut sql: Vec<String> = Vec::new();
                sql.extend(update(d.as_ref(), &set).unwrap().into_iter().map(|s| s.sql));
                sql.extend(update(d.as_ref(), &rows).unwrap().into_iter().map(|s| s.sql));
                sql.extend(insert(d.as_ref(), &ins).into_iter().map(|s| s.sql));
                for s in &sql {
                    for v in &vs {
                        prop_assert!(!s.contains(v.as_text().unwrap_or_default()), "{}: `{v}` in {s}", d.name());
                    }
                }
            }
        }
    }
}

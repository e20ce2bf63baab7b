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
    let q = Select {
        table: "customers".into(),
        columns: vec!["id".into()],
        flags: vec![],
        filter,
        order_by: vec!["created_at".into(), "id".into()],
        limit: None,
    };
    show(&select(&Sqlite::default(), &q).unwrap())
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

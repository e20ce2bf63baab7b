//! The loader and validator, case by case: every class of error at its
//! exact `file:line:col`, with its message; then the whole rendered
//! diagnostics as a snapshot for review.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

use std::collections::HashMap;
use std::sync::Arc;

use lethe::diag::{self, Diagnostic, TextStyle};
use lethe::spec::source::SourceFile;
use lethe::validate::{Validated, Workspace};

/// A valid job against the shipped `retail-crm` model.
const JOB: &str = "\
version: 1
name: case
owner: dpo@example.com
target:
  system: retail-crm
  connector: sqlite
  url: ${CASE_DB_URL}
selection:
  entity: customer
  where:
    - field: kind
      in: [private]
    - none: purchases
      where:
        - field: purchased_at
          after: 2017-12-31
  order_by: created_at
  cap: 500
action:
  type: anonymize
  categories: [identity, contact]
approval:
  approvers: { min: 2, roles: [dpo] }
guards:
  - ignore_if: { has: loans, where: [{ field: returned_at, is_null: true }] }
    reason: open equipment loan
safety:
  batch_size: 500
";

/// A small valid model.
const MODEL: &str = "\
version: 1
name: case-model
timezone: Europe/Lisbon
entities:
  customer:
    table: customers
    key: id
    fields:
      email: { category: contact.email, strategy: hash-email, unique: true, type: string }
    relations:
      orders: { entity: order, foreign_key: customer_id, on_delete: delete }
  order:
    table: orders
    key: id
    fields:
      placed_at: { type: datetime }
criteria:
  big-spender:
    entity: customer
    params: { min: decimal }
    sql: \"(SELECT SUM(total) FROM orders o WHERE o.customer_id = {{ key }}) > {{ param('min') }}\"
";

fn workspace() -> Workspace {
    let env: HashMap<String, String> = HashMap::from([(
        "CASE_DB_URL".to_owned(),
        "sqlite://secret-path.db".to_owned(),
    )]);
    Workspace::new(Box::new(env))
}

fn diagnostics(name: &str, text: &str) -> Vec<Diagnostic> {
    let file = SourceFile::new(name, text.to_owned());
    match workspace().load_source(&file) {
        Ok(_) => Vec::new(),
        Err(ds) => ds,
    }
}

fn edit(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "the base text lacks {from:?}");
    base.replacen(from, to, 1)
}

/// (case, file text, expected `file:line:col: error[code]: message` lines)
fn cases() -> Vec<(&'static str, String, Vec<&'static str>)> {
    vec![
        (
            "misspelt condition key",
            edit(JOB, "    - field: kind", "    - feild: kind"),
            vec!["case.yaml:11:7: error[unknown-key]: unknown key `feild`"],
        ),
        (
            "unknown top-level key",
            edit(JOB, "owner:", "ownr:"),
            vec!["case.yaml:3:1: error[unknown-key]: unknown key `ownr`"],
        ),
        (
            "missing cap",
            edit(JOB, "  cap: 500\n", ""),
            vec!["case.yaml:8:1: error[missing-key]: missing `cap` in `selection`"],
        ),
        (
            "cap below one",
            edit(JOB, "cap: 500", "cap: 0"),
            vec!["case.yaml:18:8: error[out-of-range]: `cap` must be at least 1"],
        ),
        (
            "batch size above the limit",
            edit(JOB, "batch_size: 500", "batch_size: 20000"),
            vec!["case.yaml:28:15: error[out-of-range]: `batch_size` must be at most 10000"],
        ),
        (
            "unknown action type",
            edit(JOB, "type: anonymize", "type: anonymise"),
            vec!["case.yaml:20:9: error[unknown-value]: unknown action type `anonymise`"],
        ),
        (
            "unknown key in an action",
            edit(JOB, "  categories: [identity", "  catagories: [identity"),
            vec!["case.yaml:21:3: error[unknown-key]: unknown key `catagories`"],
        ),
        (
            "text where a number belongs",
            edit(JOB, "cap: 500", "cap: many"),
            vec!["case.yaml:18:8: error[wrong-type]: expected a whole number, found text"],
        ),
        (
            "not a date",
            edit(JOB, "after: 2017-12-31", "after: soon"),
            vec!["case.yaml:16:18: error[bad-format]: `soon` is not a date (2017-12-31, 2017-12-31T23:59:59Z, or a period before the plan's clock such as -90d, -18mo, -3y)"],
        ),
        (
            "a day that does not exist",
            edit(JOB, "after: 2017-12-31", "after: 2017-02-30"),
            vec!["case.yaml:16:18: error[invalid-value]: `2017-02-30` is not a date: expected a calendar day such as 2017-12-31"],
        ),
        (
            "unknown entity",
            edit(JOB, "entity: customer", "entity: customr"),
            vec!["case.yaml:9:11: error[unknown-entity]: the system model `retail-crm` has no entity `customr`"],
        ),
        (
            "unknown field",
            edit(JOB, "field: kind", "field: kinds"),
            vec!["case.yaml:11:14: error[unknown-field]: `customer` has no field `kinds`"],
        ),
        (
            "unknown field on a related entity",
            edit(JOB, "field: purchased_at", "field: bought_at"),
            vec!["case.yaml:15:18: error[unknown-field]: `purchase` has no field `bought_at`"],
        ),
        (
            "unknown relation",
            edit(JOB, "none: purchases", "none: purchase"),
            vec!["case.yaml:13:13: error[unknown-relation]: `customer` has no relation `purchase`"],
        ),
        (
            "unknown criterion",
            edit(JOB, "    - field: kind\n      in: [private]", "    - criterion: bought-before"),
            vec!["case.yaml:11:18: error[unknown-criterion]: the system model has no criterion `bought-before`"],
        ),
        (
            "criterion parameters",
            edit(
                JOB,
                "    - field: kind\n      in: [private]",
                "    - criterion: bought-only-before\n      params: { dat: 2017-12-31 }",
            ),
            vec![
                "case.yaml:11:18: error[missing-param]: the criterion `bought-only-before` needs the parameter `date`",
                "case.yaml:12:17: error[unknown-param]: the criterion `bought-only-before` has no parameter `dat`",
            ],
        ),
        (
            "criterion parameter of the wrong type",
            edit(
                JOB,
                "    - field: kind\n      in: [private]",
                "    - criterion: bought-only-before\n      params: { date: 2017-12-31T10:00:00Z }",
            ),
            vec!["case.yaml:12:23: error[param-type]: parameter `date` is a date: expected a calendar day (2017-12-31) or a period (-1y), not a time"],
        ),
        (
            "unknown check",
            edit(JOB, "safety:", "  - block_if: has-open-loan\nsafety:"),
            vec!["case.yaml:27:15: error[unknown-check]: the system model has no check `has-open-loan`"],
        ),
        (
            "unknown category",
            edit(JOB, "[identity, contact]", "[identiy, contact]"),
            vec!["case.yaml:21:16: error[unknown-category]: no field of `customer` or the rows it owns is in category `identiy`"],
        ),
        (
            "strategy that does not fit the field",
            edit(JOB, "  categories: [identity, contact]", "  categories: [identity, contact]\n  fields: { birth_date: hash-email }"),
            vec!["case.yaml:22:25: error[strategy-type]: `hash-email` cannot write `birth_date`, a date field"],
        ),
        (
            "unique field given a repeating strategy",
            edit(JOB, "  categories: [identity, contact]", "  categories: [identity, contact]\n  fields: { email: fake-name }"),
            vec!["case.yaml:22:20: error[strategy-unique]: `fake-name` can give two records the same value, but `email` is unique"],
        ),
        (
            "deactivate an entity that cannot",
            edit(
                &edit(JOB, "entity: customer", "entity: purchase"),
                "  where:\n    - field: kind\n      in: [private]\n    - none: purchases\n      where:\n        - field: purchased_at\n          after: 2017-12-31\n  order_by: created_at\n",
                "",
            )
            .replace("  type: anonymize\n  categories: [identity, contact]", "  type: deactivate")
            .replace("guards:\n  - ignore_if: { has: loans, where: [{ field: returned_at, is_null: true }] }\n    reason: open equipment loan\n", ""),
            vec!["case.yaml:12:9: error[cannot-deactivate]: `purchase` has no `deactivate` definition in the system model, so it cannot `deactivate`"],
        ),
        (
            "keep-login without a login relation",
            edit(JOB, "  type: anonymize\n  categories: [identity, contact]", "  type: keep-login"),
            vec!["case.yaml:20:9: error[no-login-relation]: `keep-login` keeps login rows, but `customer` has no relation with `role: login`"],
        ),
        (
            "automatic approval of a whole-account wipe",
            edit(
                &edit(JOB, "  type: anonymize\n  categories: [identity, contact]", "  type: delete\n  scope: all"),
                "  approvers: { min: 2, roles: [dpo] }",
                "  mode: auto",
            ),
            vec!["case.yaml:23:9: error[auto-scope-all]: `scope: all` wipes whole accounts and always needs a human approval; `mode: auto` is not allowed"],
        ),
        (
            "unset environment variable",
            edit(JOB, "${CASE_DB_URL}", "${NOT_SET_ANYWHERE}"),
            vec!["case.yaml:7:8: error[unset-variable]: environment variable `NOT_SET_ANYWHERE` is not set"],
        ),
        (
            "date operator on a text field",
            edit(JOB, "      in: [private]", "      after: 2017-01-01"),
            vec!["case.yaml:12:14: error[operator-type]: `after` compares dates, but `kind` is a string field"],
        ),
        (
            "two operators in one condition",
            edit(JOB, "      in: [private]", "      in: [private]\n      eq: private"),
            vec!["case.yaml:11:7: error[condition-operator]: a condition takes exactly one operator"],
        ),
        (
            "two heads in one condition",
            edit(JOB, "    - none: purchases\n", "    - none: purchases\n      field: kind\n"),
            vec!["case.yaml:13:7: error[condition-head]: a condition takes one of `field`, `has`, `none`, `any`, `not`, `sum`, `count`, `max`, `min` or `criterion`, not several (here `field` and `none`)"],
        ),
        (
            "operator next to a relation",
            edit(JOB, "    - none: purchases\n", "    - none: purchases\n      eq: 3\n"),
            vec!["case.yaml:14:7: error[unknown-key]: `eq` cannot be used with `none`"],
        ),
        (
            "where given as text",
            edit(
                JOB,
                "  where:\n    - field: kind\n      in: [private]\n    - none: purchases\n      where:\n        - field: purchased_at\n          after: 2017-12-31\n",
                "  where: kind = private\n",
            ),
            vec!["case.yaml:10:10: error[wrong-type]: expected a mapping or a list, found text"],
        ),
        (
            "unknown system model",
            edit(JOB, "system: retail-crm", "system: retail-cmr"),
            vec!["case.yaml:5:11: error[unknown-system]: no system model named `retail-cmr`"],
        ),
        (
            "typed confirmation of an unknown field",
            edit(JOB, "approval:\n", "approval:\n  confirmations:\n    - typed: { field: owner_mail, prompt: Owner e-mail }\n"),
            vec!["case.yaml:24:23: error[unknown-field]: `customer` has no field `owner_mail`"],
        ),
        (
            "stations confirmation where the model has none",
            edit(JOB, "approval:\n", "approval:\n  confirmations: [stations]\n"),
            vec!["case.yaml:23:19: error[no-stations]: `customer` declares no `stations` in the system model"],
        ),
        (
            "misspelt connector",
            edit(JOB, "connector: sqlite", "connector: sqlit"),
            vec!["case.yaml:6:14: error[unknown-connector]: no connector named `sqlit`"],
        ),
        (
            "connector without a url",
            edit(JOB, "  url: ${CASE_DB_URL}\n", ""),
            vec!["case.yaml:4:1: error[missing-url]: `target.url` is needed to reach a sqlite database"],
        ),
        (
            "model: relation to an unknown entity",
            edit(MODEL, "entity: order,", "entity: ordr,"),
            vec!["case.yaml:11:25: error[unknown-entity]: the model has no entity `ordr`"],
        ),
        (
            "model: deletion in a circle",
            edit(MODEL, "      placed_at: { type: datetime }\n", "      placed_at: { type: datetime }\n    relations:\n      buyer: { entity: customer, foreign_key: id, on_delete: delete }\n"),
            vec!["case.yaml:18:62: error[delete-cycle]: deleting goes round in a circle: customer → order → customer"],
        ),
        (
            "model: criterion uses an undeclared parameter",
            edit(MODEL, "param('min')", "param('minimum')"),
            vec!["case.yaml:21:10: error[unknown-param]: the template uses `param(\"minimum\")`, but `big-spender` declares no parameter `minimum`"],
        ),
        (
            "model: unknown time zone",
            edit(MODEL, "Europe/Lisbon", "Europe/Lisboa"),
            vec!["case.yaml:3:11: error[unknown-timezone]: `Europe/Lisboa` is not a time zone"],
        ),
        (
            "model: unique field with a repeating strategy",
            edit(MODEL, "strategy: hash-email, unique", "strategy: redact, unique"),
            vec!["case.yaml:9:51: error[strategy-unique]: `redact` can give two records the same value, but `email` is unique"],
        ),
        (
            "model: a change request names fields that do not exist",
            edit(MODEL, "      placed_at: { type: datetime }\n", "      placed_at: { type: datetime }\n      phone: { type: string }\n      total: { type: decimal }\n    rectifies:\n      entity: customer\n      foreign_key: customer_id\n      fields: { phone: phone, total: email }\n      set: { placed_at: null }\n"),
            vec![
                "case.yaml:22:24: error[unknown-field]: `customer` has no field `phone` for a request to change",
                "case.yaml:22:38: error[rectify-type]: `order.total` holds a decimal but `customer.email` a string",
            ],
        ),
        (
            "model: a change request that is never marked applied",
            edit(MODEL, "      placed_at: { type: datetime }\n", "      placed_at: { type: datetime }\n      phone: { type: string }\n    rectifies:\n      entity: customer\n      foreign_key: customer_id\n      fields: { phone: email }\n      set: {}\n"),
            vec!["case.yaml:22:12: error[rectify-set]: `order` rectifies but sets nothing on an applied request, so every run would apply it again"],
        ),
        (
            "rectify an entity that holds no change requests",
            edit(JOB, "  type: anonymize\n  categories: [identity, contact]", "  type: rectify"),
            vec!["case.yaml:20:9: error[cannot-rectify]: `customer` has no `rectifies` definition in the system model, so its records are not change requests to apply"],
        ),
        (
            "malformed YAML",
            "version: 1\nselection: [a, b\n".to_owned(),
            vec!["case.yaml:3:1: error[yaml-syntax]: invalid YAML: while parsing a flow sequence, expected ',' or ']'"],
        ),
        (
            "tab in indentation",
            "version: 1\nselection:\n\tentity: x\n".to_owned(),
            vec!["case.yaml:3:1: error[yaml-syntax]: a tab character is used for indentation"],
        ),
        (
            "duplicate key",
            "version: 1\nname: a\nversion: 2\nselection: {}\n".to_owned(),
            vec!["case.yaml:3:1: error[duplicate-key]: duplicate key `version`"],
        ),
        (
            "nesting too deep",
            format!("selection: {}{}\n", "{any: [".repeat(70), "]}".repeat(70)),
            vec!["case.yaml:1:235: error[too-deep]: nesting deeper than 64 levels"],
        ),
        (
            "alias bomb",
            {
                let mut s = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
                for (i, c) in "bcdefgh".chars().enumerate() {
                    let prev = (b'a' + i as u8) as char;
                    s.push_str(&format!("{c}: &{c} [{}]\n", vec![format!("*{prev}"); 10].join(", ")));
                }
                s.push_str("selection: {}\n");
                s
            },
            vec!["case.yaml:6:8: error[too-many-nodes]: the document expands to more than 200000 values"],
        ),
        (
            "empty file",
            String::new(),
            vec!["case.yaml:1:1: error[empty-file]: the file is empty"],
        ),
        (
            "comments only",
            "# nothing here\n".to_owned(),
            vec!["case.yaml:1:1: error[empty-file]: the file is empty"],
        ),
        (
            "two documents",
            "selection: {}\n---\nselection: {}\n".to_owned(),
            vec!["case.yaml:2:1: error[multiple-documents]: the file holds more than one YAML document"],
        ),
        (
            "neither job nor model",
            "just: text\n".to_owned(),
            vec!["case.yaml:1:1: error[unknown-document]: this is neither a job (it has no `selection`) nor a system model (it has no `entities`)"],
        ),
        (
            "a list at the top",
            "- a\n- b\n".to_owned(),
            vec!["case.yaml:1:1: error[not-a-mapping]: expected a mapping at the top level (a job or a system model)"],
        ),
        (
            "custom tag",
            edit(JOB, "cap: 500", "cap: !env CAP"),
            vec!["case.yaml:18:8: error[unsupported-tag]: unsupported tag `!env`"],
        ),
        (
            "complex key",
            "? [a, b]\n: c\nselection: {}\n".to_owned(),
            vec!["case.yaml:1:3: error[complex-key]: a mapping key must be a plain value, not a list or mapping"],
        ),
    ]
}

#[test]
fn every_error_class_at_its_place() {
    let mut failures = Vec::new();
    for (name, text, expected) in cases() {
        let got: Vec<String> = diagnostics("case.yaml", &text)
            .iter()
            .map(diag::one_line)
            .collect();
        if got != expected {
            failures.push(format!(
                "{name}:\n  expected {expected:#?}\n  got      {got:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rendered_diagnostics() {
    let mut out = String::new();
    for (name, text, _) in cases() {
        out.push_str(&format!("=== {name}\n"));
        for d in diagnostics("case.yaml", &text) {
            out.push_str(&diag::render_text(&d, TextStyle::default()));
        }
        out.push('\n');
    }
    insta::assert_snapshot!(out);
}

#[test]
fn the_base_cases_are_valid() {
    assert!(
        diagnostics("case.yaml", JOB).is_empty(),
        "{:#?}",
        diagnostics("case.yaml", JOB)
    );
    assert!(
        diagnostics("case.yaml", MODEL).is_empty(),
        "{:#?}",
        diagnostics("case.yaml", MODEL)
    );
}

#[test]
fn expanded_values_never_appear_in_diagnostics() {
    // The URL comes from the environment; make it wrong in a way the schema
    // reports, and check nothing shows the value.
    let text = edit(JOB, "connector: sqlite", "connector: ${CASE_DB_URL}");
    let ds = diagnostics("case.yaml", &text);
    assert!(!ds.is_empty());
    for d in &ds {
        let rendered = format!(
            "{}{}{}",
            diag::render_text(d, TextStyle::default()),
            diag::to_json(d),
            diag::to_github(d)
        );
        assert!(!rendered.contains("secret-path"), "{rendered}");
    }
}

#[test]
fn a_very_large_file_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yaml");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(50 * 1024 * 1024).unwrap();
    let ds = match workspace().load(&path) {
        Err(ds) => ds,
        Ok(_) => panic!("a 50 MB file was accepted"),
    };
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].code, "file-too-large");
    assert!(
        ds[0].message.contains("52428800 bytes"),
        "{}",
        ds[0].message
    );
}

#[test]
fn invalid_utf8_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.yaml");
    std::fs::write(&path, b"version: 1\nname: caf\xe9\n").unwrap();
    let ds = match workspace().load(&path) {
        Err(ds) => ds,
        Ok(_) => panic!("invalid UTF-8 was accepted"),
    };
    assert_eq!(ds[0].code, "invalid-utf8");
    let p = ds[0].position().unwrap();
    assert_eq!((p.line, p.col), (2, 10));
}

#[test]
fn duplicate_job_names_in_one_folder() {
    let dir = tempfile::tempdir().unwrap();
    let job = JOB.replace("${CASE_DB_URL}", "sqlite://x.db");
    std::fs::write(dir.path().join("a.yaml"), &job).unwrap();
    std::fs::write(dir.path().join("b.yaml"), &job).unwrap();
    let sub = dir.path().join("other");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("c.yaml"), &job).unwrap();
    let report = workspace().validate_paths(&[dir.path().to_path_buf()]);
    assert_eq!(report.files, 3);
    let codes: Vec<&str> = report.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["duplicate-job-name"], "{:#?}", report.diagnostics);
    assert!(
        report.diagnostics[0]
            .file
            .as_ref()
            .unwrap()
            .path
            .ends_with("b.yaml")
    );
}

#[test]
fn models_named_on_the_command_line_are_found_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.yaml"), MODEL).unwrap();
    let job = "\
version: 1
name: uses-case-model
target: { system: case-model, connector: sqlite, url: 'sqlite://x.db' }
selection:
  entity: customer
  where: [{ criterion: big-spender, params: { min: 100 } }]
  cap: 10
action: { type: anonymize }
";
    std::fs::write(dir.path().join("job.yaml"), job).unwrap();
    let report = workspace().validate_paths(&[dir.path().to_path_buf()]);
    assert!(report.is_ok(), "{:#?}", report.diagnostics);
    assert_eq!(report.files, 2);
}

#[test]
fn loading_gives_typed_values() {
    let file = SourceFile::new("case.yaml", JOB.to_owned());
    let Ok(Validated::Job(j)) = workspace().load_source(&file) else {
        panic!("the base job does not load");
    };
    assert_eq!(j.job.selection.cap, 500);
    assert_eq!(j.job.target.url.as_deref(), Some("sqlite://secret-path.db"));
    assert_eq!(j.model.model.name, "retail-crm");
    assert!(j.doc.expanded.contains("/target/url"));
    let _: &Arc<SourceFile> = &j.doc.file;
}

//! The scenario library end to end, through the `lethe` binary, on every
//! connector: the scenario's generated data, its job from `jobs/`, plan →
//! approval → gates → apply (with its verification), and the whole database
//! afterwards. Reports and the database after the run are snapshots every
//! backend shares.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

use std::path::{Path, PathBuf};

use lethe::demo::isp::IspSpec;
use lethe::demo::portal::PortalSpec;
use lethe::demo::pos::PosSpec;
use lethe::demo::salon::{SalonSpec, statements};
use lethe_conformance::{Backend, NOW, TestDb, conformance, digest, lethe, shared_snapshots};

const APPROVER: &str = "dpo@approvers.example";
const PROJECT: &str = "[[approver]]\nid = \"dpo@approvers.example\"\nroles = [\"dpo\"]\n\n[[approver]]\nid = \"gerente@loja.example\"\nroles = [\"store\"]\n";

/// A report with what differs between runs and engines replaced: the
/// target's location, the plan id, run ids and times.
fn normal(text: &str, db: &TestDb) -> String {
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.replace(&db.dir.path().display().to_string(), "<dir>");
        let l = if let Some(i) = l.find(" — ") {
            if l.trim_start().starts_with("system") {
                format!("{} — <target>", &l[..i])
            } else {
                l
            }
        } else {
            l
        };
        let words: Vec<String> = l
            .split(' ')
            .map(|w| {
                let hex = w.len() >= 32 && w.chars().all(|c| c.is_ascii_hexdigit());
                // Run ids (20261126T000043-2d3872), times, and paths
                // holding them.
                let run = w.contains('T')
                    && w.chars().filter(char::is_ascii_digit).count() >= 8
                    && w.contains("20");
                if hex {
                    "<id>".to_owned()
                } else if run {
                    "<run/time>".to_owned()
                } else {
                    w.to_owned()
                }
            })
            .collect();
        let l = words.join(" ");
        let t = l.trim_start();
        if t.starts_with("target ") || t.starts_with("started ") || t.starts_with("finished ") {
            continue;
        }
        out.push(l);
    }
    out.join("\n")
}

fn job(db: &TestDb, backend: Backend, name: &str, scenario: &str) -> PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../jobs")
            .join(scenario)
            .join(format!("{name}.yaml")),
    )
    .unwrap();
    let url_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("url:"))
        .unwrap()
        .to_owned();
    let text = text
        .replace(&url_line, &format!("  url: \"{}\"", db.url))
        .replace(
            "connector: sqlite",
            &format!("connector: {}", backend.connector()),
        );
    let path = db.path(&format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    std::fs::write(
        db.path("lethe.toml"),
        format!("{PROJECT}{}", lethe_conformance::backup_toml()),
    )
    .unwrap();
    path
}

/// What a scenario's run left: the reports and the database before and after.
struct Run {
    db: TestDb,
    plan: String,
    applied: String,
    before: lethe_conformance::Dump,
    after: lethe_conformance::Dump,
}

/// Loads `sql`, then plans, approves and applies the scenario's job through
/// the binary, checking the gates on the way.
async fn run(
    backend: Backend,
    sql: &[String],
    scenario: &str,
    name: &str,
    tz: &str,
    acks: &[&str],
) -> Option<Run> {
    let db = TestDb::new(backend).await?;
    db.exec(&(sql.join(";\n") + ";\n")).await;
    let before = db.dump(tz).await;
    let file = format!("{name}.yaml");
    job(&db, backend, name, scenario);
    let (code, plan) = lethe(&db, &["plan", &file, "-o", "plan.json", "--now", NOW]);
    assert_eq!(code, 0, "{plan}");
    assert_eq!(before, db.dump(tz).await, "planning changed the database");
    let (code, gates) = lethe(&db, &["gates", "plan.json"]);
    assert_eq!(code, 3, "an unapproved plan passed its gates: {gates}");
    let mut approve = vec![
        "approve",
        "plan.json",
        "--by",
        APPROVER,
        "--role",
        "dpo",
        "--reason",
        "política de retenção / политика хранения",
    ];
    for a in acks {
        approve.extend(["--ack", a]);
    }
    let (code, text) = lethe(&db, &approve);
    assert_eq!(code, 0, "{text}");
    let (code, text) = lethe(&db, &["gates", "plan.json"]);
    assert_eq!(code, 0, "{text}");
    let (code, applied) = lethe(&db, &["apply", "plan.json", "--yes"]);
    assert_eq!(code, 0, "{applied}");
    assert!(applied.contains("Verification  passed"), "{applied}");
    let after = db.dump(tz).await;
    Some(Run {
        db,
        plan,
        applied,
        before,
        after,
    })
}

fn snapshots(name: &str, r: &Run) {
    shared_snapshots().bind(|| {
        insta::assert_snapshot!(format!("{name}.plan"), normal(&r.plan, &r.db));
        insta::assert_snapshot!(format!("{name}.apply"), normal(&r.applied, &r.db));
        insta::assert_snapshot!(format!("{name}.after"), digest(&r.after));
    });
}

/// salon-crm: purge clients by last visit and total spent; visits, notes
/// and SMS reminders cascade, payments stay unlinked; the duplicate check
/// shows clients sharing a phone or an e-mail; the verification proves
/// none of the purged clients' phones and e-mails is left anywhere.
async fn salon_crm_purge_lapsed_clients(backend: Backend) {
    let spec = SalonSpec {
        clients: 60,
        seed: 11,
        now: NOW.parse().unwrap(),
    };
    let sql = statements(backend.engine(), &spec);
    let Some(r) = run(
        backend,
        &sql,
        "salon-crm",
        "purge-lapsed-clients",
        "Europe/Moscow",
        &[],
    )
    .await
    else {
        return;
    };
    let (before, after) = (&r.before, &r.after);

    // The planted clients: 1, 2 (one phone, written two ways), 3 (an
    // e-mail another client has in another case) and 6 (never came) are
    // purged; 4 (comes every month) and 5 (spent 5000 ₽ and more) stay.
    let ids: Vec<&str> = after["clients"].iter().map(|r| r[0].as_str()).collect();
    for gone in ["1", "2", "3", "6"] {
        assert!(!ids.contains(&gone), "client {gone} was not purged");
    }
    for kept in ["4", "5"] {
        assert!(ids.contains(&kept), "client {kept} was purged");
    }
    assert!(
        after["sms_messages"]
            .iter()
            .all(|r| ids.contains(&r[1].as_str())),
        "an SMS of a purged client is left"
    );
    assert!(
        after["payments"]
            .iter()
            .all(|r| r[1] == "∅" || ids.contains(&r[1].as_str())),
        "a payment still points at a purged client"
    );
    assert_eq!(
        after["payments"].len(),
        before["payments"].len(),
        "payments are kept for the accounts"
    );
    assert!(
        r.plan.contains("client 3 ↔ client 4 (same email)"),
        "{}",
        r.plan
    );
    snapshots("salon-crm", &r);
}

/// isp-billing: suspended contracts cancelled; the ones with equipment on
/// loan ignored with that reason; a removal order per cancelled contract;
/// the customer deactivated with their last active contract. `keep_login`:
/// logins stay linked (the regulator's report), else they are unlinked.
async fn isp_billing(backend: Backend, keep_login: bool) {
    let spec = IspSpec {
        customers: 40,
        seed: 5,
        now: NOW.parse().unwrap(),
    };
    let sql = lethe::demo::isp::statements(backend.engine(), &spec);
    let name = if keep_login {
        "cancel-suspended-keep-login"
    } else {
        "cancel-suspended"
    };
    let Some(r) = run(
        backend,
        &sql,
        "isp-billing",
        name,
        "America/Sao_Paulo",
        &["recent-cutoff"],
    )
    .await
    else {
        return;
    };
    let after = &r.after;
    let contract = |id: &str| {
        after["contracts"]
            .iter()
            .find(|c| c[0] == id)
            .unwrap()
            .clone()
    };
    let customer = |id: &str| {
        after["customers"]
            .iter()
            .find(|c| c[0] == id)
            .unwrap()
            .clone()
    };
    // Contract 1 (customer 1's only one): cancelled, customer inactive.
    assert_eq!(contract("1")[3], "cancelado");
    assert_eq!(customer("1")[7], "inativo");
    // Contract 2 cancelled; customer 2 keeps contract 3, so stays active.
    assert_eq!(contract("2")[3], "cancelado");
    assert_eq!(contract("3")[3], "ativo");
    assert_eq!(customer("2")[7], "ativo");
    // Contract 4: equipment on loan, ignored with the reason.
    assert_eq!(contract("4")[3], "suspenso");
    assert!(
        r.plan
            .contains("equipamento em comodato ainda não devolvido"),
        "{}",
        r.plan
    );
    // Contract 5: suspended 30 days ago, too recent.
    assert_eq!(contract("5")[3], "suspenso");
    // One removal order per cancelled contract.
    let cancelled: Vec<String> = r.before["contracts"]
        .iter()
        .zip(after["contracts"].iter())
        .filter(|(b, a)| b[3] != "cancelado" && a[3] == "cancelado")
        .map(|(_, a)| a[0].clone())
        .collect();
    let orders: Vec<String> = after["service_orders"]
        .iter()
        .map(|o| o[1].clone())
        .collect();
    assert_eq!(orders.len(), cancelled.len());
    for c in &cancelled {
        assert!(orders.contains(c), "no removal order for contract {c}");
    }
    // Logins of cancelled contracts: linked with keep-login, else unlinked.
    let login_of_1 = after["logins"].iter().find(|l| l[0] == "1").unwrap();
    assert_eq!(login_of_1[1], if keep_login { "1" } else { "∅" });
    snapshots(&format!("isp-billing.{name}"), &r);
}

async fn isp_billing_cancel_keeping_logins(backend: Backend) {
    isp_billing(backend, true).await;
}

async fn isp_billing_cancel_unlinking_logins(backend: Backend) {
    isp_billing(backend, false).await;
}

/// retail-crm: delete at most 500 private customers a run, never a business; the
/// review list exported as CSV; run again, each run its own plan, until
/// the plan selects nobody; a cut-off less than a year ago is a warning an
/// approver must acknowledge.
async fn retail_crm_until_none_are_left(backend: Backend) {
    retail_crm_runs(backend, "delete-lapsed-private").await;
}

/// The same with anonymize: the model's `anonymized` marker keeps each run
/// from selecting the previous runs' customers again.
async fn retail_crm_anonymize_until_none_are_left(backend: Backend) {
    retail_crm_runs(backend, "anonymize-lapsed-private").await;
}

async fn retail_crm_runs(backend: Backend, name: &str) {
    let Some(db) = TestDb::demo(backend, 1500).await else {
        return;
    };
    let tz = "Europe/Stockholm";
    let before = db.dump(tz).await;
    let kind = |id: &str| -> String {
        before["customers"]
            .iter()
            .find(|r| r[0] == id)
            .map(|r| r[9].clone())
            .unwrap_or_default()
    };
    job(&db, backend, name, "retail-crm");
    let job_file = format!("{name}.yaml");
    let mut plans = Vec::new();
    let mut selected_per_run = Vec::new();
    for run in 1..=10 {
        let (plan_file, export) = (format!("plan{run}.json"), format!("review{run}"));
        let (code, text) = lethe(
            &db,
            &[
                "plan",
                &job_file,
                "-o",
                &plan_file,
                "--export",
                &export,
                "--detailed-exitcode",
                "--now",
                NOW,
            ],
        );
        if code == 0 {
            break;
        }
        assert_eq!(code, 2, "{text}");
        let csv = std::fs::read_to_string(db.path(&export).join("selected.csv")).unwrap();
        let keys: Vec<&str> = csv.lines().skip(1).collect();
        assert!(
            !keys.is_empty() && keys.len() <= 500,
            "run {run}: {} selected",
            keys.len()
        );
        for k in &keys {
            assert_eq!(
                kind(k.trim_matches('"')),
                "private",
                "a business was selected"
            );
        }
        selected_per_run.push(keys.len());
        let plan: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(db.path(&plan_file)).unwrap()).unwrap();
        plans.push(plan["plan_id"].as_str().unwrap().to_owned());
        let mut approve = vec![
            "approve", &plan_file, "--by", APPROVER, "--role", "dpo", "--reason", "gallring",
        ];
        // The cap deferred records to a later run: the approver says so.
        let warnings = plan["warnings"].as_array().unwrap();
        if warnings.iter().any(|w| w["id"] == "cap-reached") {
            approve.extend(["--ack", "cap-reached"]);
        }
        let (code, text) = lethe(&db, &approve);
        assert_eq!(code, 0, "{text}");
        let (code, text) = lethe(&db, &["apply", &plan_file, "--yes"]);
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("Verification  passed"), "{text}");
    }
    assert!(
        selected_per_run.len() >= 2,
        "one run was enough: {selected_per_run:?}"
    );
    assert!(
        selected_per_run[..selected_per_run.len() - 1]
            .iter()
            .all(|n| *n == 500)
    );
    let mut distinct = plans.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), plans.len(), "a plan was reused");
    let after = db.dump(tz).await;
    // Businesses untouched.
    let businesses = |d: &lethe_conformance::Dump| -> Vec<Vec<String>> {
        d["customers"]
            .iter()
            .filter(|r| r[9] == "business")
            .cloned()
            .collect()
    };
    assert_eq!(
        businesses(&before),
        businesses(&after),
        "a business changed"
    );

    // A cut-off less than a year before the clock needs an acknowledgement.
    let text = std::fs::read_to_string(db.path(&job_file))
        .unwrap()
        .replace("-2y", "-180d")
        .replace(&format!("name: {name}"), "name: delete-recent");
    std::fs::write(db.path("delete-recent.yaml"), text).unwrap();
    let (code, text) = lethe(
        &db,
        &[
            "plan",
            "delete-recent.yaml",
            "-o",
            "recent.json",
            "--now",
            NOW,
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("recent-cutoff"), "{text}");
    lethe(
        &db,
        &[
            "approve",
            "recent.json",
            "--by",
            APPROVER,
            "--role",
            "dpo",
            "--reason",
            "x",
        ],
    );
    let (code, text) = lethe(&db, &["gates", "recent.json"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("ack:recent-cutoff"), "{text}");

    shared_snapshots().bind(|| {
        insta::assert_snapshot!(
            format!("retail-crm.{name}.runs"),
            format!("selected per run: {selected_per_run:?}\n{}", digest(&after))
        );
    });
}

/// retail-pos: a partial wipe by categories (sales, stock) and then a total
/// wipe (`scope: all`) of a store's account; every active station confirms,
/// the total wipe also needs the owner's e-mail typed in; the second plan
/// shows the first wipe; an account with service orders or consignment is
/// blocked.
async fn retail_pos_partial_then_total_wipe(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let spec = PosSpec {
        sales: 40,
        seed: 3,
        now: NOW.parse().unwrap(),
        local_only_data: false,
    };
    let partial = job(&db, backend, "wipe-sales-and-stock", "retail-pos");
    if !backend.runs_sql() {
        // The jobs' guards are named SQL checks: refused before planning.
        let e = lethe::validate::Workspace::default()
            .load_job(&partial)
            .unwrap_err();
        assert!(
            e.iter().any(|d| d.code == "unsupported-by-connector"),
            "{e:?}"
        );
        return;
    }
    job(&db, backend, "wipe-account", "retail-pos");
    db.exec(&(lethe::demo::pos::statements(backend.engine(), &spec).join(";\n") + ";\n"))
        .await;
    let tz = "America/Sao_Paulo";
    let before = db.dump(tz).await;
    let ok = |args: &[&str]| {
        let (code, text) = lethe(&db, args);
        assert_eq!(code, 0, "{args:?}: {text}");
        text
    };
    let confirm_stations = |plan: &str| {
        for station in ["Caixa 1", "Caixa 2"] {
            ok(&[
                "confirm",
                plan,
                "--station",
                station,
                "--by",
                "gerente@loja.example",
            ]);
        }
    };
    let approve = |plan: &str| {
        ok(&[
            "approve",
            plan,
            "--by",
            APPROVER,
            "--role",
            "dpo",
            "--reason",
            "pedido do titular da conta",
            // A whole account's rows hang off one record.
            "--ack",
            "large-cascade",
        ]);
    };

    // The partial wipe.
    let plan1 = ok(&[
        "plan",
        "wipe-sales-and-stock.yaml",
        "-o",
        "p1.json",
        "--now",
        NOW,
    ]);
    let (code, gates) = lethe(&db, &["gates", "p1.json"]);
    assert_eq!(code, 3, "{gates}");
    assert!(
        gates.contains("station:Caixa 1") && gates.contains("station:Caixa 2"),
        "{gates}"
    );
    assert!(
        !gates.contains("Caixa antigo"),
        "an inactive station must confirm: {gates}"
    );
    confirm_stations("p1.json");
    approve("p1.json");
    let applied1 = ok(&["apply", "p1.json", "--yes"]);
    let mid = db.dump(tz).await;
    for gone in ["sales", "sale_items", "stock_movements"] {
        assert!(mid[gone].is_empty(), "{gone} left: {}", mid[gone].len());
    }
    for kept in [
        "accounts",
        "stations",
        "customers",
        "products",
        "finance_entries",
    ] {
        assert_eq!(mid[kept], before[kept], "{kept} changed");
    }

    // The total wipe: the first one is shown; the owner's e-mail typed in.
    let plan2 = ok(&["plan", "wipe-account.yaml", "-o", "p2.json", "--now", NOW]);
    assert!(plan2.contains("previous wipe"), "{plan2}");
    confirm_stations("p2.json");
    let (code, text) = lethe(
        &db,
        &[
            "confirm",
            "p2.json",
            "--value",
            "dono@outra.example",
            "--by",
            APPROVER,
        ],
    );
    assert_eq!(code, 1, "a wrong e-mail was accepted: {text}");
    ok(&[
        "confirm",
        "p2.json",
        "--value",
        " maria.santos@bompreco.example.com.br ",
        "--by",
        APPROVER,
    ]);
    approve("p2.json");
    let applied2 = ok(&["apply", "p2.json", "--yes"]);
    assert!(applied2.contains("Verification  passed"), "{applied2}");
    assert!(applied2.contains("previous wipe"), "{applied2}");
    let after = db.dump(tz).await;
    for (table, rows) in &after {
        assert!(rows.is_empty(), "{table} left: {}", rows.len());
    }

    shared_snapshots().bind(|| {
        insta::assert_snapshot!("retail-pos.partial.plan", normal(&plan1, &db));
        insta::assert_snapshot!("retail-pos.partial.apply", normal(&applied1, &db));
        insta::assert_snapshot!("retail-pos.partial.after", digest(&mid));
        insta::assert_snapshot!("retail-pos.total.plan", normal(&plan2, &db));
        insta::assert_snapshot!("retail-pos.total.apply", normal(&applied2, &db));
    });
}

/// retail-pos: an account that uses service orders or consignment cannot
/// be wiped from the portal: the plan is blocked, naming why.
async fn retail_pos_blocked_by_local_only_data(backend: Backend) {
    if !backend.runs_sql() {
        return;
    }
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let spec = PosSpec {
        sales: 5,
        seed: 3,
        now: NOW.parse().unwrap(),
        local_only_data: true,
    };
    db.exec(&(lethe::demo::pos::statements(backend.engine(), &spec).join(";\n") + ";\n"))
        .await;
    job(&db, backend, "wipe-account", "retail-pos");
    let (code, text) = lethe(
        &db,
        &["plan", "wipe-account.yaml", "-o", "p.json", "--now", NOW],
    );
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("Ordem de serviço") && text.contains("Consignação"),
        "{text}"
    );
    let (code, _) = lethe(&db, &["apply", "p.json", "--yes"]);
    assert_eq!(code, 3);
}

fn portal_sql(backend: Backend) -> Vec<String> {
    lethe::demo::portal::statements(
        backend.engine(),
        &PortalSpec {
            customers: 40,
            seed: 5,
            now: NOW.parse().unwrap(),
        },
    )
}

/// The row of `table` whose first column (the key) is `id`.
fn row<'a>(d: &'a lethe_conformance::Dump, table: &str, id: &str) -> &'a [String] {
    d[table]
        .iter()
        .find(|r| r[0] == id)
        .unwrap_or_else(|| panic!("{table} has no row {id}"))
}

/// customer-portal: the registration changes customers requested, applied
/// after an administrator approved the plan. The plan shows each request
/// beside the customer's data now, changed fields marked; a later request
/// for the same customer wins; a request for an e-mail another customer
/// has waits, with the reason; every applied request is marked and logs an
/// occurrence; a request older than the job's window is left alone.
async fn customer_portal_apply_approved_changes(backend: Backend) {
    let sql = portal_sql(backend);
    let Some(r) = run(
        backend,
        &sql,
        "customer-portal",
        "approve-pending-changes",
        "America/Sao_Paulo",
        &[],
    )
    .await
    else {
        return;
    };
    let (before, after) = (&r.before, &r.after);
    // clientes: id, nome, cpf, email, telefone, endereco, cidade, atualizado_em
    // alteracoes_cadastrais: id, cliente_id, status, empreendimento,
    //   solicitada_em, decidida_em, motivo, nome, email, telefone, endereco, cidade
    let req = |id: &str| row(before, "alteracoes_cadastrais", id);
    let status = |id: &str| row(after, "alteracoes_cadastrais", id)[2].clone();
    // 1: e-mail and phone.
    let c1 = row(after, "clientes", "1");
    assert_eq!((&c1[3], &c1[4]), (&req("1")[8], &req("1")[9]));
    assert_eq!(
        c1[5],
        row(before, "clientes", "1")[5],
        "the address was not asked for"
    );
    // 2 and 3: the later request wins where both give a value.
    let c2 = row(after, "clientes", "2");
    assert_eq!(c2[5], req("3")[10], "the later address wins");
    assert_eq!(c2[6], req("2")[11], "the city only the first request gave");
    assert_eq!(c2[4], req("3")[9]);
    // 4: the e-mail of customer 4 is unique: the request waits.
    assert_eq!(status("4"), "pendente");
    assert_eq!(
        row(after, "clientes", "3")[3],
        row(before, "clientes", "3")[3]
    );
    assert!(
        r.applied
            .contains("the requested `email` is already another cliente's"),
        "{}",
        r.applied
    );
    // 5: the same name (unchanged) and a new city.
    assert_eq!(row(after, "clientes", "5")[6], req("5")[11]);
    assert!(r.plan.contains("(unchanged)"), "{}", r.plan);
    // 7: asked 200 days ago, outside the job's window.
    assert_eq!(status("7"), "pendente");
    for id in ["1", "2", "3", "5", "6"] {
        assert_eq!(status(id), "aprovada", "request {id}");
    }
    let approved = |d: &lethe_conformance::Dump| {
        d["alteracoes_cadastrais"]
            .iter()
            .filter(|r| r[2] == "aprovada")
            .count()
    };
    let newly = approved(after) - approved(before);
    assert_eq!(
        after["ocorrencias"].len() - before["ocorrencias"].len(),
        newly,
        "one occurrence per applied request"
    );
    assert!(
        after["ocorrencias"]
            .iter()
            .any(|o| o[1] == "2" && o[3].contains("Alteração cadastral 3")),
        "{:?}",
        after["ocorrencias"]
    );
    // Nothing but the requests' fields changed on the customers.
    for (b, a) in before["clientes"].iter().zip(&after["clientes"]) {
        assert_eq!((&b[0], &b[1..3], &b[7]), (&a[0], &a[1..3], &a[7]));
    }
    assert!(r.plan.contains("Requested changes"), "{}", r.plan);
    snapshots("customer-portal", &r);

    // The backup puts every customer and request back, and removes the
    // occurrences the run logged.
    let backup = r
        .applied
        .split("lethe restore ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .expect("the apply report names the backup");
    let (code, text) = lethe(&r.db, &["restore", backup, "--identity", "backup-key.txt"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        r.db.dump("America/Sao_Paulo").await,
        r.before,
        "restore did not undo the run"
    );
}

/// customer-portal in batches of one: a customer's two requests land in
/// different batches, the second rewrites what the first wrote, and the
/// verification still passes (it checks what the run left last).
async fn customer_portal_one_request_a_batch(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    db.exec(&(portal_sql(backend).join(";\n") + ";\n")).await;
    let before = db.dump("America/Sao_Paulo").await;
    let path = job(&db, backend, "approve-pending-changes", "customer-portal");
    let text = std::fs::read_to_string(&path).unwrap() + "  batch_size: 1\n";
    std::fs::write(&path, text).unwrap();
    let (code, out) = lethe(
        &db,
        &[
            "plan",
            "approve-pending-changes.yaml",
            "-o",
            "p.json",
            "--now",
            NOW,
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = lethe(
        &db,
        &[
            "approve", "p.json", "--by", APPROVER, "--role", "dpo", "--reason", "aprovado",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = lethe(&db, &["apply", "p.json", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Verification  passed"), "{out}");
    let after = db.dump("America/Sao_Paulo").await;
    assert_eq!(
        row(&after, "clientes", "2")[5],
        row(&before, "alteracoes_cadastrais", "3")[10],
        "the later request's address"
    );
}

/// customer-portal: unique values inside one batch. Customer 4 also has a
/// request in the batch, yet still holds the e-mail customer 3 asks for;
/// and a later request asks for the e-mail an earlier one of the same
/// batch gave customer 1. Both wait, with the reason, in the plan and in
/// the run; the batch commits and the verification passes.
async fn customer_portal_unique_values_within_a_batch(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    db.exec(&(portal_sql(backend).join(";\n") + ";\n")).await;
    let planted = db.dump("America/Sao_Paulo").await;
    let taken = row(&planted, "alteracoes_cadastrais", "1")[8].clone();
    db.exec(&format!(
        "INSERT INTO alteracoes_cadastrais (id, cliente_id, status, empreendimento, solicitada_em, telefone) \
         VALUES (900, 4, 'pendente', 'Loteamento Parque dos Ipês', '2026-05-31 10:00:00', '(11) 90000-0000');\n\
         INSERT INTO alteracoes_cadastrais (id, cliente_id, status, empreendimento, solicitada_em, email) \
         VALUES (901, 7, 'pendente', 'Loteamento Parque dos Ipês', '2026-05-31 11:00:00', '{taken}');\n"
    ))
    .await;
    let before = db.dump("America/Sao_Paulo").await;
    job(&db, backend, "approve-pending-changes", "customer-portal");
    let (code, plan) = lethe(
        &db,
        &[
            "plan",
            "approve-pending-changes.yaml",
            "-o",
            "p.json",
            "--now",
            NOW,
        ],
    );
    assert_eq!(code, 0, "{plan}");
    assert_eq!(
        plan.matches("apply leaves this request pending").count(),
        2,
        "{plan}"
    );
    let (code, out) = lethe(
        &db,
        &[
            "approve", "p.json", "--by", APPROVER, "--role", "dpo", "--reason", "aprovado",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = lethe(&db, &["apply", "p.json", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Verification  passed"), "{out}");
    assert!(out.contains("2 skipped"), "{out}");
    let after = db.dump("America/Sao_Paulo").await;
    let status = |id: &str| row(&after, "alteracoes_cadastrais", id)[2].clone();
    assert_eq!(
        (status("4"), status("901")),
        ("pendente".into(), "pendente".into())
    );
    assert_eq!(status("900"), "aprovada");
    assert_eq!(row(&after, "clientes", "1")[3], taken);
    assert_eq!(
        row(&after, "clientes", "7")[3],
        row(&before, "clientes", "7")[3]
    );
    assert_eq!(
        row(&after, "clientes", "4")[3],
        row(&before, "clientes", "4")[3]
    );
}

/// customer-portal: automatic approval applies phone-only requests with no
/// human approval; stale requests are rejected (marked, never applied).
async fn customer_portal_automatic_approval_and_rejection(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    db.exec(&(portal_sql(backend).join(";\n") + ";\n")).await;
    let before = db.dump("America/Sao_Paulo").await;
    // The markdown report (for a ticket) shows the requests side by side too.
    job(&db, backend, "approve-pending-changes", "customer-portal");
    let (code, md) = lethe(
        &db,
        &[
            "plan",
            "approve-pending-changes.yaml",
            "--format",
            "markdown",
            "--now",
            NOW,
        ],
    );
    assert_eq!(code, 0, "{md}");
    for want in [
        "### Requested changes",
        "| alteracao | cliente | field | now | requested |",
        "(unchanged)",
        "| `telefone` | `***",
        "⚠ the requested `email` is already another cliente's",
    ] {
        assert!(md.contains(want), "`{want}` missing:\n{md}");
    }
    assert!(md.contains("| **`"), "changed values are not marked:\n{md}");
    job(
        &db,
        backend,
        "auto-approve-phone-changes",
        "customer-portal",
    );
    let (code, text) = lethe(
        &db,
        &[
            "plan",
            "auto-approve-phone-changes.yaml",
            "-o",
            "auto.json",
            "--now",
            NOW,
        ],
    );
    assert_eq!(code, 0, "{text}");
    let (code, text) = lethe(&db, &["gates", "auto.json"]);
    assert_eq!(code, 0, "automatic approval needs no human: {text}");
    let (code, text) = lethe(&db, &["apply", "auto.json", "--yes"]);
    assert_eq!(code, 0, "{text}");
    let after = db.dump("America/Sao_Paulo").await;
    let status =
        |d: &lethe_conformance::Dump, id: &str| row(d, "alteracoes_cadastrais", id)[2].clone();
    assert_eq!(status(&after, "6"), "aprovada", "a phone-only request");
    assert_eq!(
        row(&after, "clientes", "6")[4],
        row(&before, "alteracoes_cadastrais", "6")[9]
    );
    for id in ["1", "2", "3", "4", "5"] {
        assert_eq!(
            status(&after, id),
            "pendente",
            "request {id} changes more than the phone"
        );
    }

    job(&db, backend, "reject-stale-requests", "customer-portal");
    let (code, text) = lethe(
        &db,
        &[
            "plan",
            "reject-stale-requests.yaml",
            "-o",
            "reject.json",
            "--now",
            NOW,
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("selected  1 "), "{text}");
    let (code, text) = lethe(
        &db,
        &[
            "approve",
            "reject.json",
            "--by",
            APPROVER,
            "--role",
            "dpo",
            "--reason",
            "sem resposta há 90 dias",
        ],
    );
    assert_eq!(code, 0, "{text}");
    let (code, text) = lethe(&db, &["apply", "reject.json", "--yes"]);
    assert_eq!(code, 0, "{text}");
    let last = db.dump("America/Sao_Paulo").await;
    assert_eq!(status(&last, "7"), "reprovada");
    assert_eq!(
        row(&last, "clientes", "6")[5],
        row(&before, "clientes", "6")[5],
        "a rejected request changes nothing"
    );
}

conformance!(
    customer_portal_apply_approved_changes,
    customer_portal_one_request_a_batch,
    customer_portal_unique_values_within_a_batch,
    customer_portal_automatic_approval_and_rejection,
    retail_crm_anonymize_until_none_are_left,
    retail_pos_partial_then_total_wipe,
    retail_pos_blocked_by_local_only_data,
    retail_crm_until_none_are_left,
    salon_crm_purge_lapsed_clients,
    isp_billing_cancel_keeping_logins,
    isp_billing_cancel_unlinking_logins,
);

/// `lethe new system` on each scenario's database produces a model that
/// validates and whose relations are exactly the database's foreign keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_system_models_each_scenario_database() {
    let now = NOW.parse().unwrap();
    let engine = Backend::Sqlite.engine();
    let scenarios: Vec<(&str, Vec<String>)> = vec![
        ("portal", portal_sql(Backend::Sqlite)),
        (
            "salon",
            statements(
                engine,
                &SalonSpec {
                    clients: 20,
                    seed: 1,
                    now,
                },
            ),
        ),
        (
            "isp",
            lethe::demo::isp::statements(
                engine,
                &IspSpec {
                    customers: 20,
                    seed: 1,
                    now,
                },
            ),
        ),
        (
            "pos",
            lethe::demo::pos::statements(
                engine,
                &PosSpec {
                    sales: 5,
                    seed: 1,
                    now,
                    local_only_data: true,
                },
            ),
        ),
    ];
    for (name, sql) in scenarios {
        let db = TestDb::new(Backend::Sqlite).await.unwrap();
        db.exec(&(sql.join(";\n") + ";\n")).await;
        let model = db.path("model.yaml");
        let (code, out) = lethe(
            &db,
            &[
                "new",
                "system",
                "--from",
                &db.url,
                "--name",
                name,
                "-o",
                model.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{name}: {out}");
        let (code, out) = lethe(&db, &["validate", model.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: the generated model is not valid:\n{out}");
        let m = match lethe::validate::Workspace::default().load(&model).unwrap() {
            lethe::validate::Validated::System(m) => m,
            _ => panic!("{name}: not a system model"),
        };
        let schema = db.connector(None, true).await.introspect().await.unwrap();
        let entity_of = |table: &str| {
            m.model
                .entities
                .iter()
                .find(|(_, e)| e.table == table)
                .map(|(n, _)| n.clone())
        };
        let mut expected = Vec::new();
        for t in &schema.tables {
            for fk in t.foreign_keys.iter().filter(|f| f.columns.len() == 1) {
                expected.push((
                    entity_of(&fk.references).unwrap(),
                    entity_of(&t.name).unwrap(),
                    fk.columns[0].clone(),
                ));
            }
        }
        let mut got: Vec<(String, String, String)> = m
            .model
            .entities
            .iter()
            .flat_map(|(parent, e)| {
                e.relations
                    .values()
                    .map(move |r| (parent.clone(), r.entity.clone(), r.foreign_key.clone()))
            })
            .collect();
        expected.sort();
        got.sort();
        assert_eq!(
            got, expected,
            "{name}: relations differ from the foreign keys"
        );
        assert!(!got.is_empty(), "{name}: no relations");
    }
}

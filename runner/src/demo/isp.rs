//! The isp-billing scenario's data: a Brazilian internet provider's
//! billing system — customers with CPF, contracts (plans, installation
//! address, suspension for non-payment), PPPoE logins, equipment lent on
//! comodato, and service orders.
//!
//! Deterministic and in the SQL every engine shares. Planted contracts the
//! scenario's jobs must meet: a customer's only suspended contract
//! (cancelled, the customer deactivated, a removal order opened), a
//! suspended contract beside an active one (the customer stays active), a
//! suspended contract whose router was never returned (ignored, with that
//! reason), and one suspended too recently.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::data::{Engine, Rng, lit as quote, opt};
use crate::spec::model::Locale;
use crate::strategy::words;

/// What to generate.
#[derive(Debug, Clone)]
pub struct IspSpec {
    pub customers: u64,
    pub seed: u64,
    /// "Today" for the data: every date lies before it.
    pub now: Timestamp,
}

const PLANS: &[(&str, i64)] = &[
    ("Fibra 100 Mega", 8990),
    ("Fibra 300 Mega", 9990),
    ("Fibra 500 Mega", 12990),
    ("Fibra 1 Giga", 19990),
    ("Rádio 20 Mega", 6990),
];
const ITEMS: &[&str] = &[
    "ONU Huawei HG8145V5",
    "Roteador TP-Link Archer C6",
    "ONU ZTE F670L",
    "Roteador Intelbras W6-1500",
];
const STREETS: &[&str] = &[
    "Rua das Flores",
    "Avenida Brasil",
    "Rua São João",
    "Rua Sete de Setembro",
    "Avenida Paulista",
    "Rua XV de Novembro",
];
const CITIES: &[&str] = &[
    "Campinas",
    "Sorocaba",
    "Ribeirão Preto",
    "Londrina",
    "Joinville",
];

/// The scenario's tables in `engine`'s SQL, parents first.
pub fn ddl(engine: Engine) -> Vec<String> {
    engine.statements(include_str!("isp.sql"))
}

/// A CPF with valid check digits, formatted `123.456.789-09`.
pub(crate) fn cpf(rng: &mut Rng) -> String {
    let mut d: Vec<u32> = (0..9).map(|_| rng.below(10) as u32).collect();
    for len in [9, 10] {
        let sum: u32 = d
            .iter()
            .enumerate()
            .map(|(i, x)| x * (len as u32 + 1 - i as u32))
            .sum();
        let r = (sum * 10) % 11;
        d.push(if r == 10 { 0 } else { r });
    }
    let s: String = d.iter().map(|x| char::from(b'0' + *x as u8)).collect();
    format!("{}.{}.{}-{}", &s[0..3], &s[3..6], &s[6..9], &s[9..11])
}

pub(crate) fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ã' => 'a',
            'é' | 'ê' => 'e',
            'í' => 'i',
            'ó' | 'ô' | 'õ' => 'o',
            'ú' | 'ü' => 'u',
            'ç' => 'c',
            c => c,
        })
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_lowercase()
}

struct Contract {
    plan: usize,
    status: &'static str,
    started_days: i64,
    suspended_days: Option<i64>,
    /// Equipment: None, or Some(returned).
    equipment: Option<bool>,
}

struct Customer {
    id: u64,
    first: String,
    last: String,
    cpf: String,
    phone: String,
    street: String,
    city: String,
    contracts: Vec<Contract>,
}

/// Every statement (DDL, then the rows), for `engine`.
pub fn statements(engine: Engine, spec: &IspSpec) -> Vec<String> {
    let tz = TimeZone::get("America/Sao_Paulo").unwrap_or(TimeZone::UTC);
    let at = |days: i64, minutes: i64| {
        (spec.now - (days * 24).hours() + minutes.minutes())
            .to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let w = words(Locale::PtBr);
    let mut rng = Rng(spec.seed ^ 0x15B1_11E6);
    let mut customers: Vec<Customer> = Vec::new();
    for id in 1..=spec.customers {
        let first = rng.pick(w.first_names).to_owned();
        let last = rng.pick(w.last_names).to_owned();
        let n = if rng.chance(20) { 2 } else { 1 };
        let mut contracts = Vec::new();
        for _ in 0..n {
            let started_days = 60 + rng.below(8 * 365) as i64;
            let (status, suspended_days) = match rng.below(10) {
                0..=5 => ("ativo", None),
                6..=7 => (
                    "suspenso",
                    Some(10 + rng.below(started_days.max(11) as u64 - 10) as i64),
                ),
                _ => ("cancelado", None),
            };
            let equipment = rng
                .chance(75)
                .then(|| status == "cancelado" || rng.chance(70));
            contracts.push(Contract {
                plan: rng.below(PLANS.len() as u64) as usize,
                status,
                started_days,
                suspended_days,
                equipment,
            });
        }
        customers.push(Customer {
            id,
            cpf: cpf(&mut rng),
            phone: format!(
                "({}) 9{:04}-{:04}",
                11 + rng.below(80),
                rng.below(10_000),
                rng.below(10_000)
            ),
            street: format!("{}, {}", rng.pick(STREETS), 1 + rng.below(2000)),
            city: rng.pick(CITIES).to_owned(),
            first,
            last,
            contracts,
        });
    }
    plant(&mut customers);

    let mut out = ddl(engine);
    let mut contract_id = 0u64;
    let mut login_id = 0u64;
    let mut equipment_id = 0u64;
    for c in &customers {
        let active = c.contracts.iter().any(|k| k.status != "cancelado");
        let email = format!(
            "{}.{}{}@example.com.br",
            ascii(&c.first),
            ascii(&c.last),
            c.id
        );
        let created = c
            .contracts
            .iter()
            .map(|k| k.started_days)
            .max()
            .unwrap_or(30)
            + 2;
        out.push(format!(
            "INSERT INTO customers (id, name, cpf, email, phone, address, city, status, created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {})",
            c.id,
            quote(&format!("{} {}", c.first, c.last)),
            quote(&c.cpf),
            quote(&email),
            quote(&c.phone),
            quote(&c.street),
            quote(&c.city),
            quote(if active { "ativo" } else { "inativo" }),
            quote(&at(created, 0)),
        ));
        for k in &c.contracts {
            contract_id += 1;
            let (plan, cents) = PLANS[k.plan];
            out.push(format!(
                "INSERT INTO contracts (id, customer_id, plan, status, address, started_at, suspended_at, monthly) VALUES ({contract_id}, {}, {}, {}, {}, {}, {}, {}.{:02})",
                c.id,
                quote(plan),
                quote(k.status),
                quote(&format!("{} — {}", c.street, c.city)),
                quote(&at(k.started_days, 600)),
                opt(k.suspended_days.map(|d| at(d, 180)).as_deref()),
                cents / 100,
                cents % 100,
            ));
            login_id += 1;
            out.push(format!(
                "INSERT INTO logins (id, contract_id, username, last_seen) VALUES ({login_id}, {}, {}, {})",
                if k.status == "cancelado" {
                    "NULL".to_owned()
                } else {
                    contract_id.to_string()
                },
                quote(&format!("{}.{}{}@pppoe", ascii(&c.first), ascii(&c.last), login_id)),
                quote(&at(k.suspended_days.unwrap_or(1), 45)),
            ));
            if let Some(returned) = k.equipment {
                equipment_id += 1;
                out.push(format!(
                    "INSERT INTO equipment (id, contract_id, item, serial, lent_at, returned_at) VALUES ({equipment_id}, {contract_id}, {}, {}, {}, {})",
                    quote(ITEMS[(equipment_id % ITEMS.len() as u64) as usize]),
                    quote(&format!("SN{:010}", equipment_id * 7919 + 104_729)),
                    quote(&at(k.started_days, 660)),
                    if returned {
                        quote(&at(k.suspended_days.unwrap_or(5).min(5), 0))
                    } else {
                        "NULL".to_owned()
                    },
                ));
            }
        }
    }
    out
}

/// The contracts the jobs must meet, over the first customers.
fn plant(customers: &mut [Customer]) {
    if customers.len() < 4 {
        return;
    }
    let suspended = |days: i64, equipment: Option<bool>| Contract {
        plan: 1,
        status: "suspenso",
        started_days: 900,
        suspended_days: Some(days),
        equipment,
    };
    // 1: one contract, suspended 200 days ago, router returned.
    customers[0].contracts = vec![suspended(200, Some(true))];
    // 2: suspended 300 days ago beside an active contract.
    customers[1].contracts = vec![
        suspended(300, None),
        Contract {
            plan: 3,
            status: "ativo",
            started_days: 400,
            suspended_days: None,
            equipment: Some(false),
        },
    ];
    // 3: suspended 250 days ago, the ONU never returned.
    customers[2].contracts = vec![suspended(250, Some(false))];
    // 4: suspended 30 days ago: too recent.
    customers[3].contracts = vec![suspended(30, Some(true))];
}

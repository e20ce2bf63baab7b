//! The customer-portal scenario's data: a Brazilian property developer's
//! ERP behind its customer portal — customers (with CPF), their purchase
//! contracts for lots and flats in the developments, the registration
//! changes they requested on the portal (pending, approved, rejected), and
//! the occurrences logged on each customer.
//!
//! Deterministic and in the SQL every engine shares. Planted requests the
//! scenario's jobs must meet (customers 1–6 and requests 1–7):
//! - request 1: customer 1 changes e-mail and phone;
//! - requests 2 and 3: customer 2 asks twice; the later one (3) changes
//!   the address again and the phone, and wins where both give a value;
//! - request 4: customer 3 asks for the e-mail customer 4 already has: the
//!   e-mail is unique, so the request waits (skipped, with the reason);
//! - request 5: customer 5 "changes" the name to the one on record and the
//!   city for real: only the city is marked changed;
//! - request 6: customer 6 changes only the phone (what the automatic
//!   approval job accepts);
//! - request 7: customer 6 asked long ago and never got an answer: stale,
//!   for the rejection job.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::data::{Engine, Rng, lit as quote, opt};
use super::isp::{ascii, cpf};
use crate::spec::model::Locale;
use crate::strategy::words;

/// What to generate.
#[derive(Debug, Clone)]
pub struct PortalSpec {
    pub customers: u64,
    pub seed: u64,
    /// "Today" for the data: every date lies before it.
    pub now: Timestamp,
}

const DEVELOPMENTS: &[&str] = &[
    "Residencial Jardim das Palmeiras",
    "Loteamento Parque dos Ipês",
    "Edifício Mirante do Vale",
];
const STREETS: &[&str] = &[
    "Rua das Acácias",
    "Avenida Brasil",
    "Rua São Bento",
    "Rua Sete de Setembro",
    "Alameda Santos",
    "Rua XV de Novembro",
];
const CITIES: &[&str] = &[
    "Campinas",
    "Sorocaba",
    "Ribeirão Preto",
    "Londrina",
    "Uberlândia",
];
const DOMAINS: &[&str] = &["gmail.com", "hotmail.com", "uol.com.br", "terra.com.br"];

/// The scenario's tables in `engine`'s SQL, parents first.
pub fn ddl(engine: Engine) -> Vec<String> {
    engine.statements(include_str!("portal.sql"))
}

struct Customer {
    id: u64,
    name: String,
    cpf: String,
    email: String,
    phone: String,
    street: String,
    city: String,
}

/// A change request: (customer, status, days ago, fields given).
struct Request {
    customer: u64,
    status: &'static str,
    days_ago: i64,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    street: Option<String>,
    city: Option<String>,
}

impl Request {
    fn new(customer: u64, status: &'static str, days_ago: i64) -> Self {
        Self {
            customer,
            status,
            days_ago,
            name: None,
            email: None,
            phone: None,
            street: None,
            city: None,
        }
    }
}

fn phone(rng: &mut Rng) -> String {
    format!(
        "(1{}) 9{:04}-{:04}",
        1 + rng.below(9),
        rng.below(10_000),
        rng.below(10_000)
    )
}

fn street(rng: &mut Rng) -> String {
    format!("{}, {}", rng.pick(STREETS), 10 + rng.below(1990))
}

/// Every statement (DDL, then the rows), for `engine`.
pub fn statements(engine: Engine, spec: &PortalSpec) -> Vec<String> {
    let tz = TimeZone::get("America/Sao_Paulo").unwrap_or(TimeZone::UTC);
    let at = |days: i64, minutes: i64| {
        (spec.now - (days * 24).hours() + minutes.minutes())
            .to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let day = |days: i64| {
        (spec.now - (days * 24).hours())
            .to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%d")
            .to_string()
    };
    let w = words(Locale::PtBr);
    let mut rng = Rng(spec.seed ^ 0x90_27A1);
    let n = spec.customers.max(8);
    let mut customers = Vec::new();
    for id in 1..=n {
        let first = rng.pick(w.first_names);
        let last = rng.pick(w.last_names);
        customers.push(Customer {
            id,
            name: format!("{first} {last}"),
            cpf: cpf(&mut rng),
            email: format!("{}.{}{id}@{}", ascii(first), ascii(last), rng.pick(DOMAINS)),
            phone: phone(&mut rng),
            street: street(&mut rng),
            city: rng.pick(CITIES).to_owned(),
        });
    }

    // The planted requests, then the others.
    let mut requests = Vec::new();
    let mut r = Request::new(1, "pendente", 3);
    r.email = Some(format!("{}@novoemail.com.br", ascii(&customers[0].name)));
    r.phone = Some(phone(&mut rng));
    requests.push(r);
    let mut r = Request::new(2, "pendente", 6);
    r.street = Some(street(&mut rng));
    r.city = Some("Campinas".into());
    requests.push(r);
    let mut r = Request::new(2, "pendente", 2);
    r.street = Some(street(&mut rng));
    r.phone = Some(phone(&mut rng));
    requests.push(r);
    let mut r = Request::new(3, "pendente", 4);
    r.email = Some(customers[3].email.clone());
    requests.push(r);
    let mut r = Request::new(5, "pendente", 5);
    r.name = Some(customers[4].name.clone());
    r.city = Some(if customers[4].city == "Londrina" {
        "Sorocaba".into()
    } else {
        "Londrina".into()
    });
    requests.push(r);
    let mut r = Request::new(6, "pendente", 1);
    r.phone = Some(phone(&mut rng));
    requests.push(r);
    let mut r = Request::new(6, "pendente", 200);
    r.street = Some(street(&mut rng));
    requests.push(r);
    for c in customers.iter().skip(6) {
        if !rng.chance(40) {
            continue;
        }
        let status = match rng.below(10) {
            0..=4 => "aprovada",
            5 | 6 => "reprovada",
            _ => "pendente",
        };
        let days = if status == "pendente" {
            1 + rng.below(20) as i64
        } else {
            30 + rng.below(700) as i64
        };
        let mut r = Request::new(c.id, status, days);
        match rng.below(4) {
            0 => r.phone = Some(phone(&mut rng)),
            1 => {
                r.street = Some(street(&mut rng));
                r.city = Some(rng.pick(CITIES).to_owned());
            }
            2 => r.email = Some(format!("{}.{}@{}", ascii(&c.name), c.id, rng.pick(DOMAINS))),
            _ => {
                r.name = Some(format!("{} {}", c.name, rng.pick(w.last_names)));
            }
        }
        requests.push(r);
    }

    let mut out = ddl(engine);
    for c in &customers {
        out.push(format!(
            "INSERT INTO clientes (id, nome, cpf, email, telefone, endereco, cidade, atualizado_em) VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
            c.id,
            quote(&c.name),
            quote(&c.cpf),
            quote(&c.email),
            quote(&c.phone),
            quote(&c.street),
            quote(&c.city),
            quote(&at(800 + (c.id as i64 % 300), 600)),
        ));
    }
    let mut contracts = Vec::new();
    let mut contract_id = 0u64;
    for c in &customers {
        for _ in 0..(1 + u64::from(c.id % 5 == 0)) {
            contract_id += 1;
            let dev = DEVELOPMENTS[(contract_id % DEVELOPMENTS.len() as u64) as usize];
            let unit = if dev.starts_with("Edifício") {
                format!(
                    "Bloco {}, apto {}",
                    1 + rng.below(3),
                    101 + rng.below(12) * 100
                )
            } else {
                format!("Quadra {}, lote {}", 1 + rng.below(12), 1 + rng.below(40))
            };
            contracts.push(format!(
                "({contract_id}, {}, {}, {}, {})",
                c.id,
                quote(dev),
                quote(&unit),
                quote(&day(900 + rng.below(900) as i64))
            ));
        }
    }
    out.push(format!(
        "INSERT INTO contratos (id, cliente_id, empreendimento, unidade, assinado_em) VALUES {}",
        contracts.join(", ")
    ));
    let mut rows = Vec::new();
    let mut logged = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let id = i as u64 + 1;
        let dev = DEVELOPMENTS[(r.customer % DEVELOPMENTS.len() as u64) as usize];
        let decided = (r.status != "pendente").then(|| at(r.days_ago - 2, 540));
        let reason = (r.status == "reprovada").then_some("Documento comprobatório ilegível");
        rows.push(format!(
            "({id}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
            r.customer,
            quote(r.status),
            quote(dev),
            quote(&at(r.days_ago, 600 + (id as i64 * 7) % 300)),
            opt(decided.as_deref()),
            opt(reason),
            opt(r.name.as_deref()),
            opt(r.email.as_deref()),
            opt(r.phone.as_deref()),
            opt(r.street.as_deref()),
            opt(r.city.as_deref()),
        ));
        if r.status == "aprovada" {
            // No id: the database numbers occurrences, as it does the ones
            // a run inserts.
            logged.push(format!(
                "({}, 'alteracao-cadastral', {}, {})",
                r.customer,
                quote(&format!("Alteração cadastral {id} sincronizada do portal")),
                quote(&at(r.days_ago - 2, 545))
            ));
        }
    }
    out.push(format!(
        "INSERT INTO alteracoes_cadastrais (id, cliente_id, status, empreendimento, solicitada_em, decidida_em, motivo, nome, email, telefone, endereco, cidade) VALUES {}",
        rows.join(", ")
    ));
    if !logged.is_empty() {
        out.push(format!(
            "INSERT INTO ocorrencias (cliente_id, tipo, descricao, registrada_em) VALUES {}",
            logged.join(", ")
        ));
    }
    out
}

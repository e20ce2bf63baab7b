//! The retail-pos scenario's data: one store's account in a Brazilian
//! point-of-sale ERP (as the Hiper help pages in ../shared/seeds describe
//! it): the account and its owner, the connected stations (caixas), the
//! store's customers, products, sales, stock movements and finance entries,
//! and optionally service orders and consignments — the two kinds of data
//! such systems keep only on the local stations, which make a wipe from the
//! portal unsafe.
//!
//! Deterministic and in the SQL every engine shares.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::data::{Engine, Rng, lit as quote};
use crate::spec::model::Locale;
use crate::strategy::words;

/// What to generate.
#[derive(Debug, Clone)]
pub struct PosSpec {
    pub sales: u64,
    pub seed: u64,
    /// "Today" for the data: every date lies before it.
    pub now: Timestamp,
    /// The account uses service orders and consignment.
    pub local_only_data: bool,
}

const PRODUCTS: &[(&str, i64)] = &[
    ("Café torrado 500 g", 1890),
    ("Açúcar cristal 1 kg", 549),
    ("Arroz tipo 1 5 kg", 2799),
    ("Feijão carioca 1 kg", 899),
    ("Óleo de soja 900 ml", 799),
    ("Leite integral 1 l", 549),
    ("Pão de forma", 899),
    ("Sabão em pó 1 kg", 1590),
];
const FINANCE: &[(&str, &str)] = &[
    ("pagar", "Aluguel da loja"),
    ("pagar", "Fornecedor de bebidas"),
    ("receber", "Venda a prazo — cliente fiel"),
    ("pagar", "Energia elétrica"),
];

/// The scenario's tables in `engine`'s SQL, parents first.
pub fn ddl(engine: Engine) -> Vec<String> {
    engine.statements(include_str!("pos.sql"))
}

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Every statement (DDL, then the rows), for `engine`.
pub fn statements(engine: Engine, spec: &PosSpec) -> Vec<String> {
    let tz = TimeZone::get("America/Sao_Paulo").unwrap_or(TimeZone::UTC);
    let at = |t: Timestamp| {
        t.to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let w = words(Locale::PtBr);
    let mut rng = Rng(spec.seed ^ 0x0905_C0DE);
    let mut out = ddl(engine);
    let opened = spec.now - (3 * 365 * 24).hours();
    out.push(format!(
        "INSERT INTO accounts (id, company_name, cnpj, owner_name, owner_email, phone, created_at) VALUES (1, {}, {}, {}, {}, {}, {})",
        quote("Mercadinho Bom Preço Ltda"),
        quote("12.345.678/0001-95"),
        quote("Maria Aparecida dos Santos"),
        quote("Maria.Santos@bompreco.example.com.br"),
        quote("(19) 3232-4545"),
        quote(&at(opened))
    ));
    for (id, name, active) in [(1, "Caixa 1", 1), (2, "Caixa 2", 1), (3, "Caixa antigo", 0)] {
        out.push(format!(
            "INSERT INTO stations (id, account_id, name, active, last_sync_at) VALUES ({id}, 1, {}, {active}, {})",
            quote(name),
            quote(&at(spec.now - (id * 3).hours()))
        ));
    }
    let customers = 12u64;
    for id in 1..=customers {
        let (first, last) = (rng.pick(w.first_names), rng.pick(w.last_names));
        out.push(format!(
            "INSERT INTO customers (id, account_id, name, cpf, email, phone, created_at) VALUES ({id}, 1, {}, {}, {}, {}, {})",
            quote(&format!("{first} {last}")),
            quote(&format!(
                "{:03}.{:03}.{:03}-{:02}",
                rng.below(1000),
                rng.below(1000),
                rng.below(1000),
                rng.below(100)
            )),
            if rng.chance(70) {
                quote(&format!("cliente{id}@example.com.br"))
            } else {
                "NULL".to_owned()
            },
            quote(&format!("(19) 9{:04}-{:04}", rng.below(10_000), rng.below(10_000))),
            quote(&at(opened + (id as i64 * 24).hours()))
        ));
    }
    for (i, (name, price)) in PRODUCTS.iter().enumerate() {
        out.push(format!(
            "INSERT INTO products (id, account_id, name, price) VALUES ({}, 1, {}, {})",
            i + 1,
            quote(name),
            money(*price)
        ));
    }
    let mut item_id = 0u64;
    let mut movement_id = 0u64;
    for sale in 1..=spec.sales {
        let when = spec.now - ((1 + rng.below(700)) as i64 * 24).hours()
            + (rng.below(600) as i64).minutes();
        let customer = if rng.chance(40) {
            (1 + rng.below(customers)).to_string()
        } else {
            "NULL".to_owned()
        };
        let mut total = 0i64;
        let mut items = Vec::new();
        for _ in 0..1 + rng.below(4) {
            item_id += 1;
            let p = rng.below(PRODUCTS.len() as u64) as usize;
            let q = 1 + rng.below(3) as i64;
            total += PRODUCTS[p].1 * q;
            items.push(format!(
                "({item_id}, {sale}, {}, {q}, {})",
                p + 1,
                money(PRODUCTS[p].1)
            ));
            movement_id += 1;
            out.push(format!(
                "INSERT INTO stock_movements (id, product_id, quantity, moved_at) VALUES ({movement_id}, {}, {}, {})",
                p + 1,
                -q,
                quote(&at(when))
            ));
        }
        out.push(format!(
            "INSERT INTO sales (id, account_id, customer_id, station_id, total, sold_at) VALUES ({sale}, 1, {customer}, {}, {}, {})",
            1 + sale % 2,
            money(total),
            quote(&at(when))
        ));
        out.push(format!(
            "INSERT INTO sale_items (id, sale_id, product_id, quantity, price) VALUES {}",
            items.join(", ")
        ));
    }
    for (i, (kind, what)) in FINANCE.iter().enumerate() {
        out.push(format!(
            "INSERT INTO finance_entries (id, account_id, kind, description, amount, due_at) VALUES ({}, 1, {}, {}, {}, {})",
            i + 1,
            quote(kind),
            quote(what),
            money(10_000 + rng.below(300_000) as i64),
            quote(&(spec.now + ((i as i64 + 1) * 10 * 24).hours())
                .to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%d")
                .to_string())
        ));
    }
    if spec.local_only_data {
        out.push(format!(
            "INSERT INTO service_orders (id, account_id, description, opened_at) VALUES (1, 1, {}, {})",
            quote("Conserto de balança — cliente aguarda"),
            quote(&at(spec.now - 72.hours()))
        ));
        out.push(format!(
            "INSERT INTO consignments (id, account_id, product_id, quantity, sent_at) VALUES (1, 1, 1, 10, {})",
            quote(&at(spec.now - 240.hours()))
        ));
    }
    out
}

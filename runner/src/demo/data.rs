//! The demo retail system's data: customers in several languages, with
//! purchases, visits, notes, loans, invoices and some duplicates.
//!
//! Deterministic: the same seed, size and clock give the same database, so
//! tests and benchmarks can rely on it. The random generator is a small
//! SplitMix64 written here rather than `rand`'s, whose output is not
//! promised to stay the same across versions.

use std::path::Path;
use std::str::FromStr;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AssertSqlSafe, Connection, Executor};

use crate::spec::model::Locale;
use crate::strategy::words;

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoSpec {
    pub customers: u64,
    pub seed: u64,
    /// "Today" for the data: every date lies before it.
    pub now: Timestamp,
    /// Store a few times with an explicit zone (`2019-11-25T10:00:00+01:00`)
    /// among the usual `2019-11-25 10:00:00`, as real systems do.
    pub mixed_time_formats: bool,
}

impl DemoSpec {
    pub fn new(customers: u64, now: Timestamp) -> Self {
        Self {
            customers,
            seed: 2018,
            now,
            mixed_time_formats: true,
        }
    }
}

/// Counts of what was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoStats {
    pub customers: u64,
    pub purchases: u64,
    pub visits: u64,
    pub notes: u64,
    pub loans: u64,
    pub invoices: u64,
    pub duplicates: u64,
}

pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub(crate) fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const SV_DOMAINS: &[&str] = &[
    "gmail.com",
    "hotmail.se",
    "telia.com",
    "outlook.com",
    "bredband.net",
];
const BR_DOMAINS: &[&str] = &["gmail.com", "uol.com.br", "bol.com.br", "hotmail.com"];
const RU_DOMAINS: &[&str] = &["mail.ru", "yandex.ru", "gmail.com"];
const EN_DOMAINS: &[&str] = &["gmail.com", "outlook.com", "yahoo.com"];
const STORES: &[&str] = &[
    "Stockholm City",
    "Göteborg Nordstan",
    "Malmö Triangeln",
    "Uppsala",
    "Webbshop",
];
const PRODUCTS: &[&str] = &[
    "Kaffebryggare",
    "Hörlurar",
    "Vinterjacka",
    "Löparskor",
    "Kastrull",
    "Lampa",
    "Bok",
    "Ryggsäck",
];
const LOAN_ITEMS: &[&str] = &[
    "demovåg",
    "displaystativ",
    "provkörningscykel",
    "kaffemaskin (test)",
];

/// ASCII for an e-mail address: Swedish and Portuguese letters lose their marks;
/// Cyrillic names get a generic local part.
fn ascii(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            'å' | 'ä' | 'á' | 'à' | 'ã' | 'â' => Some('a'),
            'Å' | 'Ä' | 'Á' | 'À' | 'Ã' | 'Â' => Some('a'),
            'ö' | 'ó' | 'õ' | 'ô' | 'Ö' | 'Ó' | 'Õ' | 'Ô' => Some('o'),
            'é' | 'ê' | 'É' | 'Ê' => Some('e'),
            'í' | 'Í' => Some('i'),
            'ú' | 'ü' | 'Ú' | 'Ü' => Some('u'),
            'ç' | 'Ç' => Some('c'),
            c if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn phone(rng: &mut Rng, format: &str) -> String {
    format
        .chars()
        .map(|c| match c {
            '#' => char::from(b'0' + rng.below(10) as u8),
            '^' => char::from(b'1' + rng.below(9) as u8),
            o => o,
        })
        .collect()
}

struct Clock {
    now: Timestamp,
    tz: TimeZone,
    mixed: bool,
}

impl Clock {
    /// A time up to `max_days` days before now.
    fn within(&self, rng: &mut Rng, max_days: u64) -> Timestamp {
        let d = rng.below(max_days);
        self.ago(rng, d)
    }

    /// A time `days_ago` days (plus a random part of a day) before now.
    fn ago(&self, rng: &mut Rng, days_ago: u64) -> Timestamp {
        let secs = days_ago as i64 * 86_400 + rng.below(86_400) as i64;
        self.now.checked_sub(secs.seconds()).unwrap_or(self.now)
    }

    /// Stored form: wall-clock time in Stockholm, a few with an explicit offset.
    fn stored(&self, rng: &mut Rng, t: Timestamp) -> String {
        let z = t.to_zoned_datetime(self.tz.clone());
        if self.mixed && rng.chance(4) {
            z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
        } else {
            z.strftime("%Y-%m-%d %H:%M:%S").to_string()
        }
    }

    fn day(&self, t: Timestamp) -> String {
        t.to_zoned_datetime(self.tz.clone()).date().to_string()
    }
}

/// The engines the demo system can be created on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
    Mysql,
}

impl Engine {
    /// The demo's tables in this engine's SQL: `schema.sql` is written in
    /// the common subset; keys that the generator leaves to the engine
    /// get each engine's auto-increment, and MySQL's `TIMESTAMP` (UTC,
    /// 1970–2038) becomes `DATETIME` (wall-clock, as in the other two).
    pub fn ddl(self) -> Vec<String> {
        self.statements(include_str!("schema.sql"))
    }

    /// SQL written in the common subset, as this engine's statements:
    /// comments dropped, `INTEGER PRIMARY KEY` given the engine's
    /// auto-increment, `TIMESTAMP` as MySQL's `DATETIME`. The demo and every
    /// scenario's schema go through here.
    pub fn statements(self, sql: &str) -> Vec<String> {
        let text: String = sql
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .map(|l| {
                let l = match self {
                    Engine::Sqlite => l.to_owned(),
                    Engine::Postgres => l.replace(
                        "INTEGER PRIMARY KEY",
                        "INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                    ),
                    Engine::Mysql => l
                        .replace("INTEGER PRIMARY KEY", "INTEGER AUTO_INCREMENT PRIMARY KEY")
                        .replace("TIMESTAMP", "DATETIME"),
                };
                l + "\n"
            })
            .collect();
        text.split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// Creates the demo database at `path` (which must not exist).
pub async fn generate(path: &Path, spec: &DemoSpec) -> Result<DemoStats, String> {
    let opts = SqliteConnectOptions::from_str("sqlite://")
        .map_err(|e| e.to_string())?
        .filename(path)
        .create_if_missing(true)
        .foreign_keys(true);
    let mut conn = SqliteConnection::connect_with(&opts)
        .await
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    conn.execute("PRAGMA journal_mode = WAL")
        .await
        .map_err(|e| e.to_string())?;
    conn.execute("PRAGMA synchronous = OFF")
        .await
        .map_err(|e| e.to_string())?;
    for stmt in Engine::Sqlite.ddl() {
        conn.execute(AssertSqlSafe(stmt))
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut tx = conn.begin().await.map_err(|e| e.to_string())?;
    let stats = fill(&mut *tx, spec).await?;
    tx.commit().await.map_err(|e| e.to_string())?;
    conn.execute("PRAGMA journal_mode = DELETE")
        .await
        .map_err(|e| e.to_string())?;
    conn.execute("ANALYZE").await.map_err(|e| e.to_string())?;
    conn.close().await.map_err(|e| e.to_string())?;
    Ok(stats)
}

/// Creates the demo tables and data in the empty database `conn` is
/// connected to (PostgreSQL or MySQL; see [`super::server`]).
pub async fn generate_on<DB, C>(
    conn: &mut C,
    engine: Engine,
    spec: &DemoSpec,
) -> Result<DemoStats, String>
where
    DB: sqlx::Database,
    C: sqlx::Connection<Database = DB>,
    for<'c> &'c mut C: Executor<'c, Database = DB>,
    for<'c> &'c mut <DB as sqlx::Database>::Connection: Executor<'c, Database = DB>,
{
    for stmt in engine.ddl() {
        (&mut *conn)
            .execute(AssertSqlSafe(stmt))
            .await
            .map_err(|e| e.to_string())?;
    }
    let spec = DemoSpec {
        // Only SQLite keeps the zone of a stored time as written.
        mixed_time_formats: spec.mixed_time_formats && engine == Engine::Sqlite,
        ..spec.clone()
    };
    let mut tx = conn.begin().await.map_err(|e| e.to_string())?;
    let stats = fill(&mut *tx, &spec).await?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(stats)
}

/// Generates the rows into the demo tables.
async fn fill<DB, C>(tx: &mut C, spec: &DemoSpec) -> Result<DemoStats, String>
where
    DB: sqlx::Database,
    for<'c> &'c mut C: Executor<'c, Database = DB>,
{
    let mut rng = Rng(spec.seed);
    let clock = Clock {
        now: spec.now,
        tz: TimeZone::get("Europe/Stockholm").unwrap_or(TimeZone::UTC),
        mixed: spec.mixed_time_formats,
    };
    let mut stats = DemoStats::default();
    let mut batch = Batches::default();
    let mut purchase_id = 0u64;
    let mut next_id = spec.customers;
    for id in 1..=spec.customers {
        let locale = match rng.below(100) {
            0..=54 => Locale::SvSe,
            55..=74 => Locale::PtBr,
            75..=89 => Locale::RuRu,
            _ => Locale::En,
        };
        let w = words(locale);
        let first = rng.pick(w.first_names).to_owned();
        let last = rng.pick(w.last_names).to_owned();
        let domains = match locale {
            Locale::SvSe => SV_DOMAINS,
            Locale::PtBr => BR_DOMAINS,
            Locale::RuRu => RU_DOMAINS,
            Locale::En => EN_DOMAINS,
        };
        let local = if locale == Locale::RuRu {
            format!("client{id}")
        } else {
            format!("{}.{}{}", ascii(&first), ascii(&last), id)
        };
        let email = format!("{local}@{}", rng.pick(domains));
        let format = rng_pick_phone(&mut rng, locale);
        let phone_no = phone(&mut rng, format);
        let (kind_word, name_word, number) = (
            rng.pick(w.street_kinds),
            rng.pick(w.street_names),
            rng.below(120) + 1,
        );
        let street = if w.street_joined {
            format!("{name_word}{kind_word} {number}")
        } else if w.street_before {
            format!("{kind_word} {name_word}, {number}")
        } else {
            format!("{number} {name_word} {kind_word}")
        };
        let city = rng.pick(w.cities).to_owned();
        let age_days = 365 * (18 + rng.below(65)) + rng.below(365);
        let birth = clock.day(clock.ago(&mut rng, age_days));
        let pnr = format!("{}-{id:04}", birth.replace('-', "").get(2..).unwrap_or(""));
        let kind = if rng.chance(8) { "business" } else { "private" };
        let status = if rng.chance(10) { "inactive" } else { "active" };
        let created_days = 1 + rng.below(365 * 12);
        let created = clock.ago(&mut rng, created_days);
        let created_s = clock.stored(&mut rng, created);
        batch.customer(
            id,
            [
                &first, &last, &email, &phone_no, &street, &city, &birth, &pnr, kind, status,
                &created_s,
            ],
        );
        stats.customers += 1;

        // Purchases: a fifth of customers never bought anything; half of the
        // others stopped within two years of signing up.
        let n_purchases = if rng.chance(20) { 0 } else { 1 + rng.below(6) };
        let active_days = if rng.chance(50) {
            created_days.min(730)
        } else {
            created_days
        };
        for _ in 0..n_purchases {
            purchase_id += 1;
            let days = created_days - rng.below(active_days.max(1));
            let when = clock.ago(&mut rng, days);
            let amount = format!("{}.{:02}", 49 + rng.below(4_900), rng.below(100));
            let delivery = if rng.chance(30) {
                Some(street.clone())
            } else {
                None
            };
            let when_s = clock.stored(&mut rng, when);
            batch.purchase(purchase_id, id, &when_s, &amount, delivery.as_deref());
            for _ in 0..1 + rng.below(3) {
                batch.item(
                    purchase_id,
                    rng.pick(PRODUCTS),
                    1 + rng.below(3),
                    &format!("{}.00", 19 + rng.below(900)),
                );
            }
            stats.purchases += 1;
        }
        for _ in 0..rng.below(6) {
            let days = created_days - rng.below(active_days.max(1));
            let when = clock.ago(&mut rng, days);
            let when_s = clock.stored(&mut rng, when);
            batch.visit(id, &when_s, rng.pick(STORES));
            stats.visits += 1;
        }
        if rng.chance(30) {
            let body = match rng.below(4) {
                0 => format!("Kunden vill bli uppringd på {phone_no}."),
                1 => format!("Kvitto skickat till {email}."),
                2 => "Reklamation hanterad i butik.".to_owned(),
                _ => format!("{first} föredrar leverans till butik."),
            };
            let when = clock.within(&mut rng, created_days.max(1));
            let when_s = clock.stored(&mut rng, when);
            batch.note(id, &body, &when_s);
            stats.notes += 1;
        }
        if rng.chance(4) {
            let lent = clock.within(&mut rng, created_days.max(1));
            let returned = if rng.chance(50) {
                let t = clock.within(&mut rng, 30);
                Some(clock.stored(&mut rng, t))
            } else {
                None
            };
            let lent_s = clock.stored(&mut rng, lent);
            batch.loan(id, rng.pick(LOAN_ITEMS), &lent_s, returned.as_deref());
            stats.loans += 1;
        }
        if rng.chance(20) {
            for _ in 0..1 + rng.below(3) {
                let when = clock.within(&mut rng, created_days.max(1));
                batch.invoice(
                    id,
                    &clock.day(when),
                    &format!("{}.00", 100 + rng.below(9_000)),
                );
                stats.invoices += 1;
            }
        }
        // The same person registered twice: e-mail in other case, phone
        // with other punctuation.
        if rng.chance(2) {
            next_id += 1;
            let dup_email = format!(" {}", email.to_uppercase());
            let dup_phone: String = phone_no.chars().filter(char::is_ascii_digit).collect();
            let t = clock.within(&mut rng, created_days.max(1));
            let dup_created = clock.stored(&mut rng, t);
            let dup_pnr = format!("{pnr}-B");
            batch.customer(
                next_id,
                [
                    &first,
                    &last,
                    &dup_email,
                    &dup_phone,
                    &street,
                    &city,
                    &birth,
                    &dup_pnr,
                    "private",
                    "active",
                    &dup_created,
                ],
            );
            stats.customers += 1;
            stats.duplicates += 1;
        }
        if batch.len() > 4_000 {
            batch.flush(&mut *tx).await?;
        }
    }
    batch.flush(&mut *tx).await?;
    Ok(stats)
}

fn rng_pick_phone(rng: &mut Rng, locale: Locale) -> &'static str {
    let w = words(locale);
    w.phones[rng.below(w.phones.len() as u64) as usize]
}

/// Rows waiting to be inserted, table by table, as multi-row INSERTs.
#[derive(Default)]
struct Batches {
    customers: Vec<String>,
    purchases: Vec<String>,
    items: Vec<String>,
    visits: Vec<String>,
    notes: Vec<String>,
    loans: Vec<String>,
    invoices: Vec<String>,
}

/// A SQL string literal. The generators write their own fixed data into a
/// fresh database, so literals keep them fast and simple; nothing here
/// comes from outside (values lethe handles are always bound).
pub(crate) fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub(crate) fn opt(s: Option<&str>) -> String {
    s.map_or_else(|| "NULL".to_owned(), lit)
}

impl Batches {
    fn len(&self) -> usize {
        self.customers.len() + self.purchases.len() + self.items.len() + self.visits.len()
    }

    fn customer(&mut self, id: u64, v: [&str; 11]) {
        let vals: Vec<String> = v.iter().map(|s| lit(s)).collect();
        self.customers.push(format!("({id}, {})", vals.join(", ")));
    }

    fn purchase(&mut self, id: u64, customer: u64, at: &str, amount: &str, delivery: Option<&str>) {
        self.purchases.push(format!(
            "({id}, {customer}, {}, {amount}, {})",
            lit(at),
            opt(delivery)
        ));
    }

    fn item(&mut self, purchase: u64, product: &str, qty: u64, price: &str) {
        self.items
            .push(format!("({purchase}, {}, {qty}, {price})", lit(product)));
    }

    fn visit(&mut self, customer: u64, at: &str, store: &str) {
        self.visits
            .push(format!("({customer}, {}, {})", lit(at), lit(store)));
    }

    fn note(&mut self, customer: u64, body: &str, at: &str) {
        self.notes
            .push(format!("({customer}, {}, {})", lit(body), lit(at)));
    }

    fn loan(&mut self, customer: u64, item: &str, lent: &str, returned: Option<&str>) {
        self.loans.push(format!(
            "({customer}, {}, {}, {})",
            lit(item),
            lit(lent),
            opt(returned)
        ));
    }

    fn invoice(&mut self, customer: u64, day: &str, amount: &str) {
        self.invoices
            .push(format!("({customer}, {}, {amount})", lit(day)));
    }

    async fn flush<DB, C>(&mut self, tx: &mut C) -> Result<(), String>
    where
        DB: sqlx::Database,
        for<'c> &'c mut C: Executor<'c, Database = DB>,
    {
        let tables: [(&str, &mut Vec<String>); 7] = [
            (
                "customers (id, first_name, last_name, email, phone, street, city, birth_date, personnummer, kind, status, created_at)",
                &mut self.customers,
            ),
            (
                "purchases (id, customer_id, purchased_at, amount, delivery_address)",
                &mut self.purchases,
            ),
            (
                "purchase_items (purchase_id, product, quantity, price)",
                &mut self.items,
            ),
            ("visits (customer_id, visited_at, store)", &mut self.visits),
            (
                "customer_notes (customer_id, body, written_at)",
                &mut self.notes,
            ),
            (
                "loans (customer_id, item, lent_at, returned_at)",
                &mut self.loans,
            ),
            (
                "invoices (customer_id, issued_at, amount)",
                &mut self.invoices,
            ),
        ];
        for (table, rows) in tables {
            for chunk in rows.chunks(500) {
                let sql = format!("INSERT INTO {table} VALUES {}", chunk.join(", "));
                (&mut *tx)
                    .execute(AssertSqlSafe(sql))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            rows.clear();
        }
        Ok(())
    }
}

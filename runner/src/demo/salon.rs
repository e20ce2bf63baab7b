//! The salon-crm scenario's data: a Russian beauty salon's client base —
//! clients, their visits with the master's notes, payments and SMS
//! reminders — the data YClients-style systems hold and salons purge by
//! hand (../shared/seeds: "удалить базу клиентов").
//!
//! Deterministic (the same size, seed and clock give the same rows) and in
//! the SQL every engine shares, so one generator fills SQLite, PostgreSQL
//! and MySQL alike. A few clients are planted for the job to meet: pairs
//! sharing a phone (written differently) or an e-mail (in another case),
//! lapsed clients whose phone appears in their own comment and SMS, and a
//! lapsed client who spent too much to be purged.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::data::{Engine, Rng, lit as quote, opt};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SalonSpec {
    pub clients: u64,
    pub seed: u64,
    /// "Today" for the data: every date lies before it.
    pub now: Timestamp,
}

const FEMALE: &[(&str, &str)] = &[
    ("Анна", "Иванова"),
    ("Мария", "Смирнова"),
    ("Елена", "Кузнецова"),
    ("Ольга", "Попова"),
    ("Наталья", "Васильева"),
    ("Татьяна", "Петрова"),
    ("Ирина", "Соколова"),
    ("Светлана", "Михайлова"),
    ("Екатерина", "Новикова"),
    ("Юлия", "Фёдорова"),
    ("Дарья", "Морозова"),
    ("Алёна", "Волкова"),
    ("Ксения", "Алексеева"),
    ("Полина", "Лебедева"),
    ("Виктория", "Семёнова"),
];
const MALE: &[(&str, &str)] = &[
    ("Алексей", "Егоров"),
    ("Дмитрий", "Павлов"),
    ("Сергей", "Козлов"),
    ("Андрей", "Степанов"),
];
const PATRONYMICS_F: &[&str] = &[
    "Александровна",
    "Сергеевна",
    "Игоревна",
    "Викторовна",
    "Олеговна",
];
const PATRONYMICS_M: &[&str] = &["Петрович", "Андреевич", "Николаевич"];
const SERVICES: &[(&str, i64)] = &[
    ("Стрижка женская", 1800),
    ("Окрашивание волос", 4500),
    ("Маникюр с покрытием", 1600),
    ("Педикюр", 2200),
    ("Брови: коррекция и окрашивание", 900),
    ("Чистка лица", 3200),
    ("Стрижка мужская", 1200),
];
const MASTERS: &[&str] = &[
    "Мастер Алина",
    "Мастер Оксана",
    "Мастер Гульнара",
    "Барбер Тимур",
];
const NOTES: &[&str] = &[
    "Аллергия на аммиачные красители, использовать безаммиачные",
    "Предпочитает тёплые оттенки",
    "Просила напомнить о записи за день",
    "Чувствительная кожа, без агрессивных средств",
    "Пришла с подругой, обе довольны 🌸",
    "Опоздала на 15 минут",
];
const DOMAINS: &[&str] = &["mail.ru", "yandex.ru", "gmail.com", "bk.ru"];
const TRANSLIT: &[(&str, &str)] = &[
    ("Анна", "anna"),
    ("Мария", "maria"),
    ("Елена", "elena"),
    ("Ольга", "olga"),
    ("Наталья", "natalya"),
    ("Татьяна", "tatyana"),
    ("Ирина", "irina"),
    ("Светлана", "svetlana"),
    ("Екатерина", "ekaterina"),
    ("Юлия", "yulia"),
    ("Дарья", "darya"),
    ("Алёна", "alena"),
    ("Ксения", "ksenia"),
    ("Полина", "polina"),
    ("Виктория", "viktoria"),
    ("Алексей", "alexey"),
    ("Дмитрий", "dmitry"),
    ("Сергей", "sergey"),
    ("Андрей", "andrey"),
];

/// The scenario's tables in `engine`'s SQL, parents first.
pub fn ddl(engine: Engine) -> Vec<String> {
    engine.statements(include_str!("salon.sql"))
}

struct Client {
    id: u64,
    name: String,
    phone: Option<String>,
    email: Option<String>,
    birth: Option<String>,
    comment: Option<String>,
    created: Timestamp,
    /// Visits: (days ago, service index).
    visits: Vec<(i64, usize)>,
    /// Extra amount paid beyond the visits (a gift card), in roubles.
    extra: i64,
}

fn phone(rng: &mut Rng) -> String {
    format!(
        "+7 9{:02} {:03}-{:02}-{:02}",
        rng.below(100),
        rng.below(1000),
        rng.below(100),
        rng.below(100)
    )
}

/// The same number as `+7 (9xx) xxxxxxx`: one more way people write it.
fn rewritten(p: &str) -> String {
    let d: String = p.chars().filter(char::is_ascii_digit).collect();
    format!("+7 ({}) {}", &d[1..4], &d[4..])
}

/// Every statement (DDL, then the rows), for `engine`.
pub fn statements(engine: Engine, spec: &SalonSpec) -> Vec<String> {
    let tz = TimeZone::get("Europe/Moscow").unwrap_or(TimeZone::UTC);
    let at = |t: Timestamp| {
        t.to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let mut rng = Rng(spec.seed ^ 0x5A10_0C4D);
    let mut clients: Vec<Client> = Vec::new();
    for id in 1..=spec.clients {
        let male = rng.chance(15);
        let (first, last) = if male {
            MALE[rng.below(MALE.len() as u64) as usize]
        } else {
            FEMALE[rng.below(FEMALE.len() as u64) as usize]
        };
        let patronymic = if male {
            rng.pick(PATRONYMICS_M)
        } else {
            rng.pick(PATRONYMICS_F)
        };
        let name = if rng.chance(60) {
            format!("{last} {first} {patronymic}")
        } else {
            format!("{first} {last}")
        };
        let latin = TRANSLIT
            .iter()
            .find(|(c, _)| *c == first)
            .map_or("client", |(_, l)| l);
        let email = rng
            .chance(70)
            .then(|| format!("{latin}.{id}@{}", rng.pick(DOMAINS)));
        let phone = rng.chance(95).then(|| phone(&mut rng));
        let birth = rng.chance(50).then(|| {
            format!(
                "{}-{:02}-{:02}",
                1960 + rng.below(45),
                1 + rng.below(12),
                1 + rng.below(28)
            )
        });
        let age_days = 30 + rng.below(6 * 365) as i64;
        let created = spec.now - (age_days * 24).hours();
        // Half the clients stopped coming at some point.
        let lapsed = rng.chance(45);
        let n = if rng.chance(10) { 0 } else { 1 + rng.below(8) };
        let mut visits = Vec::new();
        for _ in 0..n {
            let span = if lapsed {
                // Only in the first part of their history.
                (age_days / 3).max(1)
            } else {
                age_days.min(400)
            };
            let ago = if lapsed {
                age_days - rng.below(span as u64) as i64
            } else {
                1 + rng.below(span as u64) as i64
            };
            let service = if male { 6 } else { rng.below(6) as usize };
            visits.push((ago.max(1), service));
        }
        let comment = rng.chance(25).then(|| rng.pick(NOTES).to_owned());
        let extra = if rng.chance(10) { 5000 } else { 0 };
        clients.push(Client {
            id,
            name,
            phone,
            email,
            birth,
            comment,
            created,
            visits,
            extra,
        });
    }
    plant(&mut clients, spec, &mut rng);

    let mut out = ddl(engine);
    out.push(format!(
        "INSERT INTO masters (id, name) VALUES {}",
        MASTERS
            .iter()
            .enumerate()
            .map(|(i, m)| format!("({}, {})", i + 1, quote(m)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut visit_id = 0u64;
    let mut note_id = 0u64;
    let mut payment_id = 0u64;
    let mut sms_id = 0u64;
    for c in &clients {
        out.push(format!(
            "INSERT INTO clients (id, full_name, phone, email, birth_date, comment, created_at) VALUES ({}, {}, {}, {}, {}, {}, {})",
            c.id,
            quote(&c.name),
            opt(c.phone.as_deref()),
            opt(c.email.as_deref()),
            opt(c.birth.as_deref()),
            opt(c.comment.as_deref()),
            quote(&at(c.created))
        ));
        let mut rows_v = Vec::new();
        let mut rows_n = Vec::new();
        let mut rows_p = Vec::new();
        let mut rows_s = Vec::new();
        let mut visits = c.visits.clone();
        visits.sort_by_key(|v| std::cmp::Reverse(v.0));
        for (ago, service) in visits {
            visit_id += 1;
            let when =
                spec.now - (ago * 24).hours() + ((10 + (visit_id % 9) as i64) * 60).minutes();
            let when = when.min(spec.now - 1.hours());
            let (name, price) = SERVICES[service];
            let status = if visit_id.is_multiple_of(17) {
                "no-show"
            } else {
                "done"
            };
            rows_v.push(format!(
                "({visit_id}, {}, {}, {}, {}, {})",
                c.id,
                1 + (visit_id % MASTERS.len() as u64),
                quote(name),
                quote(&at(when)),
                quote(status)
            ));
            if status == "done" {
                payment_id += 1;
                rows_p.push(format!(
                    "({payment_id}, {}, {price}.00, {}, {})",
                    c.id,
                    quote(&at(when + 70.minutes())),
                    quote(if payment_id.is_multiple_of(3) {
                        "наличные"
                    } else {
                        "карта"
                    })
                ));
            }
            if visit_id.is_multiple_of(4) {
                note_id += 1;
                let mut body = NOTES[(note_id % NOTES.len() as u64) as usize].to_owned();
                if note_id.is_multiple_of(3)
                    && let Some(e) = &c.email
                {
                    body = format!("{body}. Чек отправлен на {e}");
                }
                rows_n.push(format!(
                    "({note_id}, {visit_id}, {}, {})",
                    quote(&body),
                    quote(&at(when + 90.minutes()))
                ));
            }
            if let Some(p) = &c.phone
                && visit_id.is_multiple_of(2)
            {
                sms_id += 1;
                rows_s.push(format!(
                    "({sms_id}, {}, {}, {}, {})",
                    c.id,
                    quote(p),
                    quote(&format!("Напоминаем о записи: {name}. Ждём вас!")),
                    quote(&at(when - 24.hours()))
                ));
            }
        }
        if c.extra > 0 {
            payment_id += 1;
            rows_p.push(format!(
                "({payment_id}, {}, {}.00, {}, {})",
                c.id,
                c.extra,
                quote(&at(c.created + 2.hours())),
                quote("подарочный сертификат")
            ));
        }
        for (table, cols, rows) in [
            (
                "visits",
                "id, client_id, master_id, service, visited_at, status",
                rows_v,
            ),
            ("visit_notes", "id, visit_id, body, written_at", rows_n),
            ("payments", "id, client_id, amount, paid_at, method", rows_p),
            (
                "sms_messages",
                "id, client_id, phone, body, sent_at",
                rows_s,
            ),
        ] {
            if !rows.is_empty() {
                out.push(format!(
                    "INSERT INTO {table} ({cols}) VALUES {}",
                    rows.join(", ")
                ));
            }
        }
    }
    out
}

/// The clients the scenario's job must meet, placed over generated ones.
fn plant(clients: &mut [Client], spec: &SalonSpec, rng: &mut Rng) {
    if clients.len() < 8 {
        return;
    }
    // 1 and 2: the same phone, written two ways; both lapsed, cheap.
    let p = phone(rng);
    clients[0].phone = Some(p.clone());
    clients[1].phone = Some(rewritten(&p));
    clients[0].comment = Some(format!("Записывать только по телефону {p}"));
    for c in &mut clients[..2] {
        c.visits = vec![(900, 2), (840, 0)];
        c.extra = 0;
        c.created = spec.now - (1000 * 24).hours();
    }
    // 3 and 4: the same e-mail in two cases; 3 lapsed, 4 comes every month.
    clients[2].email = Some("Svetlana.Orlova@mail.ru".into());
    clients[3].email = Some("svetlana.orlova@mail.ru".into());
    clients[2].visits = vec![(1200, 4)];
    clients[2].extra = 0;
    clients[2].created = spec.now - (1300 * 24).hours();
    clients[3].visits = vec![(20, 0), (50, 2), (80, 3)];
    // 5: lapsed long ago but spent much (a gift card): kept.
    clients[4].visits = vec![(1500, 1), (1400, 1)];
    clients[4].extra = 5000;
    clients[4].created = spec.now - (1600 * 24).hours();
    // 6: registered, never came: purged. She gave the phone of 5 (a
    // relative who pays for her), which stays in 5's row and SMS.
    clients[5].phone = clients[4].phone.as_deref().map(rewritten);
    clients[5].visits = Vec::new();
    clients[5].extra = 0;
    clients[5].created = spec.now - (800 * 24).hours();
}

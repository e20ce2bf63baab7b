//! Masking personal values for reports: enough to recognise a record, not
//! enough to learn who it is.

use lethe_connector::Value;

/// `Maria Svensson` → `Ma*** Sv***`; `maria@example.se` → `ma***@e***`;
/// phone numbers keep their last two digits; numbers are hidden entirely.
pub fn mask(v: &Value) -> String {
    match v {
        Value::Null => "NULL".to_owned(),
        Value::Text(s) => mask_text(s),
        Value::Bool(_) | Value::Int(_) | Value::Float(_) => "***".to_owned(),
        Value::Bytes(_) => "(bytes)".to_owned(),
    }
}

/// Free text (notes) shown by its size only: words in it may be anything.
pub fn summarise(v: &Value) -> String {
    match v {
        Value::Text(s) => format!("(text, {} characters)", s.chars().count()),
        other => mask(other),
    }
}

fn mask_text(s: &str) -> String {
    let t = s.trim();
    if t.is_empty() {
        return "(empty)".to_owned();
    }
    // A date: the century only.
    let b = t.as_bytes();
    if b.len() >= 10 && b[4] == b'-' && b[7] == b'-' && b[..4].iter().all(u8::is_ascii_digit) {
        return format!("{}**-**-**", &t[..2]);
    }
    let digits = t.chars().filter(char::is_ascii_digit).count();
    let total = t.chars().filter(|c| !c.is_whitespace()).count();
    if digits >= 6 && digits * 10 >= total * 6 {
        let last: String = t
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .take(2)
            .rev()
            .collect();
        return format!("***{last}");
    }
    t.split_whitespace()
        .map(mask_word)
        .collect::<Vec<_>>()
        .join(" ")
}

fn mask_word(w: &str) -> String {
    if let Some((local, domain)) = w.split_once('@') {
        return format!("{}@{}", prefix(local, 2), prefix(domain, 1));
    }
    let n = w.chars().count();
    prefix(w, if n <= 2 { 1 } else { 2 })
}

fn prefix(w: &str, keep: usize) -> String {
    let mut out: String = w.chars().take(keep).collect();
    out.push_str("***");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> String {
        mask(&Value::Text(s.to_owned()))
    }

    #[test]
    fn masks() {
        assert_eq!(m("Maria Svensson"), "Ma*** Sv***");
        assert_eq!(m("maria.svensson@example.se"), "ma***@e***");
        assert_eq!(m("+46 70-123 45 67"), "***67");
        assert_eq!(m("Åsa"), "Ås***");
        assert_eq!(m("Jo"), "J***");
        assert_eq!(m("Ольга"), "Ол***");
        assert_eq!(m("1985-06-17"), "19**-**-**");
        assert_eq!(m("1985-06-17 10:00:00"), "19**-**-**");
        assert_eq!(mask(&Value::Int(1985)), "***");
        assert_eq!(m("  "), "(empty)");
    }
}

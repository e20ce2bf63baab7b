//! `${VAR}` expansion in string values.
//!
//! Any string in a job or model may name environment variables: `${NAME}`,
//! `${NAME:-default}` (the default when unset or empty), and `$${` for a
//! literal `${`. Only strings are expanded, never keys. The loader records
//! which values were expanded so that nothing downstream ever prints them.

use super::yaml::Environment;

/// The result of expanding one string.
#[derive(Debug, PartialEq, Eq)]
pub enum Expansion {
    /// The string named no variable.
    Unchanged,
    Expanded(String),
}

/// A variable the string needs and the environment lacks.
#[derive(Debug, PartialEq, Eq)]
pub struct Unset {
    pub name: String,
}

pub fn expand(s: &str, env: &dyn Environment) -> Result<Expansion, Unset> {
    if !s.contains("${") {
        return Ok(Expansion::Unchanged);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut changed = false;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
            changed = true;
            continue;
        }
        let Some(body_start) = tail.strip_prefix("${") else {
            out.push('$');
            rest = &tail[1..];
            continue;
        };
        let Some(close) = body_start.find('}') else {
            out.push_str(tail);
            rest = "";
            break;
        };
        let body = &body_start[..close];
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        if !is_var_name(name) {
            // Not a variable reference; keep the text as written.
            out.push_str("${");
            rest = body_start;
            continue;
        }
        match (
            env.var(name).filter(|v| !v.is_empty() || default.is_none()),
            default,
        ) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(Unset {
                    name: name.to_owned(),
                });
            }
        }
        changed = true;
        rest = &body_start[close + 1..];
    }
    out.push_str(rest);
    Ok(if changed {
        Expansion::Expanded(out)
    } else {
        Expansion::Unchanged
    })
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env() -> HashMap<String, String> {
        HashMap::from([
            ("DB".to_owned(), "sqlite://x.db".to_owned()),
            ("EMPTY".to_owned(), String::new()),
        ])
    }

    #[test]
    fn cases() {
        let e = env();
        let x = |s: &str| expand(s, &e);
        assert_eq!(x("plain"), Ok(Expansion::Unchanged));
        assert_eq!(x("${DB}"), Ok(Expansion::Expanded("sqlite://x.db".into())));
        assert_eq!(
            x("a-${DB}-b"),
            Ok(Expansion::Expanded("a-sqlite://x.db-b".into()))
        );
        assert_eq!(x("${NOPE:-d}"), Ok(Expansion::Expanded("d".into())));
        assert_eq!(x("${EMPTY:-d}"), Ok(Expansion::Expanded("d".into())));
        assert_eq!(x("${EMPTY}"), Ok(Expansion::Expanded(String::new())));
        assert_eq!(x("$${DB}"), Ok(Expansion::Expanded("${DB}".into())));
        assert_eq!(
            x("${NOPE}"),
            Err(Unset {
                name: "NOPE".into()
            })
        );
        assert_eq!(x("${not a var}"), Ok(Expansion::Unchanged));
        assert_eq!(x("cost: $5"), Ok(Expansion::Unchanged));
    }
}

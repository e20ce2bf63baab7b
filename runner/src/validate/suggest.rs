//! "Did you mean …?" for misspelt names.

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| {
            let d = strsim::damerau_levenshtein(&lower, &c.to_lowercase());
            (d, c)
        })
        .filter(|(d, c)| {
            let longest = c.chars().count().max(word.chars().count());
            // One edit in a short word, about a third of a long one.
            *d <= (longest / 3).max(1)
        })
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// `did you mean `x`?` or a list of what is allowed, as help text.
pub fn help<'a, I>(word: &str, candidates: I, what: &str) -> Option<String>
where
    I: IntoIterator<Item = &'a str> + Clone,
{
    if let Some(c) = closest(word, candidates.clone()) {
        return Some(format!("did you mean `{c}`?"));
    }
    let all: Vec<&str> = candidates.into_iter().collect();
    if all.is_empty() {
        None
    } else if all.len() <= 16 {
        Some(format!(
            "{what}: {}",
            all.iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    } else {
        Some(format!(
            "{what}: {} and {} more",
            all[..12].join(", "),
            all.len() - 12
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos() {
        let c = ["field", "has", "none", "criterion"];
        assert_eq!(closest("feild", c), Some("field"));
        assert_eq!(closest("Field", c), Some("field"));
        assert_eq!(closest("criterium", c), Some("criterion"));
        assert_eq!(closest("xyz", c), None);
        assert_eq!(closest("ha", c), Some("has"));
    }
}

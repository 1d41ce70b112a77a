//! Tag-value lists (RFC 6376 §3.2), the syntax of DKIM keys, DMARC, MTA-STS, TLS-RPT and BIMI records.

/// `name=value; name=value` in order. Errors name the first offending tag so the finding can quote it.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let specs: Vec<&str> = text.split(';').collect();
    let last = specs.len() - 1;
    for (i, spec) in specs.iter().enumerate() {
        let spec = spec.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r' || c == '\n');
        if spec.is_empty() {
            // A trailing `;` is allowed; an empty tag in the middle (`a=1;;b=2`) is not.
            if i == last || i == 0 && last == 0 {
                continue;
            }
            return Err(format!("empty tag at position {}", i + 1));
        }
        let Some((name, value)) = spec.split_once('=') else {
            return Err(format!("`{spec}` has no `=`"));
        };
        let name = name.trim();
        let valid_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(format!("`{name}` is not a valid tag name"));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("tag `{name}` appears twice"));
        }
        out.push((name.to_string(), value.trim().to_string()));
    }
    Ok(out)
}

/// The value of a tag, if present.
pub fn get<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_spaces_and_trailing_semicolon() {
        let t = parse("v=DMARC1; p=reject ;rua=mailto:a@b.example;").unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(get(&t, "p"), Some("reject"));
    }

    #[test]
    fn rejects_duplicates_empties_and_missing_equals() {
        assert!(parse("v=1; p=a; p=b").unwrap_err().contains("twice"));
        assert!(parse("v=1;; p=a").unwrap_err().contains("empty"));
        assert!(parse("v=1; reject").unwrap_err().contains("no `=`"));
        assert!(parse("v=1; 9x=1").unwrap_err().contains("not a valid"));
    }
}

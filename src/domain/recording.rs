//! What royalty reports need to name a sound recording.

/// An ISRC in its stored form (12 characters: country, registrant, year, designation), from
/// what tags and people write: `us-rc1-76-07839`, `ISRC USRC17607839`, lower case. Empty stays
/// empty (unknown).
pub fn isrc(s: &str) -> Result<String, String> {
    let mut t: String = s
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '.' | '_'))
        .collect::<String>()
        .to_ascii_uppercase();
    if let Some(rest) = t.strip_prefix("ISRC") {
        t = rest.trim_start_matches(':').to_string();
    }
    if t.is_empty() {
        return Ok(t);
    }
    let b = t.as_bytes();
    let ok = b.len() == 12
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..5].iter().all(u8::is_ascii_alphanumeric)
        && b[5..].iter().all(u8::is_ascii_digit);
    if ok {
        Ok(t)
    } else {
        Err(format!(
            "{s:?} is not an ISRC (12 characters: country, registrant, year, number, e.g. USRC17607839)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isrcs_are_stored_in_one_form() {
        assert_eq!(isrc("us-rc1-76-07839").unwrap(), "USRC17607839");
        assert_eq!(isrc("ISRC: GB-AYE-69-00531").unwrap(), "GBAYE6900531");
        assert_eq!(isrc("").unwrap(), "");
        assert!(isrc("USRC1760783").is_err());
        assert!(isrc("1SRC17607839").is_err());
        assert!(isrc("USRC1760783X").is_err());
    }
}

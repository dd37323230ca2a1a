//! MySQL/MariaDB statements: no parser here, so a migration is split on
//! `;` outside quotes and comments.

/// (statement text, byte offset), or an error offset for an unterminated quote.
pub fn split(sql: &str) -> Result<Vec<(String, usize)>, usize> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    let mut quote: Option<(u8, usize)> = None;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some((q, _)) if c == b'\\' && q != b'`' => i += 1,
            Some((q, _)) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'\'' | b'"' | b'`' => quote = Some((c, i)),
                b'-' if bytes.get(i + 1) == Some(&b'-') => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'#' => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    i += 2;
                    while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                        i += 1;
                    }
                    i += 1;
                }
                b';' => {
                    out.push((sql[start..i].to_string(), start));
                    start = i + 1;
                }
                _ => {}
            },
        }
        i += 1;
    }
    if let Some((_, at)) = quote {
        return Err(at);
    }
    if !sql[start.min(sql.len())..].trim().is_empty() {
        out.push((sql[start..].to_string(), start));
    }
    Ok(out)
}

/// The statements of a MySQL/MariaDB migration (quotes and comments
/// respected), or the byte offset of a quote that is never closed.
pub fn statements(sql: &str) -> Result<Vec<String>, usize> {
    Ok(split(sql)?
        .into_iter()
        .map(|(s, _)| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

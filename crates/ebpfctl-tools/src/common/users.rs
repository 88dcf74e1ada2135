//! User ids from flags: a number or a user name.
use super::ToolError;

/// Parses `-u` values: "1000" or "root".
pub fn parse_uid(text: &str) -> Result<u32, ToolError> {
    let t = text.trim();
    if let Ok(n) = t.parse::<u64>() {
        return u32::try_from(n)
            .ok()
            .filter(|&n| n != u32::MAX)
            .ok_or_else(|| ToolError::BadInput(format!("--uid {text}: not a valid user id")));
    }
    if t.is_empty() || t.starts_with('-') {
        return Err(ToolError::BadInput(format!(
            "--uid {text:?}: expected a user id (a number) or a user name"
        )));
    }
    lookup_user(t).ok_or_else(|| {
        ToolError::BadInput(format!(
            "--uid {text}: no such user (expected a user id or a name from /etc/passwd)"
        ))
    })
}

/// The uid of a user name, from /etc/passwd.
fn lookup_user(name: &str) -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids() {
        assert_eq!(parse_uid("1000").unwrap(), 1000);
        assert_eq!(parse_uid("root").unwrap(), 0);
        assert!(parse_uid("-1").is_err());
        assert!(parse_uid("4294967295").is_err());
        assert!(parse_uid("no-such-user-here").is_err());
    }
}

//! Secrets never reach a log line or an error message: URLs are printed with their password
//! replaced. A setting may hold a comma-separated list of URLs (a broker's nodes): each is
//! redacted.

/// The URLs of a setting that holds one URL or a comma-separated list of them.
///
/// A comma starts a new entry only where a URL (`scheme://`) or nothing follows it, so a comma
/// inside a password or a query stays part of its URL. Entries are trimmed; an empty entry (a
/// stray comma) is kept as `""` for the caller to reject.
pub fn url_list(value: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    let mut start = 0;
    for (comma, _) in value.match_indices(',') {
        let next = value[comma + 1..].trim_start();
        if next.is_empty() || next.starts_with(',') || starts_with_scheme(next) {
            entries.push(value[start..comma].trim());
            start = comma + 1;
        }
    }
    entries.push(value[start..].trim());
    entries
}

/// Whether `text` starts with `scheme://`, a scheme being a letter then letters, digits, `+`,
/// `-` or `.` (RFC 3986).
fn starts_with_scheme(text: &str) -> bool {
    let Some((scheme, _)) = text.split_once("://") else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Returns `url` with the password of its user-info part replaced by `***`; for a
/// comma-separated list ([`url_list`]), each URL's.
///
/// Works on anything shaped like `scheme://user:password@host/...`, parseable or not, so that
/// even a malformed URL can be named in an error without leaking its secret.
pub fn redact_url(url: &str) -> String {
    let entries = url_list(url);
    if entries.len() > 1 {
        return entries
            .into_iter()
            .map(redact_one)
            .collect::<Vec<_>>()
            .join(",");
    }
    redact_one(url)
}

fn redact_one(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let user_info = &authority[..at];
    let user = user_info
        .split_once(':')
        .map_or(user_info, |(user, _)| user);
    if user.len() == user_info.len() {
        return url.to_owned();
    }
    format!("{}://{}:***@{}", &url[..scheme_end], user, &rest[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::{redact_url, url_list};

    #[test]
    fn hides_the_password_and_keeps_the_rest() {
        assert_eq!(
            redact_url("amqp://guest:s3cret@rabbit:5672/%2f?heartbeat=10"),
            "amqp://guest:***@rabbit:5672/%2f?heartbeat=10"
        );
        assert_eq!(
            redact_url("http://user:p@ss@config:8888/a/b"),
            "http://user:***@config:8888/a/b"
        );
    }

    #[test]
    fn leaves_urls_without_password_alone() {
        for url in ["amqp://rabbit", "amqp://guest@rabbit/", "not a url", ""] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn hides_every_password_of_a_list() {
        let list = "amqp://a:one@n1:5672/,amqp://b:two@n2:5672/, amqps://c:three@n3/%2f";
        assert_eq!(
            redact_url(list),
            "amqp://a:***@n1:5672/,amqp://b:***@n2:5672/,amqps://c:***@n3/%2f"
        );
    }

    #[test]
    fn a_list_splits_only_where_a_url_follows_the_comma() {
        assert_eq!(url_list("amqp://n1"), ["amqp://n1"]);
        assert_eq!(
            url_list("amqp://u:p,w@n1/?x=1,2 ,amqp://n2"),
            ["amqp://u:p,w@n1/?x=1,2", "amqp://n2"]
        );
        assert_eq!(
            url_list("amqp://n1,,amqp://n2"),
            ["amqp://n1", "", "amqp://n2"]
        );
        assert_eq!(url_list("amqp://n1,"), ["amqp://n1", ""]);
        assert_eq!(redact_url("amqp://u:p,w@n1"), "amqp://u:***@n1");
    }
}

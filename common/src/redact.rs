//! Secrets never reach a log line or an error message: URLs are printed with their password
//! replaced.

/// Returns `url` with the password of its user-info part replaced by `***`.
///
/// Works on anything shaped like `scheme://user:password@host/...`, parseable or not, so that
/// even a malformed URL can be named in an error without leaking its secret.
pub fn redact_url(url: &str) -> String {
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
    use super::redact_url;

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
}

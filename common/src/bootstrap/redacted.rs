//! Settings as they may be logged: every URL's password and every secret-looking key hidden.

use serde::Serialize;
use serde_json::Value;

use crate::redact::redact_url;

/// Key fragments whose values are never printed.
const SECRET_KEYS: [&str; 4] = ["password", "secret", "token", "credential"];

/// `settings` as one line of JSON, safe to log.
pub fn redacted_json<S: Serialize>(settings: &S) -> String {
    let mut tree = serde_json::to_value(settings).unwrap_or(Value::Null);
    redact(&mut tree, false);
    tree.to_string()
}

fn redact(value: &mut Value, secret: bool) {
    match value {
        Value::String(text) if secret => *text = "***".to_owned(),
        Value::String(text) => *text = redact_url(text),
        Value::Array(items) => items.iter_mut().for_each(|item| redact(item, secret)),
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                let key = key.to_ascii_lowercase();
                redact(field, secret || SECRET_KEYS.iter().any(|s| key.contains(s)));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::redacted_json;

    #[test]
    fn hides_url_passwords_and_secret_keys() {
        let line = redacted_json(&json!({
            "amqp_server_url": "amqp://guest:hunter2@rabbit:5672/",
            "db": {"password": "hunter3", "host": "db"},
            "server_name": "Accountservice"
        }));
        assert!(
            !line.contains("hunter2") && !line.contains("hunter3"),
            "{line}"
        );
        assert!(
            line.contains("guest:***@rabbit") && line.contains("Accountservice"),
            "{line}"
        );
    }
}

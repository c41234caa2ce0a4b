//! The account model, as the Go original serves it.

use serde::{Deserialize, Serialize};

/// The longest account id accepted anywhere in the service.
pub const MAX_ACCOUNT_ID_LEN: usize = 64;

/// An account of the bank: what the store holds for one id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The account id, e.g. `10000`.
    pub id: String,
    /// The holder's name, e.g. `Person_0`.
    pub name: String,
}

/// Whether `id` is a well-formed account id: 1 to 64 characters of `[A-Za-z0-9_-]`.
///
/// Checked before any lookup, so a malformed id is rejected without touching the store.
pub fn is_valid_account_id(id: &str) -> bool {
    (1..=MAX_ACCOUNT_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_the_go_field_names() {
        let account = Account {
            id: "10000".into(),
            name: "Person_0".into(),
        };
        let json = serde_json::to_value(&account).unwrap();
        assert_eq!(json, serde_json::json!({"id": "10000", "name": "Person_0"}));
    }

    #[test]
    fn account_id_rule() {
        assert!(is_valid_account_id("10000"));
        assert!(is_valid_account_id("a-B_9"));
        assert!(is_valid_account_id(&"x".repeat(64)));
        assert!(!is_valid_account_id(""));
        assert!(!is_valid_account_id(&"x".repeat(65)));
        assert!(!is_valid_account_id("100 00"));
        assert!(!is_valid_account_id("../etc"));
        assert!(!is_valid_account_id("é"));
    }
}

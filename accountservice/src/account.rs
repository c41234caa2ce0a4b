//! The account model, as the Go original serves it.

use serde::{Deserialize, Serialize};

/// An account of the bank: what the store holds for one id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The account id, e.g. `10000`.
    pub id: String,
    /// The holder's name, e.g. `Person_0`.
    pub name: String,
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
}

//! Spring's flattened properties (`quotes.timeout_ms`, `vip_account_ids[0]`) and how sources of
//! them stack: the one layer type that both config sources produce and the `config` crate reads.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use super::ConfigError;
use super::unknown::SourceKeys;

/// Prefix of a value the config server could not decrypt.
const CIPHER_PREFIX: &str = "{cipher}";

/// One named set of flattened properties: a config server's `propertySources` entry, or one
/// local YAML file.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertySource {
    /// Where the properties come from (a file path or the server's source name).
    pub name: String,
    /// Flattened keys and their typed values.
    pub properties: BTreeMap<String, Value>,
}

/// Merged flattened properties, each remembering the source it came from. Debug output shows
/// keys and origins, never values, which may be secrets.
#[derive(Clone, Default, PartialEq)]
pub struct Properties {
    entries: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    value: Value,
    origin: String,
}

impl Properties {
    /// Merges sources ordered highest precedence first, as a config server lists them.
    ///
    /// The first source that sets a key wins. A list belongs whole to the highest source that
    /// has any item of it, as Spring Boot binds lists: a lower source cannot add `[1]` to a
    /// higher source's one-item list. A winning value still `{cipher}`-encrypted is an error.
    pub fn from_sources(sources: Vec<PropertySource>) -> Result<Self, ConfigError> {
        let merged = sources.into_iter().fold(Self::default(), |higher, source| {
            let origin = source.name;
            let lower = Self {
                entries: source
                    .properties
                    .into_iter()
                    .map(|(key, value)| {
                        let origin = origin.clone();
                        (key, Entry { value, origin })
                    })
                    .collect(),
            };
            higher.over(lower)
        });
        merged.reject_undecrypted()?;
        Ok(merged)
    }

    /// Puts `higher` over these properties, with the precedence rules of [`Self::from_sources`].
    pub fn overlay(self, higher: Properties) -> Result<Self, ConfigError> {
        let merged = higher.over(self);
        merged.reject_undecrypted()?;
        Ok(merged)
    }

    /// The value of a flattened key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key).map(|entry| &entry.value)
    }

    /// Flattened keys and values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries
            .iter()
            .map(|(key, entry)| (key.as_str(), &entry.value))
    }

    /// How many flattened keys there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no key at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys, grouped by the source that set them, for tracing a key back to its source.
    pub(crate) fn layers(&self) -> Vec<SourceKeys> {
        let mut by_origin: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (key, entry) in &self.entries {
            by_origin
                .entry(&entry.origin)
                .or_default()
                .push(key.clone());
        }
        by_origin
            .into_iter()
            .map(|(origin, keys)| SourceKeys {
                origin: origin.to_owned(),
                keys,
            })
            .collect()
    }

    fn over(self, mut lower: Properties) -> Properties {
        let claimed: BTreeSet<&str> = self.entries.keys().map(|key| root(key)).collect();
        lower.entries.retain(|key, _| !claimed.contains(root(key)));
        lower.entries.extend(self.entries);
        lower
    }

    fn reject_undecrypted(&self) -> Result<(), ConfigError> {
        let undecrypted = self.entries.iter().find(|(_, entry)| {
            entry
                .value
                .as_str()
                .is_some_and(|text| text.starts_with(CIPHER_PREFIX))
        });
        match undecrypted {
            Some((key, entry)) => Err(ConfigError::Undecrypted {
                key: key.clone(),
                origin: entry.origin.clone(),
            }),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(key, entry)| (key, &entry.origin)))
            .finish()
    }
}

impl ::config::Source for Properties {
    fn clone_into_box(&self) -> Box<dyn ::config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<::config::Map<String, ::config::Value>, ::config::ConfigError> {
        Ok(self
            .entries
            .iter()
            .map(|(key, entry)| (key.clone(), to_config_value(&entry.value, &entry.origin)))
            .collect())
    }
}

/// The part of a key that a list owns: `vip_account_ids` for `vip_account_ids[0]`, the key
/// itself when it has no index.
fn root(key: &str) -> &str {
    key.find('[').map_or(key, |bracket| &key[..bracket])
}

fn to_config_value(value: &Value, origin: &String) -> ::config::Value {
    use ::config::ValueKind;
    let kind = match value {
        Value::Null => ValueKind::Nil,
        Value::Bool(flag) => ValueKind::Boolean(*flag),
        Value::Number(number) => match (number.as_i64(), number.as_u64()) {
            (Some(signed), _) => ValueKind::I64(signed),
            (None, Some(unsigned)) => ValueKind::U64(unsigned),
            (None, None) => ValueKind::Float(number.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(text) => ValueKind::String(text.clone()),
        Value::Array(items) => ValueKind::Array(
            items
                .iter()
                .map(|item| to_config_value(item, origin))
                .collect(),
        ),
        Value::Object(map) => ValueKind::Table(
            map.iter()
                .map(|(key, item)| (key.clone(), to_config_value(item, origin)))
                .collect(),
        ),
    };
    ::config::Value::new(Some(origin), kind)
}

/// Flattens a tree into Spring's keys: `{"a":{"b":[1]}}` becomes `a.b[0] = 1`. Empty maps and
/// lists stay values, so that an explicitly empty list still overrides a lower one.
pub(crate) fn flatten(tree: &Value) -> BTreeMap<String, Value> {
    let mut flat = BTreeMap::new();
    flatten_into(String::new(), tree, &mut flat);
    flat
}

fn flatten_into(key: String, value: &Value, flat: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (name, item) in map {
                let child = if key.is_empty() {
                    name.clone()
                } else {
                    format!("{key}.{name}")
                };
                flatten_into(child, item, flat);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (index, item) in items.iter().enumerate() {
                flatten_into(format!("{key}[{index}]"), item, flat);
            }
        }
        _ => {
            flat.insert(key, value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn source(name: &str, properties: Value) -> PropertySource {
        PropertySource {
            name: name.to_owned(),
            properties: flatten(&properties),
        }
    }

    #[test]
    fn first_source_wins_and_owns_its_lists() {
        let merged = Properties::from_sources(vec![
            source("high", json!({"a": 1, "list": ["x"]})),
            source("low", json!({"a": 2, "b": 3, "list": ["y", "z"]})),
        ])
        .expect("merges");
        let flat: Vec<_> = merged
            .iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect();
        assert_eq!(
            flat,
            vec![
                ("a".to_owned(), json!(1)),
                ("b".to_owned(), json!(3)),
                ("list[0]".to_owned(), json!("x")),
            ]
        );
    }

    #[test]
    fn a_shadowed_cipher_is_harmless_a_winning_one_is_an_error() {
        let shadowed = Properties::from_sources(vec![
            source("high", json!({"password": "plain"})),
            source("low", json!({"password": "{cipher}abc"})),
        ]);
        assert!(shadowed.is_ok());

        let error = Properties::from_sources(vec![source(
            "repo/app.yml",
            json!({"amqp": {"password": "{cipher}abc"}}),
        )])
        .expect_err("undecrypted value rejected");
        let message = error.to_string();
        assert!(message.contains("`amqp.password`"), "{message}");
        let debug = format!("{:?}", shadowed.expect("merges"));
        assert!(
            debug.contains("password") && !debug.contains("plain"),
            "{debug}"
        );
        assert!(message.contains("repo/app.yml"), "{message}");
        assert!(!message.contains("abc"), "{message}");
    }

    #[test]
    fn overlay_replaces_keys_and_whole_lists() {
        let base = Properties::from_sources(vec![source(
            "base",
            json!({"name": "old", "ids": ["1", "2"], "keep": true}),
        )])
        .expect("base");
        let changes =
            Properties::from_sources(vec![source("bus", json!({"name": "new", "ids": ["3"]}))])
                .expect("changes");
        let merged = base.overlay(changes).expect("overlay");
        assert_eq!(merged.get("name"), Some(&json!("new")));
        assert_eq!(merged.get("ids[0]"), Some(&json!("3")));
        assert_eq!(merged.get("ids[1]"), None);
        assert_eq!(merged.get("keep"), Some(&json!(true)));
    }

    #[test]
    fn flatten_keeps_empty_collections_as_values() {
        let flat = flatten(&json!({"a": {"b": [1, {"c": 2}]}, "none": [], "map": {}}));
        let keys: Vec<_> = flat.keys().cloned().collect();
        assert_eq!(keys, ["a.b[0]", "a.b[1].c", "map", "none"]);
    }
}

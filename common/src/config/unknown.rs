//! Keys that a config source sets but no settings type reads: a misspelt key would otherwise
//! be ignored without a word. Each is traced to the sources that set it, with the known key
//! nearest to it.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::DeserializeOwned;

use super::properties::flatten;

/// A key set in a config source that no settings type reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSetting {
    /// The key as the source spells it, e.g. `vip_acount_ids` or `quotes.timout_ms`.
    pub key: String,
    /// The source that sets it: a file, a config server's property source, an environment
    /// variable or a bus event.
    pub source: String,
    /// The known key nearest to it, when one is near enough to be a likely typo.
    pub suggestion: Option<String>,
}

impl fmt::Display for UnknownSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown setting {:?} in {}: ", self.key, self.source)?;
        match &self.suggestion {
            Some(known) => write!(f, "did you mean {known:?}?"),
            None => f.write_str("no setting has this name; it is ignored"),
        }
    }
}

/// The flattened keys one config layer sets, and how a warning names that layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceKeys {
    /// The layer as a warning names it, e.g. `config-repo/accountservice.yml`.
    pub origin: String,
    /// Its flattened keys, e.g. `vip_account_ids[0]`.
    pub keys: Vec<String>,
}

/// Deserializes `T` from the merged tree, with the keys of the values no field took.
pub(crate) fn deserialize_noting_ignored<T: DeserializeOwned>(
    tree: ::config::Value,
) -> Result<(T, Vec<String>), ::config::ConfigError> {
    let mut ignored = Vec::new();
    let value = serde_ignored::deserialize(tree, |path| ignored.push(spring_key(&path)))?;
    Ok((value, ignored))
}

/// The keys that neither of two parts reading the same tree took: a key ignored by one part
/// is unknown if the other ignored it too, or ignored a table holding it.
pub(crate) fn ignored_by_both(first: &[String], second: &[String]) -> Vec<String> {
    let by_other = |key: &String, other: &[String]| other.iter().any(|o| covers(o, key));
    let mut both: Vec<String> = first
        .iter()
        .filter(|key| by_other(key, second))
        .chain(second.iter().filter(|key| by_other(key, first)))
        .cloned()
        .collect();
    both.sort();
    both.dedup();
    both
}

/// The unknown settings among `layers` (highest precedence first): every key a layer sets
/// under an `ignored` key, once per layer, with the nearest key of `settings`.
pub(crate) fn unknown_settings<S: serde::Serialize>(
    ignored: &[String],
    layers: &[SourceKeys],
    settings: &S,
) -> Vec<UnknownSetting> {
    if ignored.is_empty() {
        return Vec::new();
    }
    let known = known_keys(settings);
    let mut unknown: Vec<UnknownSetting> = Vec::new();
    for layer in layers {
        let keys: BTreeSet<&str> = layer
            .keys
            .iter()
            .filter(|key| ignored.iter().any(|path| covers(path, key)))
            .map(|key| without_trailing_index(key))
            .collect();
        unknown.extend(keys.into_iter().map(|key| UnknownSetting {
            key: key.to_owned(),
            source: layer.origin.clone(),
            suggestion: nearest(key, &known).map(str::to_owned),
        }));
    }
    unknown
}

/// A serde_ignored path in Spring's notation: `quotes.url`, `ids[0]`.
fn spring_key(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", spring_key(parent)),
        Path::Map { parent, key } => match spring_key(parent) {
            parent if parent.is_empty() => key.clone(),
            parent => format!("{parent}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => spring_key(parent),
    }
}

/// Whether `key` is `path` or lies under it (`path.x`, `path[0]`), ignoring ASCII case as the
/// environment's keys are lower-cased.
fn covers(path: &str, key: &str) -> bool {
    key.len() >= path.len()
        && key.is_char_boundary(path.len())
        && key[..path.len()].eq_ignore_ascii_case(path)
        && matches!(key.as_bytes().get(path.len()), None | Some(b'.' | b'['))
}

/// `ids` for `ids[0]` or `ids[0][1]`: a list is written as one key.
fn without_trailing_index(key: &str) -> &str {
    let mut key = key;
    while let Some(open) = key.strip_suffix(']').and_then(|rest| rest.rfind('[')) {
        key = &key[..open];
    }
    key
}

/// Every key the settings type has, in Spring's notation without list indices.
fn known_keys<S: serde::Serialize>(settings: &S) -> BTreeSet<String> {
    serde_json::to_value(settings)
        .map(|tree| flatten(&tree))
        .unwrap_or_default()
        .into_keys()
        .map(|key| strip_indices(&key))
        .collect()
}

fn strip_indices(key: &str) -> String {
    let mut plain = String::with_capacity(key.len());
    let mut in_index = false;
    for c in key.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            _ if !in_index => plain.push(c),
            _ => {}
        }
    }
    plain
}

/// The known key nearest to `unknown`: by edit distance (at most a third of its length, as
/// Cargo suggests), else one with the same last part (a key put at the wrong level).
fn nearest<'k>(unknown: &str, known: &'k BTreeSet<String>) -> Option<&'k str> {
    let unknown = strip_indices(unknown).to_ascii_lowercase();
    let limit = (unknown.chars().count() / 3).max(1);
    let by_distance = known
        .iter()
        .map(|key| (strsim::damerau_levenshtein(&unknown, key), key))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, key)| key.as_str());
    let last_part = |key: &str| key.rsplit('.').next().unwrap_or(key).to_owned();
    by_distance.or_else(|| {
        let wanted = last_part(&unknown);
        known
            .iter()
            .find(|key| last_part(key) == wanted)
            .map(String::as_str)
    })
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default)]
    struct Demo {
        vip_account_ids: Vec<String>,
        server_port: u16,
        quotes: Quotes,
    }

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default)]
    struct Quotes {
        url: String,
        timeout_ms: u64,
    }

    fn tree(json: serde_json::Value) -> ::config::Value {
        ::config::Config::try_from(&json).expect("a config").cache
    }

    #[test]
    fn finds_ignored_keys_at_every_depth_in_springs_notation() {
        let (_, ignored) = deserialize_noting_ignored::<Demo>(tree(serde_json::json!({
            "vip_acount_ids": ["1", "2"],
            "server_port": 1,
            "quotes": {"timout_ms": 3, "url": "u"},
        })))
        .expect("deserializes");
        let mut ignored = ignored;
        ignored.sort();
        assert_eq!(ignored, ["quotes.timout_ms", "vip_acount_ids"]);
    }

    #[test]
    fn a_key_is_unknown_only_when_every_part_ignored_it() {
        let core = [
            "vip_account_ids".to_owned(),
            "quotes".to_owned(),
            "x".to_owned(),
        ];
        let own = [
            "server_port".to_owned(),
            "quotes.timout_ms".to_owned(),
            "x".to_owned(),
        ];
        assert_eq!(ignored_by_both(&core, &own), ["quotes.timout_ms", "x"]);
    }

    #[test]
    fn names_each_source_once_per_key_with_the_nearest_known_key() {
        let layers = [
            SourceKeys {
                origin: "environment variable GOBLOG_SERVER_PROT".into(),
                keys: vec!["server_prot".into()],
            },
            SourceKeys {
                origin: "repo/a.yml".into(),
                keys: vec![
                    "vip_acount_ids[0]".into(),
                    "vip_acount_ids[1]".into(),
                    "server_port".into(),
                    "timeout_ms".into(),
                    "zzz".into(),
                ],
            },
        ];
        let ignored = ["server_prot", "vip_acount_ids", "timeout_ms", "zzz"].map(String::from);
        let lines: Vec<String> = unknown_settings(&ignored, &layers, &Demo::default())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "unknown setting \"server_prot\" in environment variable GOBLOG_SERVER_PROT: \
                 did you mean \"server_port\"?",
                "unknown setting \"timeout_ms\" in repo/a.yml: did you mean \"quotes.timeout_ms\"?",
                "unknown setting \"vip_acount_ids\" in repo/a.yml: did you mean \"vip_account_ids\"?",
                "unknown setting \"zzz\" in repo/a.yml: no setting has this name; it is ignored",
            ]
        );
    }

    #[test]
    fn a_path_covers_its_nested_keys_and_list_items_only() {
        assert!(covers("quotes", "quotes.url"));
        assert!(covers("ids", "ids[0]"));
        assert!(covers("Server_Prot", "server_prot"));
        assert!(!covers("quotes", "quotes_url"));
        assert!(!covers("quotes.url", "quotes"));
        assert_eq!(without_trailing_index("a[0][1]"), "a");
        assert_eq!(without_trailing_index("a[0].b"), "a[0].b");
        assert_eq!(strip_indices("a[10].b[2]"), "a.b");
    }
}

//! Spring's `AntPathMatcher` with `:` as the separator, as Spring Cloud Bus matches destinations
//! against bus ids: `**` matches any number of segments, `*` any characters within a segment
//! and `?` exactly one.

const SEPARATOR: char = ':';

/// Whether `path` matches the Ant-style `pattern`.
pub(crate) fn matches(pattern: &str, path: &str) -> bool {
    if pattern.starts_with(SEPARATOR) != path.starts_with(SEPARATOR) {
        return false;
    }
    let pattern: Vec<&str> = segments(pattern);
    let path: Vec<&str> = segments(path);
    match_segments(&pattern, &path)
}

/// Segments of a pattern or path; empty ones are ignored, as Spring's tokenizer does.
fn segments(text: &str) -> Vec<&str> {
    text.split(SEPARATOR).filter(|s| !s.is_empty()).collect()
}

fn match_segments(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| match_segments(rest, &path[skip..])),
        Some((first, rest)) => path.split_first().is_some_and(|(segment, path_rest)| {
            match_glob(&chars(first), &chars(segment)) && match_segments(rest, path_rest)
        }),
    }
}

fn chars(text: &str) -> Vec<char> {
    text.chars().collect()
}

/// `*` and `?` within one segment.
fn match_glob(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|skip| match_glob(rest, &text[skip..])),
        Some((expected, rest)) => text.split_first().is_some_and(|(actual, text_rest)| {
            (*expected == '?' || expected == actual) && match_glob(rest, text_rest)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn follows_ant_rules_with_colons() {
        let table = [
            ("**", "a:b:c", true),
            ("a:**", "a", true),
            ("a:**", "a:b:c", true),
            ("a:*", "a:b", true),
            ("a:*", "a:b:c", false),
            ("a:b?:*", "a:bc:1", true),
            ("a:b?:*", "a:b:1", false),
            ("*service:**", "accountservice:test", true),
            ("a:**:c", "a:b:x:c", true),
            ("a:**:c", "a:b:x:d", false),
            ("a:b", "a:b", true),
            ("a:b", "a:bb", false),
            (":a", "a", false),
            ("a:é?", "a:éé", true),
        ];
        for (pattern, path, expected) in table {
            assert_eq!(matches(pattern, path), expected, "{pattern} vs {path}");
        }
    }
}

//! Reading counters and gauges from a Prometheus text exposition.

/// The sum of every series of metric `name` (all label sets), or `None` if it has none.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = match rest.chars().next() {
            Some('{') => rest.rsplit_once('}').map(|(_, v)| v),
            Some(' ') => Some(rest),
            _ => None,
        };
        if let Some(Ok(v)) = value
            .and_then(|v| v.split_whitespace().next())
            .map(str::parse::<f64>)
        {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_label_sets_and_ignores_prefixes() {
        let text = "# TYPE a counter\na 3\na_total 9\nb{x=\"1\"} 2\nb{x=\"2\"} 5 1700\n";
        assert_eq!(metric_sum(text, "a"), Some(3.0));
        assert_eq!(metric_sum(text, "b"), Some(7.0));
        assert_eq!(metric_sum(text, "c"), None);
    }
}

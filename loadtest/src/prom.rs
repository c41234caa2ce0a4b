//! Reading counters, gauges and histograms from a Prometheus text exposition.

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

/// The `q` quantile (0..1) of histogram `name` (all label sets together), interpolated within
/// its bucket as PromQL's `histogram_quantile` does; `None` without samples.
pub fn histogram_quantile(text: &str, name: &str, q: f64) -> Option<f64> {
    let prefix = format!("{name}_bucket{{");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in text.lines().filter(|l| l.starts_with(&prefix)) {
        let Some((labels, value)) = line.rsplit_once('}') else {
            continue;
        };
        let le = labels
            .split(',')
            .find_map(|label| label.trim_start_matches(&prefix).strip_prefix("le=\""))
            .map(|le| le.trim_end_matches('"'));
        let bound = match le {
            Some("+Inf") => f64::INFINITY,
            Some(le) => match le.parse() {
                Ok(bound) => bound,
                Err(_) => continue,
            },
            None => continue,
        };
        let Some(Ok(count)) = value.split_whitespace().next().map(str::parse::<f64>) else {
            continue;
        };
        match buckets.iter_mut().find(|(b, _)| *b == bound) {
            Some((_, total)) => *total += count,
            None => buckets.push((bound, count)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(bound, count) in &buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower);
            }
            let share = if count > below {
                (rank - below) / (count - below)
            } else {
                1.0
            };
            return Some(lower + (bound - lower) * share);
        }
        (lower, below) = (bound, count);
    }
    Some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_the_bucket() {
        let text = "# TYPE h histogram\nh_bucket{le=\"0.001\"} 50\nh_bucket{le=\"0.01\"} 100\n\
                    h_bucket{le=\"+Inf\"} 100\nh_sum 0.3\nh_count 100\n";
        assert_eq!(histogram_quantile(text, "h", 0.5), Some(0.001));
        let p99 = histogram_quantile(text, "h", 0.99).expect("a p99");
        assert!((p99 - 0.009_82).abs() < 1e-9, "{p99}");
        assert_eq!(histogram_quantile("", "h", 0.99), None);
    }

    #[test]
    fn sums_label_sets_and_ignores_prefixes() {
        let text = "# TYPE a counter\na 3\na_total 9\nb{x=\"1\"} 2\nb{x=\"2\"} 5 1700\n";
        assert_eq!(metric_sum(text, "a"), Some(3.0));
        assert_eq!(metric_sum(text, "b"), Some(7.0));
        assert_eq!(metric_sum(text, "c"), None);
    }
}

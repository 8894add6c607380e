//! Reading the service's `/metrics` (the Prometheus text format) back into numbers.

/// One sample line: `name{label="value",...} 12.5`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// The labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// Every sample of one `/metrics` page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// The samples, in the order written.
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Parses a page in the Prometheus text format; comment lines and lines that do not
    /// parse are skipped.
    pub fn parse(text: &str) -> Scrape {
        Scrape {
            samples: text.lines().filter_map(parse_line).collect(),
        }
    }

    /// The sum of every sample named `name`, whatever its labels (0 when there is none).
    pub fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|sample| sample.name == name)
            .map(|sample| sample.value)
            .sum()
    }

    /// The sum of the samples named `name` whose label `label` is `value`.
    pub fn sum_where(&self, name: &str, label: &str, value: &str) -> f64 {
        self.samples
            .iter()
            .filter(|sample| sample.name == name)
            .filter(|sample| sample.labels.iter().any(|(l, v)| l == label && v == value))
            .map(|sample| sample.value)
            .sum()
    }
}

/// Parses one sample line.
fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Parses `a="x",b="y\"z"}` and returns the labels and what follows the `}`.
fn parse_labels(mut text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start_matches([',', ' ']);
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let (label, after) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (at, '"') => break at,
                (_, c) => value.push(c),
            }
        };
        labels.push((label.trim().to_owned(), value));
        text = &after[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# HELP service_db_queries_total Database queries, by query
# TYPE service_db_queries_total counter
service_db_queries_total{query="user"} 12
service_db_queries_total{query="product"} 3

service_cache_degraded 0
odd{text="a \"quoted\", comma",other="}"} 1.5
bucket_bucket{le="+Inf"} 7 1700000000
not a sample
"#;

    #[test]
    fn sums_by_name_and_label() {
        let scrape = Scrape::parse(PAGE);
        assert_eq!(scrape.sum("service_db_queries_total"), 15.0);
        assert_eq!(
            scrape.sum_where("service_db_queries_total", "query", "product"),
            3.0
        );
        assert_eq!(scrape.sum("service_cache_degraded"), 0.0);
        assert_eq!(scrape.sum("absent"), 0.0);
        assert_eq!(scrape.sum("bucket_bucket"), 7.0);
    }

    #[test]
    fn label_values_keep_escapes_commas_and_braces() {
        let scrape = Scrape::parse(PAGE);
        let odd = scrape.samples.iter().find(|s| s.name == "odd").unwrap();
        assert_eq!(
            odd.labels,
            [
                ("text".to_owned(), "a \"quoted\", comma".to_owned()),
                ("other".to_owned(), "}".to_owned())
            ]
        );
        assert_eq!(odd.value, 1.5);
        assert_eq!(scrape.samples.len(), 5);
    }
}

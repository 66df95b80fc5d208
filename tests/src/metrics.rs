//! A Prometheus text scrape of a server's `/metrics`, as tests read it.

use std::collections::BTreeMap;

use crate::{Server, get};

/// Every sample of a scrape: `name{labels}` → value.
pub struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    pub fn of(server: &Server) -> Scrape {
        let a = get(&format!("{}/metrics", server.url));
        assert_eq!(a.status, 200);
        Scrape(
            a.body
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .map(|l| {
                    let (k, v) = l.rsplit_once(' ').expect("name value");
                    (k.to_owned(), v.parse().expect("a number"))
                })
                .collect(),
        )
    }

    /// The sum over the samples of `name` whose labels include every `k="v"` of `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(k, _)| {
                let (n, l) = k.split_once('{').unwrap_or((k, ""));
                n == name
                    && labels
                        .iter()
                        .all(|(lk, lv)| l.contains(&format!("{lk}=\"{lv}\"")))
            })
            .map(|(_, v)| v)
            .sum()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0
            .keys()
            .any(|k| k.split_once('{').map_or(k.as_str(), |(n, _)| n) == name)
    }
}

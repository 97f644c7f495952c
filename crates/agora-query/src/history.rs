//! Differencing defence: an analyst's recent results, and the rule that suppresses a group
//! whose entity count differs from an earlier result for the same group by less than the
//! threshold (what Google Ads Data Hub does).
//!
//! Protected: two queries over the same datasets and the same grouping whose filters differ
//! so that one group gains or loses fewer than `threshold` entities (with and without a
//! narrow filter, in either order), including totals without GROUP BY.
//! Not protected: results whose group keys differ (grouping by region, then by region and
//! store), differences spread across several groups, sets that differ while their counts are
//! equal (one entity swapped for another), differences across analysts or organisations
//! colluding, and anything older than the history the store keeps.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Mutex;

use agora_domain::OrgId;

/// One released group: its key and the hidden entity counts it carried.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordedGroup {
    /// The datasets and grouping columns, then the group's values.
    pub key: String,
    /// One count per guarded column, in the order of the query's guards.
    pub counts: Vec<(String, u64)>,
}

/// Where released results are remembered. The app can persist it; tests use [`MemoryHistory`].
pub trait ResultHistory: Send + Sync {
    /// Earlier counts recorded for these keys by this consumer.
    fn earlier(
        &self,
        consumer: OrgId,
        keys: &[String],
    ) -> BTreeMap<String, Vec<Vec<(String, u64)>>>;
    /// Remembers released groups.
    fn record(&self, consumer: OrgId, groups: Vec<RecordedGroup>);
}

/// Keeps the last `groups_max` released groups per consumer in memory.
#[derive(Debug)]
pub struct MemoryHistory {
    groups_max: usize,
    by_consumer: Mutex<BTreeMap<OrgId, VecDeque<RecordedGroup>>>,
}

impl MemoryHistory {
    pub fn new(groups_max: usize) -> Self {
        Self {
            groups_max,
            by_consumer: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Default for MemoryHistory {
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl ResultHistory for MemoryHistory {
    fn earlier(
        &self,
        consumer: OrgId,
        keys: &[String],
    ) -> BTreeMap<String, Vec<Vec<(String, u64)>>> {
        let map = self
            .by_consumer
            .lock()
            .expect("history lock is never poisoned");
        let mut found: BTreeMap<String, Vec<Vec<(String, u64)>>> = BTreeMap::new();
        // A set, not a scan of `keys` per recorded group: results can hold thousands of groups.
        let keys: HashSet<&str> = keys.iter().map(String::as_str).collect();
        if let Some(groups) = map.get(&consumer) {
            for group in groups {
                if keys.contains(group.key.as_str()) {
                    found
                        .entry(group.key.clone())
                        .or_default()
                        .push(group.counts.clone());
                }
            }
        }
        found
    }

    fn record(&self, consumer: OrgId, groups: Vec<RecordedGroup>) {
        let mut map = self
            .by_consumer
            .lock()
            .expect("history lock is never poisoned");
        let kept = map.entry(consumer).or_default();
        let fresh: Vec<RecordedGroup> = {
            let known: HashSet<&RecordedGroup> = kept.iter().collect();
            let mut fresh_keys = HashSet::new();
            groups
                .into_iter()
                .filter(|group| !known.contains(group) && fresh_keys.insert(group.clone()))
                .collect()
        };
        kept.extend(fresh);
        while kept.len() > self.groups_max {
            kept.pop_front();
        }
    }
}

/// Whether a group with `counts` must be suppressed given earlier results for the same key:
/// some guarded count differs from an earlier one by more than zero and less than its minimum.
pub(crate) fn differs_too_little(
    counts: &[(String, u64)],
    earlier: &[Vec<(String, u64)>],
    minimum_of: impl Fn(&str) -> u64,
) -> bool {
    earlier.iter().any(|previous| {
        counts.iter().any(|(column, count)| {
            previous.iter().any(|(previous_column, previous_count)| {
                previous_column == column && {
                    let difference = count.abs_diff(*previous_count);
                    difference > 0 && difference < minimum_of(column)
                }
            })
        })
    })
}

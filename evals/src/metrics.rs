//! Metric arithmetic: ranks to recall@k and MRR, tool calls to precision and recall.

/// Recall@k over queries: the share whose first relevant hit is at rank ≤ k (1-based ranks,
/// `None` when nothing relevant was returned).
pub fn recall_at(ranks: &[Option<usize>], k: usize) -> f64 {
    ratio(
        ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count(),
        ranks.len(),
    )
}

/// Mean reciprocal rank; a query with no relevant hit contributes 0.
pub fn mrr(ranks: &[Option<usize>]) -> f64 {
    if ranks.is_empty() {
        return 0.0;
    }
    let sum: f64 = ranks.iter().flatten().map(|r| 1.0 / *r as f64).sum();
    sum / ranks.len() as f64
}

/// `part / whole`, 0 when `whole` is 0.
pub fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Tool-choice confusion counts over cases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ToolConfusion {
    /// The expected tool was called.
    pub true_positive: usize,
    /// A tool was called that the case did not need (each such call counts).
    pub false_positive: usize,
    /// The case needed a tool that was not called.
    pub false_negative: usize,
}

impl ToolConfusion {
    /// Adds one case: what it needed and the tools the agent called.
    pub fn add(&mut self, expected: Option<&str>, called: &[String]) {
        let hit = expected.is_some_and(|e| called.iter().any(|c| c == e));
        if hit {
            self.true_positive += 1;
        } else if expected.is_some() {
            self.false_negative += 1;
        }
        self.false_positive += called
            .iter()
            .filter(|c| expected != Some(c.as_str()))
            .count();
    }

    /// Of the calls made, the share that were needed; 1 when no call was made.
    pub fn precision(&self) -> f64 {
        let called = self.true_positive + self.false_positive;
        if called == 0 {
            1.0
        } else {
            ratio(self.true_positive, called)
        }
    }

    /// Of the needed calls, the share made.
    pub fn recall(&self) -> f64 {
        ratio(self.true_positive, self.true_positive + self.false_negative)
    }
}

/// The `q`-quantile (0..=1) of `values` by nearest rank; 0 for none.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_and_mrr_from_ranks() {
        let ranks = [Some(1), Some(3), None, Some(2)];
        assert_eq!(recall_at(&ranks, 1), 0.25);
        assert_eq!(recall_at(&ranks, 5), 0.75);
        let expected = (1.0 + 1.0 / 3.0 + 0.0 + 0.5) / 4.0;
        assert!((mrr(&ranks) - expected).abs() < 1e-12);
        assert_eq!(mrr(&[]), 0.0);
        assert_eq!(recall_at(&[], 5), 0.0);
    }

    #[test]
    fn tool_precision_and_recall() {
        let mut c = ToolConfusion::default();
        c.add(Some("slack__post_message"), &["slack__post_message".into()]);
        c.add(Some("slack__post_message"), &[]);
        c.add(None, &["slack__post_message".into()]);
        c.add(None, &[]);
        assert_eq!(
            c,
            ToolConfusion {
                true_positive: 1,
                false_positive: 1,
                false_negative: 1
            }
        );
        assert_eq!(c.precision(), 0.5);
        assert_eq!(c.recall(), 0.5);
        assert_eq!(ToolConfusion::default().precision(), 1.0);
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.99), 5.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}

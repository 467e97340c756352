//! Reading pages of items for Query and Scan: key ranges across partitions,
//! DynamoDB's `Limit` and 1 MB page limit (both applied before the filter),
//! `LastEvaluatedKey`, and the bytes read for capacity.

use std::ops::Bound;
use std::sync::Arc;

use atoll_cluster::RangeRequest;
use atoll_model::Item;
use atoll_model::table::TableDefinition;

use crate::Api;
use crate::error::ApiResult;

/// Most data one Query or Scan page reads.
const MAX_PAGE_BYTES: u64 = 1024 * 1024;

/// A row-key range inside the partition owning `token`.
pub(crate) struct RangeScan {
    /// A token of the partition (to route the read).
    pub token: u64,
    /// Start of the range.
    pub start: Bound<Vec<u8>>,
    /// End of the range.
    pub end: Bound<Vec<u8>>,
}

/// What to read.
pub(crate) struct PagePlan {
    /// The table.
    pub table: Arc<TableDefinition>,
    /// Ranges to read, in the order they are read.
    pub ranges: Vec<RangeScan>,
    /// Descending order (Query with `ScanIndexForward=false`).
    pub reverse: bool,
    /// `Limit`: most items evaluated.
    pub limit: Option<usize>,
    /// `ConsistentRead`.
    pub consistent: bool,
}

/// One page.
pub(crate) struct Page {
    /// Items that passed the filter, in order.
    pub items: Vec<Item>,
    /// Items evaluated (before the filter).
    pub scanned_count: usize,
    /// Key of the last evaluated item, when the page stopped early.
    pub last_evaluated_key: Option<Item>,
    /// Sum of the sizes of the items read.
    pub bytes_read: u64,
}

/// Reads one page: items in the plan's ranges, in order, until `Limit`
/// items or 1 MB have been read; `keep` is the filter.
pub(crate) async fn read_page(
    api: &Api,
    plan: &PagePlan,
    mut keep: impl FnMut(&Item) -> ApiResult<bool>,
) -> ApiResult<Page> {
    let mut page = Page {
        items: Vec::new(),
        scanned_count: 0,
        last_evaluated_key: None,
        bytes_read: 0,
    };
    let mut last_key: Option<Item> = None;
    let full = |page: &Page| {
        plan.limit.is_some_and(|limit| page.scanned_count >= limit)
            || page.bytes_read >= MAX_PAGE_BYTES
    };
    for range in &plan.ranges {
        let request = RangeRequest {
            start: range.start.clone(),
            end: range.end.clone(),
            reverse: plan.reverse,
            max_items: plan
                .limit
                .map_or(usize::MAX, |limit| limit.saturating_sub(page.scanned_count)),
            max_bytes: MAX_PAGE_BYTES.saturating_sub(page.bytes_read),
        };
        let chunk = api
            .cluster
            .read_range(&plan.table, range.token, request, plan.consistent)
            .await
            .map_err(super::cluster_error)?;
        for read in chunk.items {
            page.scanned_count += 1;
            page.bytes_read += u64::from(read.size_bytes);
            last_key = Some(plan.table.key_schema.key_of(&read.item));
            if keep(&read.item)? {
                page.items.push(read.item);
            }
        }
        if full(&page) {
            break;
        }
    }
    // A full page returns the key of its last item, even when nothing is
    // left after it (as DynamoDB does).
    if full(&page) {
        page.last_evaluated_key = last_key;
    }
    Ok(page)
}

/// The row key just after every key starting with `prefix`.
pub(crate) fn after_prefix(prefix: &[u8]) -> Bound<Vec<u8>> {
    atoll_storage::prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded)
}

/// Row-key bounds of a token range `[first, last]`.
pub(crate) fn token_bounds(first: u64, last: u64) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let start = Bound::Included(first.to_be_bytes().to_vec());
    let end = match last.checked_add(1) {
        Some(next) => Bound::Excluded(next.to_be_bytes().to_vec()),
        None => Bound::Unbounded,
    };
    (start, end)
}

/// Token range `[first, last]` of parallel-scan segment `segment` of `total`.
pub(crate) fn segment_tokens(segment: u64, total: u64) -> (u64, u64) {
    let span: u128 = 1 << 64;
    let first = (u128::from(segment) * span).div_ceil(u128::from(total.max(1)));
    let next = (u128::from(segment + 1) * span).div_ceil(u128::from(total.max(1)));
    (first as u64, (next - 1) as u64)
}

#[cfg(test)]
mod tests {
    use super::segment_tokens;

    #[test]
    fn segments_cover_all_tokens_without_overlap() {
        for total in [1u64, 2, 3, 7, 1000, 1_000_000] {
            let mut expected_first = 0u128;
            let probes: Vec<u64> = if total <= 1000 {
                (0..total).collect()
            } else {
                vec![0, 1, total / 2, total - 2, total - 1]
            };
            for segment in probes {
                let (first, last) = segment_tokens(segment, total);
                if total <= 1000 {
                    assert_eq!(
                        u128::from(first),
                        expected_first,
                        "segment {segment} of {total}"
                    );
                    expected_first = u128::from(last) + 1;
                }
                assert!(first <= last);
            }
            if total <= 1000 {
                assert_eq!(expected_first, 1u128 << 64);
            }
        }
    }
}

//! Reading pages of items for Query and Scan: key ranges across partitions,
//! DynamoDB's `Limit` and 1 MB page limit (both applied before the filter),
//! `LastEvaluatedKey`, and the bytes read for capacity.

use std::sync::Arc;

use atoll_cluster::data::{GlobalIndexStart, ItemKey, KeyRange};
use atoll_model::Item;
use atoll_model::table::TableDefinition;

use super::index_reads::IndexPlan;
use crate::Api;
use crate::error::ApiResult;

/// Most data one Query or Scan page reads.
const MAX_PAGE_BYTES: u64 = 1024 * 1024;

/// What to read.
pub(crate) struct PagePlan {
    /// The table.
    pub table: Arc<TableDefinition>,
    /// The keys to read.
    pub range: KeyRange,
    /// Where the previous page stopped (`ExclusiveStartKey`).
    pub exclusive_start: Option<ItemKey>,
    /// Descending order (Query with `ScanIndexForward=false`).
    pub reverse: bool,
    /// `Limit`: most items evaluated.
    pub limit: Option<usize>,
    /// `ConsistentRead`.
    pub consistent: bool,
    /// The secondary index read, if any (else the table).
    pub index: Option<IndexPlan>,
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
    let mut cursor = match &plan.index {
        None => api.data.range_cursor(
            plan.table.clone(),
            &plan.range,
            plan.exclusive_start.as_ref(),
            plan.reverse,
            plan.consistent,
        )?,
        Some(index) if index.global_table.is_some() => {
            let start = match (&plan.exclusive_start, &index.start) {
                (Some(item), Some(start)) => Some(GlobalIndexStart {
                    item,
                    partition: &start.partition,
                    sort: start.sort.as_ref(),
                }),
                _ => None,
            };
            let index_table = index
                .global_table
                .clone()
                .unwrap_or_else(|| plan.table.clone());
            api.data
                .global_index_cursor(index_table, &plan.range, start, plan.reverse)?
        }
        Some(index) => {
            let start = plan
                .exclusive_start
                .as_ref()
                .zip(index.start.as_ref().and_then(|s| s.sort.as_ref()));
            api.data.local_index_cursor(
                plan.table.clone(),
                &index.name,
                &plan.range,
                start,
                plan.reverse,
                plan.consistent,
                index.fetch_items,
            )?
        }
    };
    loop {
        let max_items = plan
            .limit
            .map_or(usize::MAX, |limit| limit.saturating_sub(page.scanned_count));
        let max_bytes = MAX_PAGE_BYTES.saturating_sub(page.bytes_read);
        let Some(chunk) = api
            .data
            .next_chunk(&mut cursor, max_items, max_bytes)
            .await?
        else {
            break;
        };
        for read in chunk.items {
            page.scanned_count += 1;
            page.bytes_read += u64::from(read.size_bytes);
            last_key = Some(match &plan.index {
                None => plan.table.key_schema.key_of(&read.item),
                Some(index) => super::index_reads::index_page_key(&plan.table, index, &read.item),
            });
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

//! A bounded, thread-safe cache of parsed expressions, keyed by kind and
//! text, so a request seen before is not parsed again.
//!
//! A parse does not depend on the request's names or values, so the parsed
//! tree (or the parse error) is shared by every request with the same text.
//! The cache is split into shards, each a small map under its own mutex, to
//! keep contention low; each shard evicts its oldest entry when full.
//! Parsing happens outside the lock; two threads missing on the same text
//! both parse it, and the later insert wins — harmless, as the results are
//! equal.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::ExprError;
use crate::kind::ExpressionKind;
use crate::parser::{
    ParsedCondition, ParsedProjection, ParsedUpdate, parse_condition_expression,
    parse_projection_expression, parse_update_expression,
};

const SHARDS: usize = 16;

/// Texts longer than this are never valid (4096 UTF-16 code units take at
/// most 12 KB of UTF-8), so they are not cached.
const MAX_CACHED_TEXT: usize = 3 * 4096;

type Key = (ExpressionKind, Arc<str>);

#[derive(Clone)]
enum Entry {
    Condition(Result<Arc<ParsedCondition>, ExprError>),
    Update(Result<Arc<ParsedUpdate>, ExprError>),
    Projection(Result<Arc<ParsedProjection>, ExprError>),
}

#[derive(Default)]
struct Shard {
    map: HashMap<Key, Entry>,
    order: VecDeque<Key>,
}

/// A cache of parsed expressions (see the module documentation).
pub struct ExpressionCache {
    shards: [Mutex<Shard>; SHARDS],
    per_shard: usize,
}

impl std::fmt::Debug for ExpressionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpressionCache")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish()
    }
}

impl Default for ExpressionCache {
    /// A cache of 4096 expressions.
    fn default() -> Self {
        ExpressionCache::new(4096)
    }
}

impl ExpressionCache {
    /// A cache holding at most about `capacity` expressions (at least one
    /// per shard).
    pub fn new(capacity: usize) -> Self {
        ExpressionCache {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// How many expressions the cache can hold.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    /// How many expressions it holds.
    pub fn len(&self) -> usize {
        (0..SHARDS).map(|index| self.lock(index).map.len()).sum()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self, index: usize) -> MutexGuard<'_, Shard> {
        // In range by construction: the array has SHARDS shards.
        let shard = &self.shards[index % SHARDS];
        // A panic while holding the lock cannot leave a shard inconsistent in
        // a way that matters: entries are whole values.
        shard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn shard_of(kind: ExpressionKind, text: &str) -> usize {
        let mut hasher = DefaultHasher::new();
        kind.hash(&mut hasher);
        text.hash(&mut hasher);
        (hasher.finish() as usize) % SHARDS
    }

    fn get_or_parse(
        &self,
        kind: ExpressionKind,
        text: &str,
        parse: impl FnOnce() -> Entry,
    ) -> Entry {
        if text.len() > MAX_CACHED_TEXT {
            return parse();
        }
        let index = Self::shard_of(kind, text);
        let key: Key = (kind, Arc::from(text));
        if let Some(entry) = self.lock(index).map.get(&key) {
            return entry.clone();
        }
        let entry = parse();
        let mut shard = self.lock(index);
        if !shard.map.contains_key(&key) {
            while shard.map.len() >= self.per_shard {
                let Some(oldest) = shard.order.pop_front() else {
                    break;
                };
                shard.map.remove(&oldest);
            }
            shard.order.push_back(key.clone());
        }
        shard.map.insert(key, entry.clone());
        entry
    }

    /// The parsed condition, filter or key condition for `text`.
    pub fn condition(
        &self,
        text: &str,
        kind: ExpressionKind,
    ) -> Result<Arc<ParsedCondition>, ExprError> {
        let entry = self.get_or_parse(kind, text, || {
            Entry::Condition(parse_condition_expression(text, kind).map(Arc::new))
        });
        match entry {
            Entry::Condition(result) => result,
            _ => parse_condition_expression(text, kind).map(Arc::new),
        }
    }

    /// The parsed update expression for `text`.
    pub fn update(&self, text: &str) -> Result<Arc<ParsedUpdate>, ExprError> {
        let entry = self.get_or_parse(ExpressionKind::Update, text, || {
            Entry::Update(parse_update_expression(text).map(Arc::new))
        });
        match entry {
            Entry::Update(result) => result,
            _ => parse_update_expression(text).map(Arc::new),
        }
    }

    /// The parsed projection expression for `text`.
    pub fn projection(&self, text: &str) -> Result<Arc<ParsedProjection>, ExprError> {
        let entry = self.get_or_parse(ExpressionKind::Projection, text, || {
            Entry::Projection(parse_projection_expression(text).map(Arc::new))
        });
        match entry {
            Entry::Projection(result) => result,
            _ => parse_projection_expression(text).map(Arc::new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_share_the_parse_and_the_size_is_bounded() {
        let cache = ExpressionCache::new(32);
        let first = cache.condition("a = :v", ExpressionKind::Condition);
        let second = cache.condition("a = :v", ExpressionKind::Condition);
        assert!(matches!((&first, &second), (Ok(a), Ok(b)) if Arc::ptr_eq(a, b)));
        // The kind is part of the key: messages name the parameter.
        let filter = cache.condition("", ExpressionKind::Filter);
        assert_eq!(
            filter.err().map(|e| e.message().to_owned()).as_deref(),
            Some("Invalid FilterExpression: The expression can not be empty;")
        );
        for index in 0..1000 {
            let _ = cache.projection(&format!("a{index}"));
        }
        assert!(cache.len() <= cache.capacity());
        assert!(cache.update("SET a = :v").is_ok());
    }
}

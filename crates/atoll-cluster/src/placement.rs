//! Where a partition's replicas go: on distinct nodes, spread over distinct
//! zones when the nodes name zones, on the least loaded nodes first.
//!
//! Pure functions of what the catalog knows, so every node that computes a
//! placement computes the same one.

use std::collections::BTreeSet;

use atoll_replication::NodeId;

/// DynamoDB keeps three copies of every partition.
pub const REPLICATION_FACTOR: usize = 3;

/// A node as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node id.
    pub id: NodeId,
    /// Availability zone, when the node was started with one.
    pub zone: Option<String>,
    /// Replicas the node holds now (its load).
    pub replica_count: usize,
}

/// The nodes for a new partition: `replication_factor` distinct nodes, or
/// every node when there are fewer. Each pick prefers a zone no earlier
/// pick uses, then the fewest replicas, then the lowest id.
pub fn place_replicas(nodes: &[NodeInfo], replication_factor: usize) -> Vec<NodeId> {
    let mut chosen: Vec<&NodeInfo> = Vec::new();
    while chosen.len() < replication_factor {
        let used_zones: BTreeSet<&str> = chosen.iter().filter_map(|n| n.zone.as_deref()).collect();
        let next = nodes
            .iter()
            .filter(|n| !chosen.iter().any(|c| c.id == n.id))
            .min_by_key(|n| {
                let zone_used = n.zone.as_deref().is_some_and(|z| used_zones.contains(z));
                (zone_used, n.replica_count, n.id)
            });
        match next {
            Some(node) => chosen.push(node),
            None => break,
        }
    }
    chosen.into_iter().map(|n| n.id).collect()
}

/// A node to rebuild replica `lost` of a partition held by `current` on:
/// not one of them, preferring a zone the remaining replicas do not use,
/// then the fewest replicas, then the lowest id. `None` when no node is free.
pub fn replacement_for(nodes: &[NodeInfo], current: &[NodeId], lost: NodeId) -> Option<NodeId> {
    let remaining: Vec<NodeId> = current.iter().copied().filter(|id| *id != lost).collect();
    let candidates: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| n.id != lost && !current.contains(&n.id))
        .collect();
    best_addition(nodes, &remaining, candidates)
}

/// A node to add to a partition held by `current` (fewer replicas than the
/// replication factor): chosen as `replacement_for` chooses.
pub fn addition_for(nodes: &[NodeInfo], current: &[NodeId]) -> Option<NodeId> {
    let candidates: Vec<&NodeInfo> = nodes.iter().filter(|n| !current.contains(&n.id)).collect();
    best_addition(nodes, current, candidates)
}

/// A replica move that evens out load, as (from, to): of the `movable`
/// members of `current`, the one on the node holding the most replicas, to
/// the node `replacement_for` would rebuild it on, when that node holds at
/// least two replicas fewer (so the move narrows the spread rather than
/// swapping its ends) and the move does not put two replicas in one zone
/// where they were apart. `None` when no move is worth its copy.
pub fn rebalance_move(
    nodes: &[NodeInfo],
    current: &[NodeId],
    movable: &[NodeId],
) -> Option<(NodeId, NodeId)> {
    let count = |id: NodeId| nodes.iter().find(|n| n.id == id).map(|n| n.replica_count);
    let from = movable
        .iter()
        .copied()
        .filter(|id| current.contains(id))
        .filter_map(|id| Some((count(id)?, id)))
        .max_by_key(|(count, id)| (*count, std::cmp::Reverse(*id)))
        .map(|(_, id)| id)?;
    let to = replacement_for(nodes, current, from)?;
    let narrows = count(to)? + 2 <= count(from)?;
    let remaining: Vec<NodeId> = current.iter().copied().filter(|id| *id != from).collect();
    let zone_shared = |id: NodeId| {
        let zone = nodes
            .iter()
            .find(|n| n.id == id)
            .and_then(|n| n.zone.as_deref());
        zone.is_some_and(|zone| {
            nodes
                .iter()
                .any(|n| remaining.contains(&n.id) && n.zone.as_deref() == Some(zone))
        })
    };
    let keeps_zones_apart = !zone_shared(to) || zone_shared(from);
    (narrows && keeps_zones_apart).then_some((from, to))
}

/// Among `candidates`, the one in a zone `holders` do not use, then with the
/// fewest replicas, then with the lowest id.
fn best_addition(
    nodes: &[NodeInfo],
    holders: &[NodeId],
    candidates: Vec<&NodeInfo>,
) -> Option<NodeId> {
    let used_zones: BTreeSet<&str> = nodes
        .iter()
        .filter(|n| holders.contains(&n.id))
        .filter_map(|n| n.zone.as_deref())
        .collect();
    candidates
        .into_iter()
        .min_by_key(|n| {
            let zone_used = n.zone.as_deref().is_some_and(|z| used_zones.contains(z));
            (zone_used, n.replica_count, n.id)
        })
        .map(|n| n.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: NodeId, zone: Option<&str>, replica_count: usize) -> NodeInfo {
        NodeInfo {
            id,
            zone: zone.map(str::to_string),
            replica_count,
        }
    }

    #[test]
    fn replicas_spread_over_zones_then_load() {
        let nodes = [
            node(1, Some("a"), 0),
            node(2, Some("a"), 0),
            node(3, Some("b"), 5),
            node(4, Some("c"), 9),
            node(5, Some("b"), 1),
        ];
        // One per zone, the least loaded node of each.
        assert_eq!(place_replicas(&nodes, 3), vec![1, 5, 4]);
    }

    #[test]
    fn without_zones_the_least_loaded_nodes_are_chosen() {
        let nodes = [
            node(1, None, 4),
            node(2, None, 1),
            node(3, None, 1),
            node(4, None, 0),
        ];
        assert_eq!(place_replicas(&nodes, 3), vec![4, 2, 3]);
    }

    #[test]
    fn fewer_nodes_than_copies_give_one_copy_per_node() {
        assert_eq!(place_replicas(&[node(1, None, 0)], 3), vec![1]);
        assert_eq!(
            place_replicas(&[node(2, Some("a"), 0), node(1, Some("a"), 0)], 3),
            vec![1, 2]
        );
        assert!(place_replicas(&[], 3).is_empty());
    }

    #[test]
    fn a_lost_replica_moves_to_a_free_node_in_a_zone_still_missing() {
        let nodes = [
            node(1, Some("a"), 3),
            node(2, Some("b"), 3),
            node(3, Some("c"), 3),
            node(4, Some("a"), 0),
            node(5, Some("c"), 2),
        ];
        // Replicas on 1, 2, 3; node 3 (zone c) is lost: zone c again, on node 5,
        // even though node 4 holds fewer replicas.
        assert_eq!(replacement_for(&nodes, &[1, 2, 3], 3), Some(5));
        // No free node: nothing to move to.
        assert_eq!(replacement_for(&nodes[..3], &[1, 2, 3], 3), None);
    }

    #[test]
    fn a_replica_moves_from_the_fullest_node_to_an_emptier_one() {
        let nodes = [
            node(1, None, 4),
            node(2, None, 5),
            node(3, None, 4),
            node(4, None, 0),
        ];
        // Node 1 leads (not movable): node 2's copy goes to the new node 4.
        assert_eq!(rebalance_move(&nodes, &[1, 2, 3], &[2, 3]), Some((2, 4)));
        // A spread of one is left alone: moving would only swap its ends.
        let even = [
            node(1, None, 3),
            node(2, None, 3),
            node(3, None, 3),
            node(4, None, 2),
        ];
        assert_eq!(rebalance_move(&even, &[1, 2, 3], &[2, 3]), None);
        // Nothing movable, or no node outside the partition: no move.
        assert_eq!(rebalance_move(&nodes, &[1, 2, 3], &[]), None);
        assert_eq!(rebalance_move(&nodes[..3], &[1, 2, 3], &[2, 3]), None);
    }

    #[test]
    fn a_move_never_puts_two_replicas_in_one_zone() {
        let nodes = [
            node(1, Some("a"), 4),
            node(2, Some("b"), 6),
            node(3, Some("c"), 4),
            node(4, Some("a"), 0),
            node(5, Some("b"), 3),
        ];
        // Node 2 (zone b) is fullest; node 4 is emptiest, but zone a already
        // holds a copy: the copy goes to node 5, zone b again.
        assert_eq!(rebalance_move(&nodes, &[1, 2, 3], &[2, 3]), Some((2, 5)));
        // Without node 5, no move keeps the zones apart.
        assert_eq!(rebalance_move(&nodes[..4], &[1, 2, 3], &[2, 3]), None);
    }

    #[test]
    fn a_joining_node_gets_the_copy_a_partition_lacks_in_a_new_zone_first() {
        let nodes = [
            node(1, Some("a"), 2),
            node(2, Some("b"), 2),
            node(3, Some("a"), 0),
            node(4, Some("c"), 1),
        ];
        // Held by 1 and 2 (zones a, b): zone c wins over the emptier node 3.
        assert_eq!(addition_for(&nodes, &[1, 2]), Some(4));
        assert_eq!(addition_for(&nodes, &[1, 2, 3, 4]), None);
    }
}
